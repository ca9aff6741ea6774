"""Benchmark: samples/s of the cached training path vs decoding PNGs on the fly, as ratios to a bare baseline (Chapter 5).

Run: ``.venv/bin/python benchmarks/bench_data_path.py [--views 16] [--repeats 3]``

Input: a synthetic indoor dataset at NYU's full 640x480 written to a temporary folder (the
same PNG encodings as the real NYU sync layout), served at the paper's 320x240 and augmented to
the 304x228 network input. Measured in the same run, one process, best of ``--repeats``:

* **baseline**: the paper augmentation applied to a sample already in memory (random tensors
  of the training size): what feeding the model costs when reading costs nothing;
* **cached**: :class:`~mdlearn.data.cache.CachedDataset` (memory-mapped uint8 / float16) +
  the augmentation;
* **on the fly**: the NYU sync ``Dataset`` (PNG decoding at 640x480) + the resize to 320x240 +
  the augmentation.

Every pass reseeds torch so that all paths draw the same scales and angles. Prints samples/s
and each path's time per sample as a ratio to the baseline (1.0 = reading is
free). The cache's goal: close to 1; the on-the-fly path shows what it saves.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from _timing import best_of  # noqa: E402  (this folder)
from mdlearn.data.augment import paper_augmentation  # noqa: E402
from mdlearn.data.cache import CachedDataset, ensure_cache  # noqa: E402
from mdlearn.data.nyu_dataset import NYUSyncDataset  # noqa: E402
from mdlearn.data.sample import make_sample  # noqa: E402
from mdlearn.data.transforms import nyu_paper_input  # noqa: E402
from mdlearn.synthetic.nyu_sync import IndoorSpec, write_indoor_dataset  # noqa: E402

SIZE = (240, 320)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--views", type=int, default=16, help="views rendered (all in the train split)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    aug = paper_augmentation("nyu")
    resize = nyu_paper_input(SIZE)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        spec = IndoorSpec(rooms=1, views_per_room=args.views, seed=3, test_fraction=0.0, resolution=1.0)
        write_indoor_dataset(tmp / "indoor", spec, workers=1, progress=False)
        source = NYUSyncDataset(tmp / "indoor", "train")
        ensure_cache(source, tmp / "cache", size=SIZE, resize=resize, progress=False)
        cached = CachedDataset(tmp / "cache", "train")
        n = len(source)
        rng = np.random.default_rng(0)
        bare = [make_sample(rng.integers(0, 256, (*SIZE, 3), dtype=np.uint8),
                            rng.uniform(0.5, 10, SIZE).astype(np.float32), (259.4, 259.7, 162.8, 126.9),
                            name=f"r{i}", dataset="nyu-sync", split="train", gt="filled") for i in range(n)]

        def baseline() -> None:
            torch.manual_seed(0)  # every path draws the same augmentations (their cost depends on s)
            for s in bare:
                aug(s)

        def from_cache() -> None:
            torch.manual_seed(0)  # every path draws the same augmentations (their cost depends on s)
            for i in range(n):
                aug(cached[i])

        def on_the_fly() -> None:
            torch.manual_seed(0)  # every path draws the same augmentations (their cost depends on s)
            for i in range(n):
                aug(resize(source[i]))

        def read_cache() -> None:
            for i in range(n):
                cached[i]

        t_base = best_of(baseline, args.repeats, warmup=1) / n
        t_cache = best_of(from_cache, args.repeats, warmup=1) / n
        t_fly = best_of(on_the_fly, args.repeats, warmup=1) / n
        t_read = best_of(read_cache, args.repeats, warmup=1) / n
    print(f"bench_data_path: {n} samples, 640x480 PNG source -> {SIZE[1]}x{SIZE[0]} -> augmented 304x228, "
          "1 process, 1 thread")
    for label, t in (("baseline (augment only)", t_base), ("cached + augment", t_cache),
                     ("on the fly + augment", t_fly)):
        print(f"  {label:26s} {1 / t:8.1f} samples/s   ratio to baseline {t / t_base:5.2f}x")
    print(f"  {'cached read alone':26s} {1 / t_read:8.1f} samples/s   "
          f"on-the-fly / cached time {t_fly / t_cache:5.1f}x")


if __name__ == "__main__":
    main()
