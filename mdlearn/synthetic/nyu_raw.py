"""A simulated hand-held Kinect that writes the NYU Depth v2 *raw* dump (Chapter 2).

:func:`write_nyu_raw` films synthetic rooms (:mod:`mdlearn.synthetic.indoor`) the way the NYU
raw data was recorded: a person sweeps a Kinect slowly through a room while the RGB camera and
the depth camera run at **different, jittery frame rates** (with dropped RGB frames), so depth
frames must be matched to RGB frames in time, and several depth frames can have the same
nearest RGB frame. Each stream is rendered from its own camera:

* RGB: the pinhole image of the RGB camera at the RGB frame's time, then *distorted* with the
  RGB lens model (the raw ``r-*.ppm`` files are distorted; the toolbox undistorts them).
* Depth: rendered from the **depth camera's** pose (the RGB pose composed with the Kinect's
  depth-to-RGB transform, including the toolbox's ``[t_x; t_z; t_y]`` translation), through
  its intrinsics and lens distortion, converted to raw disparity by inverting
  ``351.3 / (1092.5 - raw)``, with disparity noise and integer quantisation, and with the holes
  a real Kinect leaves: **projector shadows** beside depth edges (the simulated IR projector sits
  7.5 cm to the right of the IR camera; surfaces it cannot light get no reading), **no return**
  from windows and dark glossy screens (some window pixels instead get bogus out-of-range
  values), surfaces seen at grazing incidence, about half the pixels beside depth edges, and
  nothing nearer than 0.5 m or beyond about 8.5 m.
* Accelerometer: one ``a-*.dump`` record at about 10 Hz, the specific force (the reaction to
  gravity) in the depth camera's axes in counts of 1/819 g.

Layout::

    OUT/index.json                          # the job manifest: spec, source hash, calibration, scenes
    OUT/<scene>/INDEX.txt                   # every raw file in capture order
    OUT/<scene>/r-<time>-<counter>.ppm      # 640x480 RGB (at resolution 1)
    OUT/<scene>/d-<time>-<counter>.pgm      # raw disparity, little-endian payload
    OUT/<scene>/a-<time>-<counter>.dump     # accelerometer record
    OUT/<scene>/groundtruth/r-<...>.npy     # exact registered depth of that RGB frame (float32 m)
    OUT/<scene>/groundtruth/frames.json     # poses, timestamps, the expected synchronisation

Ground truth is the exact z-depth in the undistorted RGB camera at the RGB frame's capture time,
which is what registration (:func:`mdlearn.data.kinect.register_depth`) tries to recover.
"""

from __future__ import annotations

import functools
import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..camera import Intrinsics
from ..data.kinect import (ACCEL_COUNTS_PER_G, NYU_KINECT, RAW_INVALID, AccelRecord, KinectCalibration,
                           depth_rays, format_raw_name, metres_to_disparity, write_accel_dump, write_kinect_pgm,
                           write_kinect_ppm)
from ..errors import FormatError, UsageError
from .. import jobs
from ..jobs import check_count, check_output_folder, run_tasks, staged_folder

__all__ = ["KinectSpec", "write_nyu_raw", "ensure_nyu_raw", "is_complete", "read_manifest", "source_hash",
           "render_depth_frame", "simulate_scene", "write_ground_truth", "read_ground_truth", "read_frames_json",
           "expected_sync", "PROJECTOR_BASELINE", "KINECT_RANGE"]

#: Distance of the IR projector from the IR (depth) camera, along the camera's +x axis (metres).
PROJECTOR_BASELINE = 0.075
#: Depths the simulated sensor returns (metres); beyond the far end readings fade out.
KINECT_RANGE = (0.5, 8.5)
#: Disparity noise (standard deviation in raw units) before quantisation.
DISPARITY_NOISE = 0.3
FORMAT_NAME = "mdlearn-nyu-raw-sim"
#: The modules the simulated files depend on.
_SOURCES = ("synthetic/nyu_raw.py", "synthetic/indoor.py", "synthetic/raycast.py", "synthetic/textures.py",
            "camera.py", "data/kinect.py")
