"""NYU Depth v2 in every form users have: raw dumps, the sync layout, the labeled ``.mat``.

Introduced in Chapter 1 (the sync layout) and completed in Chapter 2 (*Aligning RGB and depth*).

**Sync layout** -- what most code after 2019 trains on (BTS, AdaBins, ZoeDepth): per scene a
folder of ``rgb_XXXXX.jpg`` images with ``sync_depth_XXXXX.png`` depth maps (uint16 millimetres,
0 = invalid) registered to them, and list files whose lines read
``scene/rgb_XXXXX.jpg scene/sync_depth_XXXXX.png 518.8579`` (the last field is the focal length).
The synthetic indoor world, :func:`prepare_nyu_raw` and :func:`prepare_nyu_labeled` all write it,
so :class:`NYUSyncDataset` serves all of them.

**Raw dumps** -- one folder per scene with ``r-*.ppm``, ``d-*.pgm`` and ``a-*.dump`` files
(:mod:`mdlearn.data.kinect` reads them). :func:`list_raw_scene` and :func:`synchronise` pair
frames as the paper does (section 4.1): every depth frame is matched to the RGB frame nearest in
time (the toolbox's ``get_synched_frames.m``), and frames whose RGB image is matched to more than
one depth frame are dropped. :func:`prepare_nyu_raw` turns raw scenes into the sync layout.

**Labeled set** -- ``nyu_depth_v2_labeled.mat`` (MATLAB v7.3 = HDF5): :class:`NYULabeled`
reads it with h5py in the right axis order (``.T`` of each item; ``rot90`` mirrors it), and
:func:`read_splits` reads the official ``splits.mat`` (795 train / 654 test, 1-based).

**Training lists, plainly.** The paper trained on ~120K frames it registered itself from the raw
dumps of the 249 training scenes. Most later work trains on BTS's ``nyudepthv2_train_files_with_gt.txt``:
24,231 raw-derived sync frames from 284 scenes. The 795 labeled training images are the small
"common distribution" set the paper uses only for baselines. Everyone tests on the 654 labeled
test images (``splits.mat``), the paper on the filled ``depths``, BTS's extractor on ``rawDepths``.

**Evaluation crop** -- two conventions of the same rectangle, see :data:`NYU_EVAL_CROP_COMMON`
and :data:`NYU_EVAL_CROP_TOOLBOX`.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import MdlearnError, UsageError
from ..staging import check_output_folder, staged_folder
from .formats import FormatError, read_depth_png_mm, read_rgb, read_text, write_depth_png_mm, write_rgb
from .kinect import (NYU_KINECT, RawName, parse_raw_name, read_kinect_disparity,
                     read_kinect_ppm, register_depth, undistort_rgb)

__all__ = [
    "SyncEntry", "read_files_with_gt", "NYUSyncDataset", "NYU_MAX_DEPTH",
    "NYU_EVAL_CROP_COMMON", "NYU_EVAL_CROP_TOOLBOX", "eval_crop_mask",
    "RawScene", "list_raw_scene", "SyncResult", "nearest_frames", "synchronise",
    "PrepareReport", "prepare_nyu_raw",
    "NYU_LABELED_COUNT", "NYU_TRAIN_COUNT", "NYU_TEST_COUNT", "read_splits", "NYULabeled",
    "NYULabeledDataset", "prepare_nyu_labeled",
]

#: Largest depth the NYU toolbox keeps (``depth_rel2depth_abs.m`` clips to 10 m).
NYU_MAX_DEPTH = 10.0

#: The NYU evaluation crop as BTS, AdaBins and ZoeDepth apply it: rows 45:471, cols 41:601 as
#: **0-based, end-exclusive** slices ``(top, bottom, left, right)`` of a 480x640 image (426x560).
#: :data:`mdlearn.evaluation.NYU_CROP_EIGEN` is the protocol object built on the same numbers.
NYU_EVAL_CROP_COMMON = (45, 471, 41, 601)
#: The toolbox's own valid region, ``get_projection_mask.m``: ``mask(45:471, 41:601)`` in
#: MATLAB's **1-based, inclusive** indexing = rows 44:471, cols 40:601 0-based (427x561), one
#: pixel larger at the top and left than the common one (:data:`mdlearn.evaluation.NYU_CROP_TOOLBOX`).
NYU_EVAL_CROP_TOOLBOX = (44, 471, 40, 601)


def eval_crop_mask(height: int = 480, width: int = 640, convention: str = "common") -> np.ndarray:
    """Boolean ``(height, width)`` mask of the NYU evaluation crop (Chapter 2).

    ``convention`` is ``"common"`` (:data:`NYU_EVAL_CROP_COMMON`) or ``"toolbox"``
    (:data:`NYU_EVAL_CROP_TOOLBOX`). The crop is defined on 480x640 images only.
    """
    crops = {"common": NYU_EVAL_CROP_COMMON, "toolbox": NYU_EVAL_CROP_TOOLBOX}
    if convention not in crops:
        raise UsageError(f"unknown crop convention {convention!r}; choose 'common' or 'toolbox'")
    if (height, width) != (480, 640):
        raise UsageError(f"the NYU crop is defined for 480x640 images, got {height}x{width}")
    t, b, l, r = crops[convention]
    m = np.zeros((height, width), bool)
    m[t:b, l:r] = True
    return m


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


def _half_resolution(sample: dict) -> dict:
    """Halve the resolution as the paper does (640x480 -> 320x240): the image by 2x2 averaging,
    depth by taking the top-left pixel of each 2x2 block (never mixing depths across edges)."""
    img = sample["image"]
    h, w = img.shape[-2] // 2 * 2, img.shape[-1] // 2 * 2
    sample["image"] = torch.nn.functional.avg_pool2d(img[None, :, :h, :w], 2)[0]
    sample["depth"] = sample["depth"][:, :h:2, :w:2].contiguous()
    sample["valid"] = sample["valid"][:, :h:2, :w:2].contiguous()
    sample["focal"] = sample["focal"] / 2.0
    return sample


def _make_sample(rgb: np.ndarray, depth: np.ndarray, focal: float, name: str, max_depth: float,
                 half_resolution: bool) -> dict:
    depth = np.where(depth <= max_depth, depth, 0.0).astype(np.float32)
    sample = {
        "image": torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div_(255.0),
        "depth": torch.from_numpy(depth)[None],
        "valid": torch.from_numpy(depth > 0)[None],
        "focal": float(focal),
        "name": name,
    }
    return _half_resolution(sample) if half_resolution else sample


class NYUSyncDataset(Dataset):
    """RGB + depth pairs of a sync-layout folder, listed by ``<split>_files_with_gt.txt``.

    Introduced in Chapter 1. Each sample is a dict: ``image`` (3, H, W) float32 in [0, 1],
    ``depth`` (1, H, W) float32 metres (0 = invalid), ``valid`` (1, H, W) bool, ``focal`` and
    ``name`` (the RGB path relative to ``root``). ``transform``, if given, receives and returns
    that dict.

    Args:
        root: the dataset folder.
        split: ``"train"`` or ``"test"``; selects ``<root>/<split>_files_with_gt.txt``.
        list_file: use this list instead (paths in it are relative to ``root``).
        max_depth: depths beyond this are treated as invalid.
        depth_kind: ``"filled"`` (the listed ``sync_depth_*`` files) or ``"raw"`` (the
            ``raw_depth_*`` files beside them, which :func:`prepare_nyu_labeled` writes from
            ``rawDepths``). Chapter 2.
        half_resolution: serve 320x240 inputs as in the paper (focal halved). Chapter 2.
    """

    def __init__(self, root: str | os.PathLike, split: str = "train", list_file: str | os.PathLike | None = None,
                 transform=None, max_depth: float = NYU_MAX_DEPTH, depth_kind: str = "filled",
                 half_resolution: bool = False):
        self.root = Path(root)
        if list_file is None:
            if split not in ("train", "test"):
                raise ValueError(f"split must be 'train' or 'test', got {split!r}")
            list_file = self.root / f"{split}_files_with_gt.txt"
        if not self.root.is_dir():
            raise FormatError(f"{self.root}: dataset folder not found (expected the NYU sync layout: "
                              "scene folders with rgb_XXXXX / sync_depth_XXXXX files and *_files_with_gt.txt lists)")
        if depth_kind not in ("filled", "raw"):
            raise UsageError(f"depth_kind must be 'filled' or 'raw', got {depth_kind!r}")
        self.entries = [e for e in read_files_with_gt(list_file)]
        missing = [e for e in self.entries if e.depth is None]
        if missing:
            raise FormatError(f"{list_file}: {len(missing)} lines have no ground truth (first: {missing[0].rgb})")
        self.transform = transform
        self.max_depth = max_depth
        self.depth_kind = depth_kind
        self.half_resolution = half_resolution

    def __len__(self) -> int:
        return len(self.entries)

    def depth_path(self, i: int) -> Path:
        """The depth file sample ``i`` reads (depends on ``depth_kind``)."""
        d = self.entries[i].depth
        if self.depth_kind == "raw":
            head, _, tail = d.rpartition("/")
            d = (head + "/" if head else "") + tail.replace("sync_depth_", "raw_depth_", 1)
        return self.root / d

    def __getitem__(self, i: int) -> dict:
        e = self.entries[i]
        rgb = read_rgb(self.root / e.rgb)
        depth = read_depth_png_mm(self.depth_path(i))
        if depth.shape != rgb.shape[:2]:
            raise FormatError(f"{self.depth_path(i)}: depth is {depth.shape[1]}x{depth.shape[0]} but "
                              f"{e.rgb} is {rgb.shape[1]}x{rgb.shape[0]}")
        sample = _make_sample(rgb, depth, e.focal, e.rgb, self.max_depth, self.half_resolution)
        return self.transform(sample) if self.transform is not None else sample


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


# ------------------------------------------------------------------------------ prepare nyu-raw

PREPARE_NAME = "prepare.json"
SCENE_REPORT = "sync.json"
ALL_LIST = "files_with_gt.txt"


@dataclass
class PrepareReport:
    """What :func:`prepare_nyu_raw` did: scenes written now, found finished, skipped (with why)."""

    out: Path
    written: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    frames: int = 0
    dropped_one_to_many: int = 0

    def summary(self) -> str:
        lines = [f"{self.out}: {len(self.written)} scenes prepared ({self.frames} frames, "
                 f"{self.dropped_one_to_many} one-to-many depth frames dropped), {len(self.resumed)} already done, "
                 f"{len(self.skipped)} skipped"]
        lines += [f"  skipped {name}: {why}" for name, why in sorted(self.skipped.items())]
        return "\n".join(lines)


def _prepare_frame(task: tuple) -> tuple:
    """Worker: undistort one RGB frame, register its depth frame, write both. NumPy only."""
    scene, k, rgb_path, depth_path, out_dir, settings = task
    try:
        raw = read_kinect_disparity(depth_path)
        rgb = read_kinect_ppm(rgb_path)
        if rgb.shape[:2] != raw.shape:
            raise FormatError(f"{rgb_path}: RGB is {rgb.shape[1]}x{rgb.shape[0]} but {Path(depth_path).name} "
                              f"is {raw.shape[1]}x{raw.shape[0]}")
        calib = NYU_KINECT.for_size(raw.shape[1], raw.shape[0])
        depth = register_depth(raw, calib, value=settings["value"], min_max_mask=settings["min_max_mask"])
        write_rgb(Path(out_dir) / f"rgb_{k:05d}.{settings['rgb_format']}", undistort_rgb(rgb, calib))
        write_depth_png_mm(Path(out_dir) / f"sync_depth_{k:05d}.png", depth)
        return scene, k, float((depth > 0).mean()), None, raw.shape
    except (MdlearnError, ValueError, OSError) as e:
        return scene, k, 0.0, str(e), None


def _warm_caches(tasks: list[tuple]) -> None:
    """Build the per-size ray and undistortion tables once, before the workers fork."""
    from .kinect import _rgb_undistort_map, depth_rays

    seen = set()
    for task in tasks:
        if task[0] in seen:
            continue
        seen.add(task[0])
        try:
            h, w = read_kinect_disparity(task[3]).shape
            calib = NYU_KINECT.for_size(w, h)
        except (MdlearnError, ValueError):
            continue  # the worker will report it
        depth_rays(calib)
        _rgb_undistort_map(calib)


def _scene_dirs(raw_dir: Path, out: Path) -> list[Path]:
    if any(parse_raw_name(p.name) for p in raw_dir.iterdir() if p.is_file()):
        return [raw_dir]  # RAW_DIR is itself one scene
    return sorted(p for p in raw_dir.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))
                  and p.resolve() != out.resolve() and not p.name.endswith(".partial"))


def prepare_nyu_raw(raw_dir: str | os.PathLike, out: str | os.PathLike, workers: int = 2, overwrite: bool = False,
                    min_max_mask: bool = True, rgb_format: str = "jpg", value: str = "rgb",
                    progress: bool = True) -> PrepareReport:
    """Turn raw NYU scene folders (synthetic or real) into the sync layout (Chapter 2).

    For every scene: :func:`list_raw_scene`, :func:`synchronise`, then for each kept pair the
    undistorted RGB image (``rgb_XXXXX.<rgb_format>``) and the depth registered to it
    (``sync_depth_XXXXX.png``, uint16 mm), plus ``sync.json`` (which raw files each output came
    from, the dropped frames, the counts). ``OUT/files_with_gt.txt`` lists every finished scene;
    ``OUT/prepare.json`` records the settings and what happened.

    * **Resumable**: a scene is written into ``OUT/<scene>.partial`` and renamed when complete,
      so after an interruption the finished scenes are kept and only the others are redone.
    * **No silent overwrite**: finished scenes are skipped (reported as already done) unless
      ``overwrite``; a folder that is not a finished scene is left alone and reported; running
      again with different settings is an error unless ``overwrite``.
    * **Bad scenes** (no depth frames, timestamps out of order, a truncated file, ...) are
      skipped with the reason in the report; the other scenes go on.
    * ``workers`` processes register frames in parallel (default 2).
    """
    raw_dir, out = Path(raw_dir), Path(out)
    if not raw_dir.is_dir():
        raise UsageError(f"{raw_dir}: raw folder not found")
    if workers < 1:
        raise UsageError(f"--workers must be at least 1, got {workers}")
    if rgb_format not in ("jpg", "png"):
        raise UsageError(f"rgb format must be jpg or png, got {rgb_format!r}")
    if value not in ("rgb", "toolbox"):
        raise UsageError(f"value must be 'rgb' or 'toolbox', got {value!r}")
    settings = {"min_max_mask": bool(min_max_mask), "rgb_format": rgb_format, "value": value}
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"{out}: cannot create the output folder ({e.strerror})") from None
    state_path = out / PREPARE_NAME
    if state_path.exists():
        old = json.loads(state_path.read_text())
        if old.get("settings") != settings and not overwrite:
            raise UsageError(f"{out} was prepared with settings {old.get('settings')}, not {settings}; "
                             "use another output folder or --overwrite")
    for stale in out.glob("*.partial"):
        shutil.rmtree(stale, ignore_errors=True)

    report = PrepareReport(out)
    results: dict[str, SyncResult] = {}
    tasks = []
    for sd in _scene_dirs(raw_dir, out):
        name, target = sd.name, out / sd.name
        if target.exists():
            if (target / SCENE_REPORT).is_file() and not overwrite:
                report.resumed.append(name)
                continue
            if not overwrite:
                report.skipped[name] = f"{target} exists but is not a finished scene; not overwriting it"
                continue
            shutil.rmtree(target)
        try:
            sync = synchronise(list_raw_scene(sd))
        except MdlearnError as e:
            report.skipped[name] = str(e)
            continue
        if not sync.pairs:
            report.skipped[name] = f"{sd}: no depth frame has an RGB frame of its own (all {len(sync.dropped)} dropped)"
            continue
        results[name] = sync
        part = out / f"{name}.partial"
        part.mkdir()
        tasks += [(name, k, str(sd / p["rgb"]), str(sd / p["depth"]), str(part), settings)
                  for k, p in enumerate(sync.pairs)]

    remaining = {n: len(s.pairs) for n, s in results.items()}
    valid: dict[str, list[float]] = {n: [0.0] * len(s.pairs) for n, s in results.items()}
    failed: dict[str, str] = {}
    sizes: dict[str, list[int]] = {}
    from tqdm.auto import tqdm

    def finish(name: str) -> None:
        part = out / f"{name}.partial"
        if name in failed:
            shutil.rmtree(part, ignore_errors=True)
            report.skipped[name] = failed[name]
            return
        s = results[name]
        doc = {"scene": name, "counts": s.counts, "settings": settings, "size": sizes[name],
               "frames": [dict(p, rgb_out=f"rgb_{k:05d}.{rgb_format}", depth_out=f"sync_depth_{k:05d}.png",
                               valid_fraction=round(valid[name][k], 6)) for k, p in enumerate(s.pairs)],
               "dropped": s.dropped}
        (part / SCENE_REPORT).write_text(json.dumps(doc, indent=1))
        part.rename(out / name)
        report.written.append(name)
        report.frames += len(s.pairs)
        report.dropped_one_to_many += len(s.dropped)

    bar = tqdm(total=len(tasks), desc="prepare nyu-raw", unit="frame", disable=not progress)
    pool = None
    try:
        if workers == 1 or len(tasks) < 2:
            it = map(_prepare_frame, tasks)
        else:
            _warm_caches(tasks)  # forked workers inherit the per-size lookup tables
            ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
            pool = ctx.Pool(min(workers, len(tasks)))
            it = pool.imap_unordered(_prepare_frame, tasks, chunksize=2)
        for scene, k, vf, err, shape in it:
            bar.update()
            if shape is not None:
                sizes[scene] = [int(shape[1]), int(shape[0])]
            if err is not None and scene not in failed:
                failed[scene] = err
            valid[scene][k] = vf
            remaining[scene] -= 1
            if remaining[scene] == 0:
                finish(scene)
        if pool is not None:
            pool.close()
            pool.join()
            pool = None
    finally:
        bar.close()
        if pool is not None:  # interrupted: stop the workers; unfinished scenes stay *.partial
            pool.terminate()

    # the list of everything finished in OUT, and the record of this run
    lines = []
    for sd in sorted(p for p in out.iterdir() if (p / SCENE_REPORT).is_file()):
        doc = json.loads((sd / SCENE_REPORT).read_text())
        focal = NYU_KINECT.for_size(*doc["size"]).rgb.fx
        for fr in doc["frames"]:
            lines.append(f"{sd.name}/{fr['rgb_out']} {sd.name}/{fr['depth_out']} {focal:.4f}\n")
    (out / ALL_LIST).write_text("".join(lines))
    state_path.write_text(json.dumps({"format": "mdlearn-nyu-sync-from-raw", "version": 1, "settings": settings,
                                      "raw_dir": str(raw_dir), "written": report.written, "resumed": report.resumed,
                                      "skipped": report.skipped, "frames_listed": len(lines)}, indent=1))
    return report


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


class NYULabeledDataset(Dataset):
    """The labeled set's train or test split, read straight from the ``.mat`` (Chapter 2).

    Same sample format as :class:`NYUSyncDataset` (``name`` is ``"<sceneType>/rgb_XXXXX"`` with
    the 0-based index). ``depth_kind`` selects ``depths`` (filled, what the paper tests on) or
    ``rawDepths``; ``half_resolution`` serves 320x240.
    """

    def __init__(self, labeled_mat: str | os.PathLike, splits_mat: str | os.PathLike, split: str = "test",
                 depth_kind: str = "filled", half_resolution: bool = False, transform=None,
                 max_depth: float = NYU_MAX_DEPTH):
        if split not in ("train", "test"):
            raise UsageError(f"split must be 'train' or 'test', got {split!r}")
        if depth_kind not in ("filled", "raw"):
            raise UsageError(f"depth_kind must be 'filled' or 'raw', got {depth_kind!r}")
        train, test = read_splits(splits_mat)
        self.indices = (train if split == "train" else test) - 1
        self.path = Path(labeled_mat)
        with NYULabeled(self.path) as lab:
            if self.indices.max(initial=0) >= len(lab):
                raise FormatError(f"{splits_mat}: index {self.indices.max() + 1} beyond the {len(lab)} labeled images")
        self.depth_kind, self.half_resolution, self.transform, self.max_depth = depth_kind, half_resolution, transform, max_depth
        self._lab = None  # opened lazily, once per DataLoader worker

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict:
        if self._lab is None:
            self._lab = NYULabeled(self.path)
        j = int(self.indices[i])
        rgb, depth = self._lab.image(j), self._lab.depth(j, raw=self.depth_kind == "raw")
        sample = _make_sample(rgb, depth, NYU_KINECT.rgb.fx, f"{self._lab.scene_type(j)}/rgb_{j:05d}",
                              self.max_depth, self.half_resolution)
        return self.transform(sample) if self.transform is not None else sample


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def prepare_nyu_labeled(labeled_mat: str | os.PathLike, splits_mat: str | os.PathLike, out: str | os.PathLike,
                        rgb_format: str = "jpg", overwrite: bool = False, progress: bool = True) -> dict:
    """Extract the labeled set's train and test pairs into the sync layout (Chapter 2).

    Writes ``OUT/<split>/<sceneType>/rgb_XXXXX.<rgb_format>``, ``sync_depth_XXXXX.png`` (the
    filled ``depths``) and ``raw_depth_XXXXX.png`` (``rawDepths``), XXXXX the 0-based labeled
    index, with ``OUT/<split>/<split>_files_with_gt.txt`` in BTS's line format (so
    ``NYUSyncDataset(OUT/"test", "test")`` reads it), and ``OUT/manifest.json`` with the counts
    and a SHA-256 per written file. Checks that the split covers the labeled set exactly once
    and, for the full set, that it is 795/654. Written to ``OUT.partial-<pid>``, renamed at the end.
    """
    out = Path(out)
    if rgb_format not in ("jpg", "png"):
        raise UsageError(f"rgb format must be jpg or png, got {rgb_format!r}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise UsageError(f"{out}: already exists; pass --overwrite to replace it")
    train, test = read_splits(splits_mat)
    with NYULabeled(labeled_mat) as lab:
        n = len(lab)
        both = np.sort(np.concatenate([train, test]))
        if not np.array_equal(both, np.arange(1, n + 1)):
            raise FormatError(f"{splits_mat}: the {len(train)} train + {len(test)} test indices do not cover "
                              f"the {n} images of {lab.path.name} exactly once")
        if n == NYU_LABELED_COUNT and (len(train), len(test)) != (NYU_TRAIN_COUNT, NYU_TEST_COUNT):
            raise FormatError(f"{splits_mat}: {len(train)}/{len(test)} train/test images, expected "
                              f"{NYU_TRAIN_COUNT}/{NYU_TEST_COUNT}")
        check_output_folder(out, overwrite=True)
        files: dict[str, str] = {}
        from tqdm.auto import tqdm

        with staged_folder(out) as tmp:
            with tqdm(total=n, desc="prepare nyu-labeled", unit="image", disable=not progress) as bar:
                for split, idx in (("train", train), ("test", test)):
                    lines = []
                    for one_based in idx:
                        i = int(one_based) - 1
                        scene = lab.scene_type(i)
                        d = tmp / split / scene
                        d.mkdir(parents=True, exist_ok=True)
                        names = (f"rgb_{i:05d}.{rgb_format}", f"sync_depth_{i:05d}.png", f"raw_depth_{i:05d}.png")
                        write_rgb(d / names[0], lab.image(i))
                        write_depth_png_mm(d / names[1], lab.depth(i))
                        write_depth_png_mm(d / names[2], lab.depth(i, raw=True))
                        for nm in names:
                            files[f"{split}/{scene}/{nm}"] = _sha256(d / nm)
                        lines.append(f"{scene}/{names[0]} {scene}/{names[1]} {NYU_KINECT.rgb.fx:.4f}\n")
                        bar.update()
                    (tmp / split).mkdir(parents=True, exist_ok=True)
                    (tmp / split / f"{split}_files_with_gt.txt").write_text("".join(lines))
            manifest = {"format": "mdlearn-nyu-labeled", "version": 1, "source": str(Path(labeled_mat).name),
                        "source_bytes": Path(labeled_mat).stat().st_size, "splits": str(Path(splits_mat).name),
                        "counts": {"labeled": n, "train": len(train), "test": len(test)},
                        "depths": "sync_depth_* = depths (filled, metres -> uint16 mm); raw_depth_* = rawDepths",
                        "files": files}
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest
