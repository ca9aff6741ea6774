"""mdlearn.plotting: the helpers of chapters 3-4 (laser scans, the scale-invariant error)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from mdlearn import plotting  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _colorbar_labels(fig):
    return [ax.get_ylabel() for ax in fig.axes if ax.get_label() == "<colorbar>"]


def test_scan_overlay_draws_only_the_valid_pixels_with_a_colour_bar_in_metres():
    depth = np.zeros((10, 20), np.float32)
    depth[5, 3], depth[7, 11] = 4.0, 30.0
    fig, ax = plt.subplots()
    sc = plotting.scan_overlay(ax, np.zeros((10, 20, 3)), depth, vmax=60.0)
    offsets = sc.get_offsets()
    assert sorted(map(tuple, np.asarray(offsets).tolist())) == [(3.0, 5.0), (11.0, 7.0)]
    assert sc.get_cmap().name == plotting.DEPTH_CMAP and sc.get_clim() == (0.0, 60.0)
    assert _colorbar_labels(fig) == ["depth (m)"]


def test_rig_views_places_each_frame_in_both_views():
    T = np.eye(4)
    T[:3, 3] = [0.2, 1.7, -0.1]
    fig = plotting.rig_views({"a": T, "b": np.eye(4)})
    side, top = fig.axes
    assert [t.get_text() for t in side.texts] == ["a", "b"]
    assert side.texts[0].xy == pytest.approx((0.2, 1.7))
    assert top.texts[0].xy == pytest.approx((0.2, 0.1))  # left = -z
    assert len(side.patches) == 6  # three axes per frame


def test_sweep_from_above_colours_by_time_in_ms_and_drops_far_points():
    pts = np.array([[1.0, 0.0], [0.0, 2.0], [100.0, 0.0]])
    fig = plotting.sweep_from_above(pts, np.array([0.0, 0.025, 0.0]), radius=40.0)
    sc = fig.axes[0].collections[0]
    assert len(sc.get_offsets()) == 2
    assert np.asarray(sc.get_array()).tolist() == pytest.approx([0.0, 25.0])
    assert _colorbar_labels(fig) == ["ms relative to the image"]


def test_coverage_figure_shows_the_row_profile():
    cov = np.zeros((6, 8))
    cov[3:] = 0.5
    fig = plotting.coverage_figure(cov)
    line = fig.axes[1].lines[0]
    assert line.get_xdata().tolist() == [0, 0, 0, 0.5, 0.5, 0.5]


def test_grouped_bars_and_curve_panels():
    fig, ax = plt.subplots()
    plotting.grouped_bars(ax, ["p", "q", "r"], {"s1": [1, -2, 3], "s2": [0.5, 0.5, 0.5]})
    heights = [p.get_height() for p in ax.patches]
    assert heights == [1, -2, 3, 0.5, 0.5, 0.5]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["p", "q", "r"]
    fig = plotting.curve_panels(np.arange(4), [("a", {"x": np.ones(4)}), ("b", {"y": np.zeros(4),
                                                                              "z": np.ones(4)})],
                                "step")
    assert [len(a.lines) for a in fig.axes] == [1, 2] and fig.axes[1].get_title() == "b"


def test_the_helpers_are_exported_in_the_chapter_3_4_line():
    for name in ("scan_overlay", "rig_views", "sweep_from_above", "coverage_figure", "grouped_bars",
                 "curve_panels"):
        assert name in plotting.__all__ and getattr(plotting, name).__doc__
