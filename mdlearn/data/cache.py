"""A dataset at training resolution in memory-mapped arrays, so feeding the model costs almost no CPU (Chapter 5).

Decoding a 640x480 PNG pair and resizing it costs milliseconds per sample; training consumes
samples faster than two cores can decode them. :func:`ensure_cache` runs a source ``Dataset``
(any mdlearn dataset, through a resize to the training size) once and writes, per split::

    OUT/<split>/
      images.npy      uint8   (N, 3, h, w)   RGB, round(255 x image)
      depth.npy       float16 (N, 1, h, w)   metres, 0 = invalid
      intrinsics.npy  float64 (N, 4)         fx, fy, cx, cy of each cached image
      meta.json       names, and the dataset / split / gt of every sample
      index.json      format, version, the source's identity and the resize: what makes it current

:class:`CachedDataset` maps these files and returns exactly the samples of
:mod:`mdlearn.data.sample` (built by ``make_sample``), so :mod:`mdlearn.data.augment` applies
unchanged. The on-the-fly path (the source ``Dataset`` with a resize transform) stays available
for every dataset; the cache is an optimisation, never a different dataset.

**Depth as float16.** Half precision keeps 11 significant bits: the spacing between
representable depths is ``2^-10`` of the power of two below the value, so rounding changes a
depth by at most ``2^-11`` of it (0.05 %): at most 0.5 mm at 1-2 m, 2 mm at 4-8 m and 3.9 mm
just under NYU's 10 m cap (6 cm at KITTI's 80 m). That is far below the sensors' own depth
resolution (the Kinect's disparity step is several centimetres beyond 4 m; a Velodyne's range
noise is about 2 cm) and than anything the loss can see: the network predicts log depth, and
``log(d (1 + 2^-11)) - log d < 5e-4``, against scale-invariant errors of order 0.1. It halves
the depth file (and the page cache it needs) relative to float32, and 0 (invalid) is exact.
The image is stored as uint8, like its source files (error at most half a grey level when the
resize interpolated it).

**Staleness.** ``index.json`` records the cache format version, the source's identity
(:func:`dataset_identity`: its class, parameters and a content hash of its list of samples --
the parsed list file -- plus the hash of a synthetic dataset's own ``index.json``, which
changes when the renderer changes), the resize's description and the hash of the modules that
turn files into the cached bytes (the Dataset's and the resize's modules, ``formats``,
``sample``). It is an ordinary :mod:`mdlearn.jobs` manifest (``format: mdlearn-cache``).
:func:`ensure_cache` reuses a cache whose record matches and regenerates one that does not; it
writes through :func:`mdlearn.jobs.staged_folder` (complete or absent) and refuses to replace a
folder it did not write.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import os
from collections.abc import Callable
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import FormatError, UsageError
from .. import jobs
from .sample import CameraIntrinsics, check_sample, dataset_repr, make_sample
from .transforms import nyu_paper_input

__all__ = ["CachedDataset", "ensure_cache", "write_cache", "dataset_identity", "is_current",
           "CACHE_FORMAT", "CACHE_VERSION", "INDEX_NAME"]

CACHE_FORMAT = "mdlearn-cache"
#: Bump when the files or their meaning change: older caches are then regenerated.
CACHE_VERSION = 1
INDEX_NAME = jobs.MANIFEST_NAME
DEPTH_DTYPE = np.float16
_FILES = ("images.npy", "depth.npy", "intrinsics.npy", "meta.json")


def _describe(fn: Any) -> str:
    """A stable description of a transform (its repr for torch modules, else its qualified name)."""
    if fn is None:
        return "none"
    if isinstance(fn, torch.nn.Module):
        return repr(fn)
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__qualname__)}"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def dataset_identity(ds: Dataset) -> dict[str, Any]:
    """What identifies a source ``Dataset`` for the cache (JSON-friendly; Chapter 5).

    Its class, length, simple parameters (paths, numbers, strings, cameras), a description of
    its own ``transform``, a content hash of every list-like attribute (the parsed list file,
    selected indices) and of its ``list_file``, and the hash of ``<root>/index.json`` when it has
    one (synthetic datasets record their renderer's source hash there).
    """
    params: dict[str, Any] = {}
    content: dict[str, str] = {}
    for k, v in sorted(vars(ds).items()):
        if k.startswith("_"):
            continue
        if k == "transform":
            params[k] = _describe(v)
        elif v is None or isinstance(v, (str, int, float, bool)):
            params[k] = v
        elif isinstance(v, PurePath):
            params[k] = str(v)
        elif dataclasses.is_dataclass(v) and not isinstance(v, type):
            params[k] = json.loads(json.dumps(dataclasses.asdict(v), default=str))
        elif isinstance(v, torch.Tensor):
            params[k] = v.tolist()
        elif isinstance(v, np.ndarray):
            content[k] = _sha(np.ascontiguousarray(v).tobytes() + str(v.dtype).encode())
        elif isinstance(v, (list, tuple)):
            content[k] = _sha(repr(v).encode())
    ident: dict[str, Any] = {"class": f"{type(ds).__module__}.{type(ds).__qualname__}", "length": len(ds),
                             "params": params, "content": content}
    list_file = getattr(ds, "list_file", None)
    if isinstance(list_file, PurePath) and Path(list_file).is_file():
        content["list_file"] = _sha(Path(list_file).read_bytes())
    root = getattr(ds, "root", None)
    if root is not None and (Path(root) / "index.json").is_file():
        ident["root_index"] = _sha((Path(root) / "index.json").read_bytes())
    return ident


def _module_file(obj: Any) -> str | None:
    """``obj``'s defining module as a path relative to the ``mdlearn`` package (None outside it)."""
    try:
        path = Path(inspect.getsourcefile(type(obj) if not inspect.isroutine(obj) else obj) or "").resolve()
        return str(path.relative_to(Path(jobs.__file__).resolve().parent))
    except (TypeError, ValueError):
        return None


def _expected(source: Dataset, size: tuple[int, int], resize: Callable) -> tuple[dict[str, Any], str]:
    """The manifest ``spec`` of a cache of ``source`` and the hash of the modules that make its bytes."""
    spec = {"size": [int(size[0]), int(size[1])], "resize": _describe(resize), "source": dataset_identity(source),
            "depth_dtype": np.dtype(DEPTH_DTYPE).name}
    modules = {"data/formats.py", "data/sample.py"} | {m for m in (_module_file(source), _module_file(resize)) if m}
    return spec, jobs.source_hash(sorted(modules))


def is_current(folder: str | os.PathLike, spec: dict[str, Any], sources: str | None = None) -> bool:
    """Whether ``folder`` (one split) holds a complete cache of this version made with ``spec`` (and ``sources``)."""
    folder = Path(folder)
    return (all((folder / f).is_file() for f in _FILES)
            and jobs.is_current(folder, CACHE_FORMAT, spec=spec, sources=sources, version=CACHE_VERSION))


def _default_resize(source: Dataset, size: tuple[int, int]) -> Callable:
    """``nyu_paper_input(size)`` for dense depth; sparse (KITTI) depth must name its resize."""
    if len(source) and str(source[0].get("dataset", "")).startswith("kitti"):
        raise UsageError(f"{type(source).__name__}: sparse KITTI depth needs a sparse-aware resize; pass "
                         "resize=mdlearn.data.transforms.kitti_paper_input() (and its size)")
    return nyu_paper_input((int(size[0]), int(size[1])))


def _split_of(source: Dataset) -> str:
    split = getattr(source, "split", None)
    if isinstance(split, str):
        return split
    first = source[0]
    return str(first.get("split", "train")) if isinstance(first, dict) else "train"


class _Resized(Dataset):
    """The source's samples through the resize (what the cache stores), for a ``DataLoader``."""

    def __init__(self, source: Dataset, resize: Callable):
        self.source, self.resize = source, resize

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.resize(self.source[i])


def _unbatched(sample: Any) -> Any:
    return sample


def write_cache(source: Dataset, out: str | os.PathLike, size: tuple[int, int], resize: Callable | None = None,
                split: str | None = None, overwrite: bool = False, workers: int = 0, progress: bool = True) -> Path:
    """Write ``source`` resized to ``size = (h, w)`` into ``out/<split>`` (see the module docstring).

    Introduced in Chapter 5. ``resize`` maps a sample to one of ``size`` (default
    :func:`~mdlearn.data.transforms.nyu_paper_input` at ``size``, the on-the-fly path's resize, so
    cached and decoded samples are the same; KITTI sources must pass
    :func:`~mdlearn.data.transforms.kitti_paper_input`); ``split`` defaults to the source's. ``workers`` processes decode and
    resize (a ``DataLoader``; 0 = this process), in order. Complete or absent: the split
    folder is staged and renamed when every sample is written. Raises
    :class:`~mdlearn.errors.UsageError` if ``out/<split>`` is occupied and ``overwrite`` is false,
    :class:`~mdlearn.errors.FormatError` if a resized sample is not ``size``. Returns ``out``.
    """
    from tqdm.auto import tqdm

    h, w = int(size[0]), int(size[1])
    if h < 1 or w < 1:
        raise UsageError(f"cache size must be positive (h, w), got {tuple(size)}")
    resize = resize if resize is not None else _default_resize(source, (h, w))
    split = split or _split_of(source)
    out = Path(out)
    target = jobs.check_output_folder(out / split, CACHE_FORMAT, overwrite)
    n = len(source)
    spec, sources = _expected(source, (h, w), resize)
    with jobs.staged_folder(target) as tmp:
        images = np.lib.format.open_memmap(tmp / "images.npy", mode="w+", dtype=np.uint8, shape=(n, 3, h, w))
        depth = np.lib.format.open_memmap(tmp / "depth.npy", mode="w+", dtype=DEPTH_DTYPE, shape=(n, 1, h, w))
        intrinsics = np.zeros((n, 4), np.float64)
        meta: dict[str, list[str]] = {"name": [], "dataset": [], "split": [], "gt": []}
        loader = torch.utils.data.DataLoader(_Resized(source, resize), batch_size=None, shuffle=False,
                                             num_workers=max(0, int(workers)), collate_fn=_unbatched)
        for i, sample in enumerate(tqdm(loader, total=n, desc=f"cache {split} -> {out.name}", unit="sample",
                                        disable=not progress)):
            check_sample(sample, where=f"{type(source).__name__}[{i}] after {type(resize).__name__}")
            if tuple(sample["image"].shape[-2:]) != (h, w):
                raise FormatError(f"{type(source).__name__}[{i}]: the resize gave {tuple(sample['image'].shape[-2:])}, "
                                  f"not the cache size {(h, w)}")
            images[i] = sample["image"].mul(255.0).round_().clamp_(0, 255).to(torch.uint8).numpy()
            depth[i] = sample["depth"].numpy().astype(DEPTH_DTYPE)
            intrinsics[i] = sample["intrinsics"].numpy()
            for k in meta:
                meta[k].append(sample[k])
        images.flush()
        depth.flush()
        del images, depth
        np.save(tmp / "intrinsics.npy", intrinsics)
        (tmp / "meta.json").write_text(json.dumps(meta))
        jobs.write_manifest(tmp, CACHE_FORMAT, spec, sources, version=CACHE_VERSION, split=split, count=n)
    return out


def ensure_cache(source: Dataset, out: str | os.PathLike, size: tuple[int, int] = (240, 320),
                 resize: Callable | None = None, split: str | None = None, workers: int = 0,
                 progress: bool = True) -> Path:
    """Make ``out/<split>`` a current cache of ``source`` at ``size = (h, w)``; return ``out``.

    Introduced in Chapter 5. A cache made from the same source (class, parameters, list
    content, synthetic index), the same resize and this cache version is reused without
    rewriting; an mdlearn cache that differs is regenerated; anything else in the way is a
    :class:`~mdlearn.errors.UsageError`. Then ``CachedDataset(out, split)`` serves it.
    """
    resize = resize if resize is not None else _default_resize(source, size)
    split = split or _split_of(source)
    target = Path(out) / split
    expected = _expected(source, size, resize)
    if is_current(target, *expected):
        return Path(out)
    with jobs.exclusive(target):  # another process writing the same cache finishes first
        if is_current(target, *expected):
            return Path(out)
        ours = jobs.made_by(target) == CACHE_FORMAT
        return write_cache(source, out, size, resize=resize, split=split, overwrite=ours, workers=workers,
                           progress=progress)


class CachedDataset(Dataset):
    """The samples of a cache written by :func:`ensure_cache`, in the format of ``make_sample`` (Chapter 5).

    Args:
        path: the cache folder (``out`` of :func:`ensure_cache`).
        split: which split's subfolder to read.
        transform: applied to each sample (e.g. :func:`mdlearn.data.augment.paper_augmentation`).

    The arrays are memory-mapped (opened lazily, once per ``DataLoader`` worker): a sample costs
    two small copies and a dtype conversion, no decoding.
    """

    def __init__(self, path: str | os.PathLike, split: str = "train", transform: Callable | None = None):
        self.root, self.split = Path(path), split
        self.folder = self.root / split
        splits = sorted(p.name for p in self.root.iterdir() if jobs.made_by(p) == CACHE_FORMAT) \
            if self.root.is_dir() else []
        if splits and split not in splits:
            raise UsageError(f"{self.root}: no split {split!r} in this cache; it holds {', '.join(splits)}")
        try:
            index = jobs.read_manifest(self.folder, CACHE_FORMAT)
        except FormatError as e:
            raise FormatError(f"{self.folder}: not an mdlearn cache ({e}); expected <split>/{INDEX_NAME} with "
                              f"{', '.join(_FILES)}, as ensure_cache writes") from None
        if index.get("version") != CACHE_VERSION:
            raise FormatError(f"{self.folder}: cache version {index.get('version')}, this mdlearn reads "
                              f"{CACHE_VERSION}; regenerate it with ensure_cache")
        missing = [f for f in _FILES if not (self.folder / f).is_file()]
        if missing:
            raise FormatError(f"{self.folder}: incomplete cache, missing {missing}")
        self.index = index
        self.meta = json.loads((self.folder / "meta.json").read_text())
        self.intrinsics = np.load(self.folder / "intrinsics.npy")
        self.size = tuple(index["spec"]["size"])
        self.transform = transform
        self._images: np.ndarray | None = None
        self._depth: np.ndarray | None = None
        if len(self.meta["name"]) != index["count"] or len(self.intrinsics) != index["count"]:
            raise FormatError(f"{self.folder}: meta.json / intrinsics.npy disagree with the {index['count']} samples "
                              f"of {INDEX_NAME}")

    def __len__(self) -> int:
        return int(self.index["count"])

    def __repr__(self) -> str:
        return dataset_repr(self, self.root, self.split, size_hw=self.size)

    def __getitem__(self, i: int) -> dict[str, Any]:
        if self._images is None:
            self._images = np.load(self.folder / "images.npy", mmap_mode="r")
            self._depth = np.load(self.folder / "depth.npy", mmap_mode="r")
        h, w = self.size
        image = torch.from_numpy(np.array(self._images[i])).float().div_(255.0)
        depth = torch.from_numpy(self._depth[i].astype(np.float32))
        K = CameraIntrinsics(self.intrinsics[i], canvas_size=(h, w))
        sample = make_sample(image, depth, K, name=self.meta["name"][i], dataset=self.meta["dataset"][i],
                             split=self.meta["split"][i], gt=self.meta["gt"][i])
        return self.transform(sample) if self.transform is not None else sample
