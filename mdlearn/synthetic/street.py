"""The synthetic street world: roads, sidewalks, facades, cars, poles and trees under a sky.

Introduced in Chapter 3. A :class:`Street` is a straight road with lanes, raised sidewalks,
building facades with alleys between them, parked and moving cars, poles and trees, built from
the ray-casting primitives of :mod:`mdlearn.synthetic.raycast` (boxes, vertical cylinders,
spheres) plus the ground plane. :func:`trace` casts any grid of rays at a given time (moving cars
move); :func:`render` shades a camera image and returns its exact z-depth (0 where the ray
meets the sky); :mod:`mdlearn.synthetic.velodyne` casts the laser beams with the same function.

World frame: ``x`` along the road (the direction of travel), ``y`` up, ``z`` to the right of
the road; the ground is ``y = 0``. Everything is deterministic given ``(seed, drive index)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..camera import Intrinsics
from .raycast import aabb_corners, camera_rays, ray_box, ray_sphere, ray_vertical_cylinder, screen_rect
from .textures import TEXTURE_KINDS, pattern

__all__ = ["Material", "Part", "Street", "sample_street", "trace", "render", "LANE_WIDTH", "SKY_DEPTH"]

#: Width of one lane (m).
LANE_WIDTH = 3.5
#: Rays travelling further than this (m) count as sky: no surface, depth 0.
SKY_DEPTH = 250.0

_INF = float("inf")


@dataclass(frozen=True)
class Material:
    """Linear RGB albedo, a texture kind of :data:`~mdlearn.synthetic.textures.TEXTURE_KINDS`,
    its period (m), a seed, and the laser ``reflectance`` in [0, 1] the Velodyne reports."""

    color: tuple[float, float, float]
    kind: str = "plain"
    period: float = 1.0
    seed: int = 0
    reflectance: float = 0.3


@dataclass(frozen=True)
class Part:
    """One primitive: ``kind`` is ``"box"`` (``a`` = centre, ``b`` = half extents, ``yaw`` about y),
    ``"cyl"`` (``a`` = (cx, y0, cz), ``b`` = (radius, y1, 0)) or ``"sph"`` (``a`` = centre,
    ``b`` = (radius, 0, 0)). ``velocity`` (m/s along x) makes it move: at time ``t`` it is shifted by
    ``velocity * t``."""

    kind: str
    a: tuple[float, float, float]
    b: tuple[float, float, float]
    material: int
    yaw: float = 0.0
    velocity: float = 0.0

    def bound(self, time: float = 0.0) -> tuple[np.ndarray, float]:
        """Bounding sphere ``(centre, radius)`` at ``time``."""
        a = np.array(self.a, dtype=np.float64)
        if self.kind == "box":
            c, r = a, float(np.linalg.norm(self.b))
        elif self.kind == "cyl":
            y0, y1 = self.a[1], self.b[1]
            c = np.array([a[0], (y0 + y1) / 2, a[2]])
            r = math.hypot(self.b[0], (y1 - y0) / 2)
        else:
            c, r = a, float(self.b[0])
        return c + np.array([self.velocity * time, 0.0, 0.0]), r


@dataclass(frozen=True)
class Street:
    """A complete street. ``ground`` are the materials of the ground (asphalt, markings, kerb
    zone); ``road_half`` the half width of the carriageway, ``sidewalk`` the sidewalk width."""

    parts: tuple[Part, ...]
    materials: tuple[Material, ...]
    road_half: float
    sidewalk: float
    ground: tuple[int, int, int]
    sun: tuple[float, float, float]
    ambient: float
    length: float
    name: str = "street"


_FACADES = [(0.62, 0.55, 0.48), (0.70, 0.66, 0.58), (0.55, 0.50, 0.50), (0.75, 0.70, 0.62),
            (0.50, 0.42, 0.36), (0.64, 0.62, 0.60), (0.72, 0.58, 0.44)]
_CARS = [(0.60, 0.05, 0.05), (0.08, 0.10, 0.30), (0.80, 0.80, 0.80), (0.10, 0.10, 0.10),
         (0.45, 0.47, 0.50), (0.85, 0.70, 0.20), (0.20, 0.35, 0.25)]


def sample_street(seed: int, index: int, length: float = 260.0) -> Street:
    """Draw street number ``index`` of the world ``seed`` (deterministic).

    Introduced in Chapter 3. The road runs along ``x`` from ``-40`` to ``length``, where a cross
    facade closes the view; ego traffic drives along +x in the right lane (``z > 0``).
    """
    rng = np.random.default_rng([int(seed), int(index), 0x57EE7])
    u = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731
    mats: list[Material] = []

    def mat(color, kind="plain", period=1.0, refl=0.3, jitter=0.04) -> int:
        c = tuple(float(np.clip(x + rng.normal(0, jitter), 0, 1)) for x in color)
        mats.append(Material(c, kind, period, int(rng.integers(1 << 30)), refl))
        return len(mats) - 1

    lanes = int(rng.integers(1, 3))  # lanes per direction
    road_half = lanes * LANE_WIDTH + u(0.0, 1.5)  # with a parking strip
    sidewalk = u(2.0, 4.5)
    asphalt = mat((0.22, 0.22, 0.23), "plain", 2.0, 0.12, 0.02)
    marking = mat((0.85, 0.85, 0.82), "plain", 1.0, 0.6, 0.01)
    kerbside = mat((0.30, 0.29, 0.28), "plain", 1.5, 0.15, 0.02)
    pave = mat((0.62, 0.60, 0.56), "tiles", u(0.3, 0.6), 0.25, 0.03)
    parts: list[Part] = []
    x0, x1 = -40.0, float(length)
    for side in (-1, 1):
        zc = side * (road_half + sidewalk / 2)
        parts.append(Part("box", ((x0 + x1) / 2, 0.075, zc), ((x1 - x0) / 2, 0.075, sidewalk / 2), pave))
        # facades with alleys between them
        x = x0
        while x < x1:
            w = u(8.0, 28.0)
            setback = u(0.0, 2.0)
            h = u(6.0, 22.0)
            depth = 12.0
            zf = side * (road_half + sidewalk + setback + depth / 2)
            fm = mat(_FACADES[int(rng.integers(len(_FACADES)))], "window", u(1.2, 2.2), 0.35, 0.05)
            parts.append(Part("box", (x + w / 2, h / 2, zf), (w / 2, h / 2, depth / 2), fm))
            x += w + (u(2.0, 8.0) if rng.uniform() < 0.3 else 0.0)
        # poles and trees on the sidewalk edge
        x = x0 + u(0, 10)
        pole = mat((0.35, 0.36, 0.38), "plain", 1.0, 0.4, 0.02)
        while x < x1:
            zc = side * (road_half + u(0.4, 0.8))
            if rng.uniform() < 0.5:
                parts.append(Part("cyl", (x, 0.15, zc), (u(0.06, 0.12), u(4.0, 7.5), 0.0), pole))
            else:
                h = u(1.8, 3.0)
                r = u(1.2, 2.4)
                parts.append(Part("cyl", (x, 0.15, zc), (u(0.12, 0.22), h + 0.5, 0.0),
                                  mat((0.30, 0.22, 0.15), "grain", 0.4, 0.3, 0.03)))
                parts.append(Part("sph", (x, h + r * 0.8, zc), (r, 0.0, 0.0),
                                  mat((0.18, 0.36, 0.14), "carpet", 2.0, 0.45, 0.05)))
            x += u(8.0, 22.0)
    # cross facades close the street at both ends
    span = road_half + sidewalk + 30.0
    for xe in (x0 - 6.0, x1 + 6.0):
        parts.append(Part("box", (xe, 10.0, 0.0), (5.0, 10.0, span),
                          mat(_FACADES[int(rng.integers(len(_FACADES)))], "window", 2.0, 0.35, 0.05)))
    # parked cars along both kerbs, moving cars in the lanes
    for side in (-1, 1):
        x = x0 + u(0, 8)
        while x < x1:
            if rng.uniform() < 0.55:
                _car(parts, mat, rng, x, side * (road_half - 1.1), 0.0 if side > 0 else math.pi, 0.0)
            x += u(5.5, 14.0)
    for _ in range(int(rng.integers(2, 7))):  # oncoming traffic (left lanes, driving along -x)
        _car(parts, mat, rng, u(0, x1), -LANE_WIDTH * (0.5 + int(rng.integers(lanes))), math.pi, -u(6.0, 14.0))
    if rng.uniform() < 0.6:  # a car ahead in the ego lane, at about the ego speed
        _car(parts, mat, rng, u(18, 45), LANE_WIDTH * 0.5, 0.0, u(6.0, 10.0))
    sun = np.array([u(-0.5, 0.5), 1.0, u(-0.6, 0.6)])
    sun /= np.linalg.norm(sun)
    return Street(tuple(parts), tuple(mats), road_half, sidewalk, (asphalt, marking, kerbside),
                  tuple(float(s) for s in sun), u(0.35, 0.5), x1, name=f"street_{int(seed):04d}_{int(index):04d}")


def _car(parts, mat, rng, x, z, yaw, velocity):
    L, W = rng.uniform(3.8, 4.8), rng.uniform(1.7, 1.9)
    body = mat(_CARS[int(rng.integers(len(_CARS)))], "plain", 1.0, 0.5, 0.04)
    glass = mat((0.12, 0.14, 0.16), "plain", 1.0, 0.1, 0.01)
    parts.append(Part("box", (x, 0.7, z), (L / 2, 0.4, W / 2), body, yaw, velocity))
    cx = x - 0.15 * L * (1 if abs(yaw) < 1 else -1)
    parts.append(Part("box", (cx, 1.32, z), (L * 0.28, 0.24, W / 2 - 0.08), glass, yaw, velocity))


def _hit(part: Part, o: torch.Tensor, d: torch.Tensor, time: float) -> torch.Tensor:
    shift = part.velocity * time
    if part.kind == "box":
        c = torch.tensor([part.a[0] + shift, part.a[1], part.a[2]], dtype=d.dtype, device=d.device)
        return ray_box(o, d, c, torch.tensor(part.b, dtype=d.dtype, device=d.device), part.yaw)
    if part.kind == "cyl":
        return ray_vertical_cylinder(o, d, part.a[0] + shift, part.a[2], part.a[1], part.b[1], part.b[0])
    c = torch.tensor([part.a[0] + shift, part.a[1], part.a[2]], dtype=d.dtype, device=d.device)
    return ray_sphere(o, d, c, part.b[0])


def _normal(part: Part, p: torch.Tensor, time: float) -> torch.Tensor:
    shift = part.velocity * time
    if part.kind == "box":
        c, s = math.cos(part.yaw), math.sin(part.yaw)
        q = p - torch.tensor([part.a[0] + shift, part.a[1], part.a[2]], dtype=p.dtype, device=p.device)
        lx, lz = c * q[..., 0] - s * q[..., 2], s * q[..., 0] + c * q[..., 2]
        local = torch.stack([lx, q[..., 1], lz], -1) / torch.tensor(part.b, dtype=p.dtype, device=p.device)
        axis = local.abs().argmax(-1)
        sign = torch.sign(torch.gather(local, -1, axis[..., None]))
        n = torch.nn.functional.one_hot(axis, 3).to(p.dtype) * sign
        return torch.stack([c * n[..., 0] + s * n[..., 2], n[..., 1], -s * n[..., 0] + c * n[..., 2]], -1)
    if part.kind == "cyl":
        rx, rz = p[..., 0] - (part.a[0] + shift), p[..., 2] - part.a[2]
        rad = torch.sqrt(rx * rx + rz * rz).clamp_min(1e-9)
        cap = (p[..., 1] > part.b[1] - 1e-3) & (rad < part.b[0] * 0.999)
        side = torch.stack([rx / rad, torch.zeros_like(rx), rz / rad], -1)
        up = torch.zeros_like(side)
        up[..., 1] = 1.0
        return torch.where(cap[..., None], up, side)
    c = torch.tensor([part.a[0] + shift, part.a[1], part.a[2]], dtype=p.dtype, device=p.device)
    return (p - c) / part.b[0]


@torch.no_grad()
def trace(street: Street, origin: torch.Tensor, dirs: torch.Tensor, time: float,
          cull=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """First hits of a grid of rays at ``time`` (seconds; moving cars are where they are then).

    Introduced in Chapter 3.

    Args:
        origin: ``(3,)`` common ray origin (world frame).
        dirs: ``(R, C, 3)`` ray directions (any length; ``t`` is in units of ``|dir|``).
        cull: optional ``cull(centre, radius) -> list of (r0, r1, c0, c1)``: the grid windows a
            primitive with that bounding sphere can appear in (``None``: test every ray).

    Returns:
        ``(t, normal, material)``: ``(R, C)`` ray parameter (``inf`` for sky), ``(R, C, 3)`` unit
        normals, ``(R, C)`` material indices (-1 for sky).
    """
    R, C = dirs.shape[:2]
    o = origin.to(dirs.dtype)
    t = torch.full((R, C), _INF, dtype=dirs.dtype, device=dirs.device)
    normal = torch.zeros((R, C, 3), dtype=dirs.dtype, device=dirs.device)
    material = torch.full((R, C), -1, dtype=torch.int64, device=dirs.device)
    # the ground plane y = 0: asphalt, lane markings, a dark kerb-side strip
    down = dirs[..., 1] < -1e-9
    tg = torch.where(down, -o[1] / torch.where(down, dirs[..., 1], -torch.ones_like(dirs[..., 1])),
                     torch.full_like(t, _INF))
    pg = o + tg.clamp(max=1e6)[..., None] * dirs
    asphalt, marking, kerbside = street.ground
    zabs = pg[..., 2].abs()
    gm = torch.full_like(material, asphalt)
    lane = torch.remainder(pg[..., 2] + 1000 * LANE_WIDTH, LANE_WIDTH)
    dash = torch.remainder(pg[..., 0], 9.0) < 3.0
    is_mark = ((pg[..., 2].abs() < 0.08) | ((lane < 0.06) | (lane > LANE_WIDTH - 0.06)) & dash) & (zabs < street.road_half - 1.8)
    gm = torch.where(is_mark, torch.full_like(gm, marking), gm)
    gm = torch.where(zabs > street.road_half - 0.3, torch.full_like(gm, kerbside), gm)
    t = torch.where(down, tg, t)
    normal[..., 1] = torch.where(down, 1.0, 0.0)
    material = torch.where(down, gm, material)
    for part in street.parts:
        windows = [(0, R, 0, C)] if cull is None else cull(*part.bound(time))
        for r0, r1, c0, c1 in windows:
            th = _hit(part, o, dirs[r0:r1, c0:c1], time)
            closer = th < t[r0:r1, c0:c1]
            if not bool(closer.any()):
                continue
            t[r0:r1, c0:c1] = torch.where(closer, th, t[r0:r1, c0:c1])
            p = o + th.clamp(max=1e6)[..., None] * dirs[r0:r1, c0:c1]
            normal[r0:r1, c0:c1] = torch.where(closer[..., None], _normal(part, p, time), normal[r0:r1, c0:c1])
            material[r0:r1, c0:c1] = torch.where(closer, torch.full_like(material[r0:r1, c0:c1], part.material),
                                                 material[r0:r1, c0:c1])
    far = t * dirs.norm(dim=-1) > SKY_DEPTH
    t = torch.where(far, torch.full_like(t, _INF), t)
    material = torch.where(far, torch.full_like(material, -1), material)
    return t, normal, material


@torch.no_grad()
def render(street: Street, pose: np.ndarray, K: Intrinsics, time: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Render a camera image of ``street`` at ``time`` from ``pose`` (``world_from_camera``).

    Introduced in Chapter 3.

    Returns:
        ``(rgb, depth)``: ``(H, W, 3)`` uint8 and ``(H, W)`` float32 exact z-depth in metres,
        0 where the pixel sees the sky.
    """
    pose = np.asarray(pose, dtype=np.float64)
    P = torch.as_tensor(pose, dtype=torch.float32)
    dirs = camera_rays(K, P, torch.device("cpu"))  # camera-frame z = 1: t is z-depth
    o = P[:3, 3]

    def cull(centre, radius):
        rect = screen_rect(aabb_corners(centre - radius, centre + radius), pose, K)
        return [] if rect is None else [rect]

    t, normal, material = trace(street, o, dirs, time, cull)
    sky = material < 0
    H, W = K.height, K.width
    p = o + torch.where(sky, torch.zeros_like(t), t)[..., None] * dirs
    mats = street.materials
    colors = torch.tensor([m.color for m in mats], dtype=torch.float32)
    kinds = torch.tensor([TEXTURE_KINDS.index(m.kind) for m in mats])
    periods = torch.tensor([m.period for m in mats], dtype=torch.float32)
    seeds = torch.tensor([m.seed for m in mats], dtype=torch.int64)
    m = material.clamp_min(0).reshape(-1)
    present = sorted({TEXTURE_KINDS.index(x.kind) for x in mats})
    tex = pattern(kinds[m], periods[m], p.reshape(-1, 3), seeds[m], present)
    albedo = colors[m] * tex[:, None]
    sun = torch.tensor(street.sun, dtype=torch.float32)
    lambert = (normal.reshape(-1, 3) @ sun).clamp_min(0.0)
    radiance = albedo * (street.ambient + 0.75 * lambert)[:, None]
    # sky: brighter towards the horizon
    up = (dirs[..., 1] / dirs.norm(dim=-1)).reshape(-1, 1).clamp(-1, 1)
    sky_rgb = torch.tensor([0.55, 0.70, 0.95]) * (1.0 - 0.45 * up.clamp_min(0)) + 0.1
    radiance = torch.where(sky.reshape(-1, 1), sky_rgb, radiance)
    srgb = radiance.clamp(0.0, 1.0) ** (1.0 / 2.2)
    rgb = (srgb * 255.0 + 0.5).to(torch.uint8).reshape(H, W, 3).numpy()
    depth = torch.where(sky, torch.zeros_like(t), t).numpy().astype(np.float32)
    return rgb, depth
