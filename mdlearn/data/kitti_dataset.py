"""KITTI as a torch ``Dataset``: image + sparse depth target + valid mask (Chapter 3).

Introduced in Chapter 3. Samples are single images: both cameras of a stereo pair become two
**unassociated** samples, as in the paper (§4.2). Images are served at the paper's input size,
half resolution; the whole image feeds the coarse network, and :func:`bottom_crop` cuts the
bottom part, where the laser has depth, for the fine network.

Ground truth comes in named variants (:data:`~mdlearn.data.kitti_depth.GT_VARIANTS`):
``camz_time``, ``velx_nearest``, ... as written by ``mdlearn prepare kitti-raw`` (folder
``proj_depth/<variant>_<rule>``), or ``annotated``: the official annotated maps of the KITTI
depth benchmark (``data_depth_annotated/{train,val}/DRIVE/proj_depth/groundtruth/image_0X``).
Frames without a map in the chosen variant are counted (:func:`missing_ground_truth`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ..errors import FormatError
from .formats import read_depth_png_kitti, read_rgb
from .kitti import CAMERAS, SplitEntry, expand_sides, find_drives, stationary_mask
from .kitti_prepare import depth_path

__all__ = ["KittiDepthDataset", "ground_truth_path", "missing_ground_truth", "downsample_sparse", "bottom_crop",
           "INPUT_SCALE", "LIDAR_TOP_FRACTION"]

#: The paper halves KITTI's images for the networks (1224x368 -> 612x184).
INPUT_SCALE = 0.5
#: The laser sees nothing above about this fraction of the image height (its top beam points 2
#: degrees up: on the KITTI rig that is row ~148 of 375). The fine network's crop starts here.
LIDAR_TOP_FRACTION = 0.4


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


def downsample_sparse(depth: np.ndarray, factor: int) -> np.ndarray:
    """Shrink a sparse depth map by an integer ``factor``: each output pixel takes the nearest of
    the valid samples in its block (0 if none); trailing rows/columns that do not fill a block are dropped."""
    h, w = depth.shape[0] // factor * factor, depth.shape[1] // factor * factor
    blocks = depth[:h, :w].reshape(h // factor, factor, w // factor, factor).transpose(0, 2, 1, 3)
    blocks = blocks.reshape(h // factor, w // factor, -1)
    big = np.where(blocks > 0, blocks, np.inf).min(-1)
    return np.where(np.isfinite(big), big, 0.0).astype(np.float32)


def bottom_crop(x: torch.Tensor, top_fraction: float = LIDAR_TOP_FRACTION) -> torch.Tensor:
    """The bottom part of ``(..., H, W)`` from row ``int(top_fraction * H)``: what the fine network sees."""
    return x[..., int(top_fraction * x.shape[-2]):, :]


class KittiDepthDataset(Dataset):
    """Images of KITTI raw drives with their sparse depth (Chapter 3).

    Each sample is a dict: ``image`` (3, h, w) float32 in [0, 1], ``depth`` (1, h, w) float32
    metres (0 = no laser point), ``valid`` (1, h, w) bool, ``name`` (``DATE/DRIVE/image_0X/N``),
    ``variant``. ``h, w`` are the image size times ``scale`` (default :data:`INPUT_SCALE`).

    Args:
        raw_dir: the raw drives (``DATE/DATE_drive_XXXX_sync``).
        depth_dir: the output of ``prepare kitti-raw`` (or ``data_depth_annotated`` for ``annotated``).
        variant: ``camz_time``, ``camz_nearest``, ``velx_time``, ``velx_nearest`` or ``annotated``.
        entries: a split (:func:`~mdlearn.data.kitti.read_split`); default: every frame of every
            drive, both cameras.
        drop_stationary: leave out frames where the car stands still (OXTS speed, only when
            ``entries`` is not given; the count is in ``self.dropped_stationary``).
        skip_missing: leave out images without ground truth (counted in ``self.missing``)
            instead of failing.
        scale: image scale; the depth is shrunk by ``round(1 / scale)`` with :func:`downsample_sparse`.
    """

    def __init__(self, raw_dir: str | os.PathLike, depth_dir: str | os.PathLike, variant: str = "camz_time",
                 entries: list[SplitEntry] | None = None, drop_stationary: bool = True,
                 stationary_threshold: float | None = None, skip_missing: bool = True,
                 scale: float = INPUT_SCALE, transform=None):
        self.raw_dir, self.depth_dir, self.variant = Path(raw_dir), Path(depth_dir), variant
        self.scale, self.transform = scale, transform
        factor = round(1 / scale)
        if abs(factor * scale - 1) > 1e-6:
            raise ValueError(f"scale must be 1/n for an integer n, got {scale}")
        self.factor = factor
        self.dropped_stationary = 0
        if entries is None:
            items = []
            for d in find_drives(self.raw_dir):
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

    def __len__(self) -> int:
        return len(self.items)

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
        depth = downsample_sparse(depth, self.factor)
        h, w = depth.shape
        if (h, w) != rgb.shape[:2]:
            rgb = np.asarray(Image.fromarray(rgb).resize((w, h), Image.BILINEAR, reducing_gap=None))
        image = torch.from_numpy(np.array(rgb)).permute(2, 0, 1).float() / 255.0
        dt = torch.from_numpy(depth)[None]
        sample = {"image": image, "depth": dt, "valid": dt > 0, "name": f"{d}/{c}/{f:010d}", "variant": self.variant}
        return self.transform(sample) if self.transform else sample
