"""From a Velodyne sweep to a sparse depth map in a camera image (Chapter 3).

Introduced in Chapter 3 (*Depth from a laser scanner*). A scan is projected with
``P_rect_0c . R_rect_00 . Tr_velo_to_cam`` (:meth:`~mdlearn.data.kitti.Calibration.velo_to_image`);
points behind the camera or outside the image are dropped, and when several points land in one
pixel a **conflict rule** picks one:

* ``"time"`` — the paper's rule (§4.2): the point captured closest in time to the image. A
  spinning scanner captures a point when it faces the point's azimuth, so the capture time
  follows from the azimuth (:func:`sweep_time_offsets`) unless exact times are given.
* ``"nearest"`` — the public ground truth's rule (``monodepth2:kitti_utils.py``): the smallest depth.

The value stored per pixel is a **ground-truth variant** (:data:`GT_VARIANTS`): ``camz``, the
z-depth in the rectified camera (what a depth map means); ``velx``, the Velodyne forward
coordinate ``x`` (what monodepth2's ``export_gt_depth.py`` stores, kept to reproduce the numbers
published with monodepth-family evaluation scripts; which depth the paper itself stored is not
known); ``annotated`` is the official annotated maps, which are read, not computed.

Pixel convention: mdlearn puts pixel centres at integer coordinates (:mod:`mdlearn.camera`), so
a point at ``(u, v)`` belongs to pixel ``(round(u), round(v))`` (:data:`PIXEL_RULES`). Which rule
fits KITTI's own calibration is not stated in its files; ``tests/test_kitti.py`` checks what each
rule does on the real scans, not which is right.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UsageError
from .kitti import Calibration

__all__ = [
    "GT_VARIANTS",
    "CONFLICT_RULES",
    "PIXEL_RULES",
    "SCAN_RATE_HZ",
    "SCAN_DIRECTION",
    "Projection",
    "project_scan",
    "sweep_time_offsets",
    "resolve_conflicts",
    "sparse_depth",
]

#: The named ground-truth variants and what each stores.
GT_VARIANTS = {
    "camz": "z-depth of the Velodyne point in the rectified camera (row 3 of P_rect . R_rect_00 . Tr_velo_to_cam)",
    "velx": "forward coordinate x of the point in the Velodyne frame (monodepth2 export_gt_depth.py, vel_depth=True)",
    "annotated": "the official KITTI depth-benchmark annotated maps (data_depth_annotated), read from disk",
}
#: Conflict rules for several points in one pixel.
CONFLICT_RULES = {
    "time": "the point captured closest in time to the image (the paper, section 4.2); ties: the nearer one",
    "nearest": "the point with the smallest stored depth (monodepth2 generate_depth_map and the public ground truth)",
}
#: How a projected position ``(u, v)`` becomes a pixel index.
PIXEL_RULES = {
    "round": "nearest pixel centre, centres at integer coordinates (mdlearn's convention; the synthetic rig)",
    "floor": "int truncation (the point counts quoted in shared/data/MANIFEST.md use it)",
    "monodepth2": "round(u) - 1, round(v) - 1 ('same as KITTI matlab' in monodepth2 kitti_utils.py)",
}

#: Spin rate of the HDL-64E in KITTI (10 Hz: one sweep per frame).
SCAN_RATE_HZ = 10.0
#: Spin direction seen from above (z up). The raw-data devkit readme: "The velodyne rotates in
#: counter-clockwise direction", and the cameras are triggered when it looks exactly forward (+x).
#: Counter-clockwise, the azimuth ``atan2(y, x)`` increases with time (x forward, y left), so
#: points to the right of the car (negative azimuth) were captured before the image and points
#: to the left after it. The real scans agree: a ``.bin`` stores the points in firing order, and
#: in the object-benchmark scans in ``shared/data`` the azimuth increases from one point to the
#: next (``tests/test_kitti.py::test_real_scans_spin_in_scan_direction``). It is a parameter
#: everywhere; flipping it mirrors which side of the image counts as "earlier" and changes the
#: time rule only where the points competing for one pixel have different azimuths. The
#: synthetic scanner (:mod:`mdlearn.synthetic.velodyne`) spins the same way.
SCAN_DIRECTION = "counterclockwise"


def sweep_time_offsets(points: np.ndarray, rate_hz: float = SCAN_RATE_HZ,
                       direction: str = SCAN_DIRECTION) -> np.ndarray:
    """Capture time of each point relative to the moment the scanner faced forward (seconds).

    Introduced in Chapter 3. A spinning scanner reaches azimuth ``phi = atan2(y, x)`` at
    ``+phi / (2 pi rate)`` for a counter-clockwise spin (KITTI's, :data:`SCAN_DIRECTION`) and
    ``-phi / (2 pi rate)`` for a clockwise one, so the offsets lie in ``[-1/(2 rate), 1/(2 rate)]``
    (±50 ms at 10 Hz). With KITTI's spin they are negative (before the image) on the right of
    the car and positive on its left.

    Args:
        points: ``(N, >=2)`` Velodyne-frame points.
    """
    if direction not in ("clockwise", "counterclockwise"):
        raise UsageError(f"direction must be 'clockwise' or 'counterclockwise', got {direction!r}")
    phi = np.arctan2(points[:, 1].astype(np.float64), points[:, 0].astype(np.float64))
    sign = -1.0 if direction == "clockwise" else 1.0
    return sign * phi / (2.0 * np.pi * rate_hz)


@dataclass
class Projection:
    """The points of a scan that land in an image.

    ``index`` are their rows in the scan, ``u``/``v`` their integer pixel column/row,
    ``uv`` the sub-pixel position, ``camz`` the rectified-camera z-depth, ``velx`` the Velodyne x.
    """

    index: np.ndarray
    u: np.ndarray
    v: np.ndarray
    uv: np.ndarray
    camz: np.ndarray
    velx: np.ndarray
    width: int
    height: int

    def values(self, variant: str) -> np.ndarray:
        if variant == "camz":
            return self.camz
        if variant == "velx":
            return self.velx
        raise UsageError(f"variant {variant!r} is not computed from a scan; use 'camz' or 'velx' "
                         f"('annotated' maps are read from disk)")


def project_scan(points: np.ndarray, calib: Calibration, cam: int = 2, size: tuple[int, int] | None = None,
                 pixel: str = "round", min_depth: float = 1e-3) -> Projection:
    """Project a Velodyne scan into rectified camera ``cam``.

    Introduced in Chapter 3.

    Args:
        points: ``(N, >=3)`` Velodyne-frame points (metres).
        calib: the drive's calibration.
        cam: 2 (left colour camera) or 3 (right).
        size: ``(width, height)`` of the image; default: ``S_rect_0c`` from the calibration.
        pixel: a key of :data:`PIXEL_RULES`.
        min_depth: points with camera z-depth at or below this are behind the camera and dropped.

    Returns:
        the :class:`Projection` of the points inside the image.
    """
    if pixel not in PIXEL_RULES:
        raise UsageError(f"unknown pixel rule {pixel!r}; choose one of {', '.join(PIXEL_RULES)}")
    w, h = size or calib.image_size.get(cam, (0, 0))
    if not (w > 0 and h > 0):
        raise UsageError("image size unknown: pass size=(width, height)")
    M = calib.velo_to_image(cam)
    # row by row in float64 (numpy's (N, 3) @ (3, 3) is many times slower than this on one core)
    x, y, z = (points[:, k].astype(np.float64) for k in range(3))
    zc = M[2, 0] * x + M[2, 1] * y + M[2, 2] * z + M[2, 3]
    idx = np.nonzero(zc > min_depth)[0]
    x, y, z, zc = x[idx], y[idx], z[idx], zc[idx]
    u = (M[0, 0] * x + M[0, 1] * y + M[0, 2] * z + M[0, 3]) / zc
    v = (M[1, 0] * x + M[1, 1] * y + M[1, 2] * z + M[1, 3]) / zc
    if pixel == "round":
        ui, vi = np.rint(u), np.rint(v)
    elif pixel == "floor":
        ui, vi = np.floor(u), np.floor(v)
    else:
        ui, vi = np.rint(u) - 1, np.rint(v) - 1
    inside = np.nonzero((ui >= 0) & (vi >= 0) & (ui < w) & (vi < h))[0]
    return Projection(index=idx[inside], u=ui[inside].astype(np.int64), v=vi[inside].astype(np.int64),
                      uv=np.stack([u[inside], v[inside]], -1), camz=zc[inside], velx=x[inside],
                      width=int(w), height=int(h))


def resolve_conflicts(linear: np.ndarray, values: np.ndarray, rule: str = "time",
                      dt: np.ndarray | None = None) -> np.ndarray:
    """Indices (into the inputs) of the one point kept per pixel.

    Introduced in Chapter 3.

    Args:
        linear: ``(N,)`` linear pixel index ``v * width + u`` of each point.
        values: ``(N,)`` depth each point would store.
        rule: ``"time"`` (smallest ``|dt|``, then smallest value) or ``"nearest"`` (smallest value).
        dt: ``(N,)`` capture time minus image time (seconds); needed by ``"time"``.

    Returns:
        indices of the kept points, one per occupied pixel, in increasing pixel order.
    """
    if rule == "time":
        if dt is None:
            raise UsageError("the 'time' rule needs each point's capture time (dt)")
        order = np.lexsort((values, np.abs(dt), linear))
    elif rule == "nearest":
        order = np.lexsort((values, linear))
    else:
        raise UsageError(f"unknown conflict rule {rule!r}; choose one of {', '.join(CONFLICT_RULES)}")
    first = np.ones(order.size, dtype=bool)
    first[1:] = linear[order][1:] != linear[order][:-1]
    return order[first]


def sparse_depth(points: np.ndarray, calib: Calibration, cam: int = 2, size: tuple[int, int] | None = None,
                 variant: str = "camz", rule: str = "time", times: np.ndarray | None = None,
                 image_dt: float = 0.0, pixel: str = "round", rate_hz: float = SCAN_RATE_HZ,
                 direction: str = SCAN_DIRECTION, return_stats: bool = False):
    """The sparse depth map of one scan in camera ``cam``: float32 metres, 0 = no point.

    Introduced in Chapter 3.

    Args:
        points: ``(N, >=3)`` Velodyne-frame points.
        calib, cam, size, pixel: as for :func:`project_scan`.
        variant: ``"camz"`` or ``"velx"`` (:data:`GT_VARIANTS`).
        rule: ``"time"`` or ``"nearest"`` (:data:`CONFLICT_RULES`).
        times: ``(N,)`` capture times relative to the scan's forward-facing timestamp (seconds);
            default: derived from each point's azimuth (:func:`sweep_time_offsets`).
        image_dt: image timestamp minus the scan's forward-facing timestamp (seconds).
        return_stats: also return a dict with the number of points in the image and of pixels
            where the rule had to choose.

    Returns:
        ``(H, W)`` float32 depth, or ``(depth, stats)``.
    """
    proj = project_scan(points, calib, cam, size, pixel=pixel)
    vals = proj.values(variant)
    linear = proj.v * proj.width + proj.u
    dt = None
    if rule == "time":
        if times is None:
            t = sweep_time_offsets(points[proj.index], rate_hz, direction)
        else:
            t = np.asarray(times, np.float64)[proj.index]
        dt = t - image_dt
    keep = resolve_conflicts(linear, vals, rule, dt)
    depth = np.zeros(proj.height * proj.width, dtype=np.float32)
    depth[linear[keep]] = vals[keep]
    depth = depth.reshape(proj.height, proj.width)
    if return_stats:
        return depth, {"points_in_image": int(proj.index.size), "pixels": int(keep.size),
                       "conflict_points": int(proj.index.size - keep.size)}
    return depth
