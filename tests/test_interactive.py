"""The interactive views of mdlearn.course.interactive: what they hold, and that they need no kernel."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from mdlearn.camera import NYU_RGB, backproject
from mdlearn.course import interactive
from mdlearn.errors import UsageError


def _png(colour) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 4), colour).save(buf, format="png")
    return buf.getvalue()


def test_flip_viewer_links_the_slider_to_the_stack_in_the_browser():
    import ipywidgets as widgets

    panels = [_png((255, 0, 0)), _png((0, 255, 0)), _png((0, 0, 255))]
    box = interactive.flip_viewer(panels, ["a", "b", "c"], description="pick")
    slider, stack = box.children
    assert isinstance(stack, widgets.Stack) and [im.value for im in stack.children] == panels
    assert slider.options == ("a", "b", "c") and stack.selected_index == 0
    # the link is a widget of its own (jslink), so it lives in the saved widget state and runs
    # in the page, with no kernel
    assert box.link.source == (slider, "index") and box.link.target == (stack, "selected_index")
    assert box.link._model_name == "LinkModel"  # ipywidgets' browser-side link


def test_flip_viewer_refuses_mismatched_or_repeated_labels():
    with pytest.raises(UsageError, match="one label per panel"):
        interactive.flip_viewer([_png((0, 0, 0))], ["a", "b"])
    with pytest.raises(UsageError, match="distinct"):
        interactive.flip_viewer([_png((0, 0, 0))] * 2, ["a", "a"])


def test_loss_vs_scale_is_the_structure_error_plus_the_scale_term():
    rng = np.random.default_rng(0)
    gt = rng.uniform(1.0, 5.0, (12, 16))
    gt[rng.random(gt.shape) < 0.2] = 0.0  # holes are left out
    pred = np.log(np.where(gt > 0, gt, 1.0)) + rng.normal(0.3, 0.2, gt.shape)
    d = (pred - np.log(np.where(gt > 0, gt, 1.0)))[gt > 0]
    alphas = np.linspace(-1, 1, 9)
    for lam in (0.0, 0.5, 1.0):
        expected = d.var() + (1 - lam) * (d.mean() + alphas) ** 2
        np.testing.assert_allclose(interactive.loss_vs_scale(pred, gt, lam, alphas), expected, rtol=1e-9)


def test_lambda_slider_has_one_panel_per_lambda():
    gt = np.full((6, 8), 2.0)
    pred = np.log(gt) + np.linspace(-0.2, 0.4, 48).reshape(6, 8)
    box = interactive.lambda_slider(pred, gt, lambdas=(0.0, 0.5, 1.0))
    slider, stack = box.children
    assert slider.options == ("0", "0.5", "1") and len(stack.children) == 3
    assert all(im.value[:4] == b"\x89PNG" for im in stack.children)


def test_prediction_viewer_draws_one_panel_per_view():
    imgs = [torch.rand(3, 12, 16) for _ in range(2)]
    gts = [np.full((12, 16), 2.0, np.float32), np.full((12, 16), 3.0, np.float32)]
    box = interactive.prediction_viewer(imgs, gts, [g * 1.1 for g in gts], names=["x", "y"])
    assert box.children[0].options == ("x", "y") and len(box.children[1].children) == 2
    with pytest.raises(UsageError, match="as many"):
        interactive.prediction_viewer(imgs, gts[:1], gts)


def test_point_cloud_figure_places_points_like_backproject():
    K = NYU_RGB.scaled(0.1)
    rng = np.random.default_rng(1)
    depth = rng.uniform(1.0, 4.0, (48, 64)).astype(np.float32)
    depth[0, 0] = 0.0  # invalid: left out
    fig = interactive.point_cloud_figure(depth, K, stride=1)
    trace = fig.data[0]
    pts = backproject(torch.from_numpy(depth), K).numpy().reshape(-1, 3)[1:]
    # plotted with y up: (x, z, -y)
    np.testing.assert_allclose(trace.x, pts[:, 0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(trace.y, pts[:, 2], rtol=1e-5)
    np.testing.assert_allclose(trace.z, -pts[:, 1], rtol=1e-5, atol=1e-6)
    tensor_k = torch.tensor([K.fx, K.fy, K.cx, K.cy])  # a sample's intrinsics work too
    assert len(interactive.point_cloud_figure(depth, tensor_k, stride=4).data[0].x) == 16 * 12 - 1
    with pytest.raises(UsageError, match="differ in size"):
        interactive.point_cloud_figure(depth, K, image=np.zeros((10, 10, 3)))


def test_point_cloud_view_carries_plotly_and_a_static_fallback():
    depth = np.full((24, 32), 2.5, np.float32)
    image = np.zeros((24, 32, 3), np.uint8)
    html = interactive.point_cloud_view(depth, NYU_RGB.scaled(0.05), image, stride=4).data
    assert "window.Plotly = Plotly" in html  # plotly.js travels with the page: no network needed
    assert "data:image/png;base64," in html and 'class="mdlearn-static"' in html
    assert "cannot draw the interactive 3D view" in html  # the note shown with the fallback
    assert "https://cdn" not in html.split("window.Plotly = Plotly")[1]
