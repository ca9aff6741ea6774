"""Speed of the synthetic indoor world (Chapter 1).

Prints, each against a baseline measured in this same run (machines here are noisy, so only
ratios are comparable across runs):

* render: frames/s of the ray caster at 640x480 on one thread, as a ratio to encoding the
  same view's two PNG files (the I/O floor every view pays anyway);
* the whole per-view pipeline (pose sampling, rendering, writing) as a ratio to the render;
* `write_indoor_dataset` with one process per core as a ratio to one process, and the projected
  time for the book's default set.

Run: .venv/bin/python benchmarks/bench_synth_indoor.py [--views N]
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from _timing import best_of
from mdlearn.camera import NYU_RGB
from mdlearn.datasets import DATASETS
from mdlearn.synthetic.nyu_sync import IndoorSpec, _render_room, write_indoor_dataset
from mdlearn.synthetic.indoor import render, sample_pose, sample_room


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--views", type=int, default=8, help="views per measurement")
    args = ap.parse_args()
    torch.set_num_threads(1)

    rooms = [sample_room(2014, i) for i in range(args.views)]
    poses = [sample_pose(r, np.random.default_rng(i)) for i, r in enumerate(rooms)]
    frames = [render(r, p, NYU_RGB) for r, p in zip(rooms, poses)]  # warm-up and data for the baseline

    def render_all():
        for r, p in zip(rooms, poses):
            render(r, p, NYU_RGB)

    def encode_all():
        for rgb, depth in frames:
            Image.fromarray(rgb).save(io.BytesIO(), format="PNG", compress_level=1)
            Image.fromarray(np.rint(depth * 1000).astype(np.uint16)).save(io.BytesIO(), format="PNG", compress_level=1)

    t_render = best_of(render_all, 3) / args.views
    t_encode = best_of(encode_all, 3) / args.views
    print(f"render 640x480, 1 thread: {1 / t_render:6.1f} frames/s  "
          f"= {t_render / t_encode:.2f}x the time to encode the view's two PNGs ({1 / t_encode:.1f} views/s)")

    # the whole per-view pipeline in one process: pose sampling (with its previews), render, write
    spec1 = IndoorSpec(rooms=1, views_per_room=args.views, seed=7)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        _render_room((spec1, 0, tmp))
        t_view = (time.perf_counter() - t) / args.views
    print(f"pose + render + write, 1 process: {1 / t_view:6.1f} views/s "
          f"= {t_view / t_render:.2f}x the render alone")

    workers = os.cpu_count() or 1
    spec = IndoorSpec(rooms=2 * workers, views_per_room=args.views, seed=99)
    n = spec.rooms * spec.views_per_room
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        write_indoor_dataset(Path(tmp) / "bench", spec, workers=workers, progress=False)
        elapsed = time.perf_counter() - t
    startup = max(0.0, elapsed - n * t_view / workers)
    print(f"write_indoor_dataset, {workers} processes, {n} views: {n / elapsed:6.1f} views/s "
          f"= {(n / elapsed) * t_view:.2f}x one process (includes {startup:.1f} s of process start-up)")
    default = DATASETS["indoor"].spec
    n_default = default.rooms * default.views_per_room
    projected = n_default * t_view / workers + startup
    print(f"projected time for the default set ({n_default} views on {workers} cores): {projected / 60:.1f} min "
          f"(budget 5 min: {'OK' if projected < 300 else 'OVER'})")


if __name__ == "__main__":
    main()
