"""KITTI as a torch ``Dataset``: image + sparse depth target + valid mask (Chapter 3).

Introduced in Chapter 3. Samples are single images: both cameras of a stereo pair become two
**unassociated** samples, as in the paper (§4.2). Each is the one sample of
:func:`mdlearn.data.sample.make_sample` at the size the image has on disk (1242x375 for most
raw dates), with the intrinsics of its rectified camera (``P_rect_02`` / ``P_rect_03`` of the
drive's date, read once per date folder). The paper's input (crop to 1224x368, halve to 612x184
without averaging the sparse depth) and the fine network's bottom crop are transforms:
:func:`mdlearn.data.transforms.kitti_paper_input`, :class:`~mdlearn.data.transforms.BottomCrop`.

Ground truth comes in named variants (:data:`GT_TAGS`): ``camz_time``, ``velx_nearest``, ... as
written by ``mdlearn prepare kitti-raw`` (folder ``proj_depth/<variant>_<rule>``), or
``annotated``: the official annotated maps of the KITTI depth benchmark
(``data_depth_annotated/{train,val}/DRIVE/proj_depth/groundtruth/image_0X``). Frames without a map
in the chosen variant are counted (:func:`missing_ground_truth`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
from torch.utils.data import Dataset

from ..errors import FormatError, UsageError
from .formats import read_depth_png_kitti, read_rgb
from .kitti import CAMERAS, Calibration, SplitEntry, expand_sides, find_drives, read_raw_calibration, read_split, \
    stationary_mask
from .kitti_depth import CONFLICT_RULES, GT_VARIANTS
from .kitti_prepare import depth_path
from .sample import CameraIntrinsics, dataset_repr, make_sample

__all__ = ["KittiDepthDataset", "ground_truth_path", "missing_ground_truth", "GT_TAGS", "KITTI_SPLITS",
           "KITTI_MAX_RANGE", "prepared_dataset", "is_prepared_folder", "PREPARED_LAYOUT"]

#: The ground truth a :class:`KittiDepthDataset` can read: ``prepare kitti-raw``'s
#: ``<variant>_<rule>`` folders and the official ``annotated`` maps.
GT_TAGS = tuple(f"{v}_{r}" for v in GT_VARIANTS if v != "annotated" for r in CONFLICT_RULES) + ("annotated",)
#: ``split`` values: every frame of every drive (``"all"``), or the Eigen-style list
#: ``<raw_dir>/splits/<split>_files.txt`` (``"list"`` labels samples of explicit ``entries``).
KITTI_SPLITS = ("all", "train", "val", "test", "list")
#: The HDL-64E's range (metres): a stored depth beyond it is a map in another encoding (a
#: :class:`~mdlearn.errors.FormatError` naming the file), not a measurement.
KITTI_MAX_RANGE = 120.0

#: What ``mdlearn train`` / ``evaluate`` expect as a KITTI ``--data`` folder.
PREPARED_LAYOUT = ("the output folder of `mdlearn prepare kitti-raw RAW_DIR OUT` (OUT/index.json names the raw "
                   "drives, whose RAW_DIR/splits/<split>_files.txt lists the split in the Eigen format)")

_GT_LAYOUT = ("prepare kitti-raw's DATE/DATE_drive_XXXX_sync/proj_depth/<variant>_<rule>/image_0X/*.png, or for "
              "'annotated' data_depth_annotated's {train,val}/DRIVE/proj_depth/groundtruth/image_0X/*.png")


def ground_truth_path(depth_dir: str | os.PathLike, drive: str, frame: int, camera: str, variant: str) -> Path | None:
    """The depth map of one image in ``variant``, or ``None`` when there is none.

    ``drive`` is ``DATE/DATE_drive_XXXX_sync``. For ``annotated``, ``depth_dir`` is the root of
    ``data_depth_annotated`` (its ``train/`` and ``val/`` folders are both searched).
    """
    root = Path(depth_dir)
    if variant == "annotated":
        name = drive.split("/")[-1]
        for sub in ("train", "val", ""):
            p = root / sub / name / "proj_depth" / "groundtruth" / camera / f"{frame:010d}.png"
            if p.exists():
                return p
        return None
    p = depth_path(root, drive, frame, camera, variant)
    return p if p.exists() else None


def missing_ground_truth(entries: list[SplitEntry], depth_dir: str | os.PathLike, variant: str) -> int:
    """How many images of a split have no ground truth in ``variant`` (45 of the 697 Eigen
    test frames for ``annotated``)."""
    return sum(ground_truth_path(depth_dir, d, f, c, variant) is None for d, f, c in expand_sides(entries))


class KittiDepthDataset(Dataset):
    """Images of KITTI raw drives with their sparse depth (Chapter 3).

    Each item is the sample of :func:`~mdlearn.data.sample.make_sample`: ``image`` (3, H, W),
    ``depth`` (1, H, W) metres (0 = no laser point), ``valid``, ``intrinsics`` from ``P_rect`` of
    the image's camera, ``name`` ``DATE/DRIVE/image_0X/NNNNNNNNNN``, ``dataset="kitti"``,
    ``split``, ``gt`` = ``variant``; full resolution, passed through ``transform`` if given
    (:func:`~mdlearn.data.transforms.kitti_paper_input` for the paper's 612x184).

    Args:
        raw_dir: the raw drives (``DATE/DATE_drive_XXXX_sync``, calibration files in ``DATE/``).
        depth_dir: the output of ``prepare kitti-raw`` (or ``data_depth_annotated`` for ``annotated``).
        variant: one of :data:`GT_TAGS` (``camz_time``, ``camz_nearest``, ``velx_time``,
            ``velx_nearest``, ``annotated``).
        split: ``"all"`` (every frame of every drive, both cameras), ``"train"`` / ``"val"`` /
            ``"test"`` (the list ``<raw_dir>/splits/<split>_files.txt``), or the label of
            ``entries`` (default ``"list"``).
        entries: a split (:func:`~mdlearn.data.kitti.read_split`) to serve instead.
        drop_stationary: leave out frames where the car stands still (OXTS speed, only for
            ``split="all"``; the count is in ``self.dropped_stationary``).
        skip_missing: leave out images without ground truth (counted in ``self.missing``)
            instead of failing.
        max_depth: a stored depth beyond this is a :class:`~mdlearn.errors.FormatError`.

    Raises :class:`~mdlearn.errors.UsageError` for an unknown ``variant`` or ``split``, and
    :class:`~mdlearn.errors.FormatError` (naming the folder and the expected layout) when
    ``raw_dir`` holds no drives or ``depth_dir`` holds no ground truth for any of the images.
    """

    def __init__(self, raw_dir: str | os.PathLike, depth_dir: str | os.PathLike, variant: str = "camz_time",
                 entries: list[SplitEntry] | None = None, drop_stationary: bool = True,
                 stationary_threshold: float | None = None, skip_missing: bool = True,
                 transform: Callable[[dict], Any] | None = None, split: str | None = None,
                 max_depth: float = KITTI_MAX_RANGE):
        if variant not in GT_TAGS:
            raise UsageError(f"variant must be one of {', '.join(GT_TAGS)}, got {variant!r}")
        allowed = ("train", "val", "test", "list") if entries is not None else ("all", "train", "val", "test")
        split = allowed[-1 if entries is not None else 0] if split is None else split
        if split not in allowed:
            raise UsageError(f"split must be one of {', '.join(allowed)}"
                             f"{' (with entries=)' if entries is not None else ''}, got {split!r}")
        self.raw_dir, self.depth_dir, self.variant, self.split = Path(raw_dir), Path(depth_dir), variant, split
        self.transform, self.max_depth = transform, max_depth
        self._calibrations: dict[str, Calibration] = {}
        self.dropped_stationary = 0
        drives = find_drives(self.raw_dir)
        if not drives:
            raise FormatError(f"{self.raw_dir}: no drives (expected the KITTI raw layout "
                              "DATE/DATE_drive_XXXX_sync/image_0X/data/*.png with the calibration files in DATE/)")
        if not self.depth_dir.is_dir():
            raise FormatError(f"{self.depth_dir}: ground-truth folder not found (expected {_GT_LAYOUT})")
        if entries is None and split != "all":
            entries = read_split(self.raw_dir / "splits" / f"{split}_files.txt")
        if entries is None:
            items = []
            for d in drives:
                frames = d.frames
                keep = np.ones(len(frames), bool)
                if drop_stationary:
                    keep = ~stationary_mask(d.oxts(), "speed", stationary_threshold)
                    self.dropped_stationary += 2 * int((~keep).sum())
                items += [(d.key, f, c) for f, k in zip(frames, keep) if k for c in CAMERAS]
        else:
            items = expand_sides(entries)
        self.items, self.missing = [], 0
        for d, f, c in items:
            p = ground_truth_path(self.depth_dir, d, f, c, variant)
            if p is None:
                if not skip_missing:
                    raise FormatError(f"{self.depth_dir}: no {variant} ground truth for {d} frame {f} {c}")
                self.missing += 1
                continue
            self.items.append((d, f, c, p))
        if items and not self.items:
            raise FormatError(f"{self.depth_dir}: no {variant} ground truth for any of the {len(items)} images "
                              f"(expected {_GT_LAYOUT})")

    def __len__(self) -> int:
        return len(self.items)

    def __repr__(self) -> str:
        return dataset_repr(self, self.raw_dir, self.split, variant=self.variant, depth_dir=str(self.depth_dir))

    def calibration(self, drive: str) -> Calibration:
        """The calibration of ``drive``'s date folder (read once per date)."""
        date = drive.split("/")[0]
        if date not in self._calibrations:
            self._calibrations[date] = read_raw_calibration(self.raw_dir / date)
        return self._calibrations[date]

    def intrinsics(self, drive: str, camera: str, height: int, width: int) -> CameraIntrinsics:
        """``[fx, fy, cx, cy]`` of rectified ``camera`` of ``drive`` from its ``P_rect_0X``, for an
        image of ``height`` x ``width`` (a :class:`~mdlearn.errors.FormatError` if the calibration
        states another size)."""
        calib = self.calibration(drive)
        cam = CAMERAS[camera]
        stated = calib.image_size.get(cam)
        if stated is not None and tuple(stated) != (width, height):
            raise FormatError(f"{calib.source}: S_rect_0{cam} is {stated[0]}x{stated[1]} but the {camera} images of "
                              f"{drive} are {width}x{height}")
        K = calib.intrinsics(cam, size=(width, height))
        return CameraIntrinsics([K.fx, K.fy, K.cx, K.cy], canvas_size=(height, width))

    def __getitem__(self, i: int) -> dict:
        d, f, c, p = self.items[i]
        img_path = self.raw_dir / d / c / "data" / f"{f:010d}.png"
        if not img_path.exists() and img_path.with_suffix(".jpg").exists():
            img_path = img_path.with_suffix(".jpg")
        rgb = read_rgb(img_path)
        depth = read_depth_png_kitti(p)
        if depth.shape != rgb.shape[:2]:
            raise FormatError(f"{p}: depth is {depth.shape[1]}x{depth.shape[0]} but {img_path} is "
                              f"{rgb.shape[1]}x{rgb.shape[0]}")
        K = self.intrinsics(d, c, *rgb.shape[:2])
        sample = make_sample(rgb, depth, K, name=f"{d}/{c}/{f:010d}", dataset="kitti", split=self.split,
                             gt=self.variant, max_depth=self.max_depth, source=str(p))
        return self.transform(sample) if self.transform is not None else sample


def is_prepared_folder(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` holds the output of ``mdlearn prepare kitti-raw`` (its manifest; Chapter 8)."""
    from ..jobs import made_by
    from .kitti_prepare import FORMAT_NAME

    return made_by(folder) == FORMAT_NAME


def prepared_dataset(folder: str | os.PathLike, split: str = "train",
                     transform: Callable[[dict], Any] | None = None) -> KittiDepthDataset:
    """The ``split`` of a ``prepare kitti-raw`` output as a :class:`KittiDepthDataset` (Chapters 8-9).

    The folder's manifest names the raw drives (``raw_dir``) and the ground-truth variant
    (``tag``, e.g. ``camz_time``); ``split`` is read from ``<raw_dir>/splits/<split>_files.txt``.
    Images of the list without a depth map are left out and counted (``.missing``);
    ``.ground_truth_spec`` records the settings of ``prepare`` (JSON). This is what
    ``mdlearn train --data`` and ``mdlearn evaluate --data`` take for the KITTI family.

    Raises:
        UsageError: (one line saying what was expected) ``folder`` is not a ``prepare kitti-raw``
            output (KITTI raw drives themselves are named as such), its raw drives are gone, or
            the split list is missing.
    """
    from ..jobs import read_manifest
    from .kitti_prepare import FORMAT_NAME

    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"{folder}: no such folder; expected {PREPARED_LAYOUT}")
    try:
        doc = read_manifest(folder, FORMAT_NAME)
    except FormatError:
        try:
            raw = bool(find_drives(folder))
        except FormatError:
            raw = False
        hint = (f"it holds KITTI raw drives: run `mdlearn prepare kitti-raw {folder} OUT` and pass OUT" if raw
                else f"expected {PREPARED_LAYOUT}")
        raise UsageError(f"{folder}: not a KITTI depth folder; {hint}") from None
    raw_dir, tag = Path(str(doc.get("raw_dir", ""))), str(doc.get("tag", ""))
    if tag not in GT_TAGS:
        raise UsageError(f"{folder}/index.json: ground-truth tag {tag!r} is none of {', '.join(GT_TAGS)}")
    if not raw_dir.is_dir():
        raise UsageError(f"{folder}/index.json: its raw drives {raw_dir} are gone; expected {PREPARED_LAYOUT}")
    listed = raw_dir / "splits" / f"{split}_files.txt"
    if not listed.is_file():
        raise UsageError(f"{listed}: no {split!r} split list; expected {PREPARED_LAYOUT}")
    ds = KittiDepthDataset(raw_dir, folder, variant=tag, split=split, transform=transform)
    # the settings the maps were made with (pixel rule, the raw drives' identity, ...): part of the
    # dataset's identity, so a training cache of it is regenerated when the maps are redone otherwise
    ds.ground_truth_spec = json.dumps(doc.get("spec"), sort_keys=True)
    return ds
