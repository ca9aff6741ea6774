"""NYU Depth v2's files: the sync layout's lists, raw scene dumps and their time sync, the labeled ``.mat``.

Introduced in Chapter 1 (the sync layout) and completed in Chapter 2 (*Aligning RGB and depth*).
The NYU pieces live where their KITTI counterparts do: this module reads NYU's files (as
:mod:`mdlearn.data.kitti` reads KITTI's), :mod:`mdlearn.data.kinect` turns a raw Kinect frame
into registered depth (as :mod:`mdlearn.data.kitti_depth` turns a sweep into sparse depth),
:mod:`mdlearn.data.nyu_prepare` holds the ``prepare`` jobs and :mod:`mdlearn.data.nyu_dataset`
the ``Dataset`` classes.

**Sync layout** -- what most code after 2019 trains on (BTS, AdaBins, ZoeDepth): per scene a
folder of ``rgb_XXXXX.jpg`` images with ``sync_depth_XXXXX.png`` depth maps (uint16 millimetres,
0 = invalid) registered to them, and list files whose lines read
``scene/rgb_XXXXX.jpg scene/sync_depth_XXXXX.png 518.8579`` (the last field is the focal length).

**Raw dumps** -- one folder per scene with ``r-*.ppm``, ``d-*.pgm`` and ``a-*.dump`` files
(:mod:`mdlearn.data.kinect` reads them). :func:`list_raw_scene` and :func:`synchronise` pair
frames as the paper does (section 4.1): every depth frame is matched to the RGB frame nearest in
time (the toolbox's ``get_synched_frames.m``), and frames whose RGB image is matched to more than
one depth frame are dropped.

**Labeled set** -- ``nyu_depth_v2_labeled.mat`` (MATLAB v7.3 = HDF5): :class:`NYULabeled`
reads it with h5py in the right axis order (``.T`` of each item; ``rot90`` mirrors it), and
:func:`read_splits` reads the official ``splits.mat`` (795 train / 654 test, 1-based).

**Training lists, plainly.** The paper trained on ~120K frames it registered itself from the raw
dumps of the 249 training scenes. Most later work trains on BTS's ``nyudepthv2_train_files_with_gt.txt``:
24,231 raw-derived sync frames from 284 recording folders (249 scenes once the part letter is
dropped). The 795 labeled training images are the small "common distribution" set the paper
uses only for baselines. Everyone tests on the 654 labeled test images (``splits.mat``), the
paper on the filled ``depths``, BTS's extractor on ``rawDepths``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import FormatError
from .formats import read_text
from .kinect import NYU_MAX_DEPTH, RawName, parse_raw_name  # the 10 m cap is the sensor's: defined in kinect

__all__ = [
    "SyncEntry", "read_files_with_gt", "scene_of_folder", "NYU_MAX_DEPTH",
    "RawScene", "list_raw_scene", "SyncResult", "nearest_frames", "synchronise",
    "NYU_LABELED_COUNT", "NYU_TRAIN_COUNT", "NYU_TEST_COUNT", "read_splits", "NYULabeled",
]


# ------------------------------------------------------------------------------ sync layout


@dataclass(frozen=True)
class SyncEntry:
    """One line of a ``*_files_with_gt.txt`` list (paths relative to the dataset root)."""

    rgb: str
    depth: str | None
    focal: float


def read_files_with_gt(path: str | os.PathLike) -> list[SyncEntry]:
    """Parse a BTS-style list file. ``depth`` is ``None`` where the line says ``None``.

    Introduced in Chapter 1. Raises :class:`~mdlearn.data.formats.FormatError` naming the file
    and line for malformed lines.
    """
    path = Path(path)
    text = read_text(path, "list file")
    entries = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 3:
            raise FormatError(f"{path}:{n}: expected 'rgb depth focal', got {line!r}")
        try:
            focal = float(parts[2])
        except ValueError:
            raise FormatError(f"{path}:{n}: focal length {parts[2]!r} is not a number") from None
        entries.append(SyncEntry(parts[0].lstrip("/"), None if parts[1] == "None" else parts[1].lstrip("/"), focal))
    return entries


def scene_of_folder(folder: str) -> str:
    """The NYU scene a recording folder belongs to (Chapter 2).

    A scene recorded in several parts has one folder per part, its name ending in a letter after
    the number (``basement_0001a``, ``basement_0001b``); the scene is the name without that letter.
    Other names come back unchanged. BTS's training list spans 284 folders, 249 scenes.

    >>> scene_of_folder("basement_0001b"), scene_of_folder("nyu_office_1")
    ('basement_0001', 'nyu_office_1')
    """
    return re.sub(r"(?<=[0-9])[a-z]$", "", folder)


# ------------------------------------------------------------------------------ raw scenes and time


@dataclass
class RawScene:
    """The frames of one raw scene folder, each stream sorted by time (Chapter 2)."""

    path: Path
    depth: list[RawName]
    rgb: list[RawName]
    accel: list[RawName]
    ignored: list[str] = field(default_factory=list)


def _check_stream(folder: Path, frames: list[RawName], what: str) -> None:
    t = np.array([f.timestamp for f in frames])
    dup = np.flatnonzero(np.diff(t) == 0)
    if dup.size:
        raise FormatError(f"{folder / frames[dup[0] + 1].name}: same timestamp as {frames[dup[0]].name}")
    # the counter field must grow with time (a decrease of more than 2^31 is a uint32 wrap-around)
    c = np.array([f.counter for f in frames], dtype=np.int64)
    back = np.flatnonzero((np.diff(c) <= 0) & (np.diff(c) > -(2 ** 31)))
    if back.size:
        a, b = frames[back[0]], frames[back[0] + 1]
        raise FormatError(f"{folder / b.name}: {what} timestamps out of order (frame counter {b.counter} "
                          f"follows {a.counter} of {a.name}, but its timestamp is later)")


def list_raw_scene(folder: str | os.PathLike) -> RawScene:
    """List the ``r-``, ``d-`` and ``a-`` files of a raw scene folder (Chapter 2).

    Streams are sorted by the timestamp field. Raises :class:`~mdlearn.data.formats.FormatError`
    naming the folder or file when the folder is missing, has no depth or no RGB frames, or a
    stream's timestamps are out of order (two frames with one timestamp, or frame counters that
    decrease while time increases). Other files (``INDEX.txt``, sub-folders) are ignored; the
    toolbox ignores ``INDEX.txt`` too.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FormatError(f"{folder}: not a scene folder")
    streams: dict[str, list[RawName]] = {"d": [], "r": [], "a": []}
    ignored = []
    for p in folder.iterdir():
        parsed = parse_raw_name(p.name) if p.is_file() else None
        if parsed is None:
            ignored.append(p.name)
        else:
            streams[parsed.kind].append(parsed)
    for k in streams:
        streams[k].sort(key=lambda f: (f.timestamp, f.counter))
    if not streams["d"]:
        raise FormatError(f"{folder}: no depth frames (d-<time>-<n>.pgm) in this scene folder")
    if not streams["r"]:
        raise FormatError(f"{folder}: no RGB frames (r-<time>-<n>.ppm) in this scene folder")
    for k, what in (("d", "depth"), ("r", "RGB"), ("a", "accelerometer")):
        if streams[k]:
            _check_stream(folder, streams[k], what)
    return RawScene(folder, streams["d"], streams["r"], streams["a"], sorted(ignored))


