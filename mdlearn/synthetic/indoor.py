"""The synthetic indoor world: procedurally generated rooms seen by an NYU-like camera.

Introduced in Chapter 1. A :class:`Room` is a box-shaped room (floor, ceiling, four walls) with
doorways and wide openings into adjacent spaces, windows, and furniture assembled from boxes,
vertical cylinders and spheres, each with a procedural texture. :func:`render` ray-casts it from a
camera pose with Lambertian shading (one point light plus an ambient term) and returns an RGB
image and the *exact* z-depth map. :func:`sample_room` and :func:`sample_pose` draw rooms and
camera poses the way NYU Depth v2 was captured: a person standing near a wall or in a doorway,
holding the camera at 1.0–1.8 m, looking into the room slightly downward with a small roll.

World frame: x and z span the floor, y points up; the room occupies
``[0, W] x [0, H] x [0, D]``. Everything is deterministic given ``(seed, room index, view index)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from ..camera import NYU_RGB, Intrinsics
from ..errors import MdlearnError, UsageError
from .raycast import (aabb_corners, camera_rays, interior_exit, ray_box, ray_sphere, ray_vertical_cylinder,
                      screen_rect)
from .textures import TEXTURE_KINDS, pattern

__all__ = [
    "Material",
    "Box",
    "Cylinder",
    "Sphere",
    "Opening",
    "Window",
    "Room",
    "View",
    "sample_room",
    "sample_pose",
    "look_pose",
    "render",
    "render_view",
]

# Faces of the room box, as numbered by :func:`~mdlearn.synthetic.raycast.interior_exit`.
FACE_X0, FACE_X1, FLOOR, CEILING, FACE_Z0, FACE_Z1 = range(6)
WALL_FACES = (FACE_X0, FACE_X1, FACE_Z0, FACE_Z1)
_FACE_NORMALS = torch.tensor(  # inward normals of an interior box, per face
    [[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=torch.float32
)


@dataclass(frozen=True)
class Material:
    """A surface: linear RGB albedo in [0, 1], a texture kind and its period in metres."""

    color: tuple[float, float, float]
    kind: str = "plain"
    period: float = 1.0
    seed: int = 0


@dataclass(frozen=True)
class Box:
    """A box rotated by ``yaw`` radians about the vertical axis."""

    center: tuple[float, float, float]
    half: tuple[float, float, float]
    yaw: float
    material: int


@dataclass(frozen=True)
class Cylinder:
    """A vertical cylinder from height ``y0`` to ``y1``."""

    cx: float
    cz: float
    y0: float
    y1: float
    radius: float
    material: int


@dataclass(frozen=True)
class Sphere:
    """A sphere."""

    center: tuple[float, float, float]
    radius: float
    material: int


@dataclass(frozen=True)
class Opening:
    """A doorway or wide opening in wall ``face`` leading into an adjacent space.

    ``a0..a1`` is the span along the wall (z for the x walls, x for the z walls), ``y1`` the top
    of the opening (it starts at the floor). The adjacent space is a box extending ``beyond``
    metres behind the wall and ``side`` metres past each edge of the opening.
    """

    face: int
    a0: float
    a1: float
    y1: float
    beyond: float
    side: float
    material: int


@dataclass(frozen=True)
class Window:
    """A window: a rectangle of glazing on wall ``face`` (same coordinates as :class:`Opening`)."""

    face: int
    a0: float
    a1: float
    y0: float
    y1: float


@dataclass(frozen=True)
class Room:
    """A complete room description. All lengths in metres; see the module docstring for frames.

    ``scale`` is the dollhouse factor: :meth:`scaled` multiplies every length (and the texture
    units) by ``s``, which leaves rendered images unchanged while depth is multiplied by ``s``.
    """

    size: tuple[float, float, float]
    materials: tuple[Material, ...]
    surface_materials: tuple[int, int, int, int, int, int]  # per room face (FACE_X0..FACE_Z1)
    window_material: int
    boxes: tuple[Box, ...] = ()
    cylinders: tuple[Cylinder, ...] = ()
    spheres: tuple[Sphere, ...] = ()
    openings: tuple[Opening, ...] = ()
    windows: tuple[Window, ...] = ()
    light: tuple[float, float, float] = (1.0, 2.5, 1.0)
    light_power: float = 1.0
    ambient: float = 0.35
    scale: float = 1.0
    name: str = "room"

    def scaled(self, s: float) -> "Room":
        """The same room built ``s`` times larger (the dollhouse experiment of Chapter 1)."""
        if not s > 0:
            raise UsageError(f"scale must be positive, got {s}")
        sc = lambda v: tuple(float(x) * s for x in v)  # noqa: E731
        return replace(
            self,
            size=sc(self.size),
            boxes=tuple(replace(b, center=sc(b.center), half=sc(b.half)) for b in self.boxes),
            cylinders=tuple(replace(c, cx=c.cx * s, cz=c.cz * s, y0=c.y0 * s, y1=c.y1 * s,
                                    radius=c.radius * s) for c in self.cylinders),
            spheres=tuple(replace(p, center=sc(p.center), radius=p.radius * s) for p in self.spheres),
            openings=tuple(replace(o, a0=o.a0 * s, a1=o.a1 * s, y1=o.y1 * s, beyond=o.beyond * s,
                                   side=o.side * s) for o in self.openings),
            windows=tuple(replace(w, a0=w.a0 * s, a1=w.a1 * s, y0=w.y0 * s, y1=w.y1 * s) for w in self.windows),
            light=sc(self.light),
            scale=self.scale * s,
        )


@dataclass
class View:
    """One rendered view: what :func:`render_view` and the dataset writers produce.

    ``rgb`` is ``(H, W, 3)`` uint8, ``depth`` ``(H, W)`` float32 z-depth in metres,
    ``pose`` the 4x4 ``world_from_camera`` matrix (float64).
    """

    rgb: np.ndarray
    depth: np.ndarray
    intrinsics: Intrinsics
    pose: np.ndarray
    room: str = ""
    index: int = 0
    meta: dict = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# camera poses


def look_pose(position: tuple[float, float, float], yaw: float, pitch: float, roll: float = 0.0) -> np.ndarray:
    """``world_from_camera`` for a camera at ``position`` with the given angles (radians).

    Introduced in Chapter 1. ``yaw`` turns about the vertical axis (0 looks along +z, pi/2
    along +x), ``pitch`` < 0 looks down, ``roll`` turns the image clockwise about the optical
    axis. The camera frame is x right, y down, z forward.
    """
    f = np.array([math.cos(pitch) * math.sin(yaw), math.sin(pitch), math.cos(pitch) * math.cos(yaw)])
    up = np.array([0.0, 1.0, 0.0])
    r = np.cross(f, up)
    r /= np.linalg.norm(r)
    d = np.cross(f, r)
    # roll about the optical axis
    cr, sr = math.cos(roll), math.sin(roll)
    r, d = cr * r + sr * d, -sr * r + cr * d
    T = np.eye(4)
    T[:3, 0], T[:3, 1], T[:3, 2], T[:3, 3] = r, d, f, position
    return T


# --------------------------------------------------------------------------------------------
# rendering


def _box_corners(b: Box) -> np.ndarray:
    c, s = math.cos(b.yaw), math.sin(b.yaw)
    sx, sy, sz = np.meshgrid([-1, 1], [-1, 1], [-1, 1], indexing="ij")
    local = np.stack([sx.ravel() * b.half[0], sy.ravel() * b.half[1], sz.ravel() * b.half[2]], -1)
    world = np.empty_like(local)
    world[:, 0] = c * local[:, 0] + s * local[:, 2]
    world[:, 1] = local[:, 1]
    world[:, 2] = -s * local[:, 0] + c * local[:, 2]
    return world + np.asarray(b.center)


def _wall_coords(face: int, p: torch.Tensor) -> torch.Tensor:
    """Along-wall coordinate of points on a wall face (z for x walls, x for z walls)."""
    return p[..., 2] if face in (FACE_X0, FACE_X1) else p[..., 0]


@torch.no_grad()
def render(room: Room, pose: np.ndarray, K: Intrinsics = NYU_RGB, device: torch.device | str | None = None
           ) -> tuple[np.ndarray, np.ndarray]:
    """Ray-cast ``room`` from ``pose`` (``world_from_camera``) with intrinsics ``K``.

    Introduced in Chapter 1.

    Returns:
        ``(rgb, depth)``: ``(H, W, 3)`` uint8 sRGB image and ``(H, W)`` float32 z-depth in metres.
        Every pixel sees a surface (rooms are closed), so the depth is positive everywhere.
    """
    dev = torch.device(device) if device is not None else torch.device("cpu")
    pose = np.asarray(pose, dtype=np.float64)
    P = torch.as_tensor(pose, dtype=torch.float32, device=dev)
    o = P[:3, 3]
    dirs = camera_rays(K, P, dev)
    H, W = K.height, K.width
    W_, H_, D_ = room.size
    lo = torch.zeros(3, device=dev)
    hi = torch.tensor(room.size, dtype=torch.float32, device=dev)

    # 1. the room shell
    t, face = interior_exit(o, dirs, lo, hi)
    normals = _FACE_NORMALS.to(dev)[face]
    mat = torch.tensor(room.surface_materials, device=dev)[face]
    p_wall = o + t[..., None] * dirs

    # 2. openings: rays through a doorway continue into the adjacent space
    for op in room.openings:
        a = _wall_coords(op.face, p_wall)
        through = (face == op.face) & (a > op.a0) & (a < op.a1) & (p_wall[..., 1] < op.y1)
        if not bool(through.any()):
            continue
        axis, positive = op.face // 2, op.face % 2 == 1
        alo, ahi = [0.0, 0.0, 0.0], [W_, H_, D_]
        if positive:
            alo[axis], ahi[axis] = room.size[axis], room.size[axis] + op.beyond
        else:
            alo[axis], ahi[axis] = -op.beyond, 0.0
        along = 2 if axis == 0 else 0
        alo[along], ahi[along] = op.a0 - op.side, op.a1 + op.side
        t2, face2 = interior_exit(p_wall[through], dirs[through],
                                  torch.tensor(alo, device=dev), torch.tensor(ahi, device=dev))
        t[through] = t[through] + t2
        normals[through] = _FACE_NORMALS.to(dev)[face2]
        sub = torch.tensor(room.surface_materials, device=dev)[face2]
        is_wall = (face2 != FLOOR) & (face2 != CEILING)
        mat[through] = torch.where(is_wall, torch.full_like(sub, op.material), sub)

    # 3. windows: glazing on the wall plane
    for w in room.windows:
        a = _wall_coords(w.face, p_wall)
        y = p_wall[..., 1]
        on = (face == w.face) & (a > w.a0) & (a < w.a1) & (y > w.y0) & (y < w.y1)
        mat[on] = room.window_material

    # 4. furniture, each primitive tested only inside its projected bounding rectangle
    def update(rect, t_new, n_fn, material):
        v0, v1, u0, u1 = rect
        closer = t_new < t[v0:v1, u0:u1]
        if not bool(closer.any()):
            return
        t[v0:v1, u0:u1] = torch.where(closer, t_new, t[v0:v1, u0:u1])
        p = o + t_new[..., None] * dirs[v0:v1, u0:u1]
        normals[v0:v1, u0:u1] = torch.where(closer[..., None], n_fn(p), normals[v0:v1, u0:u1])
        mat[v0:v1, u0:u1] = torch.where(closer, torch.full_like(closer, material, dtype=mat.dtype),
                                        mat[v0:v1, u0:u1])

    for b in room.boxes:
        rect = screen_rect(_box_corners(b), pose, K)
        if rect is None:
            continue
        v0, v1, u0, u1 = rect
        center = torch.tensor(b.center, dtype=torch.float32, device=dev)
        half = torch.tensor(b.half, dtype=torch.float32, device=dev)
        tb = ray_box(o, dirs[v0:v1, u0:u1], center, half, b.yaw)
        c, s = math.cos(b.yaw), math.sin(b.yaw)

        def box_normal(p, center=center, half=half, c=c, s=s):
            q = p - center
            lx, lz = c * q[..., 0] - s * q[..., 2], s * q[..., 0] + c * q[..., 2]
            local = torch.stack([lx, q[..., 1], lz], -1) / half
            axis = local.abs().argmax(-1)
            sign = torch.sign(torch.gather(local, -1, axis[..., None]))
            n_local = torch.nn.functional.one_hot(axis, 3).to(p.dtype) * sign
            nx = c * n_local[..., 0] + s * n_local[..., 2]
            nz = -s * n_local[..., 0] + c * n_local[..., 2]
            return torch.stack([nx, n_local[..., 1], nz], -1)

        update(rect, tb, box_normal, b.material)

    for cy in room.cylinders:
        lo_c = np.array([cy.cx - cy.radius, cy.y0, cy.cz - cy.radius])
        hi_c = np.array([cy.cx + cy.radius, cy.y1, cy.cz + cy.radius])
        rect = screen_rect(aabb_corners(lo_c, hi_c), pose, K)
        if rect is None:
            continue
        v0, v1, u0, u1 = rect
        tc = ray_vertical_cylinder(o, dirs[v0:v1, u0:u1], cy.cx, cy.cz, cy.y0, cy.y1, cy.radius)

        def cyl_normal(p, cy=cy):
            rx, rz = p[..., 0] - cy.cx, p[..., 2] - cy.cz
            radial = torch.sqrt(rx * rx + rz * rz)
            cap = (p[..., 1] > cy.y1 - 1e-3 * cy.radius) & (radial < cy.radius * (1 - 1e-3))
            inv = 1.0 / radial.clamp_min(1e-9)
            side = torch.stack([rx * inv, torch.zeros_like(rx), rz * inv], -1)
            up = torch.zeros_like(side)
            up[..., 1] = 1.0
            return torch.where(cap[..., None], up, side)

        update(rect, tc, cyl_normal, cy.material)

    for sp in room.spheres:
        c3 = np.asarray(sp.center)
        rect = screen_rect(aabb_corners(c3 - sp.radius, c3 + sp.radius), pose, K)
        if rect is None:
            continue
        v0, v1, u0, u1 = rect
        center = torch.tensor(sp.center, dtype=torch.float32, device=dev)
        ts = ray_sphere(o, dirs[v0:v1, u0:u1], center, sp.radius)
        update(rect, ts, lambda p, center=center, r=sp.radius: (p - center) / r, sp.material)

    # 5. shading: textured albedo, one point light with inverse-square falloff (in room units)
    p = o + t[..., None] * dirs
    mats = room.materials
    colors = torch.tensor([m.color for m in mats], dtype=torch.float32, device=dev)
    kinds = torch.tensor([TEXTURE_KINDS.index(m.kind) for m in mats], device=dev)
    periods = torch.tensor([m.period for m in mats], dtype=torch.float32, device=dev)
    seeds = torch.tensor([m.seed for m in mats], dtype=torch.int64, device=dev)
    flat_mat = mat.reshape(-1)
    present = sorted({TEXTURE_KINDS.index(m.kind) for m in mats})
    tex = pattern(kinds[flat_mat], periods[flat_mat], (p / room.scale).reshape(-1, 3), seeds[flat_mat], present)
    albedo = colors[flat_mat] * tex[:, None]
    light = torch.tensor(room.light, dtype=torch.float32, device=dev)
    to_light = light - p.reshape(-1, 3)
    dist2 = (to_light * to_light).sum(-1)
    lambert = ((normals.reshape(-1, 3) * to_light).sum(-1) / dist2.sqrt()).clamp_min(0.0)
    falloff = 1.0 / (1.0 + dist2 / (9.0 * room.scale * room.scale))
    radiance = albedo * (room.ambient + room.light_power * lambert * falloff)[:, None]
    srgb = radiance.clamp(0.0, 1.0) ** (1.0 / 2.2)
    rgb = (srgb * 255.0 + 0.5).to(torch.uint8).reshape(H, W, 3)
    return rgb.cpu().numpy(), t.cpu().numpy().astype(np.float32)


# --------------------------------------------------------------------------------------------
# sampling rooms and poses

_WALL_PAINTS = [(0.72, 0.70, 0.64), (0.68, 0.64, 0.55), (0.58, 0.64, 0.68), (0.64, 0.68, 0.58),
                (0.74, 0.66, 0.56), (0.60, 0.60, 0.60), (0.70, 0.60, 0.52), (0.55, 0.62, 0.58)]
_FLOORS = [((0.55, 0.38, 0.22), "planks", 0.14), ((0.62, 0.48, 0.32), "planks", 0.18),
           ((0.60, 0.60, 0.58), "tiles", 0.45), ((0.75, 0.72, 0.66), "tiles", 0.30),
           ((0.42, 0.38, 0.36), "carpet", 1.0), ((0.50, 0.30, 0.25), "carpet", 1.0)]
_WOODS = [(0.45, 0.30, 0.18), (0.60, 0.44, 0.28), (0.30, 0.20, 0.14), (0.75, 0.62, 0.45)]
_FABRICS = [(0.25, 0.30, 0.45), (0.55, 0.25, 0.22), (0.35, 0.45, 0.30), (0.55, 0.55, 0.52),
            (0.20, 0.20, 0.22), (0.70, 0.62, 0.45)]
_PLAIN = [(0.85, 0.85, 0.85), (0.25, 0.25, 0.27), (0.70, 0.68, 0.62), (0.50, 0.55, 0.60)]


class _Builder:
    """Accumulates the primitives of one room while :func:`sample_room` draws it."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.materials: list[Material] = []
        self.boxes: list[Box] = []
        self.cylinders: list[Cylinder] = []
        self.spheres: list[Sphere] = []
        self.footprints: list[tuple[float, float, float, float]] = []  # x0, z0, x1, z1

    def material(self, palette, kind: str, period: float, jitter: float = 0.06) -> int:
        base = np.asarray(palette[self.rng.integers(len(palette))], dtype=float)
        color = np.clip(base * (1.0 + self.rng.uniform(-jitter, jitter, 3)), 0.02, 0.98)
        self.materials.append(Material(tuple(float(c) for c in color), kind, float(period),
                                       int(self.rng.integers(1 << 20))))
        return len(self.materials) - 1

    def free(self, fp: tuple[float, float, float, float], margin: float = 0.05) -> bool:
        x0, z0, x1, z1 = fp
        return all(x1 + margin <= a0 or x0 - margin >= a1 or z1 + margin <= b0 or z0 - margin >= b1
                   for a0, b0, a1, b1 in self.footprints)

    def place(self, parts, x: float, z: float, yaw: float) -> None:
        """Add a furniture item given as local parts (kind, params) placed at (x, z) with yaw."""
        c, s = math.cos(yaw), math.sin(yaw)

        def to_world(lx, lz):
            return x + c * lx + s * lz, z - s * lx + c * lz

        for part in parts:
            if part[0] == "box":
                _, (lx, ly, lz), half, m = part
                wx, wz = to_world(lx, lz)
                self.boxes.append(Box((wx, ly, wz), tuple(half), yaw, m))
            elif part[0] == "cyl":
                _, (lx, lz), y0, y1, r, m = part
                wx, wz = to_world(lx, lz)
                self.cylinders.append(Cylinder(wx, wz, y0, y1, r, m))
            elif part[0] == "sph":
                _, (lx, ly, lz), r, m = part
                wx, wz = to_world(lx, lz)
                self.spheres.append(Sphere((wx, ly, wz), r, m))


