"""Pinhole cameras: intrinsics, back-projection of depth maps and projection of points.

Introduced in Chapter 1 (*Depth from a single image*). Conventions, used everywhere in mdlearn:

* Camera frame: x right, y down, z forward (OpenCV). A depth map stores **z-depth** (distance
  along the optical axis, not along the ray) in float32 metres; 0 means "no measurement".
* Pixel ``(u, v)`` has its centre at integer coordinates: column ``u`` in ``0..W-1``, row ``v``
  in ``0..H-1``. (The MATLAB NYU toolbox uses 1-based centres; its readers convert.)
* Poses are ``world_from_camera`` 4x4 matrices: ``X_world = R @ X_cam + t``.

The functions take and return ``torch.Tensor`` and follow the device and dtype of their inputs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from .errors import UsageError

__all__ = [
    "Intrinsics",
    "NYU_RGB",
    "NYU_DEPTH",
    "pixel_grid",
    "backproject",
    "project",
    "transform_points",
]


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics of a camera with image size ``width`` x ``height`` (pixels).

    Introduced in Chapter 1.

    >>> K = Intrinsics(fx=500.0, fy=500.0, cx=319.5, cy=239.5, width=640, height=480)
    >>> K.scaled(0.5).width
    320
    """

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def matrix(self, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> torch.Tensor:
        """The 3x3 calibration matrix ``K``."""
        return torch.tensor(
            [[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]], dtype=dtype, device=device
        )

    def scaled(self, factor: float) -> "Intrinsics":
        """Intrinsics of the same camera after resizing the image by ``factor``.

        With integer pixel centres, a resize by ``s`` maps ``u -> (u + 0.5) * s - 0.5``.
        """
        w, h = round(self.width * factor), round(self.height * factor)
        sx, sy = w / self.width, h / self.height
        return Intrinsics(
            fx=self.fx * sx,
            fy=self.fy * sy,
            cx=(self.cx + 0.5) * sx - 0.5,
            cy=(self.cy + 0.5) * sy - 0.5,
            width=w,
            height=h,
        )

    def to_dict(self) -> dict:
        """A JSON-friendly dict (used in dataset manifests)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Intrinsics":
        """Inverse of :meth:`to_dict`."""
        return cls(**{k: d[k] for k in ("fx", "fy", "cx", "cy", "width", "height")})


# The NYU Depth v2 Kinect's two cameras, from the toolbox's ``camera_params.m`` (640x480).
# The toolbox back-projects with ``[x, y] = meshgrid(1:640, 1:480)``: its first pixel's centre is
# (1, 1) where mdlearn's is (0, 0), so every toolbox pixel coordinate is mdlearn's plus one and a
# principal point ``cx_toolbox`` is ``cx_toolbox - 1`` on mdlearn's 0-based grid (focal lengths
# are differences of coordinates and do not change). Both cameras are stated here once, already
# converted; the synthetic indoor world renders with NYU_RGB and the raw-data pipeline registers
# depth with it (``mdlearn.data.kinect.NYU_KINECT``), so synthetic and prepared real images share
# one camera to the last pixel.

#: RGB camera of the NYU Kinect, 0-based principal point (toolbox ``cx_rgb - 1``, ``cy_rgb - 1``).
NYU_RGB = Intrinsics(fx=5.1885790117450188e+02, fy=5.1946961112127485e+02, cx=3.2558244941119034e+02 - 1,
                     cy=2.5373616633400465e+02 - 1, width=640, height=480)

#: Depth (IR) camera of the NYU Kinect, 0-based principal point (toolbox ``cx_d - 1``, ``cy_d - 1``).
NYU_DEPTH = Intrinsics(fx=5.8262448167737955e+02, fy=5.8269103270988637e+02, cx=3.1304475870804731e+02 - 1,
                       cy=2.3844389626620386e+02 - 1, width=640, height=480)


def pixel_grid(height: int, width: int, dtype: torch.dtype = torch.float32,
               device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates ``(u, v)``, each of shape ``(height, width)``.

    Introduced in Chapter 1.
    """
    v, u = torch.meshgrid(
        torch.arange(height, dtype=dtype, device=device),
        torch.arange(width, dtype=dtype, device=device),
        indexing="ij",
    )
    return u, v


def backproject(depth: torch.Tensor, K: Intrinsics) -> torch.Tensor:
    """Back-project a z-depth map to camera-frame 3D points.

    Introduced in Chapter 1.

    Args:
        depth: ``(..., H, W)`` z-depth in metres (0 = invalid; such pixels give the point 0).
        K: intrinsics whose ``width``/``height`` match the map.

    Returns:
        ``(..., H, W, 3)`` points ``(x, y, z)`` in metres, camera frame.

    >>> import torch
    >>> K = Intrinsics(100.0, 100.0, 1.0, 1.0, 3, 3)
    >>> backproject(torch.full((3, 3), 2.0), K)[1, 1].tolist()
    [0.0, 0.0, 2.0]
    """
    h, w = depth.shape[-2:]
    if (w, h) != (K.width, K.height):
        raise UsageError(f"depth map is {w}x{h} but the intrinsics are for {K.width}x{K.height}")
    u, v = pixel_grid(h, w, dtype=depth.dtype, device=depth.device)
    x = (u - K.cx) / K.fx * depth
    y = (v - K.cy) / K.fy * depth
    return torch.stack(torch.broadcast_tensors(x, y, depth), dim=-1)


def project(points: torch.Tensor, K: Intrinsics, eps: float = 1e-9) -> tuple[torch.Tensor, torch.Tensor]:
    """Project camera-frame points to (sub-)pixel coordinates.

    Introduced in Chapter 1.

    Args:
        points: ``(..., 3)`` camera-frame points in metres.
        K: intrinsics.
        eps: points with ``z <= eps`` are behind the camera.

    Returns:
        ``(uv, z)``: ``(..., 2)`` pixel coordinates (column, row) and ``(...)`` z-depth. ``uv`` is
        NaN for points behind the camera.
    """
    z = points[..., 2]
    in_front = z > eps
    zs = torch.where(in_front, z, torch.ones_like(z))
    u = K.fx * points[..., 0] / zs + K.cx
    v = K.fy * points[..., 1] / zs + K.cy
    uv = torch.stack([u, v], dim=-1)
    uv = torch.where(in_front[..., None], uv, torch.full_like(uv, float("nan")))
    return uv, z


def transform_points(T: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Apply a 4x4 rigid transform ``T`` to ``(..., 3)`` points.

    Introduced in Chapter 1 (poses are ``world_from_camera``).
    """
    R, t = T[:3, :3].to(points.dtype), T[:3, 3].to(points.dtype)
    return points @ R.T + t
