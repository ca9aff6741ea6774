"""mdlearn.losses: the scale-invariant training loss of Eq. 4 (Chapter 4)."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mdlearn.errors import UsageError
from mdlearn.losses import PAPER_LAMBDA, NonFiniteLossError, scale_invariant_loss

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@st.composite
def batches(draw, max_b=3, max_hw=5):
    """A float64 batch: log-depth predictions, targets in [0.1, 20] m with some zeros, a mask."""
    b = draw(st.integers(1, max_b))
    h = draw(st.integers(1, max_hw))
    w = draw(st.integers(1, max_hw))
    seed = draw(st.integers(0, 2**31 - 1))
    g = np.random.default_rng(seed)
    pred = g.normal(1.0, 1.0, (b, 1, h, w))
    target = np.exp(g.uniform(math.log(0.1), math.log(20.0), (b, 1, h, w)))
    target[g.random((b, 1, h, w)) < draw(st.floats(0.0, 0.5))] = 0.0
    mask = g.random((b, 1, h, w)) < draw(st.floats(0.3, 1.0))
    return torch.from_numpy(pred), torch.from_numpy(target), torch.from_numpy(mask)


def reference_eq4(pred, target, mask, lam):
    """Eq. 4 written out per sample with Python loops over the valid pixels, then the batch mean."""
    losses = []
    for b in range(pred.shape[0]):
        d = [float(p) - math.log(float(t)) for p, t, m in zip(pred[b].ravel(), target[b].ravel(), mask[b].ravel())
             if m and t > 0]
        if d:
            n = len(d)
            losses.append(sum(x * x for x in d) / n - lam * sum(d) ** 2 / n ** 2)
    return sum(losses) / len(losses) if losses else 0.0


def pairwise_eq2(pred, target, mask):
    """Eq. 2: (1 / 2n^2) sum_ij ((log y_i - log y_j) - (log y*_i - log y*_j))^2, per sample, batch mean."""
    out = []
    for b in range(pred.shape[0]):
        v = (mask[b] & (target[b] > 0)).ravel()
        if not v.any():
            continue
        ly, lt = pred[b].ravel()[v], torch.log(target[b].ravel()[v])
        diff = (ly[:, None] - ly[None, :]) - (lt[:, None] - lt[None, :])
        out.append((diff ** 2).sum() / (2 * v.sum() ** 2))
    return float(torch.stack(out).mean()) if out else 0.0


def test_hand_computed_values():
    # d = (1, 3): mean d^2 = 5, mean d = 2  ->  L = 5 - 4 lam
    target = torch.tensor([[1.0, 1.0]])
    pred = torch.tensor([[1.0, 3.0]])
    for lam, expected in ((0.0, 5.0), (0.5, 3.0), (1.0, 1.0)):
        assert scale_invariant_loss(pred, target, lam=lam).item() == pytest.approx(expected, rel=1e-6)
    assert PAPER_LAMBDA == 0.5


@settings(max_examples=60, deadline=None)
@given(batches(), st.sampled_from([0.0, 0.25, 0.5, 1.0]))
def test_matches_eq4_written_out(batch, lam):
    pred, target, mask = batch
    got = scale_invariant_loss(pred, target, mask, lam=lam).item()
    assert got == pytest.approx(reference_eq4(pred, target, mask, lam), rel=1e-9, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(batches(), st.floats(-7.0, 7.0))
def test_lambda_one_is_invariant_to_scaling_the_prediction(batch, log_c):
    pred, target, mask = batch
    base = scale_invariant_loss(pred, target, mask, lam=1.0).item()
    scaled = scale_invariant_loss(pred + log_c, target, mask, lam=1.0).item()  # prediction times e^log_c
    assert scaled == pytest.approx(base, rel=1e-9, abs=1e-10)


@settings(max_examples=60, deadline=None)
@given(batches())
def test_lambda_zero_is_the_masked_log_mse(batch):
    pred, target, mask = batch
    per = []
    for b in range(pred.shape[0]):
        v = mask[b] & (target[b] > 0)
        if v.any():
            per.append(((pred[b][v] - torch.log(target[b][v])) ** 2).mean())
    expected = float(torch.stack(per).mean()) if per else 0.0
    assert scale_invariant_loss(pred, target, mask, lam=0.0).item() == pytest.approx(expected, rel=1e-9, abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(batches(max_hw=6))
def test_lambda_one_equals_the_pairwise_form_of_eq2(batch):
    pred, target, mask = batch
    got = scale_invariant_loss(pred, target, mask, lam=1.0).item()
    assert got == pytest.approx(pairwise_eq2(pred, target, mask), rel=1e-8, abs=1e-10)


@settings(max_examples=60, deadline=None)
@given(batches(), st.sampled_from([0.0, 0.5, 1.0]), st.integers(0, 2**31 - 1))
def test_masked_out_pixels_never_influence_value_or_gradient(batch, lam, seed):
    pred, target, mask = batch
    valid = mask & (target > 0)
    g = torch.Generator().manual_seed(seed)
    # garbage wherever the pixel does not count: huge, NaN or infinite predictions; any target
    junk = torch.where(torch.rand(pred.shape, generator=g, dtype=torch.float64) < 0.5,
                       torch.full_like(pred, float("nan")), 1e30 * torch.randn(pred.shape, generator=g,
                                                                              dtype=torch.float64))
    junk[torch.rand(pred.shape, generator=g) < 0.2] = float("inf")
    pred2 = torch.where(valid, pred, junk)
    # masked-out pixels may hold any target; missing targets inside the mask must stay missing (0)
    any_target = torch.rand(pred.shape, generator=g, dtype=torch.float64) * 50
    target2 = torch.where(valid, target, torch.where(mask, torch.zeros_like(target), any_target))
    a = pred.clone().requires_grad_()
    b = pred2.clone().requires_grad_()
    la = scale_invariant_loss(a, target, mask, lam=lam)
    lb = scale_invariant_loss(b, target2, mask, lam=lam)
    la.backward()
    lb.backward()
    assert lb.item() == pytest.approx(la.item(), rel=1e-12, abs=1e-15)
    assert torch.equal(b.grad[~valid], torch.zeros_like(b.grad[~valid]))
    assert torch.allclose(a.grad, b.grad, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("how", ["mask", "target"])
def test_all_masked_batch_gives_zero_loss_and_zero_gradient(device, how):
    pred = torch.randn(3, 1, 4, 5, device=device, requires_grad=True)
    target = torch.rand(3, 1, 4, 5, device=device) + 0.5
    mask = torch.zeros(3, 1, 4, 5, dtype=torch.bool, device=device)
    if how == "mask":
        loss = scale_invariant_loss(pred, target, mask)
    else:
        loss = scale_invariant_loss(pred, torch.zeros_like(target))
    loss.backward()
    assert loss.item() == 0.0 and torch.isfinite(loss)
    assert torch.equal(pred.grad, torch.zeros_like(pred.grad))


def test_an_empty_sample_contributes_nothing_to_the_batch():
    g = torch.Generator().manual_seed(0)
    pred = torch.randn(2, 1, 6, 7, generator=g, dtype=torch.float64, requires_grad=True)
    target = torch.rand(2, 1, 6, 7, generator=g, dtype=torch.float64) * 5 + 0.2
    target[1] = 0.0  # the second sample has no ground truth at all
    loss = scale_invariant_loss(pred, target)
    loss.backward()
    alone = scale_invariant_loss(pred[:1].detach(), target[:1])
    assert loss.item() == pytest.approx(alone.item(), rel=1e-12)
    assert torch.equal(pred.grad[1], torch.zeros_like(pred.grad[1]))
    per = scale_invariant_loss(pred.detach(), target, reduction="none")
    assert per.shape == (2,) and per[1].item() == 0.0


def test_gradient_matches_finite_differences():
    g = torch.Generator().manual_seed(1)
    pred = torch.randn(2, 1, 3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    target = torch.rand(2, 1, 3, 4, generator=g, dtype=torch.float64) * 4 + 0.5
    target[0, 0, 0, :2] = 0.0
    for lam in (0.0, 0.5, 1.0):
        assert torch.autograd.gradcheck(lambda x: scale_invariant_loss(x, target, lam=lam), (pred,))
        assert torch.autograd.gradcheck(lambda x: scale_invariant_loss(x, target, lam=lam, reduction="none"), (pred,))


def test_gradient_closed_form():
    # dL/dd_i = 2/n (d_i - lam * mean d); with lam = 1 the gradient sums to zero: no push on the scale
    pred = torch.tensor([[0.3, -1.0, 2.0, 0.5]], dtype=torch.float64, requires_grad=True)
    target = torch.ones(1, 4, dtype=torch.float64)
    for lam in (0.0, 0.5, 1.0):
        pred.grad = None
        scale_invariant_loss(pred, target, lam=lam).backward()
        d = pred.detach()[0]
        assert torch.allclose(pred.grad[0], 2 / 4 * (d - lam * d.mean()))
    assert abs(pred.grad.sum().item()) < 1e-12


@pytest.mark.parametrize("device", DEVICES)
def test_float32_is_accurate_and_never_negative(device):
    # a large common offset and a tiny spread: the naive mean(d^2) - mean(d)^2 cancels badly in float32
    g = torch.Generator().manual_seed(2)
    target = torch.rand(4, 1, 64, 64, generator=g, dtype=torch.float64) * 9 + 0.5
    pred64 = torch.log(target) + 3.0 + 1e-3 * torch.randn(target.shape, generator=g, dtype=torch.float64)
    for lam in (0.5, 1.0):
        ref = scale_invariant_loss(pred64, target, lam=lam).item()
        got = scale_invariant_loss(pred64.float().to(device), target.float().to(device), lam=lam)
        assert got.dtype == torch.float32 and got.item() >= 0
        assert got.item() == pytest.approx(ref, rel=1e-3 if lam == 1.0 else 1e-5)


def test_autocast_bfloat16_computes_in_float32():
    g = torch.Generator().manual_seed(3)
    layer = torch.nn.Linear(8, 20)
    x = torch.randn(4, 8, generator=g)
    target = (torch.rand(4, 1, 4, 5, generator=g) * 5 + 0.5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(x).reshape(4, 1, 4, 5)
        assert out.dtype == torch.bfloat16
        loss = scale_invariant_loss(out, target)
    assert loss.dtype == torch.float32
    # identical to the loss of the same bf16 output computed outside autocast in float32
    assert loss.item() == pytest.approx(scale_invariant_loss(out.detach().float(), target).item(), rel=1e-6)
    loss.backward()
    assert layer.weight.grad is not None and torch.isfinite(layer.weight.grad).all()


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_prediction_fails_loudly(bad):
    pred = torch.zeros(2, 1, 3, 3)
    pred[1, 0, 1, 1] = bad
    with pytest.raises(NonFiniteLossError, match="not finite.*1 non-finite value"):
        scale_invariant_loss(pred, torch.ones(2, 1, 3, 3))
    # the same NaN on a masked-out pixel is harmless
    mask = torch.ones(2, 1, 3, 3, dtype=torch.bool)
    mask[1, 0, 1, 1] = False
    assert torch.isfinite(scale_invariant_loss(pred, torch.ones(2, 1, 3, 3), mask))


@pytest.mark.parametrize("target_value,msg",
                         [(float("nan"), "1 NaN"), (-2.0, "1 negative"), (float("inf"), "1 infinite")])
def test_bad_targets_are_named(target_value, msg):
    target = torch.ones(1, 1, 2, 2)
    target[0, 0, 0, 1] = target_value
    with pytest.raises(UsageError, match=msg):
        scale_invariant_loss(torch.zeros(1, 1, 2, 2), target)


def test_bad_arguments():
    with pytest.raises(UsageError, match=r"shape mismatch.*\(2, 1, 3, 3\).*\(2, 1, 3, 4\)"):
        scale_invariant_loss(torch.zeros(2, 1, 3, 3), torch.ones(2, 1, 3, 4))
    with pytest.raises(UsageError, match="lam must lie in"):
        scale_invariant_loss(torch.zeros(1, 2), torch.ones(1, 2), lam=1.5)
    with pytest.raises(UsageError, match="bool tensor"):
        scale_invariant_loss(torch.zeros(1, 2), torch.ones(1, 2), mask=torch.ones(1, 2))
    with pytest.raises(UsageError, match="mask has shape"):
        scale_invariant_loss(torch.zeros(1, 2), torch.ones(1, 2), mask=torch.ones(1, 3, dtype=torch.bool))
    with pytest.raises(UsageError, match="torch tensors"):
        scale_invariant_loss(np.zeros((1, 2)), torch.ones(1, 2))
    with pytest.raises(UsageError, match="reduction"):
        scale_invariant_loss(torch.zeros(1, 2), torch.ones(1, 2), reduction="sum")


@pytest.mark.parametrize("device", DEVICES)
def test_device_and_dtype_follow_the_input(device):
    pred = torch.zeros(2, 1, 3, 3, device=device, requires_grad=True)
    loss = scale_invariant_loss(pred, torch.full((2, 1, 3, 3), math.e, device=device), lam=0.0)
    assert loss.device.type == device and loss.dtype == torch.float32
    assert loss.item() == pytest.approx(1.0)
    loss.backward()
    assert pred.grad.device.type == device


def test_check_false_skips_validation_but_computes_the_same_loss():
    g = torch.Generator().manual_seed(4)
    pred = torch.randn(3, 1, 5, 6, generator=g)
    target = torch.rand(3, 1, 5, 6, generator=g) * 5
    target[0, 0, :2] = 0.0
    mask = torch.rand(3, 1, 5, 6, generator=g) < 0.8
    for lam in (0.0, 0.5, 1.0):
        assert scale_invariant_loss(pred, target, mask, lam, check=False).item() == \
            scale_invariant_loss(pred, target, mask, lam).item()
    bad = target.clone()
    bad[1, 0, 0, 0] = float("nan")
    assert torch.isnan(scale_invariant_loss(pred, bad, check=False))  # no error, no guard: the caller opted out
