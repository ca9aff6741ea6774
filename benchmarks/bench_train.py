"""Training throughput of the coarse and fine networks, as fractions of this machine's matmul rate.

Measured in one run, so the ratios are comparable across noisy machines:

* baseline: the dense float32 matrix-multiply rate (GFLOP/s) of a 2048x2048 ``torch.mm``;
* the coarse and the fine stage (forward + backward + optimiser step) at the paper's NYU input
  (304x228, or ``--size``): images/s and the achieved FLOP/s as a fraction of the baseline, with
  the FLOPs of one image counted from the real module's layer shapes (a convolution costs
  2·Cin·k²·Cout per output pixel, a linear layer 2·in·out; backward counted as twice forward);
* the end-to-end training rate (``Trainer`` fed by the memory-mapped cache + the paper's
  augmentation) as a ratio to the same ``Trainer`` fed random tensors already in memory (the
  issue's aim: at least 0.9).

Run: .venv/bin/python benchmarks/bench_train.py [--size 304x228] [--batch 8] [--steps 3]
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


def flops_per_image(model, stage: str) -> float:
    """Forward FLOPs of one image through the parts a stage runs (the fine stage runs both nets)."""
    from torch import nn

    total = 0.0
    shapes: dict[nn.Module, tuple] = {}

    def hook(mod, inp, out):
        shapes[mod] = tuple(out.shape)

    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    w, h = model.config.input_size
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, h, w), scale=stage)
    for hk in hooks:
        hk.remove()
    for m, s in shapes.items():
        if isinstance(m, nn.Conv2d):
            total += 2 * m.in_channels * m.kernel_size[0] * m.kernel_size[1] * m.out_channels * s[-1] * s[-2]
        else:
            total += 2 * m.in_features * m.out_features
    return total


def stage_rate(model, stage: str, batch: int, steps: int) -> float:
    """Images/s of forward + backward + SGD step for ``stage`` on random images (the bare model)."""
    from mdlearn.train import make_optimizer, masked_si_loss, set_stage

    set_stage(model, stage)
    model.train()
    opt = make_optimizer(model, stage)
    w, h = model.config.input_size
    x = torch.rand(batch, 3, h, w)
    rows, cols = model.output_grid()
    target = torch.rand(batch, 1, len(rows), len(cols)) + 1.0

    def step():
        opt.zero_grad(set_to_none=True)
        pred = model(x, scale=stage)
        masked_si_loss(pred, target, torch.ones_like(target, dtype=torch.bool)).mean().backward()
        opt.step()

    return batch / best_of(step, repeat=steps, warmup=1)


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
    args = ap.parse_args()
    from mdlearn.models import build_model

    w, h = (int(v) for v in args.size.lower().split("x"))
    peak = matmul_gflops()
    print(f"baseline: dense matmul {peak:.1f} GFLOP/s ({torch.get_num_threads()} threads)")
    for stage in ("coarse", "fine"):
        model = build_model("nyu", (w, h))
        fwd = flops_per_image(model, stage)
        trained = 3 * fwd if stage == "coarse" else fwd + 2 * flops_per_image(model, "fine") \
            - 2 * flops_per_image(model, "coarse")  # the frozen coarse net runs forward only
        ips = stage_rate(model, stage, args.batch, args.steps)
        print(f"{stage:6s} {w}x{h}: {ips:6.1f} images/s, {fwd / 1e9:.2f} GFLOP forward per image, "
              f"achieved {ips * trained / 1e9:.1f} GFLOP/s = {ips * trained / 1e9 / peak:.2f}x the matmul rate")
    real, fake = end_to_end(args.batch, args.samples)
    print(f"end to end (book input 152x114, cache + augmentation): {real:.1f} samples/s = "
          f"{real / fake:.2f}x the same Trainer on in-memory random samples ({fake:.1f}/s; aim >= 0.9)")


if __name__ == "__main__":
    main()
