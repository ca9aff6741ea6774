"""Benchmark: the scale-invariant loss and the test-set metrics (Chapter 4).

Run: ``.venv/bin/python benchmarks/bench_metrics.py [--images 654] [--threads N]``

Every figure is a ratio to a baseline measured in the same run on the same data, so results from
different machines can be compared:

* loss forward + backward vs ``torch.nn.functional.mse_loss(pred, target)`` on the same tensors
  (pure arithmetic, no log), and vs the same MSE on log depth (``mse_loss(pred, target.log())``,
  which pays for the log of the target as the loss must);
* the loss with ``check=False`` (no target validation, no NaN guard: no device syncs);
* a naive autograd implementation of Eq. 4, to show what the hand-written backward saves;
* the metrics of a 654-image NYU-sized (640x480) test set under ``nyu_eigen``, in seconds and as a
  ratio to one plain NumPy mean over the same arrays.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mdlearn.evaluation import nyu_eigen  # noqa: E402
from mdlearn.losses import scale_invariant_loss  # noqa: E402


def timed(fn, reps: int, warmup: int = 3, sync=lambda: None) -> float:
    """Median wall time of ``fn`` in seconds."""
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def naive_eq4(pred, target, lam=0.5):
    valid = target > 0
    d = torch.where(valid, pred - torch.log(torch.where(valid, target, 1.0)), 0.0).flatten(1)
    n = valid.flatten(1).sum(1).clamp(min=1)
    return ((d * d).sum(1) / n - lam * (d.sum(1) / n) ** 2).mean()


def bench_loss(device: torch.device, reps: int) -> None:
    sync = (lambda: torch.cuda.synchronize()) if device.type == "cuda" else (lambda: None)
    g = torch.Generator().manual_seed(0)
    print(f"\n== scale-invariant loss, forward + backward, on {device} ({torch.get_num_threads()} CPU threads) ==")
    print(f"{'batch shape':>20} {'MSE ms':>8} {'SI loss':>8} {'/ MSE':>6} {'/ logMSE':>8} "
          f"{'no checks':>10} {'naive autograd':>15}")
    for shape in ((32, 1, 55, 74), (32, 1, 27, 142), (8, 1, 228, 304)):
        target = (torch.rand(shape, generator=g) * 9.5 + 0.5)
        target_sparse = target.clone()
        target_sparse[torch.rand(shape, generator=g) < 0.25] = 0.0  # a quarter missing, like NYU raw
        target, target_sparse = target.to(device), target_sparse.to(device)
        pred = torch.randn(shape, generator=g).to(device).requires_grad_()

        def run(loss_fn):
            def step():
                pred.grad = None
                loss_fn().backward()
            return timed(step, reps, sync=sync)

        t_mse = run(lambda: F.mse_loss(pred, target))
        t_logmse = run(lambda: F.mse_loss(pred, target.log()))
        t_si = run(lambda: scale_invariant_loss(pred, target_sparse))
        t_si_nocheck = run(lambda: scale_invariant_loss(pred, target_sparse, check=False))
        t_naive = run(lambda: naive_eq4(pred, target_sparse))
        print(f"{str(shape):>20} {t_mse * 1e3:8.3f} {t_si * 1e3:8.3f} {t_si / t_mse:6.2f} {t_si / t_logmse:8.2f} "
              f"{t_si_nocheck / t_mse:9.2f}x {t_naive / t_mse:14.2f}x")
    print("columns: '/ MSE' = SI loss time / mse_loss(pred, target); '/ logMSE' = / mse_loss(pred, target.log());"
          " 'no checks' and 'naive autograd' also relative to MSE")


def bench_metrics(n_images: int) -> None:
    print(f"\n== metrics of a {n_images}-image NYU-sized test set (640x480), protocol nyu_eigen ==")
    g = np.random.default_rng(0)
    k = 8  # distinct images, cycled (keeps memory small); every image is still evaluated in full
    gts, preds = [], []
    for _ in range(k):
        gt = g.uniform(0.5, 9.5, (480, 640)).astype(np.float32)
        gt[g.random((480, 640)) < 0.25] = 0.0
        gts.append(gt)
        preds.append((np.where(gt > 0, gt, 3.0) * np.exp(g.normal(0.05, 0.2, gt.shape))).astype(np.float32))
    order = [i % k for i in range(n_images)]

    t0 = time.perf_counter()
    for i in order:
        float(np.mean(preds[i]))
    t_mean = time.perf_counter() - t0

    t0 = time.perf_counter()
    result = nyu_eigen.evaluate((preds[i] for i in order), (gts[i] for i in order))
    t_eval = time.perf_counter() - t0

    t0 = time.perf_counter()
    for i in order:
        np.abs(preds[i].astype(np.float64) - gts[i]).mean()
    t_absdiff = time.perf_counter() - t0

    print(f"baseline np.mean over the same {n_images} predictions: {t_mean:.3f} s")
    print(f"baseline |pred - gt|.mean() in float64:               {t_absdiff:.3f} s")
    print(f"nyu_eigen.evaluate (crop, caps, clamp, 9 metrics):   {t_eval:.3f} s  "
          f"= {t_eval / t_mean:.1f}x np.mean, {t_eval / t_absdiff:.1f}x |pred - gt|.mean(), "
          f"{1e3 * t_eval / n_images:.1f} ms per image")
    print(f"({result.n_images} images, {result.n_pixels} valid pixels; delta1 {result.metrics['delta1']:.3f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=654, help="test-set size for the metrics benchmark")
    ap.add_argument("--reps", type=int, default=30, help="repetitions per loss timing (median reported)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (default 1: stable timings on a shared machine; 0 = torch default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, numpy {np.__version__}")
    bench_loss(torch.device("cpu"), args.reps)
    if torch.cuda.is_available():
        bench_loss(torch.device("cuda"), args.reps)
    bench_metrics(args.images)


if __name__ == "__main__":
    main()
