"""What a training schedule costs: FLOPs per sample, and its wall time on a named GPU (Chapter 8).

Introduced in Chapter 8 and used by ``benchmarks/bench_train.py``. The FLOPs of one image are
counted from the real module's layer shapes (hooks record every convolution's and linear
layer's output size): a convolution costs ``2 * C_in * k_h * k_w * C_out`` per output pixel, a
linear layer ``2 * in * out``; pooling, ReLU and the loss are ignored (a few percent). Training
costs about three forward passes (forward, and a backward pass of twice the forward's work),
except for the frozen coarse network in the fine stage, which runs forward only.

:func:`schedule_estimate` turns that into a wall time: total FLOPs of a recipe's two stages
divided by an **assumed sustained fraction** of a GPU's published dense half-precision tensor
rate (:data:`GPU_PEAK_TFLOPS`). The fraction is an assumption, not a measurement: small
convolutional networks with batch 32 keep a modern GPU far from its peak, and the estimate says
which fraction it used. It is the compute bound only; the data pipeline (decoding and
augmenting on the CPU) can be the real limit, which Chapter 8 measures separately.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .errors import UsageError

__all__ = ["GPU_PEAK_TFLOPS", "forward_flops", "training_flops_per_sample", "schedule_estimate"]

#: Published dense FP16/BF16 tensor-core rates (TFLOP/s, without structured sparsity) and where
#: each figure comes from.
GPU_PEAK_TFLOPS: dict[str, tuple[float, str]] = {
    "T4": (65.0, "NVIDIA T4 datasheet: mixed precision (FP16/FP32) 65 TFLOPS"),
    "A100": (312.0, "NVIDIA A100 datasheet: BF16/FP16 Tensor Core 312 TFLOPS (624 with sparsity)"),
    "H100": (989.5, "NVIDIA H100 SXM datasheet: FP16/BF16 Tensor Core 1,979 TFLOPS with sparsity, half dense"),
    "RTX 4090": (165.2, "NVIDIA Ada Lovelace whitepaper: RTX 4090 FP16 tensor, FP32 accumulate, 165.2 TFLOPS "
                        "(330.4 with sparsity)"),
}


def forward_flops(model, scale: str) -> float:
    """Forward FLOPs of one image through what ``model(x, scale=scale)`` runs (``"coarse"``: the
    coarse network; ``"fine"``: both networks). Chapter 8."""
    if scale not in ("coarse", "fine"):
        raise UsageError(f"scale must be 'coarse' or 'fine', got {scale!r}")
    shapes: dict[nn.Module, tuple[int, ...]] = {}

    def hook(mod, inp, out):
        shapes[mod] = tuple(out.shape)

    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    w, h = model.config.input_size
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, 3, h, w), scale=scale)
    finally:
        for hk in hooks:
            hk.remove()
        model.train(was_training)
    total = 0.0
    for m, s in shapes.items():
        if isinstance(m, nn.Conv2d):
            k = m.kernel_size[0] * m.kernel_size[1]
            total += 2 * (m.in_channels // m.groups) * k * m.out_channels * s[-1] * s[-2]
        else:
            total += 2 * m.in_features * m.out_features
    return total


def training_flops_per_sample(model, stage: str) -> float:
    """FLOPs of one training sample in ``stage``: 3x the coarse forward pass (coarse stage), or the
    frozen coarse forward pass plus 3x the fine layers' (fine stage). Chapter 8."""
    coarse = forward_flops(model, "coarse")
    if stage == "coarse":
        return 3 * coarse
    if stage == "fine":
        return coarse + 3 * (forward_flops(model, "fine") - coarse)
    raise UsageError(f"stage must be 'coarse' or 'fine', got {stage!r}")


def schedule_estimate(recipe, gpu: str = "A100", fraction: float = 0.3) -> dict[str, Any]:
    """The compute-bound wall time of a recipe's two stages on ``gpu`` at ``fraction`` of its
    dense half-precision peak (an assumption the result repeats). Chapter 8.

    Returns a dict: ``flops_per_sample`` per stage, ``samples`` per stage, ``total_flops``,
    ``sustained_tflops``, ``seconds`` (total), ``gpu``, ``peak_tflops``, ``peak_source``,
    ``fraction``.
    """
    from .models import build_model

    if gpu not in GPU_PEAK_TFLOPS:
        raise UsageError(f"unknown GPU {gpu!r}; known: {', '.join(GPU_PEAK_TFLOPS)}")
    if not 0 < fraction <= 1:
        raise UsageError(f"the sustained fraction of the peak must lie in (0, 1], got {fraction}")
    h, w = recipe.input_size
    model = build_model(recipe.family, (w, h))
    per = {s: training_flops_per_sample(model, s) for s in ("coarse", "fine")}
    samples = {"coarse": recipe.coarse_samples, "fine": recipe.fine_samples}
    total = sum(per[s] * samples[s] for s in per)
    peak, source = GPU_PEAK_TFLOPS[gpu]
    sustained = peak * fraction
    return {"flops_per_sample": per, "samples": samples, "total_flops": total, "gpu": gpu,
            "peak_tflops": peak, "peak_source": source, "fraction": fraction, "sustained_tflops": sustained,
            "seconds": total / (sustained * 1e12)}
