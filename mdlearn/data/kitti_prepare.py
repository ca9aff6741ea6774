"""``mdlearn prepare kitti-raw``: sparse depth PNGs for every frame of every raw drive (Chapter 3).

Introduced in Chapter 3. For each drive under ``RAW_DIR`` and each camera, every Velodyne scan is
projected (:func:`mdlearn.data.kitti_depth.sparse_depth`) and written in the public convention
(uint16 PNG, metres x 256, 0 = invalid) to::

    OUT/DATE/DATE_drive_XXXX_sync/proj_depth/<variant>_<rule>/image_0X/0000000000.png
    OUT/kitti_prepare.json     # variant, rule, pixel rule, per-drive counts, stationary frames, skips

The job is resumable (finished PNGs are kept; each is written to a temporary name and renamed),
runs on ``workers`` processes (default 2), and skips a broken drive (no timestamps, a missing
calibration key, mismatched frame counts) or a broken scan (a ``.bin`` whose size is not a multiple
of 16 bytes), naming the file and the problem in the report, and goes on with the rest.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from ..errors import FormatError
from .formats import write_depth_png_kitti
from .kitti import CAMERAS, STATIONARY_SPEED, RawDrive, find_drives, read_raw_calibration, read_velodyne, stationary_mask
from .kitti_depth import CONFLICT_RULES, GT_VARIANTS, PIXEL_RULES, sparse_depth

__all__ = ["PrepareReport", "prepare_kitti_raw", "depth_path", "MANIFEST_NAME"]

MANIFEST_NAME = "kitti_prepare.json"
_CHUNK = 8  # frames per task


def depth_path(out: str | os.PathLike, drive_key: str, frame: int, camera: str = "image_02",
               tag: str = "camz_time") -> Path:
    """Where ``prepare`` writes the sparse depth of ``frame`` of ``drive_key`` (``DATE/DRIVE``)."""
    return Path(out) / drive_key / "proj_depth" / tag / camera / f"{frame:010d}.png"


@dataclass
class PrepareReport:
    """What a ``prepare`` run did: counts, the stationary frames and everything it skipped."""

    out: Path
    tag: str
    written: int
    kept: int
    frames: int
    stationary: int
    skipped: list[dict]

    def summary(self) -> str:
        s = (f"{self.frames} frames: wrote {self.written} depth maps, {self.kept} already there; "
             f"{self.stationary} stationary frames flagged")
        if self.skipped:
            s += f"; skipped {len(self.skipped)}: " + "; ".join(f"{d['what']} ({d['reason']})" for d in self.skipped)
        return s


def _work(task) -> dict:
    drive_path, frames, cams, variant, rule, pixel, out, tag = task
    drive = RawDrive(Path(drive_path))
    calib = read_raw_calibration(drive.path.parent)
    velo_t = drive.timestamps("velodyne_points")
    cam_t = {c: drive.timestamps(c) for c in cams}
    written = kept = 0
    skipped = []
    for f in frames:
        targets = {c: depth_path(out, drive.key, f, c, tag) for c in cams}
        if all(p.exists() for p in targets.values()):
            kept += len(cams)
            continue
        try:
            pts = read_velodyne(drive.velodyne_path(f))
        except FormatError as e:
            skipped.append({"what": f"{drive.key} frame {f}", "reason": str(e)})
            continue
        for c, p in targets.items():
            if p.exists():
                kept += 1
                continue
            dt = (cam_t[c][f] - velo_t[f]) / 1e9
            depth = sparse_depth(pts, calib, CAMERAS[c], variant=variant, rule=rule, image_dt=dt, pixel=pixel)
            depth[depth > 255.0] = 0.0
            p.parent.mkdir(parents=True, exist_ok=True)
            tmp = p.with_name(f".{p.stem}.partial-{os.getpid()}.png")
            write_depth_png_kitti(tmp, depth)
            os.replace(tmp, p)
            written += 1
    return {"drive": drive.key, "written": written, "kept": kept, "skipped": skipped, "n": len(frames)}


def prepare_kitti_raw(raw_dir: str | os.PathLike, out: str | os.PathLike, variant: str = "camz", rule: str = "time",
                      pixel: str = "round", cameras: tuple[str, ...] = ("image_02", "image_03"), workers: int = 2,
                      stationary_threshold: float = STATIONARY_SPEED, progress: bool = True) -> PrepareReport:
    """Write the sparse depth maps of every drive under ``raw_dir`` into ``out``.

    Introduced in Chapter 3; ``mdlearn prepare kitti-raw RAW_DIR OUT`` runs it.

    Args:
        variant: ``"camz"`` or ``"velx"`` (:data:`~mdlearn.data.kitti_depth.GT_VARIANTS`).
        rule: ``"time"`` or ``"nearest"`` (:data:`~mdlearn.data.kitti_depth.CONFLICT_RULES`).
        pixel: a key of :data:`~mdlearn.data.kitti_depth.PIXEL_RULES`.
        stationary_threshold: speed (m/s) below which a frame is flagged stationary in the report
            (:func:`~mdlearn.data.kitti.stationary_mask`, rule ``"speed"``).

    Returns:
        a :class:`PrepareReport`; the same information is in ``out/kitti_prepare.json``.
    """
    from tqdm.auto import tqdm

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
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"{out}: cannot create the output folder ({e.strerror})") from None
    tag = f"{variant}_{rule}"
    skipped, tasks, info = [], [], {}
    for d in drives:
        try:
            n = d.check(cameras)
            read_raw_calibration(d.path.parent)
            stat = stationary_mask(d.oxts(), "speed", stationary_threshold)
        except FormatError as e:
            skipped.append({"what": d.key, "reason": str(e)})
            continue
        frames = d.frames
        info[d.key] = {"frames": n, "stationary": [int(f) for f, s in zip(frames, stat) if s]}
        for i in range(0, len(frames), _CHUNK):
            tasks.append((str(d.path), frames[i:i + _CHUNK], cameras, variant, rule, pixel, str(out), tag))
    total = sum(len(t[1]) for t in tasks)
    bar = tqdm(total=total, unit="frame", desc=f"prepare kitti-raw -> {out.name}", disable=not progress)
    results = []
    if workers == 1 or len(tasks) <= 1:
        for t in tasks:
            results.append(_work(t))
            bar.update(results[-1]["n"])
    else:
        with mp.get_context("spawn").Pool(min(workers, len(tasks))) as pool:
            for r in pool.imap_unordered(_work, tasks):
                results.append(r)
                bar.update(r["n"])
    bar.close()
    for r in results:
        skipped += r["skipped"]
        info[r["drive"]]["written"] = info[r["drive"]].get("written", 0) + r["written"]
        info[r["drive"]]["kept"] = info[r["drive"]].get("kept", 0) + r["kept"]
    report = PrepareReport(out, tag, sum(r["written"] for r in results), sum(r["kept"] for r in results),
                           total, sum(len(v["stationary"]) for v in info.values()), skipped)
    manifest = {"format": "mdlearn-kitti-prepare", "version": 1, "raw_dir": str(Path(raw_dir).resolve()),
                "tag": tag, "variant": variant, "variant_means": GT_VARIANTS[variant], "rule": rule,
                "rule_means": CONFLICT_RULES[rule], "pixel": pixel, "cameras": list(cameras),
                "encoding": "uint16 PNG, metres x 256, 0 = invalid",
                "stationary_rule": {"rule": "speed", "threshold_mps": stationary_threshold},
                "totals": {"frames": total, "written": report.written, "kept": report.kept,
                           "stationary": report.stationary, "skipped": len(skipped)},
                "drives": info, "skipped": skipped}
    (out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1))
    return report
