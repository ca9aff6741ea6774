"""KITTI raw: the on-disk layout, calibration, Velodyne scans, OXTS packets, timestamps and splits.

Introduced in Chapter 3 (*Depth from a laser scanner*). Everything here reads files; turning a
scan into a depth map lives in :mod:`mdlearn.data.kitti_depth`, the batch job that writes sparse
depth PNGs in :mod:`mdlearn.data.kitti_prepare`, and the torch ``Dataset`` in
:mod:`mdlearn.data.kitti_dataset`.

The raw layout (the official raw devkit readme; ``../shared/reference/eigen2014-facts.md`` §3)::

    RAW/DATE/calib_cam_to_cam.txt          # S, K, D, R, T, S_rect, R_rect, P_rect per camera 00..03
    RAW/DATE/calib_velo_to_cam.txt         # R, T (Velodyne -> unrectified camera 0)
    RAW/DATE/DATE_drive_XXXX_sync/
        image_02/data/0000000000.png       # rectified left colour camera (image_03: right)
        image_02/timestamps.txt            # one "YYYY-MM-DD HH:MM:SS.nnnnnnnnn" line per frame
        velodyne_points/data/0000000000.bin  # float32 N x 4: x forward, y left, z up, reflectance
        velodyne_points/timestamps.txt     # when the scanner faced forward (+ _start / _end)
        oxts/data/0000000000.txt           # 30 values, see OXTS_FIELDS
        oxts/timestamps.txt

Frames: Velodyne ``x`` forward, ``y`` left, ``z`` up; camera ``x`` right, ``y`` down, ``z`` forward.
A Velodyne point ``X`` lands in rectified camera ``c`` at ``P_rect_0c . R_rect_00 . Tr_velo_to_cam . X``
(homogeneous). Every error names the file and the problem (:class:`~mdlearn.data.formats.FormatError`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import FormatError, UsageError
from .formats import read_text

if TYPE_CHECKING:  # mdlearn.camera imports torch; the prepare workers need only numpy
    from ..camera import Intrinsics

__all__ = [
    "CAMERAS",
    "SIDES",
    "OXTS_FIELDS",
    "Calibration",
    "read_calib_file",
    "read_raw_calibration",
    "read_object_calibration",
    "write_raw_calibration",
    "read_velodyne",
    "write_velodyne",
    "read_oxts_packet",
    "write_oxts_packet",
    "read_timestamps",
    "write_timestamps",
    "RawDrive",
    "find_drives",
    "STATIONARY_SPEED",
    "STATIONARY_ACCELERATION",
    "stationary_mask",
    "SplitEntry",
    "read_split",
    "expand_sides",
    "KITTI_MIN_DEPTH",
    "KITTI_MAX_DEPTH",
]

#: The two colour cameras of the rig, by folder name: their index in ``P_rect_0X``.
CAMERAS = {"image_02": 2, "image_03": 3}
#: Split files write the side as ``l`` (image_02, left) or ``r`` (image_03, right).
SIDES = {"l": "image_02", "r": "image_03"}

#: The 30 values of an OXTS packet, in file order (``oxts/dataformat.txt`` of the raw data).
OXTS_FIELDS = (
    "lat", "lon", "alt", "roll", "pitch", "yaw", "vn", "ve", "vf", "vl", "vu", "ax", "ay", "az",
    "af", "al", "au", "wx", "wy", "wz", "wf", "wl", "wu", "pos_accuracy", "vel_accuracy",
    "navstat", "numsats", "posmode", "velmode", "orimode",
)

#: Evaluation cap of every KITTI protocol: ground truth is used where 1e-3 < depth < 80 m and
#: predictions are clipped to the same range (``mrharicot/monodepth:utils/evaluate_kitti.py``).
KITTI_MIN_DEPTH = 1e-3
KITTI_MAX_DEPTH = 80.0


# ------------------------------------------------------------------------------- calibration

#: Keys of the calibration files whose values are text, not numbers.
_TEXT_KEYS = frozenset({"calib_time"})


def read_calib_file(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Parse a KITTI ``key: v1 v2 ...`` calibration file into float64 arrays.

    Introduced in Chapter 3. ``calib_time`` (a date, the only text field of the KITTI formats) is
    skipped. Raises :class:`FormatError` naming the file and line for a missing file, a line
    without ``:``, and a value that is not a number (naming the key and the bad token).
    """
    path = Path(path)
    text = read_text(path, "calibration file")
    out: dict[str, np.ndarray] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if ":" not in line:
            raise FormatError(f"{path}:{n}: expected 'key: values', got {line.strip()[:40]!r}")
        key, values = (part.strip() for part in line.split(":", 1))
        if key in _TEXT_KEYS:
            continue
        numbers = []
        for token in values.split():
            try:
                numbers.append(float(token))
            except ValueError:
                raise FormatError(f"{path}:{n}: key {key!r} has a value that is not a number: {token!r}") from None
        out[key] = np.array(numbers, dtype=np.float64)
    return out


