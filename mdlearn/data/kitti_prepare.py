"""``mdlearn prepare kitti-raw``: sparse depth PNGs for every frame of every raw drive (Chapter 3).

Introduced in Chapter 3. For each drive under ``RAW_DIR`` and each camera, every Velodyne scan is
projected (:func:`mdlearn.data.kitti_depth.sparse_depth`) and written in the public convention
(uint16 PNG, metres x 256, 0 = invalid) to::

    OUT/DATE/DATE_drive_XXXX_sync/proj_depth/<variant>_<rule>/image_0X/0000000000.png
    OUT/index.json     # the job manifest: settings, per-drive counts, stationary frames, skips

**Resumable per drive**: a drive's ``proj_depth/<variant>_<rule>`` folder is written as
``<variant>_<rule>.partial-<pid>`` and renamed when all its frames are done (:mod:`mdlearn.jobs`);
a later run keeps finished drives and redoes the others (partial folders of dead runs are removed).
The settings (variant, rule, pixel rule, cameras, which input) are recorded; a run with other
settings on the same ``OUT`` is refused unless ``overwrite``, which redoes every drive. Runs on
``workers`` processes (default 2), and skips a broken drive (no timestamps, a missing calibration
key, mismatched frame counts) or a broken scan (a ``.bin`` whose size is not a multiple of 16
bytes), naming the file and the problem in the report, and goes on with the rest.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..errors import FormatError, UsageError
from ..jobs import JobReport, input_id, open_resumable_output, publish, run_tasks, stage, write_manifest
from .formats import write_depth_png_kitti
from .kitti import CAMERAS, STATIONARY_SPEED, RawDrive, find_drives, read_raw_calibration, read_velodyne, stationary_mask
from .kitti_depth import CONFLICT_RULES, GT_VARIANTS, PIXEL_RULES, sparse_depth

__all__ = ["prepare_kitti_raw", "ensure_prepared", "depth_path", "FORMAT_NAME"]

FORMAT_NAME = "mdlearn-kitti-prepare"
_CHUNK = 8  # frames per task


def depth_path(out: str | os.PathLike, drive_key: str, frame: int, camera: str = "image_02",
               tag: str = "camz_time") -> Path:
    """Where ``prepare`` writes the sparse depth of ``frame`` of ``drive_key`` (``DATE/DRIVE``)."""
    return Path(out) / drive_key / "proj_depth" / tag / camera / f"{frame:010d}.png"


def _work(task) -> dict:
    """Worker: the sparse depth maps of some frames of one drive, into the drive's staging folder."""
    drive_path, frames, cams, variant, rule, pixel, tmp = task
    drive = RawDrive(Path(drive_path))
    calib = read_raw_calibration(drive.path.parent)
    velo_t = drive.timestamps("velodyne_points")
    cam_t = {c: drive.timestamps(c) for c in cams}
    written, skipped = 0, {}
    for f in frames:
        try:
            pts = read_velodyne(drive.velodyne_path(f))
        except FormatError as e:
            skipped[f"{drive.key} frame {f}"] = str(e)
            continue
        for c in cams:
            dt = (cam_t[c][f] - velo_t[f]) / 1e9
            depth = sparse_depth(pts, calib, CAMERAS[c], variant=variant, rule=rule, image_dt=dt, pixel=pixel)
            depth[depth > 255.0] = 0.0
            p = Path(tmp) / c / f"{f:010d}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            write_depth_png_kitti(p, depth)
            written += 1
    return {"drive": drive.key, "written": written, "skipped": skipped, "n": len(frames)}


