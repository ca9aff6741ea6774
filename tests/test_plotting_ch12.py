"""The chapter 1-2 figure helpers of mdlearn.plotting: what they draw, on constructed cases."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from mdlearn.plotting import (depth_edges, depth_strip, edge_overlay, label_map,  # noqa: E402
                              point_cloud, sync_timeline)


def test_point_cloud_drops_points_behind_the_camera_and_draws_y_up():
    P = np.zeros((4, 4, 3))
    P[..., 2] = 2.0
    P[0, 0] = (0, 0, -1)  # behind the camera: left out
    P[1, 1] = (0.5, -1.0, 3.0)  # above the optical axis (y down)
    ax = point_cloud(P, np.ones((4, 4, 3)), stride=1)
    xs, zs, ys = ax.collections[0]._offsets3d
    assert len(xs) == 15 and max(ys) == 1.0  # drawn as -Y: up is positive
    plt.close("all")


def test_point_cloud_keeps_metres_of_a_tensor():
    P = torch.zeros(2, 2, 3)
    P[..., 0] = torch.tensor([[-3.0, 3.0], [0.0, 5.0]])
    P[..., 2] = 4.0
    ax = point_cloud(P, torch.rand(3, 2, 2))
    xs, zs, _ = ax.collections[0]._offsets3d
    assert sorted(xs) == [-3.0, 0.0, 3.0, 5.0] and set(zs) == {4.0}
    plt.close("all")


def test_depth_strip_shares_one_colour_bar():
    imgs = [np.zeros((4, 6, 3))] * 3
    deps = [np.full((4, 6), k + 1.0) for k in range(3)]
    fig = depth_strip(imgs, deps, titles=["a", "b", "c"])
    assert len(fig.axes) == 7  # 3 images, 3 depth maps, 1 colour bar
    ims = [ax.images[0] for ax in fig.axes[3:6]]
    assert {im.get_clim() for im in ims} == {(0.0, float(np.percentile([1, 2, 3] * 24, 99)))}
    plt.close(fig)


def test_sync_timeline_draws_one_link_per_pair():
    ax = sync_timeline([0.0, 0.03, 0.06], [0.0, 0.05], kept=[(0, 0), (2, 1)], dropped=[(1, 1)])
    links = [ln for ln in ax.lines if len(ln.get_xdata()) == 2]
    assert len(links) == 3
    assert [ln.get_linestyle() for ln in links].count("--") == 1
    plt.close("all")


def test_depth_edges_marks_jumps_only_between_valid_pixels():
    d = np.ones((4, 6))
    d[:, 3:] = 2.0  # a jump between columns 2 and 3
    d[0, 0] = 0.0  # an invalid pixel is no edge
    e = depth_edges(d)
    assert e.shape == (3, 5)
    assert e[:, 2].all() and e.sum() == 3
    fig, ax = plt.subplots()
    edge_overlay(ax, np.zeros((4, 6, 3)), d, title="t")
    assert len(ax.collections[0].get_offsets()) == 3
    plt.close(fig)


def test_label_map_gives_each_pixel_its_first_cause():
    a = np.zeros((2, 3), bool)
    b = np.zeros((2, 3), bool)
    a[0, 0] = b[0, 0] = b[1, 2] = True
    fig, ax = plt.subplots()
    label = label_map(ax, {"a": a, "b": b})
    assert label.tolist() == [[1, 0, 0], [0, 0, 2]]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b"]
    plt.close(fig)
