"""Writing NYU Depth v2's *labeled* files: ``nyu_depth_v2_labeled.mat`` and ``splits.mat`` (Chapter 2).

The real labeled set (1,449 frames) cannot be shipped; its on-disk format can. These writers
produce files that :class:`mdlearn.data.nyu.NYULabeled`, :func:`mdlearn.data.nyu.read_splits`
and ``mdlearn prepare nyu-labeled`` read exactly as they read the real ones, so that the path a
researcher takes with the real download (``prepare nyu-labeled`` -> ``evaluate``) runs in the test
suite on synthetic frames.

The format (MATLAB v7.3, i.e. HDF5 behind a 512-byte text header): MATLAB stores arrays
column-major, so h5py sees every axis reversed: ``images`` is ``(N, 3, W, H)`` uint8, ``depths``
(filled) and ``rawDepths`` (unfilled, 0 = no depth) are ``(N, W, H)`` float32 metres, and
``sceneTypes`` is a ``(1, N)`` array of object references to uint16 character arrays.
``splits.mat`` is a pre-v7.3 file (scipy writes it) with 1-based ``trainNdxs`` / ``testNdxs``
column vectors.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import UsageError

__all__ = ["write_labeled_mat", "write_splits_mat", "labeled_from_sync"]

_HEADER = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created by mdlearn HDF5 schema 1.00 ."


def write_labeled_mat(path: str | os.PathLike, images: np.ndarray, depths: np.ndarray, raw_depths: np.ndarray,
                      scene_types: Sequence[str]) -> Path:
    """Write ``images (N, H, W, 3)`` uint8, ``depths`` / ``raw_depths (N, H, W)`` metres and one
    scene type per frame in the layout of ``nyu_depth_v2_labeled.mat``. Returns the path."""
    import h5py

    images, depths, raw_depths = np.asarray(images), np.asarray(depths), np.asarray(raw_depths)
    n = len(images)
    if images.ndim != 4 or images.shape[3] != 3 or images.dtype != np.uint8:
        raise UsageError(f"images must be (N, H, W, 3) uint8, got {images.shape} {images.dtype}")
    if depths.shape != images.shape[:3] or raw_depths.shape != images.shape[:3] or len(scene_types) != n:
        raise UsageError(f"need depths and raw depths {images.shape[:3]} and {n} scene types, got "
                         f"{depths.shape}, {raw_depths.shape} and {len(scene_types)}")
    path = Path(path)
    with h5py.File(path, "w", userblock_size=512) as f:
        f["images"] = images.transpose(0, 3, 2, 1)
        f["depths"] = depths.astype(np.float32).transpose(0, 2, 1)
        f["rawDepths"] = raw_depths.astype(np.float32).transpose(0, 2, 1)
        refs = []
        for i, name in enumerate(scene_types):
            chars = np.array([[ord(c)] for c in name], dtype=np.uint16)
            refs.append(f.create_dataset(f"#refs#/s{i}", data=chars).ref)
        f.create_dataset("sceneTypes", data=np.array([refs], dtype=h5py.ref_dtype))
    with open(path, "r+b") as fh:  # the text header MATLAB writes in the user block
        fh.write(_HEADER)
    return path


def write_splits_mat(path: str | os.PathLike, train: Sequence[int], test: Sequence[int]) -> Path:
    """Write ``splits.mat`` with the 1-based frame numbers ``train`` / ``test`` (column vectors)."""
    import scipy.io

    col = lambda v: np.asarray(v, dtype=np.float64).reshape(-1, 1)  # noqa: E731 - MATLAB doubles
    scipy.io.savemat(path, {"trainNdxs": col(train), "testNdxs": col(test)})
    return Path(path)


def labeled_from_sync(root: str | os.PathLike, out_dir: str | os.PathLike, *, max_train: int | None = None,
                      max_test: int | None = None) -> tuple[Path, Path]:
    """A labeled-format pair of files (``nyu_depth_v2_labeled.mat``, ``splits.mat``) made of a
    sync-layout dataset's train and test views, e.g. the synthetic indoor world (Chapter 9).

    ``depths`` are the views' depth maps; ``rawDepths`` the same with the pixels the sync layout
    has no depth for left at 0 (the synthetic world has none missing, so they are equal). Frames
    are numbered train first, then test. Returns the two paths.
    """
    from ..data.nyu_dataset import NYUSyncDataset

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    images, depths, scenes, counts = [], [], [], []
    for split, limit in (("train", max_train), ("test", max_test)):
        ds = NYUSyncDataset(root, split)
        n = len(ds) if limit is None else min(limit, len(ds))
        for i in range(n):
            s = ds[i]
            images.append(np.round(s["image"].permute(1, 2, 0).numpy() * 255).astype(np.uint8))
            depths.append(s["depth"][0].numpy())
            scenes.append(Path(ds.entries[i].rgb).parts[0].rsplit("_", 1)[0])
        counts.append(n)
    d = np.stack(depths)
    mat = write_labeled_mat(out / "nyu_depth_v2_labeled.mat", np.stack(images), d, d, scenes)
    n_train, n_test = counts
    splits = write_splits_mat(out / "splits.mat", range(1, n_train + 1), range(n_train + 1, n_train + n_test + 1))
    return mat, splits