def prepare_kitti_raw(raw_dir: str | os.PathLike, out: str | os.PathLike, variant: str = "camz", rule: str = "time",
                      pixel: str = "round", cameras: tuple[str, ...] = ("image_02", "image_03"), workers: int = 2,
                      stationary_threshold: float = STATIONARY_SPEED, overwrite: bool = False,
                      progress: bool = True) -> JobReport:
    """Write the sparse depth maps of every drive under ``raw_dir`` into ``out``.

    Introduced in Chapter 3; ``mdlearn prepare kitti-raw RAW_DIR OUT`` runs it.

    Args:
        variant: ``"camz"`` or ``"velx"`` (:data:`~mdlearn.data.kitti_depth.GT_VARIANTS`).
        rule: ``"time"`` or ``"nearest"`` (:data:`~mdlearn.data.kitti_depth.CONFLICT_RULES`).
        pixel: a key of :data:`~mdlearn.data.kitti_depth.PIXEL_RULES`.
        stationary_threshold: speed (m/s) below which a frame is flagged stationary in the report
            (:func:`~mdlearn.data.kitti.stationary_mask`, rule ``"speed"``).

        overwrite: redo every drive (needed to change the settings of an existing ``out``).

    Returns:
        a :class:`~mdlearn.jobs.JobReport` (unit: drive; counts: frames, maps written, stationary
        frames); the same information is in ``out/index.json``. No drive under ``raw_dir`` is a
        :class:`~mdlearn.errors.UsageError`.
    """
    if variant not in ("camz", "velx"):
        raise UsageError(f"--variant must be camz or velx (annotated maps are downloaded, not prepared), got {variant!r}")
    if rule not in CONFLICT_RULES:
        raise UsageError(f"--rule must be one of {', '.join(CONFLICT_RULES)}, got {rule!r}")
    if pixel not in PIXEL_RULES:
        raise UsageError(f"--pixel must be one of {', '.join(PIXEL_RULES)}, got {pixel!r}")
    if workers < 1:
        raise UsageError(f"--workers must be at least 1, got {workers}")
    try:
        drives = find_drives(raw_dir)
    except FormatError as e:
        raise UsageError(str(e)) from None
    if not drives:
        raise UsageError(f"{raw_dir}: no drives found (expected DATE/DATE_drive_XXXX_sync/ folders)")
    out = Path(out)
    tag = f"{variant}_{rule}"
    spec = {"variant": variant, "rule": rule, "pixel": pixel, "cameras": list(cameras), "input": input_id(raw_dir)}
    open_resumable_output(out, FORMAT_NAME, spec, overwrite)
    report = JobReport("prepare kitti-raw", out, "drive")
    tasks, info, staging, remaining = [], {}, {}, {}
    for d in drives:
        try:
            n = d.check(cameras)
            read_raw_calibration(d.path.parent)
            stat = stationary_mask(d.oxts(), "speed", stationary_threshold)
        except FormatError as e:
            report.skipped[d.key] = str(e)
            continue
        frames = d.frames
        info[d.key] = {"frames": n, "stationary": [int(f) for f, s in zip(frames, stat) if s]}
        target = out / d.key / "proj_depth" / tag
        if target.is_dir() and not overwrite:
            report.resumed.append(d.key)
            continue
        shutil.rmtree(target, ignore_errors=True)  # with --overwrite: this job's own earlier maps
        staging[d.key] = stage(target)
        chunks = [frames[i:i + _CHUNK] for i in range(0, len(frames), _CHUNK)]
        remaining[d.key] = len(chunks)
        tasks += [(str(d.path), c, cameras, variant, rule, pixel, str(staging[d.key])) for c in chunks]
    maps = 0
    try:
        for r in run_tasks(_work, tasks, workers=workers, desc=f"prepare kitti-raw -> {out.name}", unit="frame",
                           total=sum(len(t[1]) for t in tasks), weight=lambda r: r["n"], progress=progress):
            report.skipped.update(r["skipped"])
            maps += r["written"]
            info[r["drive"]]["written"] = info[r["drive"]].get("written", 0) + r["written"]
            remaining[r["drive"]] -= 1
            if remaining[r["drive"]] == 0:
                publish(staging.pop(r["drive"]), out / r["drive"] / "proj_depth" / tag)
                report.written.append(r["drive"])
    finally:  # interrupted: unfinished drives leave nothing behind
        for tmp in staging.values():
            shutil.rmtree(tmp, ignore_errors=True)
    report.written.sort()
    report.counts = {"frames": sum(v["frames"] for v in info.values()), "maps": maps,
                     "stationary": sum(len(v["stationary"]) for v in info.values())}
    write_manifest(out, FORMAT_NAME, spec, tag=tag, variant_means=GT_VARIANTS[variant],
                   rule_means=CONFLICT_RULES[rule], raw_dir=str(Path(raw_dir).resolve()),
                   encoding="uint16 PNG, metres x 256, 0 = invalid",
                   stationary_rule={"rule": "speed", "threshold_mps": stationary_threshold},
                   units=[f"{k}/proj_depth/{tag}" for k in sorted(report.written + report.resumed)],
                   drives=info, **report.as_dict())
    return report


def ensure_prepared(raw_dir: str | os.PathLike, out: str | os.PathLike, workers: int = 2,
                    progress: bool = True) -> Path:
    """``out`` as :func:`prepare_kitti_raw` writes it with the default settings (``camz_time``),
    run only when it is not already a finished output of this ``raw_dir`` (Chapters 3 and 8).

    Drives made by other code (another ``raw_dir`` manifest) redo every drive. Returns ``out``.
    """
    from ..jobs import exclusive, is_current, made_by

    spec = {"variant": "camz", "rule": "time", "pixel": "round", "cameras": ["image_02", "image_03"],
            "input": input_id(raw_dir)}
    out = Path(out)
    if is_current(out, FORMAT_NAME, spec):
        return out
    with exclusive(out):  # another process preparing the same folder finishes first
        if is_current(out, FORMAT_NAME, spec):
            return out
        report = prepare_kitti_raw(raw_dir, out, workers=workers, overwrite=made_by(out) == FORMAT_NAME,
                                   progress=progress)
    if report.skipped:
        raise FormatError(f"prepare kitti-raw {raw_dir} -> {out}: skipped {', '.join(sorted(report.skipped))}")
    return out
