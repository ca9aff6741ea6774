"""mdlearn.throughput: FLOPs of a training sample and the compute-bound time of a schedule (Chapter 8)."""

import pytest
import torch

from mdlearn import recipes
from mdlearn.errors import UsageError
from mdlearn.models import build_model, layer_table
from mdlearn.throughput import GPU_PEAK_TFLOPS, forward_flops, schedule_estimate, training_flops_per_sample


def _by_hand(model, prefix: str) -> float:
    """2 x weights x output positions, from the layer table's output shapes."""
    shapes = {r["module"]: r["shape"] for r in layer_table(model)}
    total = 0.0
    for name, mod in model.named_modules():
        if not name.startswith(prefix):
            continue
        if isinstance(mod, torch.nn.Conv2d):
            total += 2 * mod.weight.numel() * shapes[name][-1] * shapes[name][-2]
        elif isinstance(mod, torch.nn.Linear):
            total += 2 * mod.weight.numel()
    return total


@pytest.mark.parametrize("size", [(76, 57), (152, 114)])
def test_flops_are_twice_the_multiply_adds_of_every_layer(size):
    model = build_model("nyu", size)
    coarse = forward_flops(model, "coarse")
    assert coarse == pytest.approx(_by_hand(model, "coarse."))
    assert forward_flops(model, "fine") - coarse == pytest.approx(_by_hand(model, "fine."))
    assert training_flops_per_sample(model, "coarse") == pytest.approx(3 * coarse)
    fine_only = _by_hand(model, "fine.")
    assert training_flops_per_sample(model, "fine") == pytest.approx(coarse + 3 * fine_only)
    assert model.training  # restored after counting
    with pytest.raises(UsageError):
        forward_flops(model, "both")


def test_schedule_estimate_divides_by_the_assumed_rate():
    rec = recipes.get_recipe("smoke")
    est = schedule_estimate(rec, "H100", 0.5)
    total = sum(est["flops_per_sample"][s] * est["samples"][s] for s in ("coarse", "fine"))
    assert est["total_flops"] == pytest.approx(total)
    assert est["seconds"] == pytest.approx(total / (GPU_PEAK_TFLOPS["H100"][0] * 0.5 * 1e12))
    assert est["samples"] == {"coarse": rec.coarse_samples, "fine": rec.fine_samples}
    with pytest.raises(UsageError, match="unknown GPU"):
        schedule_estimate(rec, "Voodoo2")
    with pytest.raises(UsageError, match="fraction"):
        schedule_estimate(rec, "A100", 1.5)
