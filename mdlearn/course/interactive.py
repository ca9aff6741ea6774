"""Interactive views beside the book's static figures (Chapters 4 and 7), kernel or no kernel.

Each view is optional: the chapter's static figure comes first, the view lets a reader explore.
They are built so that they also work in the static HTML book, where no Python runs behind the
page:

* :func:`flip_viewer` (and :func:`prediction_viewer`, :func:`lambda_slider` built on it) renders
  every state as a PNG up front and puts them in an ipywidgets ``Stack``; a slider selects the
  shown panel through ``jslink``, which runs in the browser. The saved widget state carries the
  panels, so the slider works on the static page (the book serves the widget JavaScript itself,
  see :mod:`mdlearn.course.book`).
* :func:`point_cloud_html` is a plotly 3D scatter whose HTML carries plotly.js, plus a static
  matplotlib view and a note shown instead when the browser cannot draw WebGL or scripts are off.

>>> import numpy as np
>>> from mdlearn.camera import NYU_RGB
>>> depth = np.full((48, 64), 2.0, np.float32)
>>> fig = point_cloud_figure(depth, NYU_RGB.scaled(0.1), stride=8)
>>> len(fig.data[0].x)  # 6 x 8 pixels kept, every one valid
48
"""

from __future__ import annotations

import base64
import html
import io
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import UsageError

__all__ = ["figure_png", "flip_viewer", "prediction_viewer", "loss_vs_scale", "lambda_slider",
           "point_cloud_figure", "point_cloud_html", "point_cloud_view"]


