"""A simulated spinning 64-beam laser scanner and the KITTI sensor rig (Chapter 3).

Introduced in Chapter 3. :class:`Scanner` models an HDL-64E like KITTI's: 64 beams between
+2.0 and -24.33 degrees of elevation (32 at 1/3 degree spacing above -8.33, 32 at 1/2 degree
below), spinning counter-clockwise (seen from above, as the raw devkit readme says of KITTI's)
at 10 Hz, one sweep per frame, with the cameras triggered when it faces forward. Every point is
captured at the moment the scanner faces its azimuth, from where the car is at that moment, and
is written in the scanner's frame *at that moment* (KITTI's raw scans are not motion-compensated
either).

:data:`KITTI_RIG` is the calibration of the real rig on 2011-09-26 (``calib_cam_to_cam.txt``
and ``calib_velo_to_cam.txt`` of the raw data, also in ``shared/data/kitti/raw/2011_09_26``):
the Velodyne 1.73 m above the road, about 8 cm above and 27 cm behind the cameras.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..data.kitti import Calibration
from ..data.kitti_depth import SCAN_DIRECTION, SCAN_RATE_HZ
from ..errors import UsageError
from .street import Street, trace

__all__ = ["HDL64E_ELEVATIONS", "Scanner", "KITTI_RIG", "VELODYNE_HEIGHT", "rig_for_size",
           "world_from_velo", "world_from_camera", "VELO_AXES_IN_WORLD"]

#: Beam elevations of an HDL-64E (degrees, top to bottom).
HDL64E_ELEVATIONS = tuple([2.0 - i / 3.0 for i in range(32)] + [-8.83 - 0.5 * i for i in range(32)])

#: Height of the Velodyne's centre above the road (m, KITTI setup sheet).
VELODYNE_HEIGHT = 1.73

#: Columns: the Velodyne's x (forward), y (left), z (up) axes in the street world (x along the
#: road, y up, z to the right).
VELO_AXES_IN_WORLD = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


def _P(*v):
    return np.array(v, dtype=np.float64).reshape(3, 4)


def _kitti_rig() -> Calibration:
    Tr = np.eye(4)
    Tr[:3, :3] = np.array([7.533745e-03, -9.999714e-01, -6.166020e-04, 1.480249e-02, 7.280733e-04,
                           -9.998902e-01, 9.998621e-01, 7.523790e-03, 1.480755e-02]).reshape(3, 3)
    Tr[:3, 3] = [-4.069766e-03, -7.631618e-02, -2.717806e-01]
    R0 = np.array([9.999239e-01, 9.837760e-03, -7.445048e-03, -9.869795e-03, 9.999421e-01, -4.278459e-03,
                   7.402527e-03, 4.351614e-03, 9.999631e-01]).reshape(3, 3)
    P = {0: _P(7.215377e+02, 0, 6.095593e+02, 0, 0, 7.215377e+02, 1.728540e+02, 0, 0, 0, 1, 0),
         1: _P(7.215377e+02, 0, 6.095593e+02, -3.875744e+02, 0, 7.215377e+02, 1.728540e+02, 0, 0, 0, 1, 0),
         2: _P(7.215377e+02, 0, 6.095593e+02, 4.485728e+01, 0, 7.215377e+02, 1.728540e+02, 2.163791e-01,
               0, 0, 1, 2.745884e-03),
         3: _P(7.215377e+02, 0, 6.095593e+02, -3.395242e+02, 0, 7.215377e+02, 1.728540e+02, 2.199936e+00,
               0, 0, 1, 2.729905e-03)}
    return Calibration(P, R0, Tr, {c: (1242, 375) for c in range(4)}, source="KITTI raw 2011_09_26")


#: The real KITTI rig of 2011-09-26 at full resolution (1242x375).
KITTI_RIG = _kitti_rig()


def rig_for_size(resolution: float) -> Calibration:
    """:data:`KITTI_RIG` with its images resized by ``resolution`` (pixel centres at integers:
    ``u -> (u + 0.5) s - 0.5``), so ``P_rect`` matches the smaller images."""
    if resolution == 1.0:
        return KITTI_RIG
    P, sizes = {}, {}
    for c, Pc in KITTI_RIG.P_rect.items():
        w, h = KITTI_RIG.image_size[c]
        w2, h2 = round(w * resolution), round(h * resolution)
        sx, sy = w2 / w, h2 / h
        A = np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1.0]])
        P[c], sizes[c] = A @ Pc, (w2, h2)
    return Calibration(P, KITTI_RIG.R_rect_00, KITTI_RIG.Tr_velo_to_cam, sizes, source=f"KITTI rig x {resolution}")


def world_from_velo(x: float, z: float) -> np.ndarray:
    """4x4 pose of the Velodyne when the car is at road position ``(x, z)`` heading along +x."""
    T = np.eye(4)
    T[:3, :3] = VELO_AXES_IN_WORLD
    T[:3, 3] = [x, VELODYNE_HEIGHT, z]
    return T


def world_from_camera(calib: Calibration, cam: int, x: float, z: float) -> np.ndarray:
    """4x4 ``world_from_camera`` of rectified camera ``cam`` (x right, y down, z forward)."""
    T = np.eye(4)
    T[:3, 3] = calib.camera_offset(cam)
    return world_from_velo(x, z) @ np.linalg.inv(calib.rect_from_velo()) @ T


@dataclass(frozen=True)
class Scanner:
    """A spinning multi-beam scanner.

    ``azimuth_steps`` columns per revolution (the real HDL-64E has about 4,000 at 10 Hz; the
    default 2,000 halves that to keep CPU rendering cheap), ``chunks`` pieces of the sweep cast
    with one scanner position and time each (at 10 m/s a chunk of 1/72 sweep moves 1.4 cm),
    range limits in metres, Gaussian range noise ``noise`` (m). ``direction`` is the spin seen
    from above (:data:`~mdlearn.data.kitti_depth.SCAN_DIRECTION`: KITTI's counter-clockwise).
    """

    elevations: tuple[float, ...] = HDL64E_ELEVATIONS
    azimuth_steps: int = 2000
    rate_hz: float = SCAN_RATE_HZ
    min_range: float = 2.5
    max_range: float = 120.0
    noise: float = 0.01
    chunks: int = 72
    direction: str = SCAN_DIRECTION

    def __post_init__(self) -> None:
        if self.direction not in ("clockwise", "counterclockwise"):
            raise UsageError("Scanner direction must be 'clockwise' or 'counterclockwise', "
                             f"got {self.direction!r}")

    def column_offsets(self) -> np.ndarray:
        """Capture time of each column relative to facing forward (s), in capture order."""
        period = 1.0 / self.rate_hz
        return -period / 2 + (np.arange(self.azimuth_steps) + 0.5) * period / self.azimuth_steps

    def column_azimuths(self) -> np.ndarray:
        """Azimuth ``atan2(y, x)`` of each column, in capture order: it increases with time for a
        counter-clockwise spin (from -pi behind the car through the right side to 0 ahead, then
        the left side) and decreases for a clockwise one."""
        sign = 1.0 if self.direction == "counterclockwise" else -1.0
        return sign * 2.0 * np.pi * self.rate_hz * self.column_offsets()

    @torch.no_grad()
    def sweep(self, street: Street, position, t_forward: float, rng: np.random.Generator
              ) -> tuple[np.ndarray, np.ndarray]:
        """One sweep centred on ``t_forward`` (s since the drive started).

        Args:
            position: ``position(t) -> (x, z)`` of the car on the road at time ``t``.

        Returns:
            ``(points, times)``: ``(N, 4)`` float32 x, y, z (scanner frame at capture), reflectance;
            ``(N,)`` float64 capture times relative to ``t_forward``.
        """
        el = np.radians(np.asarray(self.elevations))
        az = self.column_azimuths()
        offsets = self.column_offsets()
        d_velo = np.stack([np.cos(el)[:, None] * np.cos(az)[None], np.cos(el)[:, None] * np.sin(az)[None],
                           np.broadcast_to(np.sin(el)[:, None], (el.size, az.size))], -1)
        edges = np.linspace(0, self.azimuth_steps, self.chunks + 1).round().astype(int)
        refl = np.array([m.reflectance for m in street.materials], dtype=np.float32)
        pts, times = [], []
        for c0, c1 in zip(edges[:-1], edges[1:]):
            if c1 <= c0:
                continue
            tm = t_forward + float(offsets[c0:c1].mean())
            x, z = position(tm)
            T = world_from_velo(x, z)
            R = T[:3, :3]
            dirs = torch.as_tensor(d_velo[:, c0:c1] @ R.T, dtype=torch.float32)
            o = torch.as_tensor(T[:3, 3], dtype=torch.float32)
            a_mid = math.atan2(math.sin(az[c0:c1].mean()), math.cos(az[c0:c1].mean()))
            half = abs(az[c0] - az[c1 - 1]) / 2 + 1e-3

            def cull(centre, radius, o_np=T[:3, 3], R=R, a_mid=a_mid, half=half, ncols=c1 - c0):
                rel = (centre - o_np) @ R  # in the scanner frame
                dist = float(np.linalg.norm(rel))
                if dist <= radius + 1e-6:
                    return [(0, len(el), 0, ncols)]
                ang = math.asin(min(1.0, radius / dist))
                psi = math.atan2(rel[1], rel[0])
                gap = abs((psi - a_mid + math.pi) % (2 * math.pi) - math.pi)
                return [(0, len(el), 0, ncols)] if gap <= ang + half else []

            t, normal, material = trace(street, o, dirs, tm, cull)
            t = t.numpy().astype(np.float64)
            ok = np.isfinite(t) & (t >= self.min_range) & (t <= self.max_range)
            if not ok.any():
                continue
            r = t[ok] + rng.normal(0.0, self.noise, int(ok.sum())) if self.noise > 0 else t[ok]
            p = d_velo[:, c0:c1][ok] * r[:, None]
            cosi = np.abs((normal.numpy()[ok] * dirs.numpy()[ok]).sum(-1))
            rf = refl[material.numpy()[ok]] * (0.55 + 0.45 * cosi)
            pts.append(np.concatenate([p, rf[:, None]], -1).astype(np.float32))
            times.append(np.broadcast_to(offsets[c0:c1][None], ok.shape)[ok])
        if not pts:
            return np.zeros((0, 4), np.float32), np.zeros(0)
        return np.concatenate(pts), np.concatenate(times)
