"""The training loss of the paper: the scale-invariant log error of Eq. 4 (Chapter 4).

Introduced in Chapter 4. For a network that outputs **log depth** :math:`\\hat z = \\log y` and a
target depth map :math:`y^*` (metres, ``0`` = no measurement), let :math:`d_i = \\hat z_i - \\log y^*_i`
over the :math:`n` pixels of one sample that have a target. The per-sample loss is

.. math::

    L = \\frac{1}{n}\\sum_i d_i^2 - \\frac{\\lambda}{n^2}\\Big(\\sum_i d_i\\Big)^2 ,

(Eq. 4 of Eigen, Puhrsch & Fergus 2014, with the masking of Section 3.3: sums run over valid
pixels only and :math:`n` counts them). ``lam = 0`` is the element-wise L2 error of log depth,
``lam = 1`` is exactly the scale-invariant error of Eq. 1, and the paper trains with ``lam = 0.5``.

It is computed in the equivalent, numerically stable form
:math:`\\frac1n\\sum_i (d_i-\\bar d)^2 + (1-\\lambda)\\,\\bar d^2` (no cancellation, never negative).
"""

from __future__ import annotations

import math

import torch

from .errors import NonFiniteLossError, UsageError

# NonFiniteLossError is defined in mdlearn.errors with the other exceptions; importable from here too
__all__ = ["NonFiniteLossError", "scale_invariant_loss", "PAPER_LAMBDA"]

#: The paper's choice of :math:`\\lambda` in Eq. 4 (Section 3.3).
PAPER_LAMBDA = 0.5


def _check_inputs(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None, lam: float) -> None:
    if not torch.is_tensor(pred) or not torch.is_tensor(target):
        raise UsageError("scale_invariant_loss expects torch tensors for pred_log_depth and target_depth, "
                         f"got {type(pred).__name__} and {type(target).__name__}")
    if pred.shape != target.shape:
        raise UsageError(f"shape mismatch: pred_log_depth has shape {tuple(pred.shape)} but target_depth "
                         f"has shape {tuple(target.shape)}; resize one to the other before the loss")
    if pred.ndim < 2:
        raise UsageError(f"expected a batch (B, ...) of log-depth maps, got shape {tuple(pred.shape)}")
    if mask is not None:
        if not torch.is_tensor(mask) or mask.dtype != torch.bool:
            raise UsageError("mask must be a bool tensor (True = use this pixel), got "
                             f"{getattr(mask, 'dtype', type(mask).__name__)}")
        if mask.shape != target.shape:
            raise UsageError(f"shape mismatch: mask has shape {tuple(mask.shape)} but target_depth has "
                             f"shape {tuple(target.shape)}")
    if not (0.0 <= float(lam) <= 1.0):
        raise UsageError(f"lam must lie in [0, 1] (Eq. 4), got {lam}")
    if not pred.is_floating_point() or not target.is_floating_point():
        raise UsageError(f"pred_log_depth and target_depth must be floating point, got {pred.dtype} and "
                         f"{target.dtype}")


def _check_target(target: torch.Tensor) -> None:
    # one pass and one device sync in the common case (NaN propagates through aminmax); the
    # detailed count only when something is wrong
    if target.numel() == 0:
        return
    lo, hi = torch.aminmax(target)
    lo, hi = lo.item(), hi.item()
    if not (lo >= 0 and hi < math.inf):  # False for NaN too
        n_nan = int(torch.isnan(target).sum())
        n_neg = int((target < 0).sum())
        n_inf = int(torch.isinf(target).sum())
        problems = [f"{k} {what}" for k, what in ((n_nan, "NaN"), (n_neg, "negative"), (n_inf, "infinite"))
                    if k]
        raise UsageError(f"target_depth has {', '.join(problems)} value(s); depth targets must be finite "
                         "metres >= 0, with 0 marking a missing measurement")


class _ScaleInvariant(torch.autograd.Function):
    """Eq. 4 on flattened ``(B, N)`` tensors, per sample or batch mean, with a hand-written backward.

    ``weight`` is the valid mask as 0/1 in the compute dtype. Forward keeps only the centred
    ``d - mean(d)`` (zero off the mask); backward is the closed form
    :math:`\\partial L / \\partial d_i = \\tfrac{2}{n}(d_i - \\lambda \\bar d)` on valid pixels and 0
    elsewhere. Masking multiplies by ``weight`` (bool ``where`` is several times slower on CPU),
    which lets a non-finite prediction on a masked-out pixel through as NaN; with ``robust=True``
    masking uses ``where`` instead and such values cannot leak. :func:`scale_invariant_loss` runs the
    fast path and falls back to the robust one only when the result is not finite. Few, fused
    operations: at the paper's batch sizes the per-operation overhead is most of the cost.
    """

    @staticmethod
    def forward(ctx, pred, target, weight, lam, mean, robust):
        # missing targets (0) are clamped before the log, so no -inf is ever formed; masking zeroes them
        log_target = target.clamp_min(torch.finfo(target.dtype).tiny).log_()
        d = torch.sub(pred, log_target, out=log_target)
        if robust:
            valid = weight > 0
            d = torch.where(valid, d, 0.0)
        else:
            d.mul_(weight)
        n = weight.sum(dim=1)
        n_safe = n.clamp(min=1.0)
        d_mean = d.sum(dim=1).div_(n_safe)
        # centred second pass: no cancellation between mean(d^2) and mean(d)^2, never negative
        centred = d.sub_(d_mean[:, None])
        centred = torch.where(valid, centred, 0.0) if robust else centred.mul_(weight)
        per_sample = torch.linalg.vecdot(centred, centred).div_(n_safe).add_(d_mean.square().mul_(1.0 - lam))
        if mean:  # the average over samples that have a valid pixel (0 if none has)
            inv_count = (n > 0).sum().clamp(min=1).to(d.dtype).reciprocal()
            out = per_sample.sum() * inv_count
        else:
            inv_count = None
            out = per_sample
        ctx.save_for_backward(centred, weight, d_mean, n_safe, inv_count)
        ctx.lam = lam
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        # dL/dd_i = 2/n (d_i - lam mean(d)) = 2/n (centred_i + (1 - lam) mean(d)) on valid pixels
        centred, weight, d_mean, n, inv_count = ctx.saved_tensors
        per_sample_grad = grad_out * inv_count if inv_count is not None else grad_out
        scale = (2.0 * per_sample_grad / n)[:, None]
        grad = torch.addcmul(centred, weight, ((1.0 - ctx.lam) * d_mean)[:, None]).mul_(scale)
        return grad, None, None, None, None, None


