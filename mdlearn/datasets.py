"""The book's named datasets: what ``mdlearn data list`` shows and ``mdlearn data ensure`` makes (Chapter 1).

A named dataset is a synthetic world with fixed settings, generated into ``data/<name>``
(:func:`mdlearn.paths.data_dir`) once and regenerated only when the code that makes its pixels
changes. Every dataset a chapter generates is registered here, and the chapters take theirs by
name (their presets in :mod:`mdlearn.course.presets` name it):

* ``indoor``, ``indoor-smoke`` -- the indoor world in NYU's sync layout (Chapters 1 and 4);
* ``nyu-raw-smoke``, ``nyu-raw-book``, ``nyu-raw-full`` -- a simulated hand-held Kinect writing
  NYU's raw dump (Chapter 2);
* ``kitti-raw-smoke``, ``kitti-raw-book``, ``kitti-raw-full`` -- the street world written in the
  KITTI raw layout (Chapter 3).

>>> get_dataset("nyu-raw-book").spec.scenes
3
>>> sorted({d.chapter for d in DATASETS.values()})
[1, 2, 3]
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError
from .paths import data_dir
from .synthetic.kitti_raw import KittiRawSpec, ensure_kitti_raw
from .synthetic.kitti_raw import is_complete as _kitti_raw_complete
from .synthetic.nyu_raw import KinectSpec, ensure_nyu_raw
from .synthetic.nyu_raw import is_complete as _nyu_raw_complete
from .synthetic.nyu_sync import IndoorSpec, ensure_indoor_dataset
from .synthetic.nyu_sync import is_complete as _indoor_complete

__all__ = ["NamedDataset", "DATASETS", "get_dataset", "dataset_spec", "ensure_dataset"]

Spec = IndoorSpec | KinectSpec | KittiRawSpec


@dataclass(frozen=True)
class NamedDataset:
    """One registered dataset: its ``name`` (= folder under the data folder), ``spec`` and makers.

    Introduced in Chapter 1. ``ensure_fn(out, spec, workers=..., progress=...)`` generates the
    dataset unless it is complete and current; ``complete_fn(out, spec)`` says whether it is.
    """

    name: str
    spec: Spec
    chapter: int
    description: str
    ensure_fn: Callable
    complete_fn: Callable[[Path, Spec], bool]

    def path(self, root: str | os.PathLike | None = None) -> Path:
        """Where the dataset lives: ``root / name``, ``root`` defaulting to :func:`mdlearn.paths.data_dir`."""
        return Path(root if root is not None else data_dir()) / self.name

    def is_ready(self, root: str | os.PathLike | None = None) -> bool:
        """Whether the folder holds this dataset, generated from this spec by the current code."""
        return bool(self.complete_fn(self.path(root), self.spec))

    def ensure(self, root: str | os.PathLike | None = None, workers: int | None = None,
               progress: bool = True) -> Path:
        """Generate the dataset unless it is ready; return its folder."""
        if workers is not None and workers < 1:
            raise UsageError(f"--workers must be at least 1, got {workers}")
        from .jobs import exclusive

        out = self.path(root)
        kwargs = {"progress": progress} | ({"workers": workers} if workers is not None else {})
        with exclusive(out):  # another process making the same folder finishes first
            self.ensure_fn(out, self.spec, **kwargs)
        return out

    def summary(self) -> str:
        """One line for ``mdlearn data list``: name, chapter and what the spec makes."""
        s = self.spec
        if isinstance(s, IndoorSpec):
            what = f"{s.rooms} rooms x {s.views_per_room} views"
        elif isinstance(s, KinectSpec):
            what = f"{s.scenes} scenes x {s.frames_per_scene} depth frames"
        else:
            what = f"{s.drives} drives x {s.frames_per_drive} frames"
        return f"ch. {self.chapter}  {what}, resolution {s.resolution:g}, seed {s.seed}: {self.description}"


def _indoor(name: str, spec: IndoorSpec, chapter: int, description: str) -> NamedDataset:
    return NamedDataset(name, spec, chapter, description, ensure_indoor_dataset, _indoor_complete)


def _nyu_raw(preset: str, scenes: int, frames: int, resolution: float) -> NamedDataset:
    spec = KinectSpec(scenes=scenes, frames_per_scene=frames, seed=2014, resolution=resolution)
    return NamedDataset(f"nyu-raw-{preset}", spec, 2, f"simulated Kinect, NYU raw dump (preset {preset})",
                        ensure_nyu_raw, _nyu_raw_complete)


def _kitti_raw(preset: str, drives: int, frames: int, resolution: float, azimuth_steps: int) -> NamedDataset:
    spec = KittiRawSpec(drives=drives, frames_per_drive=frames, seed=2014, resolution=resolution,
                        azimuth_steps=azimuth_steps)
    return NamedDataset(f"kitti-raw-{preset}", spec, 3, f"street world, KITTI raw layout (preset {preset})",
                        ensure_kitti_raw, _kitti_raw_complete)


#: Every dataset the book generates, by name. ``indoor`` is the embedded default (``make book`` /
#: ``make test`` generate it into ``data/indoor``): 60 rooms x 38 views, 54 training rooms (2,052
#: views) and 6 test rooms (228 views) at 640x480.
DATASETS: dict[str, NamedDataset] = {d.name: d for d in (
    _indoor("indoor-smoke", IndoorSpec(rooms=4, views_per_room=3, seed=2014, test_fraction=0.25), 1,
            "indoor world, NYU sync layout (smoke runs)"),
    _indoor("indoor", IndoorSpec(rooms=60, views_per_room=38, seed=2014, test_fraction=0.1), 1,
            "indoor world, NYU sync layout (the book's default)"),
    _nyu_raw("smoke", 1, 8, 0.25),
    _nyu_raw("book", 3, 24, 0.5),
    _nyu_raw("full", 8, 60, 1.0),
    _kitti_raw("smoke", 2, 8, 0.25, 1000),
    _kitti_raw("book", 4, 30, 0.5, 2000),
    _kitti_raw("full", 8, 100, 1.0, 4000),
)}


def get_dataset(name: str) -> NamedDataset:
    """The registered dataset ``name``; :class:`~mdlearn.errors.UsageError` for an unknown name (Chapter 1)."""
    try:
        return DATASETS[name]
    except KeyError:
        raise UsageError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}") from None


def dataset_spec(name: str) -> Spec:
    """The spec of a named dataset (an :class:`~mdlearn.synthetic.nyu_sync.IndoorSpec` for the indoor sets)."""
    return get_dataset(name).spec


def ensure_dataset(name: str, root: str | os.PathLike | None = None, workers: int | None = None,
                   progress: bool = True) -> Path:
    """Generate the named dataset unless it is ready, and return its folder (Chapter 1)."""
    return get_dataset(name).ensure(root, workers=workers, progress=progress)