def _take(d: dict[str, np.ndarray], path: Path, key: str, size: int) -> np.ndarray:
    if key not in d:
        raise FormatError(f"{path}: missing key {key!r}")
    if d[key].size != size:
        raise FormatError(f"{path}: key {key!r} has {d[key].size} values, expected {size}")
    return d[key]


def _homogeneous(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = np.asarray(R).reshape(3, 3)
    T[:3, 3] = np.asarray(t).reshape(3)
    return T


@dataclass(frozen=True)
class Calibration:
    """The projection chain of one recording day (or one object-benchmark frame).

    Introduced in Chapter 3. ``P_rect[c]`` is the 3x4 ``P_rect_0c``, ``R_rect_00`` the 3x3
    rectifying rotation of camera 0, ``Tr_velo_to_cam`` the 4x4 rigid transform from the
    Velodyne to (unrectified) camera 0, ``image_size[c]`` the rectified ``(width, height)`` when
    the file states it (``S_rect_0c``), and ``source`` the file(s) it was read from.
    """

    P_rect: dict[int, np.ndarray]
    R_rect_00: np.ndarray
    Tr_velo_to_cam: np.ndarray
    image_size: dict[int, tuple[int, int]] = field(default_factory=dict)
    source: str = ""

    def rect_from_velo(self) -> np.ndarray:
        """4x4 ``R_rect_00 (padded) . Tr_velo_to_cam``: Velodyne to rectified camera 0."""
        R = np.eye(4)
        R[:3, :3] = self.R_rect_00
        return R @ self.Tr_velo_to_cam

    def velo_to_image(self, cam: int = 2) -> np.ndarray:
        """3x4 ``P_rect_0c . R_rect_00 . Tr_velo_to_cam``: homogeneous Velodyne point to pixel.

        The third row of the product is the point's z-depth in rectified camera ``cam``.
        """
        return self.P_rect[cam] @ self.rect_from_velo()

    def intrinsics(self, cam: int = 2, size: tuple[int, int] | None = None) -> "Intrinsics":
        """The pinhole intrinsics of rectified camera ``cam`` (from ``P_rect_0c``)."""
        from ..camera import Intrinsics

        P = self.P_rect[cam]
        w, h = size or self.image_size.get(cam, (0, 0))
        return Intrinsics(fx=float(P[0, 0]), fy=float(P[1, 1]), cx=float(P[0, 2]), cy=float(P[1, 2]),
                          width=int(w), height=int(h))

    def camera_offset(self, cam: int = 2) -> np.ndarray:
        """Position of rectified camera ``cam``'s centre in rectified camera-0 coordinates (metres).

        ``P_rect_0c = K [I | t]`` with ``t = K^-1 P[:, 3]``; the centre is ``-t``.
        """
        P = self.P_rect[cam]
        return -np.linalg.solve(P[:, :3], P[:, 3])

    def baseline(self) -> float:
        """Distance between the two colour cameras' centres (metres, about 0.54 on KITTI)."""
        return float(np.linalg.norm(self.camera_offset(2) - self.camera_offset(3)))


def read_raw_calibration(date_dir: str | os.PathLike) -> Calibration:
    """Read ``calib_cam_to_cam.txt`` and ``calib_velo_to_cam.txt`` of a raw recording day.

    Introduced in Chapter 3. ``date_dir`` is the ``RAW/DATE`` folder (or a drive folder inside it).
    """
    d = Path(date_dir)
    if d.name.endswith("_sync"):
        d = d.parent
    cc_path, vc_path = d / "calib_cam_to_cam.txt", d / "calib_velo_to_cam.txt"
    cc, vc = read_calib_file(cc_path), read_calib_file(vc_path)
    P = {c: _take(cc, cc_path, f"P_rect_0{c}", 12).reshape(3, 4) for c in range(4)}
    R0 = _take(cc, cc_path, "R_rect_00", 9).reshape(3, 3)
    sizes = {c: tuple(int(round(v)) for v in _take(cc, cc_path, f"S_rect_0{c}", 2)) for c in range(4)}
    Tr = _homogeneous(_take(vc, vc_path, "R", 9), _take(vc, vc_path, "T", 3))
    return Calibration(P, R0, Tr, sizes, source=f"{cc_path} + {vc_path}")


def read_object_calibration(path: str | os.PathLike, image_size: tuple[int, int] | None = None) -> Calibration:
    """Read the object benchmark's single-file calibration (``P0..P3``, ``R0_rect``, ``Tr_velo_to_cam``).

    Introduced in Chapter 3. The file does not state the image size; pass ``image_size``
    ``(width, height)`` to record it.
    """
    path = Path(path)
    d = read_calib_file(path)
    P = {c: _take(d, path, f"P{c}", 12).reshape(3, 4) for c in range(4)}
    R0 = _take(d, path, "R0_rect", 9).reshape(3, 3)
    Tr = np.eye(4)
    Tr[:3] = _take(d, path, "Tr_velo_to_cam", 12).reshape(3, 4)
    sizes = {c: tuple(image_size) for c in range(4)} if image_size else {}
    return Calibration(P, R0, Tr, sizes, source=str(path))


def _fmt(values) -> str:
    return " ".join(f"{float(v):.6e}" for v in np.asarray(values, dtype=np.float64).ravel())


def write_raw_calibration(date_dir: str | os.PathLike, calib: Calibration,
                          calib_time: str = "01-Jan-2014 12:00:00") -> None:
    """Write ``calib_cam_to_cam.txt`` and ``calib_velo_to_cam.txt`` in the official text format.

    Introduced in Chapter 3 (the synthetic drives use it). The unrectified cameras are written
    as already rectified and distortion-free (``K_0c`` from ``P_rect_0c``, ``D_0c = 0``,
    ``R_0c = I``, ``T_0c`` = the camera centre offset), so the file reads like a real one.
    """
    d = Path(date_dir)
    d.mkdir(parents=True, exist_ok=True)
    lines = [f"calib_time: {calib_time}", "corner_dist: 9.950000e-02"]
    for c in range(4):
        P = calib.P_rect[c]
        w, h = calib.image_size.get(c, (0, 0))
        K = P[:, :3]
        lines += [
            f"S_0{c}: {_fmt([w, h])}",
            f"K_0{c}: {_fmt(K)}",
            f"D_0{c}: {_fmt(np.zeros(5))}",
            f"R_0{c}: {_fmt(np.eye(3))}",
            f"T_0{c}: {_fmt(-calib.camera_offset(c))}",
            f"S_rect_0{c}: {_fmt([w, h])}",
            f"R_rect_0{c}: {_fmt(calib.R_rect_00 if c == 0 else np.eye(3))}",
            f"P_rect_0{c}: {_fmt(P)}",
        ]
    (d / "calib_cam_to_cam.txt").write_text("\n".join(lines) + "\n")
    Tr = calib.Tr_velo_to_cam
    (d / "calib_velo_to_cam.txt").write_text(
        f"calib_time: {calib_time}\nR: {_fmt(Tr[:3, :3])}\nT: {_fmt(Tr[:3, 3])}\n"
        f"delta_f: {_fmt([0, 0])}\ndelta_c: {_fmt([0, 0])}\n")


# --------------------------------------------------------------------------------- velodyne


def read_velodyne(path: str | os.PathLike) -> np.ndarray:
    """Read a Velodyne ``.bin`` scan as a float32 ``(N, 4)`` array: x, y, z (metres), reflectance.

    Introduced in Chapter 3. Raises :class:`FormatError` naming the file when it is missing or
    its size is not a multiple of 16 bytes (four float32 per point).
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise FormatError(f"{path}: no such Velodyne scan") from None
    except OSError as e:
        raise FormatError(f"{path}: not readable ({e.strerror})") from None
    if len(raw) % 16:
        raise FormatError(f"{path}: size {len(raw)} bytes is not a multiple of 16 (float32 x, y, z, "
                          "reflectance per point); the scan is truncated or not a Velodyne .bin")
    pts = np.frombuffer(raw, dtype="<f4").reshape(-1, 4)
    if not np.isfinite(pts).all():
        raise FormatError(f"{path}: contains NaN or infinite coordinates")
    return pts.astype(np.float32)  # a writable native-order copy


def write_velodyne(path: str | os.PathLike, points: np.ndarray) -> None:
    """Write ``(N, 4)`` points (x, y, z, reflectance) as a little-endian float32 ``.bin``."""
    pts = np.asarray(points, dtype=np.float32)
    if pts.ndim != 2 or pts.shape[1] != 4:
        raise FormatError(f"{path}: expected (N, 4) points, got shape {pts.shape}")
    Path(path).write_bytes(pts.astype("<f4").tobytes())


# ------------------------------------------------------------------------------ oxts, times


def read_oxts_packet(path: str | os.PathLike) -> np.ndarray:
    """Read one OXTS packet (30 whitespace-separated numbers, see :data:`OXTS_FIELDS`) as float64."""
    path = Path(path)
    values = read_text(path, "OXTS packet").split()
    if len(values) != len(OXTS_FIELDS):
        raise FormatError(f"{path}: expected {len(OXTS_FIELDS)} OXTS values, found {len(values)}")
    try:
        return np.array([float(v) for v in values], dtype=np.float64)
    except ValueError:
        raise FormatError(f"{path}: OXTS values must be numbers") from None


def write_oxts_packet(path: str | os.PathLike, packet: np.ndarray) -> None:
    """Write one 30-value OXTS packet in the raw data's text format."""
    packet = np.asarray(packet, dtype=np.float64).ravel()
    if packet.size != len(OXTS_FIELDS):
        raise FormatError(f"{path}: an OXTS packet has {len(OXTS_FIELDS)} values, got {packet.size}")
    ints = set(range(25, 30))
    Path(path).write_text(" ".join(str(int(v)) if i in ints else repr(float(v)) for i, v in enumerate(packet)) + "\n")


_TS = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,9})?$")


