"""Vectorised ray casting against the primitives the synthetic worlds are built from.

Introduced in Chapter 1. Every function here takes a batch of rays sharing one origin or with
one origin each, and returns the ray parameter ``t`` of the first hit (``inf`` for a miss).
Rays are *not* normalised: the synthetic renderers use camera-frame directions with z = 1, so
``t`` is directly the z-depth of the hit. Functions follow the device and dtype of the inputs.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from ..camera import Intrinsics

__all__ = ["interior_exit", "ray_box", "ray_vertical_cylinder", "ray_sphere", "safe_reciprocal", "camera_rays",
           "screen_rect", "aabb_corners"]

_INF = float("inf")


def safe_reciprocal(d: torch.Tensor, tiny: float = 1e-12) -> torch.Tensor:
    """``1/d`` with exact zeros nudged to ``tiny`` (keeping the sign convention +0 -> +)."""
    return 1.0 / torch.where(d.abs() < tiny, torch.full_like(d, tiny), d)


def interior_exit(origin: torch.Tensor, dirs: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Where rays starting *inside* the axis-aligned box ``[lo, hi]`` leave it.

    Args:
        origin: ``(3,)`` or ``(..., 3)`` ray origins inside the box.
        dirs: ``(..., 3)`` ray directions.
        lo, hi: ``(3,)`` box corners.

    Returns:
        ``(t, face)`` with ``face`` in ``0..5`` = ``2 * axis + (direction > 0)``: 0 is the
        ``x = lo`` face, 1 the ``x = hi`` face, 2 ``y = lo``, 3 ``y = hi``, 4 ``z = lo``, 5 ``z = hi``.
    """
    positive = dirs > 0
    bound = torch.where(positive, hi, lo)
    t_axes = (bound - origin) * safe_reciprocal(dirs)
    # a ray parallel to a pair of faces never meets them
    t_axes = torch.where(dirs.abs() < 1e-12, torch.full_like(t_axes, _INF), t_axes)
    t, axis = t_axes.min(dim=-1)
    face = 2 * axis + torch.gather(positive, -1, axis[..., None])[..., 0].long()
    return t, face


def ray_box(origin: torch.Tensor, dirs: torch.Tensor, center: torch.Tensor, half: torch.Tensor,
            yaw: float, t_min: float = 1e-6) -> torch.Tensor:
    """First hit of rays from outside with a box rotated by ``yaw`` (radians) about the y axis.

    Args:
        origin: ``(3,)`` or ``(..., 3)`` ray origins (outside the box).
        dirs: ``(..., 3)`` ray directions.
        center: ``(3,)`` box centre; half: ``(3,)`` half extents (local frame).
        yaw: rotation about +y taking the local frame to the world frame.
        t_min: hits closer than this are ignored.

    Returns:
        ``(...)`` ray parameter of the entry point, ``inf`` where the ray misses.
    """
    c, s = float(torch.cos(torch.tensor(yaw))), float(torch.sin(torch.tensor(yaw)))
    o = origin - center
    # world -> local is a rotation by -yaw about y: x' = c x - s z, z' = s x + c z
    ox, oy, oz = o[..., 0], o[..., 1], o[..., 2]
    dx, dy, dz = dirs[..., 0], dirs[..., 1], dirs[..., 2]
    lo_x, lo_z = c * ox - s * oz, s * ox + c * oz
    ld_x, ld_z = c * dx - s * dz, s * dx + c * dz
    t_near = torch.full(dirs.shape[:-1], -_INF, dtype=dirs.dtype, device=dirs.device)
    t_far = torch.full_like(t_near, _INF)
    for lo_a, ld_a, h in ((lo_x, ld_x, half[0]), (oy, dy, half[1]), (lo_z, ld_z, half[2])):
        inv = safe_reciprocal(ld_a)
        t1 = (-h - lo_a) * inv
        t2 = (h - lo_a) * inv
        t_near = torch.maximum(t_near, torch.minimum(t1, t2))
        t_far = torch.minimum(t_far, torch.maximum(t1, t2))
    hit = (t_far >= t_near) & (t_near > t_min)
    return torch.where(hit, t_near, torch.full_like(t_near, _INF))


