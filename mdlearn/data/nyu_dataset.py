"""NYU Depth v2 as torch ``Dataset``s: the sync layout and the labeled ``.mat`` (Chapters 1-2).

The KITTI counterpart is :mod:`mdlearn.data.kitti_dataset`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import FormatError, UsageError
from .formats import read_depth_png_mm, read_rgb
from .kinect import NYU_KINECT
from .nyu import NYU_MAX_DEPTH, NYULabeled, read_files_with_gt, read_splits

__all__ = ["NYUSyncDataset", "NYULabeledDataset"]

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


