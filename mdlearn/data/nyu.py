"""NYU Depth v2 in the "sync" layout: file lists and a torch ``Dataset`` (Chapter 1).

The sync layout is what most code after 2019 trains on (BTS, AdaBins, ZoeDepth): per scene a
folder of ``rgb_XXXXX.jpg`` images with ``sync_depth_XXXXX.png`` depth maps (uint16 millimetres,
0 = invalid) registered to them, and list files whose lines read
``scene/rgb_XXXXX.jpg scene/sync_depth_XXXXX.png 518.8579`` (the last field is the focal length).
The synthetic indoor world is written in exactly this layout, so the same reader serves both.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .formats import FormatError, read_depth_png_mm, read_rgb

__all__ = ["SyncEntry", "read_files_with_gt", "NYUSyncDataset", "NYU_MAX_DEPTH"]

#: Largest depth the NYU toolbox keeps (``depth_rel2depth_abs.m`` clips to 10 m).
NYU_MAX_DEPTH = 10.0


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
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise FormatError(f"{path}: no such list file") from None
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
    """

    def __init__(self, root: str | os.PathLike, split: str = "train", list_file: str | os.PathLike | None = None,
                 transform=None, max_depth: float = NYU_MAX_DEPTH):
        self.root = Path(root)
        if list_file is None:
            if split not in ("train", "test"):
                raise ValueError(f"split must be 'train' or 'test', got {split!r}")
            list_file = self.root / f"{split}_files_with_gt.txt"
        if not self.root.is_dir():
            raise FormatError(f"{self.root}: dataset folder not found (expected the NYU sync layout: "
                              "scene folders with rgb_XXXXX / sync_depth_XXXXX files and *_files_with_gt.txt lists)")
        self.entries = [e for e in read_files_with_gt(list_file)]
        missing = [e for e in self.entries if e.depth is None]
        if missing:
            raise FormatError(f"{list_file}: {len(missing)} lines have no ground truth (first: {missing[0].rgb})")
        self.transform = transform
        self.max_depth = max_depth

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i: int) -> dict:
        e = self.entries[i]
        rgb = read_rgb(self.root / e.rgb)
        depth = read_depth_png_mm(self.root / e.depth)
        if depth.shape != rgb.shape[:2]:
            raise FormatError(f"{self.root / e.depth}: depth is {depth.shape[1]}x{depth.shape[0]} but "
                              f"{e.rgb} is {rgb.shape[1]}x{rgb.shape[0]}")
        depth = np.where(depth <= self.max_depth, depth, 0.0).astype(np.float32)
        sample = {
            "image": torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div_(255.0),
            "depth": torch.from_numpy(depth)[None],
            "valid": torch.from_numpy(depth > 0)[None],
            "focal": e.focal,
            "name": e.rgb,
        }
        return self.transform(sample) if self.transform is not None else sample