def nearest_frames(t_query: np.ndarray, t_ref: np.ndarray) -> np.ndarray:
    """Index of the ``t_ref`` entry nearest to each ``t_query`` (both sorted), ties to the later.

    Introduced in Chapter 2: the rule of the toolbox's ``get_synched_frames.m`` (a pointer that
    moves forward while the time difference does not grow), vectorised.
    """
    t_query, t_ref = np.asarray(t_query, np.float64), np.asarray(t_ref, np.float64)
    hi = np.clip(np.searchsorted(t_ref, t_query, side="left"), 1, len(t_ref) - 1) if len(t_ref) > 1 else \
        np.zeros(len(t_query), np.intp)
    if len(t_ref) == 1:
        return hi
    lo = hi - 1
    later = np.abs(t_ref[hi] - t_query) <= np.abs(t_query - t_ref[lo])
    return np.where(later, hi, lo)


@dataclass
class SyncResult:
    """Which depth frames got which RGB (and accelerometer) frame, and which were dropped."""

    scene: str
    pairs: list[dict]  # {"depth", "rgb", "accel", "dt"} for each kept frame, in time order
    dropped: list[dict]  # {"depth", "rgb", "reason"}
    counts: dict

    def summary(self) -> str:
        c = self.counts
        return (f"{self.scene}: {c['depth_frames']} depth, {c['rgb_frames']} RGB frames -> kept {c['kept']} pairs, "
                f"dropped {c['dropped_one_to_many']} depth frames whose RGB frame is nearest to several depth frames "
                f"({c['rgb_shared']} such RGB frames); {c['rgb_unused']} RGB frames unused")


