"""``mdlearn prepare nyu-raw`` and ``prepare nyu-labeled``: NYU's downloads -> the sync layout (Chapter 2).

:func:`prepare_nyu_raw` synchronises raw scene dumps (synthetic or real), registers each kept
depth frame to its RGB frame (:func:`mdlearn.data.kinect.register_depth`) and writes the sync
layout; :func:`prepare_nyu_labeled` extracts the labeled ``.mat``'s official train/test split
into the same layout. The KITTI counterpart is :mod:`mdlearn.data.kitti_prepare`.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import re
import shutil
from pathlib import Path

import numpy as np

from ..errors import FormatError, MdlearnError, UsageError
from ..jobs import (JobReport, check_output_folder, input_id, open_resumable_output, publish, run_tasks, stage,
                    staged_folder, write_manifest)
from .formats import write_depth_png_mm, write_rgb
from .kinect import NYU_KINECT, parse_raw_name, read_kinect_disparity, read_kinect_ppm, register_depth, undistort_rgb
from .nyu import (NYU_LABELED_COUNT, NYU_TEST_COUNT, NYU_TRAIN_COUNT, NYULabeled, SyncResult, list_raw_scene,
                  read_splits, synchronise)

__all__ = ["prepare_nyu_raw", "prepare_nyu_labeled", "FORMAT_NAME", "LABELED_FORMAT_NAME"]

# ------------------------------------------------------------------------------ prepare nyu-raw

FORMAT_NAME = "mdlearn-nyu-sync-from-raw"
LABELED_FORMAT_NAME = "mdlearn-nyu-labeled"
SCENE_REPORT = "sync.json"  # per scene: which raw files each output came from (data, and the finished mark)
ALL_LIST = "files_with_gt.txt"
_STAGING = re.compile(r".*\.(partial|old)(-\d+)?")


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
                  and p.resolve() != out.resolve() and not _STAGING.fullmatch(p.name))


def prepare_nyu_raw(raw_dir: str | os.PathLike, out: str | os.PathLike, workers: int = 2, overwrite: bool = False,
                    min_max_mask: bool = True, rgb_format: str = "jpg", value: str = "rgb",
                    progress: bool = True) -> JobReport:
    """Turn raw NYU scene folders (synthetic or real) into the sync layout (Chapter 2).

    For every scene: :func:`list_raw_scene`, :func:`synchronise`, then for each kept pair the
    undistorted RGB image (``rgb_XXXXX.<rgb_format>``) and the depth registered to it
    (``sync_depth_XXXXX.png``, uint16 mm), plus ``sync.json`` (which raw files each output came
    from, the dropped frames, the counts). ``OUT/files_with_gt.txt`` lists every finished scene;
    ``OUT/index.json`` (the job manifest) records the settings and what happened.

    * **Resumable per scene**: a scene is written into ``OUT/<scene>.partial-<pid>`` and renamed
      when complete (:mod:`mdlearn.jobs`); after an interruption the finished scenes are kept and
      only the others are redone (partial folders of dead runs are removed).
    * **No silent overwrite**: finished scenes are kept (reported as already done) unless
      ``overwrite``; a folder that is not a finished scene is left alone and reported; another
      job's or a foreign non-empty ``OUT`` is refused; running again with other settings (or
      another input) is refused unless ``overwrite``, which redoes every scene.
    * **Bad scenes** (no depth frames, timestamps out of order, a truncated file, ...) are
      skipped with the reason in the report; the other scenes go on. No scene at all is a
      :class:`~mdlearn.errors.UsageError`.
    * ``workers`` processes register frames in parallel (default 2).

    Returns a :class:`~mdlearn.jobs.JobReport` (unit: scene; counts: frames, one-to-many drops).
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
    scene_dirs = _scene_dirs(raw_dir, out)
    if not scene_dirs:
        raise UsageError(f"{raw_dir}: no raw scenes found (expected scene folders of r-*.ppm, d-*.pgm and "
                         "a-*.dump files, or such files directly)")
    settings = {"min_max_mask": bool(min_max_mask), "rgb_format": rgb_format, "value": value,
                "input": input_id(raw_dir)}
    open_resumable_output(out, FORMAT_NAME, settings, overwrite)

    report = JobReport("prepare nyu-raw", out, "scene", counts={"frames": 0, "one-to-many depth frames dropped": 0})
    results: dict[str, SyncResult] = {}
    staging: dict[str, Path] = {}
    tasks = []
    for sd in scene_dirs:
        name, target = sd.name, out / sd.name
        if target.exists():
            if not (target / SCENE_REPORT).is_file():
                report.skipped[name] = f"{target} exists but is not a finished scene; not overwriting it"
                continue
            if not overwrite:
                report.resumed.append(name)
                continue
        try:
            sync = synchronise(list_raw_scene(sd))
        except MdlearnError as e:
            report.skipped[name] = str(e)
            continue
        if not sync.pairs:
            report.skipped[name] = f"{sd}: no depth frame has an RGB frame of its own (all {len(sync.dropped)} dropped)"
            continue
        results[name] = sync
        staging[name] = stage(target)
        tasks += [(name, k, str(sd / p["rgb"]), str(sd / p["depth"]), str(staging[name]), settings)
                  for k, p in enumerate(sync.pairs)]

    remaining = {n: len(s.pairs) for n, s in results.items()}
    valid: dict[str, list[float]] = {n: [0.0] * len(s.pairs) for n, s in results.items()}
    failed: dict[str, str] = {}
    sizes: dict[str, list[int]] = {}

    def finish(name: str) -> None:
        part = staging.pop(name)
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
        publish(part, out / name)  # with overwrite: replaces this job's own earlier scene
        report.written.append(name)
        report.counts["frames"] += len(s.pairs)
        report.counts["one-to-many depth frames dropped"] += len(s.dropped)

    if workers > 1 and len(tasks) > 1:
        _warm_caches(tasks)  # forked workers inherit the per-size lookup tables
    start = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    try:
        for scene, k, vf, err, shape in run_tasks(_prepare_frame, tasks, workers=workers, desc="prepare nyu-raw",
                                                  unit="frame", progress=progress, start_method=start, chunksize=2):
            if shape is not None:
                sizes[scene] = [int(shape[1]), int(shape[0])]
            if err is not None and scene not in failed:
                failed[scene] = err
            valid[scene][k] = vf
            remaining[scene] -= 1
            if remaining[scene] == 0:
                finish(scene)
    finally:  # interrupted: unfinished scenes leave nothing behind
        for part in staging.values():
            shutil.rmtree(part, ignore_errors=True)

    # the list of everything finished in OUT, and the record of this run
    lines = []
    for sd in sorted(p for p in out.iterdir() if (p / SCENE_REPORT).is_file()):
        doc = json.loads((sd / SCENE_REPORT).read_text())
        focal = NYU_KINECT.for_size(*doc["size"]).rgb.fx
        for fr in doc["frames"]:
            lines.append(f"{sd.name}/{fr['rgb_out']} {sd.name}/{fr['depth_out']} {focal:.4f}\n")
    (out / ALL_LIST).write_text("".join(lines))
    write_manifest(out, FORMAT_NAME, settings, raw_dir=str(raw_dir), frames_listed=len(lines),
                   units=sorted(report.written + report.resumed), **report.as_dict())
    return report


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
    ``NYUSyncDataset(OUT/"test", "test")`` reads it), and ``OUT/index.json`` (the job manifest) with the counts
    and a SHA-256 per written file. Checks that the split covers the labeled set exactly once
    and, for the full set, that it is 795/654. Staged in ``OUT.partial-<pid>`` and renamed at the
    end (:mod:`mdlearn.jobs`); an existing ``OUT`` is replaced only with ``overwrite`` and only if
    this job made it. Returns the manifest (``OUT/index.json``).
    """
    if rgb_format not in ("jpg", "png"):
        raise UsageError(f"rgb format must be jpg or png, got {rgb_format!r}")
    out = check_output_folder(out, LABELED_FORMAT_NAME, overwrite)
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
            manifest = write_manifest(
                tmp, LABELED_FORMAT_NAME, {"rgb_format": rgb_format}, source=str(Path(labeled_mat).name),
                source_bytes=Path(labeled_mat).stat().st_size, splits=str(Path(splits_mat).name),
                counts={"labeled": n, "train": len(train), "test": len(test)},
                depths="sync_depth_* = depths (filled, metres -> uint16 mm); raw_depth_* = rawDepths", files=files)
    return manifest