def _footprint(x: float, z: float, yaw: float, w: float, d: float) -> tuple[float, float, float, float]:
    c, s = abs(math.cos(yaw)), abs(math.sin(yaw))
    hx, hz = (c * w + s * d) / 2, (s * w + c * d) / 2
    return x - hx, z - hz, x + hx, z + hz


def _furniture(kind: str, b: _Builder) -> tuple[list, float, float]:
    """Parts of one furniture item in its local frame (front towards local +z), with footprint w x d."""
    r = b.rng
    u = r.uniform
    if kind == "bed":
        w, d, h = u(0.9, 1.8), u(1.9, 2.1), u(0.45, 0.6)
        frame, sheet = b.material(_WOODS, "grain", 0.5), b.material(_FABRICS, "carpet", 1.0)
        parts = [("box", (0, h / 2, 0), (w / 2, h / 2, d / 2), sheet),
                 ("box", (0, 0.55, -d / 2 + 0.04), (w / 2, 0.55, 0.04), frame),
                 ("box", (0, h + 0.07, -d / 2 + 0.35), (w / 2 - 0.1, 0.07, 0.2), b.material(_PLAIN, "plain", 0.3))]
        return parts, w, d
    if kind == "table":
        w, d, h = u(0.8, 1.8), u(0.6, 1.0), u(0.70, 0.78)
        m = b.material(_WOODS, "grain", 0.4)
        parts = [("box", (0, h - 0.02, 0), (w / 2, 0.02, d / 2), m)]
        for sx in (-1, 1):
            for sz in (-1, 1):
                parts.append(("box", (sx * (w / 2 - 0.05), (h - 0.04) / 2, sz * (d / 2 - 0.05)),
                              (0.025, (h - 0.04) / 2, 0.025), m))
        for _ in range(r.integers(0, 4)):  # things on the table
            px, pz = u(-w / 2 + 0.1, w / 2 - 0.1), u(-d / 2 + 0.1, d / 2 - 0.1)
            pick = r.integers(3)
            if pick == 0:
                sz_ = u(0.05, 0.15)
                parts.append(("box", (px, h + sz_, pz), (u(0.05, 0.2), sz_, u(0.05, 0.15)),
                              b.material(_FABRICS + _PLAIN, "plain", 0.2)))
            elif pick == 1:
                parts.append(("cyl", (px, pz), h, h + u(0.1, 0.35), u(0.03, 0.08),
                              b.material(_FABRICS, "plain", 0.2)))
            else:
                rad = u(0.05, 0.12)
                parts.append(("sph", (px, h + rad, pz), rad, b.material(_FABRICS, "plain", 0.2)))
        return parts, w, d
    if kind == "chair":
        w, h = u(0.42, 0.5), u(0.42, 0.48)
        m = b.material(_WOODS + _FABRICS, "grain", 0.3)
        parts = [("box", (0, h, 0), (w / 2, 0.03, w / 2), m),
                 ("box", (0, h + 0.25, -w / 2 + 0.02), (w / 2, 0.25, 0.02), m)]
        for sx in (-1, 1):
            for sz in (-1, 1):
                parts.append(("box", (sx * (w / 2 - 0.03), h / 2, sz * (w / 2 - 0.03)), (0.02, h / 2, 0.02), m))
        return parts, w, w
    if kind == "sofa":
        w, d = u(1.5, 2.4), u(0.8, 0.95)
        m = b.material(_FABRICS, "carpet", 1.0)
        parts = [("box", (0, 0.21, 0.05), (w / 2 - 0.15, 0.21, d / 2 - 0.05), m),
                 ("box", (0, 0.42, -d / 2 + 0.1), (w / 2, 0.42, 0.1), m),
                 ("box", (-w / 2 + 0.08, 0.3, 0), (0.08, 0.3, d / 2), m),
                 ("box", (w / 2 - 0.08, 0.3, 0), (0.08, 0.3, d / 2), m)]
        return parts, w, d
    if kind == "shelf":
        w, d, h = u(0.6, 1.4), u(0.28, 0.42), u(1.2, 2.2)
        parts = [("box", (0, h / 2, 0), (w / 2, h / 2, d / 2), b.material(_WOODS, "shelf", u(0.3, 0.4)))]
        return parts, w, d
    if kind == "cabinet":
        w, d, h = u(0.6, 1.8), u(0.4, 0.6), u(0.6, 1.1)
        m = b.material(_WOODS + _PLAIN, "grain", 0.5)
        parts = [("box", (0, h / 2, 0), (w / 2, h / 2, d / 2), m)]
        if r.uniform() < 0.4:  # a screen or box on top
            tw = u(0.4, min(1.2, w))
            parts.append(("box", (0, h + 0.3, 0), (tw / 2, 0.3, 0.04), b.material([(0.08, 0.08, 0.09)], "plain", 1.0)))
        return parts, w, d
    if kind == "counter":
        w, d = u(1.5, 3.5), 0.6
        m = b.material(_PLAIN + _WOODS, "grain", 0.6)
        top = b.material(_PLAIN, "tiles", 0.3)
        parts = [("box", (0, 0.45, 0), (w / 2, 0.45, d / 2), m),
                 ("box", (0, 0.92, 0.01), (w / 2, 0.02, d / 2 + 0.01), top),
                 ("box", (0, 1.8, -d / 2 + 0.18), (w / 2, 0.35, 0.18), m)]
        return parts, w, d
    if kind == "lamp":
        h = u(1.3, 1.8)
        m = b.material(_PLAIN, "plain", 0.5)
        parts = [("cyl", (0, 0), 0.0, 0.03, 0.15, m), ("cyl", (0, 0), 0.0, h, 0.015, m),
                 ("cyl", (0, 0), h - 0.05, h + 0.25, u(0.15, 0.22), b.material(_WALL_PAINTS, "plain", 0.5))]
        return parts, 0.4, 0.4
    if kind == "plant":
        h = u(0.3, 0.5)
        parts = [("cyl", (0, 0), 0.0, h, u(0.12, 0.2), b.material(_WOODS + _PLAIN, "plain", 0.3)),
                 ("sph", (0, h + 0.3, 0), u(0.25, 0.4), b.material([(0.15, 0.35, 0.12), (0.25, 0.40, 0.15)], "grain", 0.15))]
        return parts, 0.6, 0.6
    if kind == "desk":
        w, d, h = u(1.0, 1.6), u(0.6, 0.8), 0.74
        m = b.material(_WOODS + _PLAIN, "grain", 0.5)
        parts = [("box", (0, h - 0.02, 0), (w / 2, 0.02, d / 2), m),
                 ("box", (-w / 2 + 0.02, (h - 0.04) / 2, 0), (0.02, (h - 0.04) / 2, d / 2), m),
                 ("box", (w / 2 - 0.2, (h - 0.04) / 2, 0), (0.2, (h - 0.04) / 2, d / 2), m),
                 ("box", (0, h + 0.2, -d / 2 + 0.1), (0.25, 0.18, 0.02), b.material([(0.1, 0.1, 0.1)], "plain", 1.0))]
        return parts, w, d
    if kind == "crate":  # boxes and clutter on the floor
        s = u(0.2, 0.6)
        parts = [("box", (0, s / 2, 0), (s / 2 * u(0.8, 1.5), s / 2, s / 2), b.material(_PLAIN + _WOODS, "grain", 0.3))]
        return parts, s * 1.5, s
    raise ValueError(kind)


