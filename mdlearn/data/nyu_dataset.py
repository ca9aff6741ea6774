"""NYU Depth v2 as torch ``Dataset``s: the sync layout and the labeled ``.mat`` (Chapters 1-2).

Both return the one sample of :func:`mdlearn.data.sample.make_sample` at the size the images have
on disk; the paper's 320x240 input is a transform (:func:`mdlearn.data.transforms.nyu_paper_input`).
The KITTI counterpart is :mod:`mdlearn.data.kitti_dataset`.

**Intrinsics.** The camera is the NYU Kinect's RGB camera, :data:`mdlearn.data.kinect.NYU_KINECT`
``.rgb`` (0-based principal point), rescaled to the image size: that is the camera
``prepare nyu-raw`` and ``prepare nyu-labeled`` register into, and the toolbox the real data
came from. A folder that records its own camera (the synthetic indoor world's ``index.json``
has an ``intrinsics`` entry) uses that one instead, or pass ``intrinsics=``. The focal length on
each list line (``rgb depth focal``) is **checked, not used**: it holds one number where the
camera needs four, so it must agree (to 0.01 px) with the camera's ``fx`` either at the image's
size (what ``synth indoor`` and ``prepare nyu-raw`` write for reduced resolutions) or at its
calibrated size (BTS's lists and ``prepare nyu-labeled`` always state 518.8579, the 640x480 value);
anything else raises a :class:`~mdlearn.errors.FormatError` naming the list file: a list written
for another camera is caught instead of silently mixing two cameras.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from torch.utils.data import Dataset

from ..camera import Intrinsics
from ..errors import FormatError, UsageError
from ..jobs import MANIFEST_NAME, read_manifest
from .formats import read_depth_png_mm, read_rgb
from .kinect import NYU_KINECT
from .nyu import NYU_MAX_DEPTH, NYULabeled, read_files_with_gt, read_splits
from .sample import CameraIntrinsics, dataset_repr, intrinsics_of, make_sample

__all__ = ["NYUSyncDataset", "NYULabeledDataset", "NYU_SPLITS", "FOCAL_TOLERANCE"]

#: The splits a ``*_files_with_gt.txt`` folder and ``splits.mat`` define.
NYU_SPLITS = ("train", "test")
#: How far (pixels) a list line's focal length may be from the camera's ``fx`` (lists print 4 decimals).
FOCAL_TOLERANCE = 0.01

_SYNC_LAYOUT = ("the NYU sync layout: scene folders with rgb_XXXXX.{jpg,png} / sync_depth_XXXXX.png files "
                "and <split>_files_with_gt.txt lists of 'rgb depth focal' lines")


def _check_kind(depth_kind: str) -> None:
    if depth_kind not in ("filled", "raw"):
        raise UsageError(f"depth_kind must be 'filled' or 'raw', got {depth_kind!r}")


def _folder_camera(root: Path) -> Intrinsics | None:
    """The camera a folder records in its manifest (the synthetic indoor world's ``index.json``), if any."""
    if not (root / MANIFEST_NAME).is_file():
        return None
    K = read_manifest(root).get("intrinsics")
    try:
        return Intrinsics.from_dict(K) if K else None
    except (KeyError, TypeError) as e:
        raise FormatError(f"{root / MANIFEST_NAME}: unreadable intrinsics record ({e!r})") from None


class NYUSyncDataset(Dataset):
    """RGB + depth pairs of a sync-layout folder, listed by ``<split>_files_with_gt.txt`` (Chapter 1).

    Each item is the sample of :func:`~mdlearn.data.sample.make_sample` (``dataset="nyu-sync"``,
    ``gt`` = ``depth_kind``, ``name`` the RGB path relative to ``root``), passed through
    ``transform`` if given. Intrinsics: see the module docstring.

    Args:
        root: the dataset folder.
        split: ``"train"`` or ``"test"``; selects ``<root>/<split>_files_with_gt.txt``. With
            ``list_file`` it only labels the samples (default ``"list"``).
        list_file: use this list instead (paths in it are relative to ``root``).
        transform: a callable on the sample dict (torchvision v2, :mod:`mdlearn.data.transforms`).
        max_depth: a depth beyond this (metres) is a :class:`~mdlearn.errors.FormatError` naming
            the file (a map in another unit, e.g. a KITTI map, is caught rather than served).
        depth_kind: ``"filled"`` (the listed ``sync_depth_*`` files) or ``"raw"`` (the
            ``raw_depth_*`` files beside them, which :func:`prepare_nyu_labeled` writes from
            ``rawDepths``). Chapter 2.
        intrinsics: the camera (at any image size; rescaled to each image); default: see above.

    Raises :class:`~mdlearn.errors.UsageError` for a bad ``split`` / ``depth_kind`` and
    :class:`~mdlearn.errors.FormatError` (naming the path and the expected layout) when ``root``
    is not a sync-layout folder or a listed file is missing.
    """

    def __init__(self, root: str | os.PathLike, split: str | None = None, list_file: str | os.PathLike | None = None,
                 transform: Callable[[dict], Any] | None = None, max_depth: float = NYU_MAX_DEPTH,
                 depth_kind: str = "filled", intrinsics: Intrinsics | CameraIntrinsics | None = None):
        self.root = Path(root)
        if list_file is None:
            split = "train" if split is None else split
            if split not in NYU_SPLITS:
                raise UsageError(f"split must be 'train' or 'test', got {split!r}")
            list_file = self.root / f"{split}_files_with_gt.txt"
        else:
            split = "list" if split is None else split
            if split not in (*NYU_SPLITS, "list"):
                raise UsageError(f"split must be 'train', 'test' or 'list', got {split!r}")
        _check_kind(depth_kind)
        if not self.root.is_dir():
            raise FormatError(f"{self.root}: dataset folder not found (expected {_SYNC_LAYOUT})")
        self.list_file = Path(list_file)
        if not self.list_file.is_file():
            raise FormatError(f"{self.list_file}: no such list file (expected {_SYNC_LAYOUT})")
        self.split, self.transform, self.max_depth, self.depth_kind = split, transform, max_depth, depth_kind
        self.entries = read_files_with_gt(self.list_file)
        missing = [e for e in self.entries if e.depth is None]
        if missing:
            raise FormatError(f"{self.list_file}: {len(missing)} lines have no ground truth (first: {missing[0].rgb})")
        absent = [p for i, e in enumerate(self.entries) for p in (self.root / e.rgb, self.depth_path(i))
                  if not p.is_file()]
        if absent:
            raise FormatError(f"{absent[0]}: listed in {self.list_file} but missing ({len(absent)} files missing; "
                              f"expected {_SYNC_LAYOUT}, paths relative to {self.root})")
        self.intrinsics = intrinsics if intrinsics is not None else (_folder_camera(self.root) or NYU_KINECT.rgb)

    def __len__(self) -> int:
        return len(self.entries)

    def __repr__(self) -> str:
        return dataset_repr(self, self.root, self.split, depth_kind=self.depth_kind)

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
        K = intrinsics_of(self.intrinsics, *rgb.shape[:2])
        native_fx = self.intrinsics.fx if isinstance(self.intrinsics, Intrinsics) else float(self.intrinsics[0])
        if min(abs(e.focal - float(K[0])), abs(e.focal - native_fx)) > FOCAL_TOLERANCE:
            raise FormatError(f"{self.list_file}: focal length {e.focal} on the line of {e.rgb} is neither the "
                              f"camera's fx = {float(K[0]):.4f} at {rgb.shape[1]}x{rgb.shape[0]} nor its calibrated "
                              f"fx = {native_fx:.4f} (a list for another camera? pass intrinsics=)")
        sample = make_sample(rgb, depth, K, name=e.rgb, dataset="nyu-sync", split=self.split, gt=self.depth_kind,
                             max_depth=self.max_depth, source=str(self.depth_path(i)))
        return self.transform(sample) if self.transform is not None else sample


class NYULabeledDataset(Dataset):
    """The labeled set's train or test split, read straight from the ``.mat`` (Chapter 2).

    The sample of :func:`~mdlearn.data.sample.make_sample` (``dataset="nyu-labeled"``, ``name``
    ``"<sceneType>/rgb_XXXXX"`` with the 0-based index, ``gt`` = ``depth_kind``), camera
    :data:`~mdlearn.data.kinect.NYU_KINECT` ``.rgb`` (the toolbox registered these images into it).
    ``depth_kind`` selects ``depths`` (``"filled"``, what the paper tests on) or ``rawDepths``
    (``"raw"``). Depths beyond ``max_depth`` are a :class:`~mdlearn.errors.FormatError`.
    """

    def __init__(self, labeled_mat: str | os.PathLike, splits_mat: str | os.PathLike, split: str = "test",
                 depth_kind: str = "filled", transform: Callable[[dict], Any] | None = None,
                 max_depth: float = NYU_MAX_DEPTH):
        if split not in NYU_SPLITS:
            raise UsageError(f"split must be 'train' or 'test', got {split!r}")
        _check_kind(depth_kind)
        self.path, self.splits_path, self.split = Path(labeled_mat), Path(splits_mat), split
        train, test = read_splits(splits_mat)
        self.indices = (train if split == "train" else test) - 1
        with NYULabeled(self.path) as lab:
            if self.indices.max(initial=0) >= len(lab):
                raise FormatError(f"{splits_mat}: index {self.indices.max() + 1} beyond the {len(lab)} labeled images "
                                  f"of {self.path}")
        self.depth_kind, self.transform, self.max_depth = depth_kind, transform, max_depth
        self._lab = None  # opened lazily, once per DataLoader worker

    def __len__(self) -> int:
        return len(self.indices)

    def __repr__(self) -> str:
        return dataset_repr(self, self.path, self.split, depth_kind=self.depth_kind)

    def __getitem__(self, i: int) -> dict:
        if self._lab is None:
            self._lab = NYULabeled(self.path)
        j = int(self.indices[i])
        rgb, depth = self._lab.image(j), self._lab.depth(j, raw=self.depth_kind == "raw")
        sample = make_sample(rgb, depth, NYU_KINECT.rgb, name=f"{self._lab.scene_type(j)}/rgb_{j:05d}",
                             dataset="nyu-labeled", split=self.split, gt=self.depth_kind, max_depth=self.max_depth,
                             source=f"{self.path} image {j + 1}")
        return self.transform(sample) if self.transform is not None else sample
