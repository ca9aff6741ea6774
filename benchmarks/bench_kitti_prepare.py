"""Speed of ``mdlearn prepare kitti-raw`` and of the synthetic KITTI drives (Chapter 3).

Prints, each against a baseline measured in this same run (machines here are noisy, so only
ratios are comparable across runs):

* prepare: frames/s of ``prepare_kitti_raw`` (one process; both cameras; project, resolve
  conflicts by time, write two uint16 PNGs) as a ratio to *decoding the same files*: the two
  camera PNGs and the Velodyne ``.bin`` of each frame. Target: no more than 3x.
* prepare with 2 processes, as a ratio to one;
* synthetic drives: frames/s of the street renderer + simulated HDL-64E + writer, as a ratio to
  the same decoding baseline.

Data: one synthetic drive at KITTI's full 1242x375 with a 2,000-column scanner (about 125k points a
scan, like the real ~120k), written to a temporary folder, plus three hard-linked copies of it
(four drives) for the decode and prepare measurements.

Run: .venv/bin/python benchmarks/bench_kitti_prepare.py [--frames N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

# only what the prepare workers need at module level: spawned workers re-import this script
from _timing import best_of
from mdlearn.data.formats import read_rgb
from mdlearn.data.kitti import find_drives, read_velodyne
from mdlearn.data.kitti_prepare import prepare_kitti_raw


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=16, help="frames of the benchmark drive")
    args = ap.parse_args()
    import torch

    from mdlearn.synthetic.kitti_raw import KittiRawSpec, write_kitti_raw

    torch.set_num_threads(1)
    n = args.frames
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        spec = KittiRawSpec(drives=1, frames_per_drive=n, seed=3, resolution=1.0, azimuth_steps=2000)
        t = time.perf_counter()
        write_kitti_raw(tmp / "raw", spec, workers=1, progress=False)
        t_synth = (time.perf_counter() - t) / n
        first = find_drives(tmp / "raw")[0]
        for k in range(2, 5):  # three hard-linked copies: enough frames to pay for worker start-up
            shutil.copytree(first.path, first.path.with_name(first.name.replace("0001", f"000{k}")),
                            copy_function=os.link)
        drives = find_drives(tmp / "raw")
        points = len(read_velodyne(first.velodyne_path(0)))
        n = sum(len(d.frames) for d in drives)

        def decode():
            for d in drives:
                for f in d.frames:
                    read_rgb(d.image_path(f, "image_02"))
                    read_rgb(d.image_path(f, "image_03"))
                    read_velodyne(d.velodyne_path(f))

        t_decode = best_of(decode, 3) / n

        def prepare(workers):
            def run():
                shutil.rmtree(tmp / "prep", ignore_errors=True)
                prepare_kitti_raw(tmp / "raw", tmp / "prep", workers=workers, progress=False)
            return run

        t_prep1 = best_of(prepare(1), 3) / n
        t_prep2 = best_of(prepare(2), 2) / n

    print(f"decode baseline (2 camera PNGs + .bin, 1242x375, {points} points): {1 / t_decode:6.1f} frames/s")
    ratio = t_prep1 / t_decode
    print(f"prepare kitti-raw, 1 process, both cameras: {1 / t_prep1:6.1f} frames/s "
          f"= {ratio:.2f}x the decode time (target <= 3x: {'OK' if ratio <= 3 else 'OVER'})")
    print(f"prepare kitti-raw, 2 processes: {1 / t_prep2:6.1f} frames/s = {t_prep1 / t_prep2:.2f}x one process "
          f"(includes process start-up; {n} frames)")
    print(f"synthetic drive (2 renders + one sweep + writing), 1 process: {1 / t_synth:6.2f} frames/s "
          f"= {t_synth / t_decode:.1f}x the decode time")


if __name__ == "__main__":
    main()