def figure_png(fig, dpi: int = 100) -> bytes:
    """A matplotlib figure as PNG bytes; the figure is closed (it is not shown as well)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()


def flip_viewer(panels: Sequence[bytes], labels: Sequence[str], description: str = "show"):
    """Flip through pre-rendered PNG panels with a slider; works without a kernel.

    ``panels`` are PNG bytes (:func:`figure_png`), ``labels`` one short name per panel shown as
    the slider's value. Returns an ipywidgets ``VBox`` (slider above a ``Stack`` of ``Image``
    widgets, the slider's index linked to the stack in the browser with ``jslink``; the link
    widget is the box's ``link`` attribute).
    """
    import ipywidgets as widgets

    if len(panels) == 0 or len(panels) != len(labels):
        raise UsageError(f"flip_viewer needs one label per panel and at least one panel "
                         f"(got {len(panels)} panels, {len(labels)} labels)")
    if len(set(labels)) != len(labels):
        raise UsageError("flip_viewer: labels must be distinct (the slider shows them)")
    images = [widgets.Image(value=p, format="png", layout=widgets.Layout(max_width="100%"))
              for p in panels]
    stack = widgets.Stack(images, selected_index=0)
    slider = widgets.SelectionSlider(options=list(labels), value=labels[0], description=description,
                                     continuous_update=True,
                                     layout=widgets.Layout(width="95%"),
                                     style={"description_width": "initial"})
    box = widgets.VBox([slider, stack])
    box.link = widgets.jslink((slider, "index"), (stack, "selected_index"))
    return box


def prediction_viewer(images: Sequence[Any], depths: Sequence[Any], preds: Sequence[Any],
                      names: Sequence[str] | None = None, vmax: float | None = None):
    """A :func:`flip_viewer` over test images: image, ground truth, prediction and error (Chapter 7).

    ``images`` are ``(3, H, W)`` or ``(H, W, 3)`` RGB, ``depths`` and ``preds`` ``(H, W)`` (or
    ``(1, H, W)``) metres at the same size, 0 = invalid; the error is ``log(pred) - log(gt)``
    (:func:`mdlearn.plotting.show_error`). All panels share one depth colour scale (``vmax``,
    default the 99th percentile of the ground truth), so flipping compares like with like.
    """
    from ..plotting import as_numpy_image, depth_gallery

    if not (len(images) == len(depths) == len(preds)) or len(images) == 0:
        raise UsageError(f"prediction_viewer needs as many images, depths and predictions "
                         f"(got {len(images)}, {len(depths)}, {len(preds)})")
    names = list(names) if names is not None else [f"{i + 1}" for i in range(len(images))]
    if vmax is None:
        gt = np.concatenate([as_numpy_image(d).ravel() for d in depths])
        vmax = float(np.percentile(gt[gt > 0], 99)) if (gt > 0).any() else 1.0
    panels = []
    for img, gt, pred in zip(images, depths, preds):
        fig = depth_gallery([{"image": img, "depth": gt, "pred": pred, "error": None}],
                            columns=["image", "depth", "pred", "error"], vmax=vmax,
                            titles={"depth": "ground truth", "pred": "prediction",
                                    "error": "log error"})
        panels.append(figure_png(fig))
    return flip_viewer(panels, names, description="test image")


def loss_vs_scale(pred_log_depth: Any, target_depth: Any, lam: float,
                  alphas: Any) -> np.ndarray:
    """Eq. 4's loss of ``pred_log_depth + alpha`` (the prediction scaled by ``e^alpha``), per alpha.

    ``pred_log_depth`` and ``target_depth`` are ``(H, W)`` (log metres, metres; target 0 =
    missing); computed with :func:`mdlearn.losses.scale_invariant_loss`. Returns float64
    ``(len(alphas),)``. Chapter 4: the curve is ``D + (1 - lam) (mean(d) + alpha)^2``.
    """
    import torch

    from ..losses import scale_invariant_loss

    pred = torch.as_tensor(np.asarray(pred_log_depth, dtype=np.float64))[None]
    target = torch.as_tensor(np.asarray(target_depth, dtype=np.float64))[None]
    return np.array([float(scale_invariant_loss(pred + float(a), target, lam=lam))
                     for a in np.asarray(alphas, dtype=np.float64)])


def lambda_slider(pred_log_depth: Any, target_depth: Any,
                  lambdas: Sequence[float] = tuple(np.round(np.linspace(0, 1, 11), 2)),
                  alpha_range: float = 1.0):
    """A slider over lambda: Eq. 4's loss as the prediction's global scale changes (Chapter 4).

    For each lambda, one panel plots :func:`loss_vs_scale` against the global log-scale shift
    ``alpha`` in ``[-alpha_range, alpha_range]`` (the prediction times ``e^alpha``), marks the
    prediction as it is (``alpha = 0``) and the best scale, and shades the part every lambda
    charges, the scale-invariant error ``D``. Returns a :func:`flip_viewer`.
    """
    import matplotlib.pyplot as plt

    from ..plotting import _rc

    alphas = np.linspace(-alpha_range, alpha_range, 81)
    curves = {lam: loss_vs_scale(pred_log_depth, target_depth, lam, alphas) for lam in lambdas}
    D = float(loss_vs_scale(pred_log_depth, target_depth, 1.0, [0.0])[0])
    top = max(c.max() for c in curves.values()) * 1.05
    panels, labels = [], []
    for lam, curve in curves.items():
        with plt.rc_context(_rc()):
            fig, ax = plt.subplots(figsize=(6.0, 2.8), constrained_layout=True)
            ax.axhspan(0, D, color="0.85", label=f"D = {D:.3f} (every lambda)")
            ax.plot(alphas, curve, "C0", lw=2, label=f"L, lambda = {lam:g}")
            ax.plot([0], [curve[len(alphas) // 2]], "ko", label="the prediction (alpha = 0)")
            best = alphas[int(np.argmin(curve))]
            ax.axvline(best, color="C3", ls="--", lw=1, label=f"lowest at alpha = {best:+.2f}")
            ax.set_xlim(alphas[0], alphas[-1])
            ax.set_ylim(0, top)
            ax.set_xlabel("alpha: prediction scaled by e^alpha")
            ax.set_ylabel("loss (Eq. 4)")
            ax.legend(loc="upper center", fontsize=7)
        panels.append(figure_png(fig))
        labels.append(f"{lam:g}")
    return flip_viewer(panels, labels, description="lambda")


def _cloud_points(depth: Any, intrinsics: Any, image: Any | None, stride: int,
                  max_depth: float | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Camera-frame points ``(N, 3)`` (x right, y down, z forward) and colours ``(N, 3)`` in [0, 1]."""
    from ..plotting import as_numpy_image

    d = as_numpy_image(depth).astype(np.float64)
    if d.ndim != 2:
        raise UsageError(f"point cloud: depth must be (H, W), got shape {d.shape}")
    if stride < 1:
        raise UsageError(f"point cloud: stride must be >= 1, got {stride}")
    if hasattr(intrinsics, "fx"):
        fx, fy, cx, cy = intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy
    else:  # (fx, fy, cx, cy): a sample's CameraIntrinsics tensor, a tuple
        fx, fy, cx, cy = (float(v) for v in intrinsics)
    v, u = np.mgrid[0:d.shape[0]:stride, 0:d.shape[1]:stride]
    z = d[v, u]
    keep = z > 0 if max_depth is None else (z > 0) & (z <= max_depth)
    u, v, z = u[keep], v[keep], z[keep]
    points = np.stack([(u - cx) / fx * z, (v - cy) / fy * z, z], axis=1)
    if image is None:
        return points, None
    rgb = as_numpy_image(image)
    rgb = rgb / 255.0 if rgb.dtype == np.uint8 else rgb
    if rgb.shape[:2] != d.shape:
        raise UsageError(f"point cloud: image {rgb.shape[:2]} and depth {d.shape} differ in size")
    return points, np.clip(rgb[v, u], 0.0, 1.0)