#: Room types and the furniture they draw from, with (min, max) item counts.
ROOM_TYPES = {
    "bedroom": (["bed", "cabinet", "shelf", "desk", "chair", "lamp", "plant", "crate"], (4, 8)),
    "living_room": (["sofa", "table", "cabinet", "shelf", "lamp", "plant", "chair", "crate"], (5, 10)),
    "kitchen": (["counter", "table", "chair", "chair", "cabinet", "plant", "crate"], (4, 8)),
    "office": (["desk", "chair", "desk", "chair", "shelf", "cabinet", "plant", "crate"], (4, 9)),
    "dining_room": (["table", "chair", "chair", "chair", "cabinet", "shelf", "plant", "lamp"], (5, 9)),
    "study": (["shelf", "shelf", "desk", "chair", "sofa", "lamp", "crate"], (4, 8)),
}

#: Room size ranges (metres): width, height, depth — typical of apartments, offices and
#: classrooms as in NYU Depth v2; the log-uniform draw makes small and large rooms both common.
ROOM_SIZE = {"width": (2.6, 7.0), "height": (2.35, 3.2), "depth": (3.0, 8.5)}


def sample_room(seed: int, index: int) -> Room:
    """Draw room number ``index`` of the world with seed ``seed`` (deterministic).

    Introduced in Chapter 1.
    """
    rng = np.random.default_rng([int(seed), int(index), 0x600D])
    b = _Builder(rng)
    logu = lambda lo, hi: float(math.exp(rng.uniform(math.log(lo), math.log(hi))))  # noqa: E731
    W, H, D = logu(*ROOM_SIZE["width"]), rng.uniform(*ROOM_SIZE["height"]), logu(*ROOM_SIZE["depth"])
    rtype = list(ROOM_TYPES)[rng.integers(len(ROOM_TYPES))]

    wall_kind = "stripes" if rng.uniform() < 0.25 else "plain"
    wall = b.material(_WALL_PAINTS, wall_kind, float(rng.uniform(0.15, 0.4)) if wall_kind == "stripes" else 1.0, 0.04)
    accent = b.material(_WALL_PAINTS, "plain", 1.0, 0.08) if rng.uniform() < 0.4 else wall
    fcol, fkind, fper = _FLOORS[rng.integers(len(_FLOORS))]
    if rtype == "kitchen":
        fcol, fkind, fper = _FLOORS[2 + rng.integers(2)]
    floor = b.material([fcol], fkind, fper * rng.uniform(0.85, 1.15), 0.05)
    ceiling = b.material([(0.90, 0.90, 0.88)], "plain", 1.0, 0.02)
    walls = [wall, wall, wall, wall]
    walls[rng.integers(4)] = accent
    surface = (walls[0], walls[1], floor, ceiling, walls[2], walls[3])
    window_mat = b.material([(0.95, 0.97, 1.0), (0.85, 0.90, 0.95)], "window", float(rng.uniform(0.4, 0.7)), 0.03)

    def wall_len(face):
        return D if face in (FACE_X0, FACE_X1) else W

    # doorways and openings into adjacent spaces (corridors, the next room)
    openings: list[Opening] = []
    reserved: list[tuple[int, float, float]] = []
    for _ in range(rng.integers(1, 3)):
        face = int(rng.choice(WALL_FACES))
        L = wall_len(face)
        wide = rng.uniform() < 0.3
        ow = rng.uniform(1.4, min(2.8, L - 0.6)) if wide and L > 2.2 else rng.uniform(0.8, 1.0)
        a0 = rng.uniform(0.2, L - ow - 0.2)
        if any(f == face and not (a0 + ow < r0 - 0.2 or a0 > r1 + 0.2) for f, r0, r1 in reserved):
            continue
        oh = min(H - 0.05, rng.uniform(2.0, 2.2) if not wide else rng.uniform(2.1, H))
        beyond = rng.uniform(1.2, max(1.3, min(4.5, 9.5 - max(W, D))))
        openings.append(Opening(face, a0, a0 + ow, oh, beyond, rng.uniform(0.2, 1.5),
                                b.material(_WALL_PAINTS, "plain", 1.0, 0.1)))
        reserved.append((face, a0, a0 + ow))

    windows: list[Window] = []
    for _ in range(rng.integers(0, 3)):
        face = int(rng.choice(WALL_FACES))
        L = wall_len(face)
        ww = rng.uniform(0.8, min(2.0, L - 0.6))
        a0 = rng.uniform(0.3, L - ww - 0.3)
        if any(f == face and not (a0 + ww < r0 - 0.1 or a0 > r1 + 0.1) for f, r0, r1 in reserved):
            continue
        y0 = rng.uniform(0.7, 1.0)
        windows.append(Window(face, a0, a0 + ww, y0, min(H - 0.15, y0 + rng.uniform(1.0, 1.5))))
        reserved.append((face, a0, a0 + ww))

    # keep a walking zone in front of every doorway
    for op in openings:
        axis = op.face // 2
        if axis == 0:
            x0 = 0.0 if op.face == FACE_X0 else W - 1.0
            b.footprints.append((x0, op.a0, x0 + 1.0, op.a1))
        else:
            z0 = 0.0 if op.face == FACE_Z0 else D - 1.0
            b.footprints.append((op.a0, z0, op.a1, z0 + 1.0))

    # furniture: against walls (facing into the room) or free-standing
    catalogue, (nmin, nmax) = ROOM_TYPES[rtype]
    n_items = int(rng.integers(nmin, nmax + 1) * min(1.6, max(0.7, W * D / 20.0)))
    for _ in range(n_items):
        kind = catalogue[rng.integers(len(catalogue))]
        for _attempt in range(12):
            parts, w, d = _furniture(kind, b)
            against_wall = kind in ("bed", "shelf", "cabinet", "counter", "desk", "sofa") or rng.uniform() < 0.3
            if against_wall:
                face = int(rng.choice(WALL_FACES))
                L = wall_len(face)
                if w + 0.1 > L:
                    ok = False
                else:
                    a = rng.uniform(w / 2 + 0.05, L - w / 2 - 0.05)
                    off = d / 2 + 0.02
                    yaw = {FACE_X0: math.pi / 2, FACE_X1: -math.pi / 2, FACE_Z0: 0.0, FACE_Z1: math.pi}[face]
                    x, z = {FACE_X0: (off, a), FACE_X1: (W - off, a), FACE_Z0: (a, off), FACE_Z1: (a, D - off)}[face]
                    fp = _footprint(x, z, yaw, w, d)
                    ok = b.free(fp) and not any(
                        f == face and not (a + w / 2 < r0 or a - w / 2 > r1) and kind in ("shelf", "counter")
                        for f, r0, r1 in reserved)
            else:
                yaw = float(rng.choice([0.0, math.pi / 2, math.pi, -math.pi / 2]) + rng.normal(0, 0.2))
                x, z = rng.uniform(0.4, W - 0.4), rng.uniform(0.4, D - 0.4)
                fp = _footprint(x, z, yaw, w, d)
                ok = fp[0] > 0.05 and fp[1] > 0.05 and fp[2] < W - 0.05 and fp[3] < D - 0.05 and b.free(fp)
            if ok:
                b.place(parts, x, z, yaw)
                b.footprints.append(fp)
                break

    light = (rng.uniform(0.3, 0.7) * W, H - 0.1, rng.uniform(0.3, 0.7) * D)
    return Room(
        size=(W, H, D),
        materials=tuple(b.materials),
        surface_materials=surface,
        window_material=window_mat,
        boxes=tuple(b.boxes),
        cylinders=tuple(b.cylinders),
        spheres=tuple(b.spheres),
        openings=tuple(openings),
        windows=tuple(windows),
        light=light,
        light_power=float(rng.uniform(0.9, 1.6)),
        ambient=float(rng.uniform(0.25, 0.45)),
        name=f"{rtype}_{int(seed):04d}_{int(index):04d}",
    )


