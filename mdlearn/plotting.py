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
__all__ += ["point_cloud", "depth_strip", "sync_timeline", "depth_edges",
            "edge_overlay", "label_map"]
# helpers of chapters 3-4 (laser scanner, scale-invariant error) add their names here:
__all__ += ["scan_overlay", "rig_views", "sweep_from_above", "coverage_figure", "grouped_bars",
            "curve_panels"]

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


def point_cloud(points: Any, colours: Any | None = None, stride: int = 1, ax=None,
                title: str | None = None, size: float = 1.5):
    """A coloured 3D scatter of camera-frame points (Chapter 1), drawn with y up.

    ``points`` is ``(H, W, 3)`` or ``(N, 3)`` metres (x right, y down, z forward; points with
    ``z <= 0`` are left out), ``colours`` the matching RGB in [0, 1] (or uint8); ``stride`` keeps
    every k-th row and column of an ``(H, W, 3)`` grid. The camera is a red triangle at the
    origin. Returns the 3D axes.
    """
    import matplotlib.pyplot as plt

    if hasattr(points, "detach"):  # a tensor; not as_numpy_image, which clips to [0, 1]
        points = points.detach().cpu().numpy()
    P = np.asarray(points, dtype=np.float64)
    C = None if colours is None else as_numpy_image(colours)
    if P.ndim == 3:
        P = P[::stride, ::stride]
        C = None if C is None else C[::stride, ::stride]
    P = P.reshape(-1, 3)
    keep = P[:, 2] > 0
    if C is not None:
        C = C.reshape(-1, 3)[keep]
        C = C / 255.0 if C.dtype == np.uint8 else C
    P = P[keep]
    with plt.rc_context(_rc()):
        if ax is None:
            fig = plt.figure(figsize=(BOOK_WIDTH, BOOK_WIDTH * 0.6))
            ax = fig.add_subplot(1, 1, 1, projection="3d")
        ax.scatter(P[:, 0], P[:, 2], -P[:, 1], c=C, s=size, linewidths=0)
        ax.scatter([0], [0], [0], c="red", s=40, marker="^")
        ax.set_xlabel("X (m, right)")
        ax.set_ylabel("Z (m, forward)")
        ax.set_zlabel("-Y (m, up)")
        ax.view_init(elev=25, azim=-60)
        if title:
            ax.set_title(title)
    return ax


def depth_strip(images: Sequence[Any], depths: Sequence[Any], titles: Sequence[str] | None = None,
                vmax: float | None = None, width: float = BOOK_WIDTH):
    """Images in a top row, their depth maps below, one shared colour bar in metres (Chapter 1).

    Returns the figure; all depth maps share ``vmax`` (default: 99th percentile of all).
    """
    import matplotlib.pyplot as plt

    imgs = [as_numpy_image(i) for i in images]
    deps = [as_numpy_image(d) for d in depths]
    if vmax is None:
        pos = np.concatenate([d[d > 0].ravel() for d in deps])
        vmax = float(np.percentile(pos, 99)) if pos.size else 1.0
    n = len(imgs)
    h, w = imgs[0].shape[:2]
    with plt.rc_context(_rc()):
        fig, axes = plt.subplots(2, n, figsize=(width, 2 * width / n * h / w + 0.5),
                                 squeeze=False, constrained_layout=True)
        for j in range(n):
            axes[0, j].imshow(imgs[j])
            axes[0, j].set_axis_off()
            if titles is not None:
                axes[0, j].set_title(titles[j])
            im = show_depth(axes[1, j], deps[j], vmax=vmax, colorbar=False)
        cb = fig.colorbar(im, ax=list(axes[1]), fraction=0.03, pad=0.02)
        cb.set_label("depth (m)")
    return fig