def point_cloud_figure(depth: Any, intrinsics: Any, image: Any | None = None, stride: int = 4,
                       max_depth: float | None = None):
    """A plotly 3D scatter of a depth map's camera-frame points (Chapter 7).

    ``depth`` is ``(H, W)`` metres (0 = invalid, left out), ``intrinsics`` the
    :class:`~mdlearn.camera.Intrinsics` (or ``(fx, fy, cx, cy)``, e.g. a sample's
    ``intrinsics``) of that grid, ``image`` the matching RGB (``(3, H, W)`` or ``(H, W, 3)``)
    to colour the points (without it, colour is depth); ``stride`` keeps every k-th row and
    column, ``max_depth`` drops farther points. Drawn with y up (x right, z forward, like
    :func:`mdlearn.plotting.point_cloud`). Returns a ``plotly.graph_objects.Figure``.
    """
    import plotly.graph_objects as go

    points, colours = _cloud_points(depth, intrinsics, image, stride, max_depth)
    marker: dict[str, Any] = {"size": 2}
    if colours is not None:
        c = (colours * 255).round().astype(int)
        marker["color"] = [f"rgb({r},{g},{b})" for r, g, b in c]
    else:
        marker.update(color=points[:, 2], colorscale="Viridis", colorbar={"title": "depth (m)"})
    fig = go.Figure(go.Scatter3d(x=points[:, 0], y=points[:, 2], z=-points[:, 1], mode="markers",
                                 marker=marker, hoverinfo="skip"))
    fig.update_layout(scene={"xaxis_title": "X (m, right)", "yaxis_title": "Z (m, forward)",
                             "zaxis_title": "-Y (m, up)", "aspectmode": "data"},
                      margin={"l": 0, "r": 0, "t": 0, "b": 0}, height=480)
    return fig


def point_cloud_view(depth: Any, intrinsics: Any, image: Any | None = None, stride: int = 4,
                     max_depth: float | None = None):
    """The 3D view of a depth map to display in a chapter: :func:`point_cloud_html` of
    :func:`point_cloud_figure`, with :func:`mdlearn.plotting.point_cloud` of the same points
    as the static fallback. Arguments as :func:`point_cloud_figure`; returns
    ``IPython.display.HTML``.
    """
    import matplotlib.pyplot as plt
    from IPython.display import HTML

    from ..plotting import point_cloud

    points, colours = _cloud_points(depth, intrinsics, image, stride, max_depth)
    ax = point_cloud(points, colours, title="the same points, seen from one angle")
    static = figure_png(ax.figure)
    plt.close("all")
    fig = point_cloud_figure(depth, intrinsics, image, stride, max_depth)
    return HTML(point_cloud_html(fig, static))


_CLOUD_SCRIPT = """
<script>
(function () {
  var box = document.getElementById("%(id)s"), fig = %(fig)s;
  var canvas = document.createElement("canvas");
  var gl = canvas.getContext("webgl") || canvas.getContext("experimental-webgl");
  if (window.Plotly && gl) {
    box.querySelector(".mdlearn-static").style.display = "none";
    box.querySelector(".mdlearn-live").style.display = "block";
    window.Plotly.newPlot(box.querySelector(".mdlearn-live"), fig.data, fig.layout,
                          {"displaylogo": false, "responsive": true});
  } else {
    box.querySelector(".mdlearn-note").textContent =
      "This browser cannot draw the interactive 3D view (WebGL); a static view instead.";
  }
})();
</script>
"""


def point_cloud_html(fig, static_png: bytes, note: str = "") -> str:
    """HTML for a plotly figure with plotly.js inlined and a static fallback (Chapter 7).

    The page shows the interactive figure when scripts run and WebGL works; otherwise
    ``static_png`` (e.g. :func:`figure_png` of :func:`mdlearn.plotting.point_cloud`) with a note
    saying why. It needs no network (plotly.js travels in the HTML, about 5 MB) and no kernel.
    Display it with ``IPython.display.HTML``.
    """
    from plotly.offline import get_plotlyjs

    box = f"mdlearn-cloud-{uuid.uuid4().hex[:12]}"
    as_json = fig.to_json(validate=False)
    src = "data:image/png;base64," + base64.b64encode(static_png).decode()
    return (f'<div id="{box}" class="mdlearn-cloud">'
            f'<div class="mdlearn-live" style="display:none;width:100%;height:480px"></div>'
            f'<div class="mdlearn-static"><img src="{src}" alt="point cloud (static view)" '
            f'style="max-width:100%"><p class="mdlearn-note">{html.escape(note)}</p></div>'
            f'<script type="text/javascript">{get_plotlyjs()}</script>'
            + _CLOUD_SCRIPT % {"id": box, "fig": as_json}
            + "</div>")