def read_timestamps(path: str | os.PathLike) -> np.ndarray:
    """Read a ``timestamps.txt`` as int64 nanoseconds since the Unix epoch (one per frame).

    Introduced in Chapter 3. Raises :class:`FormatError` naming the file when it is missing
    (the drive has no timestamps) or a line is not ``YYYY-MM-DD HH:MM:SS.nnnnnnnnn``.
    """
    path = Path(path)
    text = read_text(path, "timestamps file (the drive has no timestamps)")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for n, line in enumerate(lines, 1):
        if not _TS.match(line):
            raise FormatError(f"{path}:{n}: not a timestamp 'YYYY-MM-DD HH:MM:SS.nnnnnnnnn': {line[:40]!r}")
    return np.array([np.datetime64(line.replace(" ", "T"), "ns") for line in lines]).astype(np.int64)


def write_timestamps(path: str | os.PathLike, ns: np.ndarray) -> None:
    """Write int64 epoch nanoseconds as a KITTI ``timestamps.txt``."""
    text = "".join(str(np.datetime64(int(t), "ns")).replace("T", " ") + "\n" for t in np.asarray(ns, np.int64))
    Path(path).write_text(text)


# -------------------------------------------------------------------------------- the drive


@dataclass(frozen=True)
class RawDrive:
    """One ``DATE/DATE_drive_XXXX_sync`` folder of the raw data.

    Introduced in Chapter 3. ``frames`` are the frame numbers of the Velodyne scans;
    :meth:`check` verifies that images, scans, OXTS packets and timestamps agree.
    """

    path: Path

    @property
    def date(self) -> str:
        return self.path.parent.name

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def key(self) -> str:
        """``DATE/DATE_drive_XXXX_sync``, as the split files write it."""
        return f"{self.date}/{self.name}"

    def calibration(self) -> Calibration:
        return read_raw_calibration(self.path.parent)

    def _ids(self, sub: str, suffixes: tuple[str, ...]) -> list[int]:
        folder = self.path / sub / "data"
        if not folder.is_dir():
            raise FormatError(f"{folder}: missing folder")
        return sorted(int(p.stem) for p in folder.iterdir() if p.suffix in suffixes and p.stem.isdigit())

    @property
    def frames(self) -> list[int]:
        return self._ids("velodyne_points", (".bin",))

    def image_path(self, frame: int, camera: str = "image_02") -> Path:
        p = self.path / camera / "data" / f"{frame:010d}.png"
        if not p.exists() and (alt := p.with_suffix(".jpg")).exists():
            return alt
        return p

    def velodyne_path(self, frame: int) -> Path:
        return self.path / "velodyne_points" / "data" / f"{frame:010d}.bin"

    def oxts_path(self, frame: int) -> Path:
        return self.path / "oxts" / "data" / f"{frame:010d}.txt"

    def timestamps(self, sensor: str) -> np.ndarray:
        """Epoch nanoseconds of ``sensor`` (``image_02``, ``velodyne_points``, ``oxts``, or
        ``velodyne_points_start`` / ``_end``)."""
        if sensor.startswith("velodyne_points_"):
            return read_timestamps(self.path / "velodyne_points" / f"timestamps_{sensor.rsplit('_', 1)[1]}.txt")
        return read_timestamps(self.path / sensor / "timestamps.txt")

    def oxts(self) -> np.ndarray:
        """All OXTS packets of the drive, ``(N, 30)`` float64 (one per frame)."""
        ids = self._ids("oxts", (".txt",))
        if not ids:
            raise FormatError(f"{self.path / 'oxts' / 'data'}: no OXTS packets")
        return np.stack([read_oxts_packet(self.oxts_path(i)) for i in ids])

    def check(self, cameras: tuple[str, ...] = ("image_02", "image_03")) -> int:
        """Verify the drive is complete and consistent; return its number of frames.

        Raises :class:`FormatError` naming the folder or file for a missing timestamps file or
        mismatched frame counts between scans, images, OXTS packets and timestamps.
        """
        n = len(self.frames)
        if n == 0:
            raise FormatError(f"{self.path / 'velodyne_points' / 'data'}: no Velodyne scans")
        counts = {"velodyne_points/data": n,
                  "velodyne_points/timestamps.txt": len(self.timestamps("velodyne_points")),
                  "oxts/data": len(self._ids("oxts", (".txt",))),
                  "oxts/timestamps.txt": len(self.timestamps("oxts"))}
        for cam in cameras:
            counts[f"{cam}/data"] = len(self._ids(cam, (".png", ".jpg")))
            counts[f"{cam}/timestamps.txt"] = len(self.timestamps(cam))
        bad = {k: v for k, v in counts.items() if v != n}
        if bad:
            detail = ", ".join(f"{k}: {v}" for k, v in bad.items())
            raise FormatError(f"{self.path}: mismatched frame counts ({n} Velodyne scans but {detail})")
        return n