def ray_vertical_cylinder(origin: torch.Tensor, dirs: torch.Tensor, cx: float, cz: float,
                          y0: float, y1: float, radius: float, t_min: float = 1e-6) -> torch.Tensor:
    """First hit of rays with a closed vertical cylinder (axis parallel to y, from ``y0`` to ``y1``).

    The side and the top cap are tested (the bottom cap stands on the floor and is never seen
    from inside a room). Returns ``(...)`` ray parameters, ``inf`` for a miss.
    """
    ox = origin[..., 0] - cx
    oz = origin[..., 2] - cz
    oy = origin[..., 1]
    dx, dy, dz = dirs[..., 0], dirs[..., 1], dirs[..., 2]
    a = dx * dx + dz * dz
    b = 2.0 * (ox * dx + oz * dz)
    cc = ox * ox + oz * oz - radius * radius
    disc = b * b - 4.0 * a * cc
    sq = torch.sqrt(disc.clamp_min(0.0))
    a_safe = torch.where(a > 1e-20, a, torch.ones_like(a))
    t_side = (-b - sq) / (2.0 * a_safe)
    y_side = oy + t_side * dy
    side_ok = (disc >= 0) & (a > 1e-20) & (t_side > t_min) & (y_side >= y0) & (y_side <= y1)
    t_side = torch.where(side_ok, t_side, torch.full_like(t_side, _INF))
    t_cap = (y1 - oy) * safe_reciprocal(dy)
    px = ox + t_cap * dx
    pz = oz + t_cap * dz
    cap_ok = (t_cap > t_min) & (px * px + pz * pz <= radius * radius)
    t_cap = torch.where(cap_ok, t_cap, torch.full_like(t_cap, _INF))
    return torch.minimum(t_side, t_cap)


def ray_sphere(origin: torch.Tensor, dirs: torch.Tensor, center: torch.Tensor, radius: float,
               t_min: float = 1e-6) -> torch.Tensor:
    """First hit of rays from outside with a sphere. Returns ``(...)`` ray parameters."""
    o = origin - center
    a = (dirs * dirs).sum(-1)
    b = 2.0 * (o * dirs).sum(-1)
    cc = (o * o).sum(-1) - radius * radius
    disc = b * b - 4.0 * a * cc
    t = (-b - torch.sqrt(disc.clamp_min(0.0))) / (2.0 * a)
    ok = (disc >= 0) & (t > t_min)
    return torch.where(ok, t, torch.full_like(t, _INF))


# ------------------------------------------------------------------ camera rays and screen bounds


def camera_rays(K: Intrinsics, pose: torch.Tensor, device: torch.device) -> torch.Tensor:
    """World-frame ray directions ``(H, W, 3)`` through every pixel centre of ``K``, scaled so the
    camera-frame z component is 1 (so a hit's ``t`` is its z-depth). ``pose`` is world_from_camera.

    Introduced in Chapter 1; the indoor and street renderers share it.
    """
    v, u = torch.meshgrid(
        torch.arange(K.height, dtype=torch.float32, device=device),
        torch.arange(K.width, dtype=torch.float32, device=device),
        indexing="ij",
    )
    d_cam = torch.stack([(u - K.cx) / K.fx, (v - K.cy) / K.fy, torch.ones_like(u)], dim=-1)
    return d_cam @ pose[:3, :3].T  # (H, W, 3) world directions with camera-frame z = 1


def screen_rect(corners_world: np.ndarray, pose: np.ndarray, K: Intrinsics) -> tuple[int, int, int, int] | None:
    """Pixel rectangle ``(v0, v1, u0, u1)`` bounding the projection of the convex hull of ``corners_world``
    (N, 3) seen from ``pose`` (world_from_camera, 4x4) through ``K``; ``None`` when it is behind the camera
    or off screen. The renderers trace only the pixels inside it (Chapter 1)."""
    R, t = pose[:3, :3], pose[:3, 3]
    pc = (corners_world - t) @ R  # camera frame
    z = pc[:, 2]
    if np.all(z <= 1e-3):
        return None
    if np.any(z <= 1e-3):
        return 0, K.height, 0, K.width
    u = K.fx * pc[:, 0] / z + K.cx
    v = K.fy * pc[:, 1] / z + K.cy
    u0, u1 = max(int(math.floor(u.min())), 0), min(int(math.ceil(u.max())) + 1, K.width)
    v0, v1 = max(int(math.floor(v.min())), 0), min(int(math.ceil(v.max())) + 1, K.height)
    if u0 >= u1 or v0 >= v1:
        return None
    return v0, v1, u0, u1


def aabb_corners(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The 8 corners ``(8, 3)`` of the axis-aligned box from ``lo`` to ``hi`` (Chapter 1)."""
    sx, sy, sz = np.meshgrid([0, 1], [0, 1], [0, 1], indexing="ij")
    sel = np.stack([sx.ravel(), sy.ravel(), sz.ravel()], -1)
    return np.where(sel, hi, lo)