def _is_finite(x: torch.Tensor) -> bool:
    return math.isfinite(x.item()) if x.ndim == 0 else bool(torch.isfinite(x).all())


def scale_invariant_loss(pred_log_depth: torch.Tensor, target_depth: torch.Tensor,
                         mask: torch.Tensor | None = None, lam: float = PAPER_LAMBDA, *,
                         reduction: str = "mean", check: bool = True) -> torch.Tensor:
    """The paper's training loss (Eq. 4) on log-depth predictions, per sample, then over the batch.

    Introduced in Chapter 4.

    Args:
        pred_log_depth: ``(B, ...)`` the network's output, natural log of depth in metres.
        target_depth: ``(B, ...)`` same shape, target depth in metres; ``0`` marks a missing value.
        mask: optional ``(B, ...)`` bool, ``False`` excludes a pixel in addition to missing targets.
        lam: :math:`\\lambda \\in [0, 1]`; 0 = log L2, 1 = Eq. 1 exactly, 0.5 = the paper's choice.
        reduction: ``"mean"`` (default) averages the per-sample losses over the samples that have at
            least one valid pixel; ``"none"`` returns the ``(B,)`` per-sample losses.
        check: validate the target (NaN, negative or infinite depths raise ``UsageError``) and
            raise :class:`NonFiniteLossError` if the loss is not finite. Each costs one device sync.
            With ``check=False`` nothing is validated, and a non-finite prediction even on a
            masked-out pixel makes the loss NaN (the fast path masks by multiplication).

    Returns:
        A float32 (or float64) tensor: a scalar for ``"mean"``, ``(B,)`` for ``"none"``. A sample
        without a valid pixel contributes nothing: its per-sample loss is exactly 0 with zero
        gradient, and it is left out of the batch average. A batch without any valid pixel gives 0 (with zero gradient).

    Computation happens with autocast disabled, in float32 (float64 if the prediction is float64),
    so the loss is the same under ``torch.autocast`` (bfloat16 / float16 forward passes) as without
    it. Works on any device. Not twice differentiable (the backward is written by hand).

    Example:
        >>> y = torch.full((1, 1, 2, 2), 2.0)
        >>> scale_invariant_loss(torch.log(3 * y), y, lam=1.0)   # a pure scale error costs nothing
        tensor(0.)
    """
    _check_inputs(pred_log_depth, target_depth, mask, lam)
    if reduction not in ("mean", "none"):
        raise UsageError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    with torch.autocast(device_type=pred_log_depth.device.type, enabled=False):
        # float32 at least (bf16/fp16 under autocast are promoted), float64 stays float64
        dtype = torch.promote_types(pred_log_depth.dtype, torch.float32)
        pred = pred_log_depth.to(dtype)
        target = target_depth.detach().to(dtype)
        if check:
            _check_target(target)
        b = pred.shape[0]
        pred, target = pred.reshape(b, -1), target.reshape(b, -1)
        # 1 on valid pixels, 0 elsewhere: sign() of a depth >= 0 is exactly that, in one float pass
        weight = torch.sign(target)
        if mask is not None:
            weight = weight.mul_(mask.reshape(b, -1))

        mean = reduction == "mean"
        loss = _ScaleInvariant.apply(pred, target, weight, float(lam), mean, False)
        if check and not _is_finite(loss):
            # a NaN/Inf on a masked-out pixel must not count: recompute with where() masking
            loss = _ScaleInvariant.apply(pred, target, weight, float(lam), mean, True)
        if check and not _is_finite(loss):
            bad_pred = int((~torch.isfinite(pred) & (weight > 0)).sum())
            raise NonFiniteLossError(
                f"scale-invariant loss is not finite ({loss.detach().cpu().tolist()}); the prediction has "
                f"{bad_pred} non-finite value(s) on valid pixels. Stopping rather than training on NaN "
                "(lower the learning rate, check the inputs, or enable gradient clipping)")
    return loss