GT_DIR = "groundtruth"


@dataclass(frozen=True)
class KinectSpec:
    """What :func:`write_nyu_raw` films: ``scenes`` rooms, ``frames_per_scene`` depth frames each.

    Introduced in Chapter 2. ``resolution`` scales 640x480 (0.25 gives 160x120, for fast tests);
    the frame rates are means (frames per second) and ``jitter`` the relative standard deviation
    of the frame intervals; ``rgb_drop`` the probability that an RGB frame is lost.
    """

    scenes: int
    frames_per_scene: int
    seed: int = 0
    resolution: float = 1.0
    depth_fps: float = 22.0
    rgb_fps: float = 19.0
    jitter: float = 0.25
    rgb_drop: float = 0.05

    def validate(self) -> None:
        """Raise :class:`~mdlearn.errors.UsageError` for impossible values."""
        check_count("--scenes", self.scenes, 1)
        check_count("--frames-per-scene", self.frames_per_scene, 1)
        check_count("--seed", self.seed, 0)
        w, h = 640 * self.resolution, 480 * self.resolution
        if not (0.05 <= self.resolution <= 1.0 and abs(w - round(w)) < 1e-9 and abs(h - round(h)) < 1e-9):
            raise UsageError(f"--resolution must be in [0.05, 1] with 640 and 480 times it whole numbers "
                             f"(e.g. 0.25, 0.5, 1), got {self.resolution}")
        if not (self.depth_fps > 0 and self.rgb_fps > 0 and 0 <= self.jitter < 0.5 and 0 <= self.rgb_drop < 0.5):
            raise UsageError("frame rates must be positive, jitter and rgb_drop in [0, 0.5)")

    @property
    def calibration(self) -> KinectCalibration:
        """The Kinect this spec films with (NYU's, resized to the resolution)."""
        return NYU_KINECT.for_size(round(640 * self.resolution), round(480 * self.resolution))


# ------------------------------------------------------------------------------ ground truth files


def write_ground_truth(path: str | os.PathLike, depth: np.ndarray) -> None:
    """Write an exact depth map as float32 metres in a ``.npy`` file (0 = invalid)."""
    depth = np.asarray(depth)
    if depth.ndim != 2 or not np.isfinite(depth).all() or (depth < 0).any():
        raise FormatError(f"{path}: ground truth must be a finite, non-negative 2-D depth map")
    np.save(path, depth.astype(np.float32), allow_pickle=False)


def read_ground_truth(path: str | os.PathLike) -> np.ndarray:
    """Read a float32-metre ``.npy`` depth map written by :func:`write_ground_truth`."""
    path = Path(path)
    try:
        d = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise FormatError(f"{path}: no such file") from None
    except (ValueError, OSError) as e:
        raise FormatError(f"{path}: not a readable .npy depth map ({e})") from None
    if d.dtype != np.float32 or d.ndim != 2:
        raise FormatError(f"{path}: expected a 2-D float32 depth map, got {d.dtype} {d.shape}")
    if d.size and (not np.isfinite(d).all() or d.min() < 0 or d.max() > 100):
        raise FormatError(f"{path}: implausible depths (expected metres in [0, 100])")
    return d


def read_frames_json(scene_dir: str | os.PathLike) -> dict:
    """The ``groundtruth/frames.json`` of a simulated scene."""
    with open(Path(scene_dir) / GT_DIR / "frames.json") as f:
        return json.load(f)


# ------------------------------------------------------------------------------ timing


