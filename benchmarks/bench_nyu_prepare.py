"""Benchmark: ``prepare nyu-raw`` throughput as a ratio to merely decoding the same raw files (Chapter 2).

Run: ``.venv/bin/python benchmarks/bench_nyu_prepare.py [--frames 40] [--repeats 3]``

Input: one scene folder of 640x480 raw frames. With the real samples in ``../shared/data`` it is
the genuine NYU raw frame pair (``NYU_color.ppm``/``NYU_depth.pgm``) copied under ``--frames``
RGB/depth timestamps 1/20 s apart (every pair one-to-one); without them, a simulated scene.

Measured in the same run, on the same files, best of ``--repeats``:

* **decode**: read every kept RGB and depth frame into arrays (``read_kinect_ppm`` +
  ``read_kinect_disparity``), one process;
* **decode + encode**: the same, plus writing each frame's outputs without any processing (the
  raw RGB as JPEG, the unregistered depth as a millimetre PNG): the I/O floor of any pipeline
  that writes the sync layout, one process;
* **prepare**: the whole ``prepare_nyu_raw`` (listing, synchronisation, undistortion,
  registration, min/max masking, writing JPEG + PNG, reports), with 1 and with 2 workers.

Prints frames/s of each and the ratios of prepare's time to decode's (how many times longer the
pipeline takes than decoding alone; the issue's target is at most 3) and to the I/O floor.

Why the first ratio is large: a raw PPM/PGM frame is uncompressed, so "decoding" it is a header
parse and a copy (well under a millisecond for both frames), while any pipeline that writes the
sync layout must at least encode a JPEG and a 16-bit PNG per frame, which alone costs tens of
times more. The ratio to the I/O floor shows what undistortion + registration add on top.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _timing import best_of  # noqa: E402  (this folder)
from mdlearn.data.formats import write_depth_png_mm, write_rgb  # noqa: E402
from mdlearn.data.kinect import (disparity_to_metres, format_raw_name, read_kinect_disparity,  # noqa: E402
                                 read_kinect_ppm)
from mdlearn.data.nyu import list_raw_scene, synchronise  # noqa: E402
from mdlearn.data.nyu_prepare import prepare_nyu_raw  # noqa: E402
from mdlearn.paths import shared_data_dir  # noqa: E402

SHARED = shared_data_dir() / "nyu" / "raw_frame"


def make_scene(root: Path, frames: int) -> str:
    scene = root / "raw" / "bench_scene"
    scene.mkdir(parents=True)
    if (SHARED / "NYU_depth.pgm").is_file():
        t0 = 1_300_000_000.0
        for i in range(frames):
            t = t0 + i / 20.0
            shutil.copyfile(SHARED / "NYU_color.ppm", scene / format_raw_name("r", t, 1000 + i))
            shutil.copyfile(SHARED / "NYU_depth.pgm", scene / format_raw_name("d", t + 0.004, 5000 + i))
        return "real NYU raw frame pair, copied"
    from mdlearn.synthetic.nyu_raw import KinectSpec, write_nyu_raw

    shutil.rmtree(scene.parent)
    write_nyu_raw(scene.parent, KinectSpec(scenes=1, frames_per_scene=frames, seed=1), progress=False)
    return "simulated scene (shared data absent)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        source = make_scene(tmp, args.frames)
        raw = tmp / "raw"
        scene = next(p for p in raw.iterdir() if p.is_dir())
        pairs = synchronise(list_raw_scene(scene)).pairs
        n = len(pairs)

        def decode() -> None:
            for p in pairs:
                read_kinect_ppm(scene / p["rgb"])
                read_kinect_disparity(scene / p["depth"])

        def decode_encode() -> None:
            out = tmp / "floor"
            out.mkdir(exist_ok=True)
            for k, p in enumerate(pairs):
                write_rgb(out / f"rgb_{k:05d}.jpg", read_kinect_ppm(scene / p["rgb"]))
                write_depth_png_mm(out / f"sync_depth_{k:05d}.png",
                                   disparity_to_metres(read_kinect_disparity(scene / p["depth"])))

        def prepare(workers: int) -> None:
            out = tmp / f"out{workers}"
            shutil.rmtree(out, ignore_errors=True)
            r = prepare_nyu_raw(raw, out, workers=workers, progress=False)
            assert r.counts["frames"] == n and not r.skipped, r.summary()

        def best(fn, *a) -> float:  # one warm-up call (file cache, lookup tables)
            return best_of(lambda: fn(*a), args.repeats, warmup=1)

        t_dec = best(decode)
        t_io = best(decode_encode)
        t_p1 = best(prepare, 1)
        t_p2 = best(prepare, 2)
    fps = lambda t: n / t  # noqa: E731
    print(f"bench_nyu_prepare: {n} frame pairs at 640x480 ({source})")
    print(f"  decode only          {fps(t_dec):8.1f} frames/s")
    print(f"  decode + encode      {fps(t_io):8.1f} frames/s   (I/O floor, 1 process)")
    for w, t in ((1, t_p1), (2, t_p2)):
        print(f"  prepare, {w} worker{'s' if w > 1 else ' '}   {fps(t):8.1f} frames/s   "
              f"ratio to decode {t / t_dec:6.1f}x (target <= 3x)   ratio to I/O floor {t / t_io:4.1f}x")


if __name__ == "__main__":
    main()
