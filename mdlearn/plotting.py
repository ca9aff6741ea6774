"""Static figures for the book: depth maps, error maps and side-by-side galleries (every chapter).

One look everywhere: every depth map uses :data:`DEPTH_CMAP` with a colour bar in metres, error
maps use a diverging map centred on zero, and figure sizes are chosen for the book's column
(about 7.5 inches wide) with fonts that stay legible there. A chapter cell calls one of these
functions and shows the idea, not thirty lines of matplotlib.

>>> import numpy as np
>>> fig = depth_gallery([{"image": np.zeros((4, 6, 3)), "depth": np.ones((4, 6))}], vmax=2.0)
>>> len(fig.axes)  # one image, one depth map, one colour bar
3
>>> fig = depth_gallery([{"depth": np.ones((4, 6)), "valid": np.ones((4, 6), bool)}],
...                     columns=["depth", "valid"], vmax=2.0)
>>> len(fig.axes)  # the mask needs no colour bar
3
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["DEPTH_CMAP", "ERROR_CMAP", "BOOK_WIDTH", "as_numpy_image", "show_depth", "show_error", "depth_gallery",
           "plot_history", "template_grid"]
# helpers of chapters 1-2 (data alignment) add their names here:
__all__ += []
# helpers of chapters 3-4 (laser scanner, scale-invariant error) add their names here:
__all__ += []

#: The colour map of every depth map in the book (perceptually uniform; near = dark).
DEPTH_CMAP = "viridis"
#: The colour map of signed error maps (log-depth differences), centred on zero.
ERROR_CMAP = "RdBu_r"
#: The width of a full-column figure, in inches.
BOOK_WIDTH = 7.5


def _rc() -> dict:
    return {"font.size": 9, "axes.titlesize": 9, "axes.labelsize": 9, "xtick.labelsize": 8,
            "ytick.labelsize": 8, "legend.fontsize": 8, "figure.dpi": 110}


def as_numpy_image(x: Any) -> np.ndarray:
    """An image or map as NumPy for ``imshow``: ``(3, H, W)`` / ``(1, H, W)`` tensors become
    ``(H, W, 3)`` / ``(H, W)``; float images are clipped to [0, 1]."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    a = np.asarray(x)
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3):
        a = np.moveaxis(a, 0, -1)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim == 3 and a.dtype != np.uint8:
        a = np.clip(a, 0.0, 1.0)
    return a