def expected_sync(depth_t: np.ndarray, rgb_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force reference for the synchronisation: nearest RGB frame of every depth frame
    (ties to the later one) and whether the pair survives the one-to-many rule."""
    d = np.abs(np.asarray(depth_t)[:, None] - np.asarray(rgb_t)[None, :])
    # the later of equally near frames: argmin over the reversed axis
    nearest = d.shape[1] - 1 - np.argmin(d[:, ::-1], axis=1)
    counts = np.bincount(nearest, minlength=d.shape[1])
    return nearest, counts[nearest] == 1


def _timeline(spec: KinectSpec, rng: np.random.Generator, scene_index: int) -> dict:
    t0 = 1_300_000_000.0 + 86_400.0 * scene_index + float(rng.uniform(0, 3600))

    def intervals(n, fps):
        return np.clip(1.0 / fps * (1.0 + spec.jitter * rng.standard_normal(n)), 0.3 / fps, 3.0 / fps)

    n = spec.frames_per_scene
    depth_t = t0 + 0.1 + np.cumsum(intervals(n, spec.depth_fps))
    end = depth_t[-1] + 0.1
    rgb_t = [t0 + float(rng.uniform(0, 0.05))]
    while rgb_t[-1] < end:
        step = float(intervals(1, spec.rgb_fps)[0])
        if rng.uniform() < spec.rgb_drop:
            step += 1.0 / spec.rgb_fps
        rgb_t.append(rgb_t[-1] + step)
    accel_t = np.arange(t0 + float(rng.uniform(0, 0.1)), end, 0.1) + rng.uniform(-0.01, 0.01)
    # the timestamps as the file names store them (6 decimals)
    q = lambda a: np.round(np.asarray(a, dtype=np.float64), 6)  # noqa: E731
    return {"t0": t0, "depth": q(depth_t), "rgb": q(rgb_t), "accel": q(np.sort(accel_t))}


def _rot(axis: str, a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def _motion(rng: np.random.Generator, base: np.ndarray):
    """A slow hand-held sweep around ``base`` (world_from_rgb): returns pose(t - t0)."""
    a_yaw, f_yaw, ph_yaw = math.radians(rng.uniform(8, 18)), rng.uniform(0.05, 0.12), rng.uniform(0, 2 * math.pi)
    a_pitch, f_pitch, ph_pitch = math.radians(rng.uniform(2, 5)), rng.uniform(0.1, 0.3), rng.uniform(0, 2 * math.pi)
    a_roll, f_roll = math.radians(rng.uniform(0.5, 2)), rng.uniform(0.2, 0.5)
    drift = rng.normal(0, 1, 3)
    drift[1] *= 0.2
    drift *= rng.uniform(0.02, 0.08) / max(np.linalg.norm(drift), 1e-9)  # metres per second
    wobble = rng.uniform(0.005, 0.02)

    def pose(tau: float) -> np.ndarray:
        T = np.eye(4)
        R = (_rot("y", a_yaw * math.sin(2 * math.pi * f_yaw * tau + ph_yaw)) @ base[:3, :3]
             @ _rot("x", a_pitch * math.sin(2 * math.pi * f_pitch * tau + ph_pitch))
             @ _rot("z", a_roll * math.sin(2 * math.pi * f_roll * tau)))
        T[:3, :3] = R
        T[:3, 3] = base[:3, 3] + drift * min(tau, 3.0) + wobble * math.sin(2 * math.pi * 0.7 * tau)
        return T

    return pose


# ------------------------------------------------------------------------------ rendering


@functools.lru_cache(maxsize=4)
def _rgb_distort_map(calib: KinectCalibration):
    """For each raw (distorted) RGB pixel, where it lies in the ideal pinhole image."""
    K = calib.rgb
    v, u = np.mgrid[0:K.height, 0:K.width].astype(np.float64)
    x, y = calib.rgb_distortion.remove((u - K.cx) / K.fx, (v - K.cy) / K.fy)
    return K.fx * x + K.cx, K.fy * y + K.cy


def _bilinear(img: np.ndarray, su: np.ndarray, sv: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    su, sv = np.clip(su, 0, w - 1), np.clip(sv, 0, h - 1)
    u0, v0 = np.minimum(np.floor(su), w - 2).astype(np.intp), np.minimum(np.floor(sv), h - 2).astype(np.intp)
    fu, fv = su - u0, sv - v0
    if img.ndim == 3:
        fu, fv = fu[..., None], fv[..., None]
    f = img.astype(np.float64)
    return ((f[v0, u0] * (1 - fu) + f[v0, u0 + 1] * fu) * (1 - fv)
            + (f[v0 + 1, u0] * (1 - fu) + f[v0 + 1, u0 + 1] * fu) * fv)


@functools.lru_cache(maxsize=4)
def _depth_canvas(calib: KinectCalibration) -> tuple[Intrinsics, np.ndarray, np.ndarray]:
    """A pinhole canvas (depth intrinsics plus a margin) that contains every raw depth ray."""
    K = calib.depth
    x, y = depth_rays(calib)
    cu, cv = K.fx * x.astype(np.float64) + K.cx, K.fy * y.astype(np.float64) + K.cy
    m = int(math.ceil(max(-cu.min(), cu.max() - (K.width - 1), -cv.min(), cv.max() - (K.height - 1), 0))) + 2
    canvas = Intrinsics(K.fx, K.fy, K.cx + m, K.cy + m, K.width + 2 * m, K.height + 2 * m)
    return canvas, cu + m, cv + m


def _no_return_mask(room, pose: np.ndarray, depth: np.ndarray, K: Intrinsics) -> tuple[np.ndarray, np.ndarray]:
    """Pixels on windows and on dark (IR-absorbing, glossy) boxes, from their world points."""
    from .indoor import FACE_X0, FACE_X1, FACE_Z0, FACE_Z1

    v, u = np.mgrid[0:K.height, 0:K.width].astype(np.float64)
    z = depth.astype(np.float64)
    P = np.stack([(u - K.cx) / K.fx * z, (v - K.cy) / K.fy * z, z], -1) @ pose[:3, :3].T + pose[:3, 3]
    W, H, D = room.size
    tol = 2e-3 * room.scale
    window = np.zeros(depth.shape, bool)
    for w in room.windows:
        plane = {FACE_X0: (0, 0.0), FACE_X1: (0, W), FACE_Z0: (2, 0.0), FACE_Z1: (2, D)}[w.face]
        along = P[..., 2] if w.face in (FACE_X0, FACE_X1) else P[..., 0]
        window |= ((np.abs(P[..., plane[0]] - plane[1]) < tol) & (along > w.a0) & (along < w.a1)
                   & (P[..., 1] > w.y0) & (P[..., 1] < w.y1))
    dark = np.zeros(depth.shape, bool)
    for b in room.boxes:
        if max(room.materials[b.material].color) >= 0.12:
            continue
        c, s = math.cos(b.yaw), math.sin(b.yaw)
        q = P - np.asarray(b.center)
        lx, lz = c * q[..., 0] - s * q[..., 2], s * q[..., 0] + c * q[..., 2]
        e = 5e-3 * room.scale
        dark |= ((np.abs(lx) < b.half[0] + e) & (np.abs(q[..., 1]) < b.half[1] + e) & (np.abs(lz) < b.half[2] + e))
    return window, dark


def _projector_shadow(depth: np.ndarray, K: Intrinsics, baseline: float = PROJECTOR_BASELINE,
                      tol_px: float = 0.3) -> np.ndarray:
    """Pixels the IR projector (``baseline`` m along +x) cannot light, by a scan-line test.

    The projector sees a point at column ``u_p = u - fx * b / z``. Along a row, a point is lit
    only if no point to its right reaches the projector at a column at or left of its own.
    """
    up = np.arange(K.width)[None, :] - K.fx * baseline / np.maximum(depth, 1e-6)
    right_min = np.minimum.accumulate(up[:, ::-1], axis=1)[:, ::-1]
    right_min = np.concatenate([right_min[:, 1:], np.full((depth.shape[0], 1), np.inf)], axis=1)
    return up > right_min + tol_px


def _grazing_and_edges(depth: np.ndarray, K: Intrinsics, rng: np.random.Generator, radius: int = 1,
                       min_cos: float = 0.25, edge_jump: float = 0.03, edge_drop: float = 0.6
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Pixels seen at grazing incidence (the speckle pattern is too stretched to match) and
    pixels beside depth discontinuities (the matching window straddles two surfaces)."""
    v, u = np.mgrid[0:K.height, 0:K.width].astype(np.float64)
    ray = np.stack([(u - K.cx) / K.fx, (v - K.cy) / K.fy, np.ones_like(u)], -1)
    P = ray * depth[..., None]
    n = np.cross(np.gradient(P, axis=1), np.gradient(P, axis=0))
    cos = np.abs((n * ray).sum(-1)) / (np.linalg.norm(n, axis=-1) * np.linalg.norm(ray, axis=-1) + 1e-12)
    jump = np.zeros(depth.shape, bool)
    r = np.abs(np.diff(depth, axis=1)) > edge_jump * np.minimum(depth[:, 1:], depth[:, :-1])
    jump[:, 1:] |= r
    jump[:, :-1] |= r
    c = np.abs(np.diff(depth, axis=0)) > edge_jump * np.minimum(depth[1:], depth[:-1])
    jump[1:] |= c
    jump[:-1] |= c
    band = jump.copy()
    for _ in range(radius - 1):  # widen the band to `radius` pixels each side
        grown = band.copy()
        grown[1:] |= band[:-1]
        grown[:-1] |= band[1:]
        grown[:, 1:] |= band[:, :-1]
        grown[:, :-1] |= band[:, 1:]
        band = grown
    edges = band & (rng.uniform(size=depth.shape) < edge_drop)
    return (cos < min_cos) & ~jump, edges


def render_depth_frame(room, world_from_depth: np.ndarray, calib: KinectCalibration,
                       rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """One raw Kinect depth frame of ``room`` seen from ``world_from_depth`` (Chapter 2).

    Returns ``(raw, holes)``: the ``(H, W)`` uint16 raw disparity (2047 = no reading) and a dict
    of boolean masks naming why pixels have no reading (``shadow``, ``window``, ``dark``,
    ``grazing``, ``edge``, ``out_of_range``; a pixel can have several causes).
    """
    from .indoor import render

    canvas, cu, cv = _depth_canvas(calib)
    _, zc = render(room, world_from_depth, canvas)
    shadow = _projector_shadow(zc, canvas)
    window, dark = _no_return_mask(room, world_from_depth, zc, canvas)
    grazing, edges = _grazing_and_edges(zc, canvas, rng, radius=max(1, round(2 * calib.depth.width / 640)))
    # depth at each raw pixel's ray: inverse depth interpolated bilinearly (exact on planes) where
    # the four canvas neighbours agree, the nearest canvas sample across depth edges
    ui, vi = np.rint(cu).astype(np.intp), np.rint(cv).astype(np.intp)
    z_near = zc[vi, ui]
    u0, v0 = np.floor(cu).astype(np.intp), np.floor(cv).astype(np.intp)
    quad = np.stack([zc[v0, u0], zc[v0, u0 + 1], zc[v0 + 1, u0], zc[v0 + 1, u0 + 1]])
    smooth = quad.max(0) < 1.02 * quad.min(0)
    z = np.where(smooth, 1.0 / _bilinear(1.0 / zc, cu, cv), z_near)
    raw_c = metres_to_disparity(z) + DISPARITY_NOISE * rng.standard_normal(z.shape)
    raw = np.clip(np.rint(raw_c), 0, RAW_INVALID - 1).astype(np.uint16)
    near, far = KINECT_RANGE
    fade = rng.uniform(far - 0.5, far + 0.5, z.shape)
    holes = {"shadow": shadow[vi, ui], "window": window[vi, ui], "dark": dark[vi, ui],
             "grazing": grazing[vi, ui], "edge": edges[vi, ui], "out_of_range": (z < near) | (z > fade)}
    invalid = np.logical_or.reduce(list(holes.values()))
    raw[invalid] = RAW_INVALID
    # glass returns some junk: disparities beyond 10 m (invalid once converted)
    junk = holes["window"] & (rng.uniform(size=z.shape) < 0.15)
    raw[junk] = rng.integers(1062, 1092, size=int(junk.sum()))
    return raw, holes


def _accel_record(world_from_depth: np.ndarray, rng: np.random.Generator) -> AccelRecord:
    f = world_from_depth[:3, :3].T @ np.array([0.0, 1.0, 0.0])  # specific force, in g, camera axes
    c = np.rint(f * ACCEL_COUNTS_PER_G + rng.normal(0, 2.0, 3)).astype(int)
    return AccelRecord(int(c[0]), int(c[1]), int(c[2]), 0, 0)


def simulate_scene(spec: KinectSpec, scene_index: int, out_dir: str | os.PathLike) -> dict:
    """Film room ``scene_index`` of ``spec`` into ``out_dir`` (the raw layout); return its summary.

    Introduced in Chapter 2. Deterministic in ``(spec.seed, scene_index)``.
    """
    from .indoor import render, sample_pose, sample_room

    calib = spec.calibration
    room = sample_room(spec.seed, scene_index)
    rng = np.random.default_rng([spec.seed, scene_index, 0x41AC7])
    base = sample_pose(room, rng, calib.rgb)
    pose_at = _motion(rng, base)
    times = _timeline(spec, rng, scene_index)
    t0 = times["t0"]
    rgb_from_depth = calib.rgb_from_depth  # world_from_depth = world_from_rgb @ rgb_from_depth
    out = Path(out_dir)
    (out / GT_DIR).mkdir(parents=True, exist_ok=True)
    su, sv = _rgb_distort_map(calib)
    counters = {k: int(rng.integers(10**8, 2 * 10**9)) for k in ("r", "d", "a")}
    files, frames = [], {"rgb": [], "depth": [], "accel": []}
    hole_stats = []
    for i, t in enumerate(times["rgb"]):
        pose = pose_at(t - t0)
        rgb, gt = render(room, pose, calib.rgb)
        raw_rgb = np.clip(_bilinear(rgb, su, sv) + 0.5, 0, 255).astype(np.uint8)
        name = format_raw_name("r", t, counters["r"] + int((t - t0) * 1e6))
        write_kinect_ppm(out / name, raw_rgb)
        write_ground_truth(out / GT_DIR / (name[:-4] + ".npy"), gt)
        files.append((t, name))
        frames["rgb"].append({"name": name, "t": t, "world_from_rgb": np.round(pose, 9).tolist()})
    for j, t in enumerate(times["depth"]):
        pose = pose_at(t - t0) @ rgb_from_depth
        raw, holes = render_depth_frame(room, pose, calib, rng)
        stats = {k: float(m.mean()) for k, m in holes.items()}
        stats["valid"] = float((raw != RAW_INVALID).mean())
        name = format_raw_name("d", t, counters["d"] + int((t - t0) * 1e6))
        write_kinect_pgm(out / name, raw)
        files.append((t, name))
        hole_stats.append(stats)
        frames["depth"].append({"name": name, "t": t, "world_from_depth": np.round(pose, 9).tolist(), "holes": stats})
    for t in times["accel"]:
        pose = pose_at(t - t0) @ rgb_from_depth
        name = format_raw_name("a", t, counters["a"] + int((t - t0) * 1e6))
        write_accel_dump(out / name, _accel_record(pose, rng))
        files.append((t, name))
        frames["accel"].append({"name": name, "t": t})
    (out / "INDEX.txt").write_text("".join(f"{n}\n" for _, n in sorted(files)))
    nearest, kept = expected_sync(times["depth"], times["rgb"])
    frames["expected_sync"] = [
        {"depth": frames["depth"][j]["name"], "rgb": frames["rgb"][int(nearest[j])]["name"], "kept": bool(kept[j])}
        for j in range(len(nearest))]
    frames["room"] = room.name
    frames["calibration"] = {"rgb": calib.rgb.to_dict(), "depth": calib.depth.to_dict()}
    with open(out / GT_DIR / "frames.json", "w") as f:
        json.dump(frames, f, indent=1)
    return {"index": scene_index, "name": room.name, "rgb_frames": len(times["rgb"]),
            "depth_frames": len(times["depth"]), "accel_records": len(times["accel"]),
            "expected_kept": int(kept.sum()), "expected_dropped": int((~kept).sum()),
            "valid_fraction": float(np.mean([s["valid"] for s in hole_stats]))}


def _scene_worker(task: tuple[KinectSpec, int, str]) -> dict:
    import torch

    torch.set_num_threads(1)
    spec, index, tmp = task
    from .indoor import sample_room

    name = sample_room(spec.seed, index).name
    return simulate_scene(spec, index, Path(tmp) / name)


def write_nyu_raw(out: str | os.PathLike, spec: KinectSpec, workers: int = 1, overwrite: bool = False,
                  progress: bool = True) -> Path:
    """Film ``spec.scenes`` rooms into ``out`` in the NYU raw layout (see the module docstring).

    Introduced in Chapter 2. Staged in ``out.partial-<pid>`` and renamed when complete
    (:mod:`mdlearn.jobs`); an existing ``out`` is replaced only with ``overwrite`` and only if this
    writer made it. Returns ``out``.
    """
    spec.validate()
    if workers < 1:
        raise UsageError(f"--workers must be at least 1, got {workers}")
    out = check_output_folder(out, FORMAT_NAME, overwrite)
    with staged_folder(out) as tmp:
        tasks = [(spec, i, str(tmp)) for i in range(spec.scenes)]
        scenes = sorted(run_tasks(_scene_worker, tasks, workers=workers, desc="synth nyu-raw", unit="scene",
                                  progress=progress), key=lambda s: s["index"])
        calib = spec.calibration
        jobs.write_manifest(tmp, FORMAT_NAME, asdict(spec), source_hash(),
                            calibration={"rgb": calib.rgb.to_dict(), "depth": calib.depth.to_dict()}, scenes=scenes)
    return out


def source_hash() -> str:
    """Hash of the sources that determine the simulated files (simulator, renderer, Kinect model)."""
    return jobs.source_hash(_SOURCES)


def read_manifest(out: str | os.PathLike) -> dict:
    """The ``index.json`` of a simulated raw dump (:class:`~mdlearn.errors.FormatError` if absent)."""
    return jobs.read_manifest(out, FORMAT_NAME)


def is_complete(out: str | os.PathLike, spec: KinectSpec | None = None) -> bool:
    """Whether ``out`` holds a finished dump (made from ``spec`` by these sources, if given)."""
    return jobs.is_current(out, FORMAT_NAME, None if spec is None else asdict(spec),
                           None if spec is None else source_hash())


def ensure_nyu_raw(out: str | os.PathLike, spec: KinectSpec, workers: int = 1, progress: bool = True) -> Path:
    """Film ``spec`` into ``out`` unless it already holds exactly that; return ``out``.

    Introduced in Chapter 2: the chapter regenerates its scenes only when the preset or the
    simulator's sources changed. Only a folder this writer made is ever replaced: any other
    non-empty folder at ``out`` is a :class:`~mdlearn.errors.UsageError`.
    """
    out = Path(out)
    if is_complete(out, spec):
        return out
    return write_nyu_raw(out, spec, workers=workers, overwrite=True, progress=progress)