def find_drives(raw_dir: str | os.PathLike) -> list[RawDrive]:
    """Every ``DATE/DATE_drive_XXXX_sync`` folder under ``raw_dir``, sorted (Chapter 3)."""
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise FormatError(f"{raw_dir}: no such folder (expected the KITTI raw layout DATE/DATE_drive_XXXX_sync/)")
    return [RawDrive(p) for p in sorted(raw_dir.glob("*/*_drive_*_sync")) if p.is_dir()]


# ----------------------------------------------------------------------- stationary frames

#: Default threshold of the ``"speed"`` rule: a frame is stationary when the car's horizontal
#: speed ``hypot(vf, vl)`` from OXTS is below this (m/s). 0.5 m/s is 5 cm between frames at
#: 10 Hz: the images of such a frame and its neighbour are near duplicates.
STATIONARY_SPEED = 0.5
#: Default threshold of the ``"acceleration"`` rule (m/s^2), the paper's literal wording.
STATIONARY_ACCELERATION = 0.2


def stationary_mask(oxts: np.ndarray, rule: str = "speed", threshold: float | None = None) -> np.ndarray:
    """Which frames count as "the car is standing still" (to be excluded from training).

    Introduced in Chapter 3. The paper excludes shots "where the car is stationary
    (acceleration below a threshold)" and gives no number. Two readings, both from OXTS:

    * ``"speed"`` (default): ``hypot(vf, vl) < threshold`` (default :data:`STATIONARY_SPEED`).
      This is what "stationary" means, and close to the public recipes (SfMLearner's static
      frames, SfmLearner-Pytorch's minimum speed).
    * ``"acceleration"``: horizontal acceleration ``hypot(af, al) < threshold`` (default
      :data:`STATIONARY_ACCELERATION`), the paper's words taken literally. It also drops every
      frame cruising at constant speed, which the chapter measures.

    Args:
        oxts: ``(N, 30)`` packets (:meth:`RawDrive.oxts`).

    Returns:
        ``(N,)`` bool, True for frames to drop.
    """
    oxts = np.asarray(oxts, dtype=np.float64)
    if oxts.ndim != 2 or oxts.shape[1] != len(OXTS_FIELDS):
        raise UsageError(f"expected (N, {len(OXTS_FIELDS)}) OXTS packets, got {oxts.shape}")
    i = OXTS_FIELDS.index
    if rule == "speed":
        thr = STATIONARY_SPEED if threshold is None else threshold
        return np.hypot(oxts[:, i("vf")], oxts[:, i("vl")]) < thr
    if rule == "acceleration":
        thr = STATIONARY_ACCELERATION if threshold is None else threshold
        return np.hypot(oxts[:, i("af")], oxts[:, i("al")]) < thr
    raise UsageError(f"unknown stationary rule {rule!r}; use 'speed' or 'acceleration'")


