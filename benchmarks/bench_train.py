"""Training throughput of the coarse and fine networks, as fractions of this machine's matmul rate.

Measured in one run, so the ratios are comparable across noisy machines:

* baseline: the dense float32 matrix-multiply rate (GFLOP/s) of a 2048x2048 ``torch.mm``;
* the coarse and the fine stage (forward + backward + optimiser step) at the paper's NYU input
  (304x228, or ``--size``): images/s and the achieved FLOP/s as a fraction of the baseline, with
  the FLOPs of one image counted from the real module's layer shapes (a convolution costs
  2·Cin·k²·Cout per output pixel, a linear layer 2·in·out; backward counted as twice forward);
* the FLOP-based estimate of the ``full`` schedule (the paper's 2M coarse + 1.5M fine samples
  at 304x228) on named GPUs: FLOPs per training sample (:mod:`mdlearn.throughput`) times the
  samples, divided by an **assumed** sustained fraction (``--gpu-fraction``, default 0.3) of
  each GPU's published dense FP16/BF16 tensor rate; and the same schedule at the rates just
  measured on ``--device`` (a CUDA device measures under autocast, channels-last);
* the end-to-end training rate (``Trainer`` fed by the memory-mapped cache + the paper's
  augmentation) as a ratio to the same ``Trainer`` fed random tensors already in memory (the
  issue's aim: at least 0.9).

Run: .venv/bin/python benchmarks/bench_train.py [--size 304x228] [--batch 8] [--steps 3]
     [--device cuda] [--gpu-fraction 0.3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from _timing import best_of


def matmul_gflops(n: int = 2048) -> float:
    a, b = torch.rand(n, n), torch.rand(n, n)
    t = best_of(lambda: torch.mm(a, b), repeat=5, warmup=2)
    return 2 * n ** 3 / t / 1e9


def stage_rate(model, stage: str, batch: int, steps: int, device: str = "cpu") -> float:
    """Images/s of forward + backward + SGD step for ``stage`` on random images (the bare model).

    On CUDA: channels-last, float16 autocast with a GradScaler (what the Trainer does there), and
    a synchronisation at the end of every timed step."""
    from mdlearn.train import make_optimizer, masked_si_loss, set_stage

    cuda = device.startswith("cuda")
    set_stage(model, stage)
    model.to(device).train()
    if cuda:
        model.to(memory_format=torch.channels_last)
    opt = make_optimizer(model, stage)
    scaler = torch.amp.GradScaler("cuda", enabled=cuda)
    w, h = model.config.input_size
    x = torch.rand(batch, 3, h, w, device=device)
    if cuda:
        x = x.contiguous(memory_format=torch.channels_last)
    rows, cols = model.output_grid()
    target = torch.rand(batch, 1, len(rows), len(cols), device=device) + 1.0
    valid = torch.ones_like(target, dtype=torch.bool)

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.float16, enabled=cuda):
            pred = model(x, scale=stage)
        scaler.scale(masked_si_loss(pred.float(), target, valid).mean()).backward()
        scaler.step(opt)
        scaler.update()
        if cuda:
            torch.cuda.synchronize()

    return batch / best_of(step, repeat=steps, warmup=2 if cuda else 1)


def end_to_end(batch: int, samples: int) -> tuple[float, float]:
    """Samples/s of the Trainer on the cached + augmented data path vs on in-memory random samples."""
    from mdlearn.data.augment import paper_augmentation
    from mdlearn.data.cache import CachedDataset, ensure_cache
    from mdlearn.data.nyu_dataset import NYUSyncDataset
    from mdlearn.data.sample import make_sample
    from mdlearn.models import build_model
    from mdlearn.synthetic.nyu_sync import IndoorSpec, write_indoor_dataset
    from mdlearn.train import TrainConfig, Trainer, make_loader, make_optimizer

    size = (114, 152)  # the book recipe's input: the data path matters most when the model is small
    with tempfile.TemporaryDirectory() as tmp:
        root = write_indoor_dataset(Path(tmp) / "indoor", IndoorSpec(rooms=2, views_per_room=8, seed=1,
                                                                     test_fraction=0.5), workers=1,
                                    progress=False)
        cache = ensure_cache(NYUSyncDataset(root, "train"), Path(tmp) / "cache", size=(120, 160), progress=False)
        real = CachedDataset(cache, "train", transform=paper_augmentation("nyu", size))
        n = len(real)
        fake = [make_sample(torch.rand(3, *size), torch.rand(*size) + 1.0, (100.0, 100.0, 75.5, 56.5),
                            name=str(i), dataset="random", split="train", gt="filled") for i in range(n)]

        def rate(data) -> float:
            torch.manual_seed(0)
            model = build_model("nyu", (size[1], size[0]))
            trainer = Trainer(model, make_optimizer(model, "coarse", "adam"), make_loader(data, batch, seed=0),
                              TrainConfig(stage="coarse", samples=samples, batch_size=batch, log_every=10**6,
                                          progress=False), device="cpu")
            t = time.perf_counter()
            trainer.fit()
            return samples / (time.perf_counter() - t)

        rate(fake)  # warm-up
        return rate(real), rate(fake)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="304x228", help="network input WxH (default: the paper's NYU input)")
    ap.add_argument("--batch", type=int, default=8, help="images per step")
    ap.add_argument("--steps", type=int, default=3, help="timed steps per measurement (best of)")
    ap.add_argument("--samples", type=int, default=160, help="samples per end-to-end measurement")
    ap.add_argument("--device", default="cpu", help="where the stage rates are measured (cpu or cuda)")
    ap.add_argument("--gpu-fraction", type=float, default=0.3,
                    help="assumed sustained fraction of a GPU's dense tensor peak for the estimate")
    args = ap.parse_args()
    from mdlearn import recipes
    from mdlearn.models import build_model
    from mdlearn.throughput import GPU_PEAK_TFLOPS, forward_flops, schedule_estimate, training_flops_per_sample

    w, h = (int(v) for v in args.size.lower().split("x"))
    peak = matmul_gflops()
    print(f"baseline: dense matmul {peak:.1f} GFLOP/s on the CPU ({torch.get_num_threads()} threads)")
    rates = {}
    for stage in ("coarse", "fine"):
        model = build_model("nyu", (w, h))
        fwd = forward_flops(model, stage)
        trained = training_flops_per_sample(model, stage)  # the frozen coarse net runs forward only
        ips = rates[stage] = stage_rate(model, stage, args.batch, args.steps, args.device)
        print(f"{stage:6s} {w}x{h} on {args.device}: {ips:6.1f} images/s, {fwd / 1e9:.2f} GFLOP forward per "
              f"image, achieved {ips * trained / 1e9:.1f} GFLOP/s = {ips * trained / 1e9 / peak:.2f}x the CPU "
              "matmul rate")
    paper = recipes.get_recipe("paper")
    est = None
    for gpu in GPU_PEAK_TFLOPS:
        est = schedule_estimate(paper, gpu, args.gpu_fraction)
        print(f"full schedule (2M + 1.5M samples, {est['total_flops'] / 1e15:.1f} PFLOP) on one {gpu}, "
              f"compute-bound at an assumed {args.gpu_fraction:.0%} of {est['peak_tflops']:g} TFLOP/s: "
              f"{est['seconds'] / 60:.0f} min  [{est['peak_source']}]")
    if (w, h) == (304, 228):
        measured = paper.coarse_samples / rates["coarse"] + paper.fine_samples / rates["fine"]
        print(f"full schedule at the rates measured here on {args.device}: {measured / 3600:.1f} h "
              f"({measured / est['seconds']:.0f}x the last estimate above; data loading not included)")
    real, fake = end_to_end(args.batch, args.samples)
    print(f"end to end (book input 152x114, cache + augmentation): {real:.1f} samples/s = "
          f"{real / fake:.2f}x the same Trainer on in-memory random samples ({fake:.1f}/s; aim >= 0.9)")


if __name__ == "__main__":
    main()