def sync_timeline(t_depth: Sequence[float], t_rgb: Sequence[float],
                  kept: Sequence[tuple[int, int]], dropped: Sequence[tuple[int, int]] = (),
                  ax=None, title: str | None = None):
    """Frame times of two streams and the pairs a synchronisation made (Chapter 2).

    ``t_depth``, ``t_rgb``: seconds; ``kept`` / ``dropped``: ``(depth index, rgb index)`` pairs,
    drawn as solid green and dashed red links. Returns the axes.
    """
    import matplotlib.pyplot as plt

    td, tr = np.asarray(t_depth, float), np.asarray(t_rgb, float)
    with plt.rc_context(_rc()):
        if ax is None:
            _, ax = plt.subplots(figsize=(BOOK_WIDTH, 2.4), constrained_layout=True)
        ax.scatter(tr, np.ones_like(tr), marker="|", s=300, color="tab:blue", label="RGB frames")
        ax.scatter(td, np.zeros_like(td), marker="|", s=300, color="tab:orange",
                   label="depth frames")
        for pairs, style, label in ((kept, "-", "kept pair"),
                                    (dropped, "--", "dropped: RGB frame shared")):
            colour = "tab:green" if style == "-" else "tab:red"
            for i, j in pairs:
                ax.plot([td[i], tr[j]], [0, 1], color=colour, ls=style, lw=1.5)
            ax.plot([], [], color=colour, ls=style, label=label)
        ax.set_yticks([0, 1], ["depth", "RGB"])
        ax.set_xlabel("time since the first RGB frame (s)")
        ax.set_ylim(-0.4, 1.9)
        ax.legend(ncol=2, loc="upper center")
        if title:
            ax.set_title(title)
    return ax


def depth_edges(depth: Any, rel: float = 0.05) -> np.ndarray:
    """Boolean ``(H-1, W-1)`` map of depth discontinuities (Chapter 2): both neighbours (right
    or below) valid and differing by more than ``rel`` of the nearer one."""
    d = as_numpy_image(depth).astype(np.float64)
    a, b, c = d[:-1, :-1], d[:-1, 1:], d[1:, :-1]

    def jump(p, q):
        return (p > 0) & (q > 0) & (np.abs(p - q) > rel * np.minimum(p, q))

    return jump(a, b) | jump(a, c)


def edge_overlay(ax, rgb: Any, depth: Any, title: str | None = None):
    """The RGB image with the :func:`depth_edges` of ``depth`` drawn in red (Chapter 2)."""
    yy, xx = np.nonzero(depth_edges(depth))
    ax.imshow(as_numpy_image(rgb))
    ax.scatter(xx, yy, s=0.3, c="red", linewidths=0)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def label_map(ax, masks: Mapping[str, Any], title: str | None = None):
    """Pixels coloured by the first of ``masks`` (name -> boolean ``(H, W)``) that holds them,
    white where none does, with a legend (Chapter 2: why each depth hole is there)."""
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    names = list(masks)
    colours = ["#ffffff", "#d62728", "#1f77b4", "#2f2f2f", "#ff7f0e", "#9467bd", "#8c564b",
               "#e377c2", "#17becf"][:len(names) + 1]
    first = next(iter(masks.values()))
    label = np.zeros(np.shape(first), int)
    for k, name in enumerate(names, 1):
        label[np.asarray(masks[name], bool) & (label == 0)] = k
    ax.imshow(label, cmap=ListedColormap(colours), vmin=0, vmax=len(colours) - 1,
              interpolation="nearest")
    ax.legend(handles=[Patch(color=colours[k], label=n) for k, n in enumerate(names, 1)],
              loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8, frameon=False)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return label


# ---------------------------------------------------------------------------------------------
# Chapters 3-4: KITTI's laser scans, the scale-invariant error
# ---------------------------------------------------------------------------------------------


def scan_overlay(ax, image: Any, depth: Any, vmax: float | None = None, title: str | None = None,
                 size: float = 0.8):
    """Draw the pixels of a sparse ``depth`` map (metres, 0 = none) as dots over ``image``,
    coloured with :data:`DEPTH_CMAP` and a colour bar in metres (Chapter 3). Returns the
    scatter artist."""
    import matplotlib.pyplot as plt

    d = as_numpy_image(depth).astype(np.float64)
    v, u = np.nonzero(d > 0)
    vmax = float(vmax) if vmax is not None else float(np.percentile(d[v, u], 99)) if v.size else 1.0
    ax.imshow(as_numpy_image(image))
    sc = ax.scatter(u, v, c=d[v, u], s=size, cmap=plt.get_cmap(DEPTH_CMAP), vmin=0.0, vmax=vmax,
                    linewidths=0)
    return _finish(ax, sc, title, "depth (m)")