def synchronise(scene: RawScene) -> SyncResult:
    """Pair a scene's frames as the paper does (Chapter 2).

    Each depth frame gets the RGB frame (and accelerometer record) nearest in time; then every
    depth frame whose RGB frame was matched to more than one depth frame is dropped ("such a
    one-to-many mapping is not predictable", section 4.1). The counts say what the rule did.
    """
    td = np.array([f.timestamp for f in scene.depth])
    tr = np.array([f.timestamp for f in scene.rgb])
    nr = nearest_frames(td, tr)
    na = nearest_frames(td, np.array([f.timestamp for f in scene.accel])) if scene.accel else None
    mult = np.bincount(nr, minlength=len(tr))
    pairs, dropped = [], []
    for j, d in enumerate(scene.depth):
        r = scene.rgb[int(nr[j])]
        if mult[nr[j]] > 1:
            dropped.append({"depth": d.name, "rgb": r.name, "reason": "one-to-many"})
        else:
            pairs.append({"depth": d.name, "rgb": r.name,
                          "accel": scene.accel[int(na[j])].name if na is not None else None,
                          "dt": round(r.timestamp - d.timestamp, 6)})
    counts = {"depth_frames": len(td), "rgb_frames": len(tr), "accel_records": len(scene.accel),
              "kept": len(pairs), "dropped_one_to_many": len(dropped), "rgb_shared": int((mult > 1).sum()),
              "rgb_unused": int((mult == 0).sum()),
              "max_abs_dt_kept": max((abs(p["dt"]) for p in pairs), default=0.0)}
    return SyncResult(scene.path.name, pairs, dropped, counts)


# ------------------------------------------------------------------------------ the labeled set

#: Images in ``nyu_depth_v2_labeled.mat`` and the official split sizes (``splits.mat``).
NYU_LABELED_COUNT, NYU_TRAIN_COUNT, NYU_TEST_COUNT = 1449, 795, 654


