"""Writing the synthetic indoor world to disk in the NYU Depth v2 "sync" layout (Chapter 1).

Layout written by :func:`write_indoor_dataset` (the layout BTS, AdaBins and ZoeDepth read)::

    OUT/
      index.json                   # spec, intrinsics, rooms with their split, every view's pose
      train_files_with_gt.txt      # "room/rgb_00000.png room/sync_depth_00000.png 518.8579"
      test_files_with_gt.txt
      <room name>/rgb_00000.png    # 640x480 sRGB
      <room name>/sync_depth_00000.png  # uint16 millimetres, 0 = invalid

Train and test are split **by room**: no room has views in both. The output is first written to
``OUT.partial-<pid>`` and renamed to ``OUT`` only when complete, so an interrupted run never
leaves a folder that looks finished.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..camera import NYU_RGB, Intrinsics
from ..data.formats import write_depth_png_mm, write_rgb
from ..errors import UsageError
from .. import jobs
from ..jobs import MANIFEST_NAME as INDEX_NAME
from ..jobs import check_count, check_output_folder, run_tasks, staged_folder

__all__ = ["IndoorSpec", "write_indoor_dataset", "ensure_indoor_dataset", "read_index", "is_complete",
           "source_hash", "INDEX_NAME"]

FORMAT_NAME = "mdlearn-indoor-sync"
FORMAT_VERSION = 1
_HIST_MAX_MM = 20000  # depth histogram range for the statistics (20 m in millimetre bins)
#: The modules the indoor pixels depend on (the layout itself is FORMAT_VERSION).
_SOURCES = ("synthetic/indoor.py", "synthetic/raycast.py", "synthetic/textures.py", "camera.py")


@dataclass(frozen=True)
class IndoorSpec:
    """What to generate: ``rooms`` rooms with ``views_per_room`` views each.

    Introduced in Chapter 1. ``resolution`` scales NYU's 640x480 (1.0 = full size),
    ``test_fraction`` of the rooms (at least one when there are two or more) go to the test split.
    """

    rooms: int
    views_per_room: int
    seed: int = 0
    test_fraction: float = 0.1
    resolution: float = 1.0
    rgb_format: str = "png"

    def validate(self) -> None:
        """Raise :class:`~mdlearn.errors.UsageError` for impossible values."""
        check_count("--rooms", self.rooms, 1)
        check_count("--views-per-room", self.views_per_room, 1)
        check_count("--seed", self.seed, 0)
        if not 0.0 <= self.test_fraction < 1.0:
            raise UsageError(f"--test-fraction must be in [0, 1), got {self.test_fraction}")
        if not 0.05 <= self.resolution <= 4.0:
            raise UsageError(f"--resolution must be between 0.05 and 4 (1 = 640x480), got {self.resolution}")
        if self.rgb_format not in ("png", "jpg"):
            raise UsageError(f"--rgb-format must be png or jpg, got {self.rgb_format!r}")

    @property
    def intrinsics(self) -> Intrinsics:
        """The camera every view is rendered with."""
        return NYU_RGB if self.resolution == 1.0 else NYU_RGB.scaled(self.resolution)

    def test_rooms(self) -> list[int]:
        """Indices of the rooms in the test split (deterministic in the seed)."""
        n_test = 0 if self.rooms < 2 or self.test_fraction == 0 else max(1, round(self.test_fraction * self.rooms))
        order = np.random.default_rng([self.seed, 0x7E57]).permutation(self.rooms)
        return sorted(int(i) for i in order[:n_test])


def source_hash() -> str:
    """Hash of the sources that determine the rendered pixels (renderer, textures, camera).

    Stored in ``index.json`` (the job manifest, :mod:`mdlearn.jobs`, which here also holds the
    dataset's views and poses) so that data made by an older renderer is recognised as stale.
    """
    return jobs.source_hash(_SOURCES)


def read_index(out: str | os.PathLike) -> dict:
    """The parsed ``index.json`` of a dataset folder (:class:`~mdlearn.errors.FormatError` if absent)."""
    return jobs.read_manifest(out, FORMAT_NAME)


def is_complete(out: str | os.PathLike, spec: IndoorSpec | None = None, check_source: bool = True) -> bool:
    """Whether ``out`` holds a finished dataset (matching ``spec`` and this renderer, if given)."""
    return jobs.is_current(out, FORMAT_NAME, None if spec is None else asdict(spec),
                           source_hash() if check_source else None, version=FORMAT_VERSION)


def _render_room(task: tuple[IndoorSpec, int, str]) -> dict:
    """Worker: render and write all views of one room; return its metadata and depth histogram."""
    import torch

    from .indoor import render_view, sample_room

    spec, room_index, tmp = task
    torch.set_num_threads(1)
    K = spec.intrinsics
    room = sample_room(spec.seed, room_index)
    room_dir = Path(tmp) / room.name
    room_dir.mkdir(parents=True, exist_ok=True)
    views, hist = [], np.zeros(_HIST_MAX_MM + 1, dtype=np.int64)
    for v in range(spec.views_per_room):
        view = render_view(spec.seed, room_index, v, K=K, room=room)
        rgb_name, depth_name = f"rgb_{v:05d}.{spec.rgb_format}", f"sync_depth_{v:05d}.png"
        write_rgb(room_dir / rgb_name, view.rgb)
        write_depth_png_mm(room_dir / depth_name, view.depth)
        mm = np.clip(np.rint(view.depth * 1000.0).astype(np.int64), 0, _HIST_MAX_MM)
        hist += np.bincount(mm.ravel(), minlength=_HIST_MAX_MM + 1)
        views.append({"rgb": f"{room.name}/{rgb_name}", "depth": f"{room.name}/{depth_name}",
                      "pose": np.round(view.pose, 9).tolist()})
    return {"index": room_index, "name": room.name, "size": list(room.size), "views": views, "hist": hist}


def _stats(hist: np.ndarray) -> dict:
    n = int(hist.sum())
    if n == 0:
        return {"pixels": 0}
    cdf = np.cumsum(hist) / n
    q = lambda p: float(np.searchsorted(cdf, p) / 1000.0)  # noqa: E731
    nz = np.nonzero(hist)[0]
    return {"pixels": n, "median_m": q(0.5), "p01_m": q(0.01), "p99_m": q(0.99),
            "min_m": float(nz[0] / 1000.0), "max_m": float(nz[-1] / 1000.0),
            "near_fraction_below_0.5m": float(hist[:500].sum() / n)}


def write_indoor_dataset(out: str | os.PathLike, spec: IndoorSpec, workers: int | None = None,
                         overwrite: bool = False, progress: bool = True) -> Path:
    """Render ``spec`` and write it to ``out`` in the NYU sync layout (see the module docstring).

    Introduced in Chapter 1; ``mdlearn synth indoor`` runs it. Uses ``workers`` processes
    (default: one per core, at most one per room). Raises :class:`~mdlearn.errors.UsageError` for
    impossible specs, an occupied ``out`` (unless ``overwrite``) or an unwritable location.
    """
    spec.validate()
    out = check_output_folder(Path(out).resolve(), FORMAT_NAME, overwrite)
    with staged_folder(out) as tmp:
        test_rooms = set(spec.test_rooms())
        tasks = [(spec, r, str(tmp)) for r in range(spec.rooms)]
        results = list(run_tasks(_render_room, tasks, workers=workers or os.cpu_count() or 1,
                                 desc=f"synth indoor -> {out.name}", unit="view",
                                 total=spec.rooms * spec.views_per_room, weight=lambda r: len(r["views"]),
                                 progress=progress))
        results.sort(key=lambda r: r["index"])
        K = spec.intrinsics
        hists = {"train": np.zeros(_HIST_MAX_MM + 1, np.int64), "test": np.zeros(_HIST_MAX_MM + 1, np.int64)}
        rooms, views, lists = [], [], {"train": [], "test": []}
        for res in results:
            split = "test" if res["index"] in test_rooms else "train"
            hists[split] += res["hist"]
            rooms.append({"index": res["index"], "name": res["name"], "size_m": res["size"], "split": split})
            for v in res["views"]:
                views.append({"room": res["name"], "split": split, **v})
                lists[split].append(f"{v['rgb']} {v['depth']} {K.fx:.4f}")
        for split, lines in lists.items():
            (tmp / f"{split}_files_with_gt.txt").write_text("".join(line + "\n" for line in lines))
        jobs.write_manifest(
            tmp, FORMAT_NAME, asdict(spec), source_hash(), version=FORMAT_VERSION,
            intrinsics=K.to_dict(),
            depth_encoding="uint16 PNG, millimetres, 0 = invalid; z-depth along the optical axis",
            pose_convention="world_from_camera 4x4; camera x right, y down, z forward; world y up",
            counts={"rooms": spec.rooms, "views": len(views), "train_views": len(lists["train"]),
                    "test_views": len(lists["test"]), "test_rooms": len(test_rooms)},
            depth_stats={split: _stats(h) for split, h in hists.items()},
            rooms=rooms, views=views)
    return out


def ensure_indoor_dataset(out: str | os.PathLike, spec: IndoorSpec, workers: int | None = None,
                          progress: bool = True) -> Path:
    """Generate ``spec`` into ``out`` unless a finished, up-to-date copy is already there.

    Introduced in Chapter 1. A folder made by an older version of the renderer, or with another
    spec, is regenerated if this writer made it; anything else in the way is an error. Returns ``out``.
    """
    out = Path(out)
    if is_complete(out, spec):
        return out
    return write_indoor_dataset(out, spec, workers=workers, overwrite=True, progress=progress)