def _clearance(room: Room, x: float, z: float) -> float:
    """Horizontal distance from (x, z) to the nearest furniture part (boxes, cylinders, spheres)."""
    best = float("inf")
    for b in room.boxes:
        c, s = math.cos(b.yaw), math.sin(b.yaw)
        qx, qz = x - b.center[0], z - b.center[2]
        lx, lz = c * qx - s * qz, s * qx + c * qz
        dx, dz = max(abs(lx) - b.half[0], 0.0), max(abs(lz) - b.half[2], 0.0)
        best = min(best, math.hypot(dx, dz))
    for cy in room.cylinders:
        best = min(best, max(math.hypot(x - cy.cx, z - cy.cz) - cy.radius, 0.0))
    for sp in room.spheres:
        best = min(best, max(math.hypot(x - sp.center[0], z - sp.center[2]) - sp.radius, 0.0))
    return best


#: Acceptance rule for a sampled pose, checked on a low-resolution preview render: NYU frames
#: rarely have much nearer than 0.5 m or a median depth under about 1.8 m.
POSE_RULES = {"max_near_fraction": 0.04, "near": 0.5, "min_median": 1.8, "preview_scale": 0.125, "attempts": 40}


def sample_pose(room: Room, rng: np.random.Generator, K: Intrinsics = NYU_RGB) -> np.ndarray:
    """Draw an NYU-like capture pose in ``room``: standing near a wall or in a doorway, looking in.

    Introduced in Chapter 1. The camera is 1.0–1.8 m high, 0.2–1.1 m from a wall (or inside a
    doorway), looking at a random point in the far half of the room (±10°), pitched 3–25° down with a roll of a
    few degrees. Poses whose low-resolution preview shows more than
    ``POSE_RULES["max_near_fraction"]`` of pixels nearer than 0.5 m are redrawn.
    """
    W, H, D = room.size
    preview = K.scaled(POSE_RULES["preview_scale"])
    best, best_score = None, float("inf")
    for _ in range(POSE_RULES["attempts"]):
        if room.openings and rng.uniform() < 0.2:
            op = room.openings[rng.integers(len(room.openings))]
            face, a = op.face, rng.uniform(op.a0 + 0.2, op.a1 - 0.2) if op.a1 - op.a0 > 0.5 else (op.a0 + op.a1) / 2
            off = rng.uniform(0.05, 0.4)
        else:
            face = int(rng.choice(WALL_FACES))
            L = D if face in (FACE_X0, FACE_X1) else W
            a = rng.uniform(0.15, 0.85) * L
            off = rng.uniform(0.2, 1.1)
        # position, then a look-at target in the far part of the room (people film *into* rooms)
        if face == FACE_X0:
            x, z = off, a
            tx, tz = rng.uniform(0.5, 1.0) * W, rng.uniform(0.0, 1.0) * D
        elif face == FACE_X1:
            x, z = W - off, a
            tx, tz = rng.uniform(0.0, 0.5) * W, rng.uniform(0.0, 1.0) * D
        elif face == FACE_Z0:
            x, z = a, off
            tx, tz = rng.uniform(0.0, 1.0) * W, rng.uniform(0.5, 1.0) * D
        else:
            x, z = a, D - off
            tx, tz = rng.uniform(0.0, 1.0) * W, rng.uniform(0.0, 0.5) * D
        if not (0.1 < x < W - 0.1 and 0.1 < z < D - 0.1):
            continue
        if _clearance(room, x, z) < 0.3:
            continue
        yaw = math.atan2(tx - x, tz - z) + math.radians(rng.uniform(-10, 10))
        pitch = -math.radians(rng.uniform(3, 25))
        roll = math.radians(float(np.clip(rng.normal(0, 2.0), -6, 6)))
        y = rng.uniform(1.0, 1.8)
        pose = look_pose((x, min(y, H - 0.3), z), yaw, pitch, roll)
        _, depth = render(room, pose, preview)
        near = float((depth < POSE_RULES["near"]).mean())
        median = float(np.median(depth))
        if near <= POSE_RULES["max_near_fraction"] and median >= POSE_RULES["min_median"]:
            return pose
        score = near + max(0.0, POSE_RULES["min_median"] - median)
        if score < best_score:
            best, best_score = pose, score
    if best is None:
        raise MdlearnError(f"could not place a camera in room {room.name} (too cluttered)")
    return best


def render_view(seed: int, room_index: int, view_index: int, K: Intrinsics = NYU_RGB,
                room: Room | None = None, device: torch.device | str | None = None) -> View:
    """Render view ``view_index`` of room ``room_index`` of the world ``seed`` (deterministic).

    Introduced in Chapter 1. The pose is drawn independently of the resolution, so the same
    view rendered with ``K.scaled(0.25)`` shows the same scene at a quarter of the size.
    """
    room = room if room is not None else sample_room(seed, room_index)
    rng = np.random.default_rng([int(seed), int(room_index), int(view_index), 0x5EED])
    pose = sample_pose(room, rng)
    rgb, depth = render(room, pose, K, device=device)
    return View(rgb=rgb, depth=depth, intrinsics=K, pose=pose, room=room.name, index=view_index)
