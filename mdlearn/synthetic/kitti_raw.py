"""Synthetic drives written in the KITTI raw layout, with exact ground truth beside them (Chapter 3).

Introduced in Chapter 3; ``mdlearn synth kitti-raw OUT --drives N --frames-per-drive M`` runs
:func:`write_kitti_raw`. Layout (that of the real raw data, see :mod:`mdlearn.data.kitti`)::

    OUT/index.json                              # the job manifest: spec, source hash, drives, per-frame speed
    OUT/splits/train_files.txt, test_files.txt  # Eigen-format lists, split by drive (last = test)
    OUT/DATE/calib_cam_to_cam.txt, calib_velo_to_cam.txt   # the KITTI rig, resized to the images
    OUT/DATE/DATE_drive_XXXX_sync/
        image_02/data/*.png, image_03/data/*.png, */timestamps.txt
        velodyne_points/data/*.bin, timestamps.txt, timestamps_start.txt, timestamps_end.txt
        oxts/data/*.txt, oxts/timestamps.txt
        mdlearn_truth/depth_02/*.png            # exact dense z-depth of image_02 (KITTI PNG, 0 = sky)
        mdlearn_truth/velodyne_times/*.npy      # each point's capture time - scan timestamp (s)

Each drive follows a speed profile: even-numbered drives slow down, stand still and pull away
again; odd-numbered ones cruise. Output goes to ``OUT.partial-<pid>`` and is renamed when
complete.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..data.formats import write_depth_png_kitti, write_rgb
from ..data.kitti import (OXTS_FIELDS, write_oxts_packet, write_raw_calibration, write_timestamps,
                          write_velodyne)
from ..data.kitti_depth import SCAN_DIRECTION
from ..errors import UsageError
from .. import jobs
from ..jobs import check_count, check_output_folder, run_tasks, staged_folder

__all__ = ["KittiRawSpec", "EgoMotion", "sample_motion", "oxts_packet", "write_kitti_raw", "ensure_kitti_raw", "read_index",
           "is_complete", "DATE", "FRAME_PERIOD", "EGO_LANE_Z", "source_hash"]

FORMAT_NAME = "mdlearn-kitti-raw"
#: The modules the written drives depend on.
_SOURCES = ("synthetic/street.py", "synthetic/velodyne.py", "synthetic/kitti_raw.py", "synthetic/raycast.py",
            "synthetic/textures.py", "synthetic/indoor.py", "camera.py", "data/formats.py", "data/kitti.py",
            "data/kitti_depth.py")  # the scanner's spin direction and rate live there
#: The recording day of every synthetic drive (folder name ``DATE``).
DATE = "2014_12_08"
_EPOCH_NS = int(np.datetime64("2014-12-08T10:00:00", "ns").astype(np.int64))
#: Seconds between frames (10 Hz: one Velodyne sweep per frame).
FRAME_PERIOD = 0.1
#: The ego car drives in the right lane, at this lateral position (m).
EGO_LANE_Z = 1.75
#: Where the car is on the road when the drive starts (m along the road).
START_X = 0.0
#: Earth radius for converting road metres to latitude/longitude (m).
EARTH_RADIUS = 6378137.0
GRAVITY = 9.81


@dataclass(frozen=True)
class KittiRawSpec:
    """What :func:`write_kitti_raw` renders (Chapter 3).

    ``resolution`` scales KITTI's 1242x375 images (and the calibration with them);
    ``azimuth_steps`` is the scanner's columns per revolution.
    """

    drives: int
    frames_per_drive: int
    seed: int = 0
    resolution: float = 0.5
    azimuth_steps: int = 2000

    def validate(self) -> None:
        check_count("--drives", self.drives, 1)
        check_count("--frames-per-drive", self.frames_per_drive, 1)
        if self.frames_per_drive > 2000:
            raise UsageError(f"--frames-per-drive must be at most 2000 (the street is 260 m long), "
                             f"got {self.frames_per_drive}")
        check_count("--seed", self.seed, 0)
        if not 0.05 <= self.resolution <= 1.0:
            raise UsageError(f"--resolution must be between 0.05 and 1 (1 = 1242x375), got {self.resolution}")
        if not 90 <= self.azimuth_steps <= 8000:
            raise UsageError(f"--azimuth-steps must be between 90 and 8000, got {self.azimuth_steps}")


@dataclass(frozen=True)
class EgoMotion:
    """A piecewise-linear speed profile along +x: ``knots`` of ``(time s, speed m/s)``.

    Speed is constant before the first and after the last knot.
    """

    knots: tuple[tuple[float, float], ...]

    def speed(self, t: float) -> float:
        ts, vs = zip(*self.knots)
        return float(np.interp(t, ts, vs))

    def acceleration(self, t: float) -> float:
        for (t0, v0), (t1, v1) in zip(self.knots[:-1], self.knots[1:]):
            if t0 <= t < t1 and t1 > t0:
                return (v1 - v0) / (t1 - t0)
        return 0.0

    def distance(self, t: float) -> float:
        """Metres travelled from time 0 to ``t``."""
        ts = [k[0] for k in self.knots]
        grid = sorted({0.0, t, *[x for x in ts if min(0.0, t) < x < max(0.0, t)]})
        d = sum((b - a) * (self.speed(a) + self.speed(b)) / 2 for a, b in zip(grid[:-1], grid[1:]))
        return d if t >= 0 else -d

    def position(self, t: float) -> tuple[float, float]:
        return START_X + self.distance(t), EGO_LANE_Z


def sample_motion(seed: int, index: int, duration: float) -> tuple[EgoMotion, str]:
    """The speed profile of drive ``index``: ``"stop"`` (even) or ``"cruise"`` (odd)."""
    rng = np.random.default_rng([int(seed), int(index), 0xD21E])
    v0 = float(rng.uniform(6.0, 12.0))
    if index % 2 == 0:
        stop_at, go_at = 0.3 * duration, 0.6 * duration
        # brake and pull away within the drive when it is long enough (1.5 to 5 m/s^2)
        a = float(np.clip(v0 / (0.25 * duration), 1.5, 5.0))
        knots = ((stop_at - v0 / a, v0), (stop_at, 0.0), (go_at, 0.0), (go_at + v0 / a, v0))
        return EgoMotion(knots), "stop"
    return EgoMotion(((0.0, v0),)), "cruise"


def oxts_packet(motion: EgoMotion, t: float, heading: float = 0.3,
                origin: tuple[float, float, float] = (49.0, 8.4, 115.0)) -> np.ndarray:
    """The 30-value OXTS packet of the car at time ``t`` (:data:`~mdlearn.data.kitti.OXTS_FIELDS`).

    The road heads ``heading`` radians counter-clockwise from east; positions convert to
    latitude/longitude around ``origin`` on a sphere. Velocities and accelerations follow the
    speed profile (``az`` and ``au`` include gravity, as the real unit reports).
    """
    x, z = motion.position(t)
    v, a = motion.speed(t), motion.acceleration(t)
    fe, fn = math.cos(heading), math.sin(heading)  # forward in (east, north)
    le, ln = -fn, fe  # left
    east, north = x * fe + (-z) * le, x * fn + (-z) * ln
    lat0, lon0, alt0 = origin
    vals = dict(lat=lat0 + math.degrees(north / EARTH_RADIUS),
                lon=lon0 + math.degrees(east / (EARTH_RADIUS * math.cos(math.radians(lat0)))),
                alt=alt0, roll=0.0, pitch=0.0, yaw=heading, vn=v * fn, ve=v * fe, vf=v, vl=0.0, vu=0.0,
                ax=a, ay=0.0, az=GRAVITY, af=a, al=0.0, au=GRAVITY, wx=0.0, wy=0.0, wz=0.0, wf=0.0, wl=0.0,
                wu=0.0, pos_accuracy=0.05, vel_accuracy=0.02, navstat=4, numsats=10, posmode=5, velmode=5,
                orimode=6)
    return np.array([vals[k] for k in OXTS_FIELDS], dtype=np.float64)


def source_hash() -> str:
    """Hash of the sources that determine the written drives."""
    return jobs.source_hash(_SOURCES)


def _drive_name(i: int) -> str:
    return f"{DATE}_drive_{i + 1:04d}_sync"


def _render_drive(task: tuple[KittiRawSpec, int, str]) -> dict:
    """Worker: render and write one drive; return its metadata."""
    import torch

    from .street import render, sample_street
    from .velodyne import Scanner, rig_for_size, world_from_camera

    spec, i, tmp = task
    torch.set_num_threads(1)
    calib = rig_for_size(spec.resolution)
    drive = Path(tmp) / DATE / _drive_name(i)
    street = sample_street(spec.seed, i)
    motion, kind = sample_motion(spec.seed, i, spec.frames_per_drive * FRAME_PERIOD)
    scanner = Scanner(azimuth_steps=spec.azimuth_steps)
    rng = np.random.default_rng([spec.seed, i, 0x1DA2])
    dirs = {k: drive / k for k in ("image_02/data", "image_03/data", "velodyne_points/data", "oxts/data",
                                    "mdlearn_truth/depth_02", "mdlearn_truth/velodyne_times")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    t0_ns = _EPOCH_NS + i * 3_600_000_000_000
    stamps = {k: [] for k in ("image", "velo", "start", "end", "oxts")}
    frames = []
    for f in range(spec.frames_per_drive):
        t = f * FRAME_PERIOD + float(rng.uniform(-0.002, 0.002))  # the real rig jitters by a few ms
        x, z = motion.position(t)
        for cam, folder in ((2, "image_02/data"), (3, "image_03/data")):
            rgb, depth = render(street, world_from_camera(calib, cam, x, z), calib.intrinsics(cam), time=t)
            write_rgb(dirs[folder] / f"{f:010d}.png", rgb)
            if cam == 2:
                depth = np.where(depth > 255.0, 0.0, depth).astype(np.float32)
                write_depth_png_kitti(dirs["mdlearn_truth/depth_02"] / f"{f:010d}.png", depth)
        pts, times = scanner.sweep(street, motion.position, t, rng)
        write_velodyne(dirs["velodyne_points/data"] / f"{f:010d}.bin", pts)
        np.save(dirs["mdlearn_truth/velodyne_times"] / f"{f:010d}.npy", times.astype(np.float32))
        write_oxts_packet(dirs["oxts/data"] / f"{f:010d}.txt", oxts_packet(motion, t))
        ns = t0_ns + int(round(t * 1e9))
        half = int(0.5e9 / scanner.rate_hz)
        stamps["image"].append(ns)
        stamps["velo"].append(ns)
        stamps["start"].append(ns - half)
        stamps["end"].append(ns + half)
        stamps["oxts"].append(ns + 2_500_000)
        frames.append({"frame": f, "time_s": round(t, 6), "x_m": round(x, 4), "speed_mps": round(motion.speed(t), 4),
                       "points": int(len(pts))})
    for cam in ("image_02", "image_03"):
        write_timestamps(drive / cam / "timestamps.txt", np.array(stamps["image"]))
    write_timestamps(drive / "velodyne_points" / "timestamps.txt", np.array(stamps["velo"]))
    write_timestamps(drive / "velodyne_points" / "timestamps_start.txt", np.array(stamps["start"]))
    write_timestamps(drive / "velodyne_points" / "timestamps_end.txt", np.array(stamps["end"]))
    write_timestamps(drive / "oxts" / "timestamps.txt", np.array(stamps["oxts"]))
    (drive / "oxts" / "dataformat.txt").write_text("".join(f"{k}\n" for k in OXTS_FIELDS))
    return {"index": i, "name": f"{DATE}/{_drive_name(i)}", "street": street.name, "motion": kind,
            "knots": [list(k) for k in motion.knots], "frames": frames}


def _write_splits(root: Path, results: list[dict]) -> None:
    """Split lists in the two public Eigen formats, split by drive: the last drive is the test
    drive (when there are two or more), every frame of it one ``DATE/DRIVE frame l`` line; the
    others are training drives, one stereo-pair line per frame."""
    test = {results[-1]["name"]} if len(results) > 1 else set()
    lines = {"train": [], "test": []}
    for r in results:
        for fr in r["frames"]:
            f = fr["frame"]
            if r["name"] in test:
                lines["test"].append(f"{r['name']} {f:010d} l")
            else:
                lines["train"].append(f"{r['name']}/image_02/data/{f:010d}.png {r['name']}/image_03/data/{f:010d}.png")
    (root / "splits").mkdir(exist_ok=True)
    for split, ls in lines.items():
        (root / "splits" / f"{split}_files.txt").write_text("".join(line + "\n" for line in ls))


def read_index(out: str | os.PathLike) -> dict:
    """The parsed ``index.json`` (job manifest) of a synthetic raw folder."""
    return jobs.read_manifest(out, FORMAT_NAME)


def is_complete(out: str | os.PathLike, spec: KittiRawSpec | None = None) -> bool:
    """Whether ``out`` holds finished drives (made from ``spec`` by these sources, if given)."""
    return jobs.is_current(out, FORMAT_NAME, None if spec is None else asdict(spec),
                           None if spec is None else source_hash())


def write_kitti_raw(out: str | os.PathLike, spec: KittiRawSpec, workers: int | None = None,
                    overwrite: bool = False, progress: bool = True) -> Path:
    """Render ``spec`` into ``out`` in the KITTI raw layout (see the module docstring).

    Introduced in Chapter 3. One process per drive, at most ``workers`` (default: one per core).
    Raises :class:`~mdlearn.errors.UsageError` for impossible specs, an occupied ``out`` (unless
    ``overwrite``) or an unwritable location.
    """
    from .velodyne import rig_for_size

    spec.validate()
    out = check_output_folder(Path(out).resolve(), FORMAT_NAME, overwrite)
    with staged_folder(out) as tmp:
        write_raw_calibration(tmp / DATE, rig_for_size(spec.resolution), calib_time="08-Dec-2014 09:00:00")
        tasks = [(spec, i, str(tmp)) for i in range(spec.drives)]
        results = list(run_tasks(_render_drive, tasks, workers=workers or os.cpu_count() or 1,
                                 desc=f"synth kitti-raw -> {out.name}", unit="drive", progress=progress))
        results.sort(key=lambda r: r["index"])
        _write_splits(tmp, results)
        jobs.write_manifest(
            tmp, FORMAT_NAME, asdict(spec), source_hash(), date=DATE, frame_period_s=FRAME_PERIOD,
            scan_direction=SCAN_DIRECTION,  # of the scanner, seen from above
            truth={"depth_02": "exact z-depth of image_02, KITTI PNG (uint16, m x 256), 0 = sky",
                   "velodyne_times": "float32 seconds, point capture time minus the scan timestamp"},
            counts={"drives": spec.drives, "frames": spec.drives * spec.frames_per_drive}, drives=results)
    return out


def ensure_kitti_raw(out: str | os.PathLike, spec: KittiRawSpec, workers: int | None = None,
                     progress: bool = True) -> Path:
    """Generate ``spec`` into ``out`` unless an up-to-date copy is already there; return ``out``.

    Introduced in Chapter 3. Only a folder this writer made is ever replaced.
    """
    out = Path(out)
    if is_complete(out, spec):
        return out
    return write_kitti_raw(out, spec, workers=workers, overwrite=True, progress=progress)