def read_splits(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """The official split: ``(train, test)`` as **1-based** indices into the labeled set (Chapter 2).

    ``splits.mat`` is a MATLAB v5 file (scipy reads it; h5py cannot). Raises
    :class:`~mdlearn.data.formats.FormatError` naming the file if it is unreadable, lacks
    ``trainNdxs``/``testNdxs``, or the two overlap.
    """
    import scipy.io

    path = Path(path)
    if not path.is_file():
        raise FormatError(f"{path}: no such file")
    try:
        m = scipy.io.loadmat(path)
    except FileNotFoundError:
        raise FormatError(f"{path}: no such file") from None
    except (ValueError, OSError, TypeError, NotImplementedError) as e:
        raise FormatError(f"{path}: not a readable MATLAB v5 .mat file ({e})") from None
    try:
        train = np.asarray(m["trainNdxs"]).astype(np.int64).ravel()
        test = np.asarray(m["testNdxs"]).astype(np.int64).ravel()
    except KeyError as e:
        raise FormatError(f"{path}: no variable {e.args[0]!r} (expected trainNdxs and testNdxs)") from None
    if np.intersect1d(train, test).size:
        raise FormatError(f"{path}: trainNdxs and testNdxs overlap")
    if min(train.min(initial=1), test.min(initial=1)) < 1:
        raise FormatError(f"{path}: indices must be 1-based (found values below 1)")
    return train, test


def _mat_string(f, ref) -> str:
    arr = f[ref][()]
    return "".join(chr(int(c)) for c in np.asarray(arr).ravel() if c)


class NYULabeled:
    """Read-only access to ``nyu_depth_v2_labeled.mat`` (MATLAB v7.3 / HDF5) (Chapter 2).

    h5py sees MATLAB's column-major arrays with reversed axes: ``images`` is (N, 3, W, H),
    ``depths``/``rawDepths`` (N, W, H). Each item is transposed (``.T``) to (H, W, 3) / (H, W),
    which is the image the right way round; ``np.rot90`` gives a mirrored one. Index ``i`` is
    0-based (``splits.mat`` index - 1).

    Raises :class:`~mdlearn.data.formats.FormatError` naming the file if it is not HDF5 or
    lacks ``images``, ``depths`` or ``rawDepths`` with consistent shapes.
    """

    def __init__(self, path: str | os.PathLike):
        import h5py

        self.path = Path(path)
        try:
            self._f = h5py.File(self.path, "r")
        except FileNotFoundError:
            raise FormatError(f"{self.path}: no such file") from None
        except OSError as e:
            raise FormatError(f"{self.path}: not a readable MATLAB v7.3 (HDF5) file ({e}); "
                              "older .mat files are read with scipy.io.loadmat") from None
        f = self._f
        missing = [k for k in ("images", "depths", "rawDepths") if k not in f]
        if missing:
            self.close()
            raise FormatError(f"{self.path}: no {', '.join(missing)} (is this nyu_depth_v2_labeled.mat?)")
        n, c, w, h = f["images"].shape if f["images"].ndim == 4 else (0, 0, 0, 0)
        if c != 3 or f["depths"].shape != (n, w, h) or f["rawDepths"].shape != (n, w, h):
            shapes = {k: f[k].shape for k in ("images", "depths", "rawDepths")}
            self.close()
            raise FormatError(f"{self.path}: inconsistent shapes {shapes} (expected (N,3,W,H), (N,W,H), (N,W,H))")
        self.n, self.width, self.height = n, w, h
        self._scene_types = None

    def __len__(self) -> int:
        return self.n

    def close(self) -> None:
        self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def image(self, i: int) -> np.ndarray:
        """RGB image ``i`` as (H, W, 3) uint8."""
        return np.ascontiguousarray(self._f["images"][i].T).astype(np.uint8)

    def depth(self, i: int, raw: bool = False) -> np.ndarray:
        """Depth ``i`` as (H, W) float32 metres: ``depths`` (filled) or, if ``raw``, ``rawDepths``."""
        d = np.ascontiguousarray(self._f["rawDepths" if raw else "depths"][i].T).astype(np.float32)
        d[~np.isfinite(d) | (d < 0)] = 0.0
        if d.max(initial=0.0) > 20.0:
            raise FormatError(f"{self.path}: item {i} has depths up to {d.max():.1f} m (expected metres)")
        return d

    def scene_type(self, i: int) -> str:
        """The scene type of item ``i`` (``sceneTypes``, e.g. ``"bedroom"``), ``"unknown"`` if absent."""
        if self._scene_types is None:
            if "sceneTypes" in self._f:
                refs = np.asarray(self._f["sceneTypes"]).ravel()
                self._scene_types = [_mat_string(self._f, r) for r in refs]
            else:
                self._scene_types = ["unknown"] * self.n
        return self._scene_types[i]