def show_depth(ax, depth: Any, vmax: float | None = None, title: str | None = None, colorbar: bool = True,
               vmin: float = 0.0):
    """Draw a depth map (metres; 0 = invalid, shown white) on ``ax`` with a colour bar in metres.

    Introduced in Chapter 1. Returns the image artist.
    """
    import matplotlib.pyplot as plt

    d = as_numpy_image(depth).astype(np.float64)
    shown = np.ma.masked_where(~(d > 0), d)
    cmap = plt.get_cmap(DEPTH_CMAP).with_extremes(bad="white")
    vmax = float(vmax) if vmax is not None else float(np.nanpercentile(d[d > 0], 99)) if (d > 0).any() else 1.0
    im = ax.imshow(shown, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    return _finish(ax, im, title, "depth (m)" if colorbar else None)


def _finish(ax, im, title: str | None, colorbar_label: str | None):
    """No axes, an optional title, an optional colour bar with a label; returns ``im``."""
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    if colorbar_label is not None:
        cb = ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
        cb.set_label(colorbar_label)
    return im


def show_error(ax, pred_depth: Any, target_depth: Any, limit: float = 0.5, title: str | None = None,
               colorbar: bool = True):
    """Draw the log-depth error ``log(pred) - log(target)`` where the target is valid (Chapter 6).

    Red: predicted too far; blue: too near. Invalid target pixels are white.
    """
    import matplotlib.pyplot as plt

    p = as_numpy_image(pred_depth).astype(np.float64)
    t = as_numpy_image(target_depth).astype(np.float64)
    ok = (t > 0) & (p > 0)
    err = np.zeros_like(t)
    err[ok] = np.log(p[ok]) - np.log(t[ok])
    cmap = plt.get_cmap(ERROR_CMAP).with_extremes(bad="white")
    im = ax.imshow(np.ma.masked_where(~ok, err), cmap=cmap, vmin=-limit, vmax=limit, interpolation="nearest")
    return _finish(ax, im, title, "log error" if colorbar else None)


def _is_mask_column(key: str) -> bool:
    """Whether :func:`depth_gallery` draws column ``key`` as a validity mask."""
    return key == "valid" or key.endswith("mask")


def depth_gallery(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None,
                  titles: Mapping[str, str] | None = None, vmax: float | None = None, width: float = BOOK_WIDTH,
                  row_labels: Sequence[str] | None = None):
    """A grid with one row per example and one column per key (``"image"`` as RGB, anything
    ending in ``"depth"`` or ``"pred"`` as a depth map, ``"error"`` as :func:`show_error` of
    ``pred`` against ``depth``, ``"valid"`` or anything ending in ``"mask"`` as a validity mask:
    white = valid, black = invalid, Chapter 5). All depth maps of a figure share ``vmax`` and one
    colour bar per row. Introduced in Chapter 1; returns the figure.
    """
    import matplotlib.pyplot as plt

    columns = list(columns or [k for k in rows[0] if k in ("image", "depth", "pred", "error")])
    titles = dict(titles or {})
    if vmax is None:
        vals = [as_numpy_image(r[c]) for r in rows for c in columns
                if c not in ("image", "error") and not _is_mask_column(c)]
        pos = np.concatenate([v[v > 0].ravel() for v in vals]) if vals else np.ones(1)
        vmax = float(np.percentile(pos, 99)) if pos.size else 1.0
    h, w = as_numpy_image(rows[0][columns[0]]).shape[:2]
    panel_w = width / len(columns)
    fig_h = max(1.2, len(rows) * panel_w * h / w * 1.05 + 0.3)
    with plt.rc_context(_rc()):
        fig, axes = plt.subplots(len(rows), len(columns), figsize=(width, fig_h), squeeze=False,
                                 constrained_layout=True)
        for i, r in enumerate(rows):
            for j, c in enumerate(columns):
                ax = axes[i, j]
                title = titles.get(c, c) if i == 0 else None
                last = (j == len(columns) - 1 or columns[j + 1] in ("image", "error")
                        or _is_mask_column(columns[j + 1]))
                if c == "image":
                    ax.imshow(as_numpy_image(r[c]))
                    ax.set_axis_off()
                    if title:
                        ax.set_title(title)
                elif c == "error":
                    show_error(ax, r["pred"], r["depth"], title=title, colorbar=True)
                elif _is_mask_column(c):
                    ax.imshow(as_numpy_image(r[c]).astype(float), cmap="gray", vmin=0.0, vmax=1.0,
                              interpolation="nearest")
                    ax.set_xticks([])  # keep the frame: white (valid) must not melt into the page
                    ax.set_yticks([])
                    if title:
                        ax.set_title(title)
                else:
                    show_depth(ax, r[c], vmax=vmax, title=title, colorbar=last)
            if row_labels is not None:
                axes[i, 0].text(-0.05, 0.5, row_labels[i], transform=axes[i, 0].transAxes, rotation=90,
                                ha="right", va="center")
    return fig


def plot_history(history: Sequence[Mapping[str, float]], keys: Sequence[str] = ("loss",), x: str = "samples",
                 ax=None, labels: Mapping[str, str] | None = None):
    """Training curves from a history (a list of dicts with ``x`` and each of ``keys``; Chapter 6)."""
    import matplotlib.pyplot as plt

    labels = dict(labels or {})
    with plt.rc_context(_rc()):
        if ax is None:
            _, ax = plt.subplots(figsize=(BOOK_WIDTH * 0.6, 2.6), constrained_layout=True)
        for k in keys:
            pts = [(h[x], h[k]) for h in history if k in h and x in h]
            if pts:
                ax.plot(*zip(*pts), label=labels.get(k, k))
        ax.set_xlabel(x)
        ax.legend()
        ax.grid(alpha=0.3)
    return ax


def template_grid(maps: Sequence[Any], titles: Sequence[str] | None = None, columns: int = 4,
                  width: float = BOOK_WIDTH):
    """Signed maps (e.g. Coarse 7 weight vectors, Chapter 6) in a grid, each on its own symmetric
    diverging scale (red positive = farther in log depth, blue negative). Returns the figure."""
    import matplotlib.pyplot as plt

    maps = [as_numpy_image(m).astype(np.float64) for m in maps]
    rows = (len(maps) + columns - 1) // columns
    h, w = maps[0].shape
    with plt.rc_context(_rc()):
        fig, axes = plt.subplots(rows, columns, figsize=(width, rows * width / columns * h / w + 0.4),
                                 squeeze=False, constrained_layout=True)
        for k, ax in enumerate(axes.ravel()):
            ax.set_axis_off()
            if k >= len(maps):
                continue
            lim = float(np.abs(maps[k]).max()) or 1.0
            ax.imshow(maps[k], cmap=ERROR_CMAP, vmin=-lim, vmax=lim, interpolation="nearest")
            if titles is not None:
                ax.set_title(titles[k])
    return fig


# ---------------------------------------------------------------------------------------------
# Chapters 1-2: the synthetic world, NYU's Kinect frames (point clouds, registration figures)
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# Chapters 3-4: KITTI's laser scans, the scale-invariant error
# ---------------------------------------------------------------------------------------------