def rig_views(frames: Mapping[str, Any], scale: float = 0.25, width: float = BOOK_WIDTH):
    """Side and top view of sensor frames (Chapter 3): ``frames`` maps a name to a
    ``world_from_sensor`` 4x4 pose in a world with x forward, y up, z right; each frame's
    x, y, z axes are drawn red, green, blue, ``scale`` metres long. Returns the figure."""
    import matplotlib.pyplot as plt

    with plt.rc_context(_rc()):
        fig, axes = plt.subplots(1, 2, figsize=(width, 0.45 * width), constrained_layout=True)
        views = ((axes[0], 1, 1.0, "height above the road (m)", "side view", (1.3, 2.1)),
                 (axes[1], 2, -1.0, "left (m)", "top view", (-0.8, 0.5)))
        for ax, j, sign, ylabel, title, ylim in views:
            for name, T in frames.items():
                T = np.asarray(T, np.float64)
                o = T[:3, 3]
                for k, col in zip(range(3), "rgb"):
                    dx, dy = T[0, k] * scale, sign * T[j, k] * scale
                    ax.arrow(o[0], sign * o[j], dx, dy, color=col, width=0.004,
                             head_width=0.03, length_includes_head=True)
                ax.annotate(name, (o[0], sign * o[j]), textcoords="offset points", xytext=(4, 6))
            ax.set(xlabel="forward (m)", ylabel=ylabel, title=title, xlim=(-0.5, 0.8), ylim=ylim)
            ax.set_aspect("equal")
    return fig


def sweep_from_above(points: Any, times: Any, radius: float = 40.0, width: float = BOOK_WIDTH):
    """One Velodyne sweep seen from above, coloured by capture time in ms (Chapter 3):
    ``points`` ``(N, >=2)`` in the scanner frame (x forward, y left), ``times`` ``(N,)`` seconds.
    Points farther than ``radius`` metres are left out. Returns the figure."""
    import matplotlib.pyplot as plt

    p = np.asarray(points, np.float64)
    keep = np.hypot(p[:, 0], p[:, 1]) < radius
    with plt.rc_context(_rc()):
        fig, ax = plt.subplots(figsize=(0.7 * width, 0.62 * width), constrained_layout=True)
        sc = ax.scatter(-p[keep, 1], p[keep, 0], c=1e3 * np.asarray(times)[keep], s=0.3,
                        cmap="twilight", linewidths=0)
        ax.plot([0], [0], "k^")
        ax.set(xlabel="right (m)", ylabel="forward (m)", aspect="equal",
               title="one sweep from above, coloured by capture time")
        fig.colorbar(sc, ax=ax, label="ms relative to the image")
    return fig


def coverage_figure(coverage: Any, width: float = BOOK_WIDTH):
    """Where a sparse sensor has depth (Chapter 3): ``coverage`` ``(H, W)`` is the fraction of
    frames with depth at each pixel; left the map, right its mean per row. Returns the figure."""
    import matplotlib.pyplot as plt

    c = np.asarray(coverage, np.float64)
    rows = c.mean(1)
    with plt.rc_context(_rc()):
        fig, ax = plt.subplots(1, 2, figsize=(width, 0.3 * width), constrained_layout=True,
                               gridspec_kw={"width_ratios": [3, 1]})
        im = ax[0].imshow(c, cmap="gray_r", vmin=0.0, vmax=1.0)
        _finish(ax[0], im, "fraction of frames with depth", "fraction")
        ax[1].plot(rows, np.arange(len(rows)))
        ax[1].set_ylim(len(rows) - 0.5, -0.5)
        ax[1].set(xlabel="pixels with depth", ylabel="image row", title="per row")
    return fig


def grouped_bars(ax, labels: Sequence[str], series: Mapping[str, Sequence[float]],
                 ylabel: str | None = None, title: str | None = None):
    """Bars of several ``series`` side by side for each of ``labels`` (Chapter 4), with a
    zero line and a legend. Returns ``ax``."""
    k = len(series)
    width = 0.8 / max(k, 1)
    pos = np.arange(len(labels))
    for j, (name, values) in enumerate(series.items()):
        ax.bar(pos + width * (j - (k - 1) / 2), list(values), width, label=name)
    ax.axhline(0.0, color="k", lw=0.8)
    ax.set_xticks(pos, list(labels))
    ax.set(ylabel=ylabel, title=title)
    ax.legend(ncol=min(k, 4))
    return ax


def curve_panels(x: Any, panels: Sequence[tuple[str, Mapping[str, Any]]], xlabel: str,
                 width: float = BOOK_WIDTH):
    """One panel per ``(title, {label: y})`` of ``panels``, all against ``x`` (Chapter 4).
    Returns the figure."""
    import matplotlib.pyplot as plt

    with plt.rc_context(_rc()):
        fig, axes = plt.subplots(1, len(panels), figsize=(width, 0.36 * width), squeeze=False,
                                 constrained_layout=True)
        for ax, (title, curves) in zip(axes[0], panels):
            for label, y in curves.items():
                ax.plot(x, y, label=label)
            ax.set(xlabel=xlabel, title=title)
            ax.legend()
            ax.grid(alpha=0.3)
    return fig