# ----------------------------------------------------------------------------------- splits


@dataclass(frozen=True)
class SplitEntry:
    """One line of an Eigen split file: a frame of a drive, seen by one or both cameras.

    ``drive`` is ``DATE/DATE_drive_XXXX_sync``; ``sides`` is ``("l",)`` for the test lists
    (``drive frame side``) and ``("l", "r")`` for the stereo-pair lines of the train/val lists.
    """

    drive: str
    frame: int
    sides: tuple[str, ...]

    @property
    def date(self) -> str:
        return self.drive.split("/")[0]


_PAIR = re.compile(r"^(?P<drive>[^/\s]+/[^/\s]+_sync)/image_0(?P<cam>[23])/data/(?P<frame>\d+)\.\w+$")


def read_split(path: str | os.PathLike) -> list[SplitEntry]:
    """Read an Eigen split list in either public format; one entry per line.

    Introduced in Chapter 3. Test lists (monodepth2 ``splits/eigen*/``) read
    ``2011_09_26/2011_09_26_drive_0002_sync 0000000069 l``; train/val lists (monodepth
    ``utils/filenames/``) read ``DATE/DRIVE/image_02/data/N.jpg DATE/DRIVE/image_03/data/N.jpg``.
    """
    path = Path(path)
    text = read_text(path, "split file")
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) == 3 and parts[1].isdigit() and parts[2] in SIDES:
            out.append(SplitEntry(parts[0].strip("/"), int(parts[1]), (parts[2],)))
            continue
        matches = [_PAIR.match(p) for p in parts]
        if parts and all(matches) and len({(m["drive"], int(m["frame"])) for m in matches}) == 1:
            sides = tuple("l" if m["cam"] == "2" else "r" for m in matches)
            out.append(SplitEntry(matches[0]["drive"], int(matches[0]["frame"]), sides))
            continue
        raise FormatError(f"{path}:{n}: not an Eigen split line: {line.strip()[:80]!r}")
    return out


def expand_sides(entries: list[SplitEntry]) -> list[tuple[str, int, str]]:
    """``(drive, frame, camera folder)`` per image: both cameras of a pair become two samples."""
    return [(e.drive, e.frame, SIDES[s]) for e in entries for s in e.sides]
