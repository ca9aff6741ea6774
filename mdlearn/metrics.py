"""The error metrics of the paper's Table 1, for one image and for a whole test set (Chapter 4).

Introduced in Chapter 4. For a predicted depth map :math:`y` and ground truth :math:`y^*` (metres,
``0`` = no measurement), over the :math:`n` valid pixels, with :math:`d_i = \\ln y_i - \\ln y^*_i`:

==================  ==============================================================  =========
key                 definition                                                      better
==================  ==============================================================  =========
``delta1..3``       fraction of pixels with :math:`\\max(y/y^*, y^*/y) < 1.25^k`        higher
``abs_rel``         :math:`\\frac1n\\sum |y-y^*|/y^*`                                  lower
``sq_rel``          :math:`\\frac1n\\sum (y-y^*)^2/y^*`                                lower
``rmse``            :math:`\\sqrt{\\frac1n\\sum (y-y^*)^2}` (metres)                     lower
``rmse_log``        :math:`\\sqrt{\\frac1n\\sum d_i^2}`                                 lower
``rmse_log_si``     :math:`\\sqrt{D}`, :math:`D = \\frac1n\\sum d_i^2 - (\\frac1n\\sum d_i)^2` (Eq. 1)  lower
``log10``           :math:`\\frac1n\\sum |\\log_{10} y - \\log_{10} y^*|` (not in the paper)   lower
==================  ==============================================================  =========

Table 1 reports ``rmse_log_si`` as "RMSE (log, scale inv.)", the square root of Eq. 1 (0.219 for
the paper's network). BTS / AdaBins / ZoeDepth report ``silog`` = 100 x ``rmse_log_si``.

**Aggregation over a test set.** The paper writes its averages over the set :math:`T` of all test
pixels without saying whether images are pooled. Public code (monodepth2, BTS, AdaBins, ZoeDepth)
computes every metric **per image and then averages over images**. :class:`MetricAccumulator`
keeps per-image sufficient statistics and computes either:

* ``"per_image"`` — each metric on each image, then the plain mean over images (public code);
* ``"pooled"`` — every sum taken over all valid pixels of the set, each divided by the total pixel
  count (one reading of the paper's :math:`\\frac{1}{|T|}\\sum_{y\\in T}`). The scale-invariant error
  keeps each image's own :math:`\\alpha` (scale invariance is per image): its pooled value is
  :math:`\\sqrt{\\sum_{\\text{images}} \\sum_i (d_i - \\bar d_{\\text{image}})^2 / N}`.

The two differ whenever images have different numbers of valid pixels or different errors
(:math:`\\sqrt{}` of a mean is not the mean of :math:`\\sqrt{}`). Crops, depth caps, clamping and
scale alignment belong to an evaluation protocol (:mod:`mdlearn.evaluation`), not to this module.

All arithmetic is float64 NumPy on the CPU (torch tensors are accepted and copied there): the
statistics are exact to float64 rounding and cost a few milliseconds per 640x480 image.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .errors import UsageError

__all__ = [
    "METRIC_NAMES", "HIGHER_IS_BETTER", "AGGREGATIONS", "DELTA_THRESHOLDS",
    "depth_metrics", "MetricAccumulator", "as_depth_array", "as_mask_array", "check_depth_pair",
    "check_target", "check_pred_on",
]

#: The keys of every metrics dict, in the order of the paper's Table 1 (plus ``log10``).
METRIC_NAMES = ("delta1", "delta2", "delta3", "abs_rel", "sq_rel", "rmse", "rmse_log", "rmse_log_si", "log10")
#: Which metrics improve upwards (the thresholds); all others are errors.
HIGHER_IS_BETTER = {name: name.startswith("delta") for name in METRIC_NAMES}
#: The two ways to summarise a test set (see the module docstring).
AGGREGATIONS = ("per_image", "pooled")
#: The thresholds of ``delta1..3``: 1.25, 1.25^2, 1.25^3.
DELTA_THRESHOLDS = (1.25, 1.25 ** 2, 1.25 ** 3)

# columns of the per-image sufficient statistics
_N, _C1, _C2, _C3, _ABS_REL, _SQ_REL, _SQ, _D2, _D, _DC2, _ABS_D = range(11)
_N_STATS = 11
_LN10 = math.log(10.0)


def as_depth_array(x, name: str) -> np.ndarray:
    """``x`` (NumPy array or torch tensor, any device) as a float64 NumPy array.

    Introduced in Chapter 4.
    """
    if torch.is_tensor(x):
        # (via torch: NumPy has no bfloat16, the usual dtype of a network output under autocast)
        x = x.detach().to(device="cpu", dtype=torch.float64 if x.is_floating_point() else x.dtype).numpy()
    elif not isinstance(x, np.ndarray):
        raise UsageError(f"{name} must be a NumPy array or a torch tensor, got {type(x).__name__}")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise UsageError(f"{name} must hold numbers, got dtype {x.dtype}")
    return np.asarray(x, dtype=np.float64)


def as_mask_array(mask, shape, name: str = "mask") -> np.ndarray | None:
    """``mask`` as a bool NumPy array of ``shape`` (``None`` stays ``None``). Introduced in Chapter 4."""
    if mask is None:
        return None
    if torch.is_tensor(mask):
        mask = mask.detach().cpu().numpy()
    if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_:
        raise UsageError(f"{name} must be a bool array or tensor (True = evaluate this pixel), got "
                         f"{getattr(mask, 'dtype', type(mask).__name__)}")
    if mask.shape != tuple(shape):
        raise UsageError(f"shape mismatch: {name} has shape {mask.shape} but target_depth has shape {tuple(shape)}")
    return mask


def check_target(t: np.ndarray) -> None:
    """Raise :class:`~mdlearn.errors.UsageError` if ground truth has NaN, infinite or negative values."""
    if t.size and not (np.isfinite(t).all() and t.min() >= 0):
        n_nan, n_inf, n_neg = int(np.isnan(t).sum()), int(np.isinf(t).sum()), int((t < 0).sum())
        problems = [f"{k} {what}" for k, what in ((n_nan, "NaN"), (n_inf, "infinite"), (n_neg, "negative")) if k]
        raise UsageError(f"target_depth has {', '.join(problems)} value(s); ground truth must be finite metres "
                         ">= 0, with 0 marking a missing measurement")


def check_pred_on(y: np.ndarray, what: str = "") -> None:
    """Raise if predictions ``y`` (already restricted to valid pixels) are non-positive or non-finite."""
    if y.size and not (np.isfinite(y).all() and y.min() > 0):
        n_bad_finite = int((~np.isfinite(y)).sum())
        n_bad_sign = int((y <= 0).sum())
        raise UsageError(f"{what}pred_depth has {n_bad_sign} non-positive and {n_bad_finite} non-finite value(s) "
                         "on valid pixels; depth predictions must be positive, finite metres (an evaluation "
                         "protocol with clamp_predictions=True clamps them, as BTS does)")


def check_depth_pair(pred, target, mask=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate a prediction / ground-truth pair; return float64 ``pred``, ``target`` and ``valid``.

    Introduced in Chapter 4. ``valid`` = ``target > 0`` and ``mask``. Raises
    :class:`~mdlearn.errors.UsageError` naming the problem for a shape mismatch, a target with NaN,
    infinite or negative depths, or a prediction that is non-positive or non-finite on a valid
    pixel. Does **not** fail on an empty ``valid`` (callers decide).
    """
    p = as_depth_array(pred, "pred_depth")
    t = as_depth_array(target, "target_depth")
    if p.shape != t.shape:
        raise UsageError(f"shape mismatch: pred_depth has shape {p.shape} but target_depth has shape "
                         f"{t.shape}; resize the prediction to the ground truth first")
    m = as_mask_array(mask, t.shape)
    check_target(t)
    valid = t > 0
    if m is not None:
        valid &= m
    check_pred_on(p[valid])
    return p, t, valid


def _image_stats(y: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """The 11 sufficient statistics of one image from its valid predictions ``y`` and truths ``ys``.

    Written with two reused work buffers (``out=``): fresh temporaries of image size cost more in
    page faults than the arithmetic itself.
    """
    out = np.zeros(_N_STATS)
    n = y.size
    out[_N] = n
    if n == 0:
        return out
    a = np.empty_like(y)
    b = np.empty_like(y)
    np.divide(y, ys, out=a)
    np.divide(ys, y, out=b)
    ratio = np.maximum(a, b, out=a)  # max(y / y*, y* / y)
    for k, thr in enumerate(DELTA_THRESHOLDS):
        out[_C1 + k] = np.count_nonzero(np.less(ratio, thr, out=b.view(bool)[:n]))
    # (sums of squares via multiply + sum, not np.dot: BLAS threads stall on a busy machine)
    diff = np.subtract(y, ys, out=a)
    np.abs(diff, out=b)
    out[_ABS_REL] = np.divide(b, ys, out=b).sum()
    sq = np.multiply(diff, diff, out=a)
    out[_SQ] = sq.sum()
    out[_SQ_REL] = np.divide(sq, ys, out=a).sum()
    d = np.log(y, out=a)
    d -= np.log(ys, out=b)  # d = log y - log y*
    out[_D] = d.sum()
    out[_ABS_D] = np.abs(d, out=b).sum()
    out[_D2] = np.multiply(d, d, out=b).sum()
    dc = np.subtract(d, out[_D] / n, out=a)
    out[_DC2] = np.multiply(dc, dc, out=a).sum()
    return out


def _metrics_from_stats(s: np.ndarray) -> dict[str, np.ndarray]:
    """Metrics from statistics ``s`` of shape ``(..., 11)`` (each row one image or one pooled set)."""
    n = s[..., _N]
    return {
        "delta1": s[..., _C1] / n,
        "delta2": s[..., _C2] / n,
        "delta3": s[..., _C3] / n,
        "abs_rel": s[..., _ABS_REL] / n,
        "sq_rel": s[..., _SQ_REL] / n,
        "rmse": np.sqrt(s[..., _SQ] / n),
        "rmse_log": np.sqrt(s[..., _D2] / n),
        "rmse_log_si": np.sqrt(s[..., _DC2] / n),
        "log10": s[..., _ABS_D] / (n * _LN10),
    }


def depth_metrics(pred_depth, target_depth, mask=None) -> dict[str, float]:
    """The metrics of Table 1 (plus ``log10``) for one depth map, over its valid pixels.

    Introduced in Chapter 4.

    Args:
        pred_depth: predicted depth in metres, any shape (NumPy or torch).
        target_depth: ground truth, same shape; ``0`` marks a missing measurement.
        mask: optional bool array of the same shape; ``False`` excludes a pixel.

    Returns:
        ``{name: float}`` with the keys of :data:`METRIC_NAMES`. All pixels are treated as one
        image: for a test set use :class:`MetricAccumulator` (or an evaluation protocol), which
        makes the choice between per-image and pooled averaging explicit.

    Raises:
        UsageError: shape mismatch; NaN, infinite or negative ground truth; no valid pixel; a
        non-positive or non-finite prediction on a valid pixel.

    Example:
        >>> m = depth_metrics(np.array([2.0, 4.0]), np.array([1.0, 4.0]))
        >>> m["abs_rel"], m["delta1"]
        (0.5, 0.5)
    """
    p, t, valid = check_depth_pair(pred_depth, target_depth, mask)
    if not valid.any():
        raise UsageError("no valid pixel to evaluate: the mask is empty or the ground truth has no positive depth "
                         f"(shape {t.shape})")
    stats = _image_stats(p[valid], t[valid])
    return {k: float(v) for k, v in _metrics_from_stats(stats).items()}


class MetricAccumulator:
    """Collects a test set image by image; reports per-image-averaged or pooled metrics.

    Introduced in Chapter 4. ``update`` stores 11 sufficient statistics per image (not the
    pixels), so memory is tiny and both aggregations come from the same pass over the data::

        acc = MetricAccumulator("per_image")
        for pred, gt in test_set:
            acc.update(pred, gt)
        acc.compute()              # the default aggregation
        acc.compute("pooled")      # the other one, same data

    Args:
        aggregation: the default of :meth:`compute`, ``"per_image"`` or ``"pooled"``.
        allow_empty: if ``False`` (default), an image without a valid pixel raises; if ``True``,
            it is counted in :attr:`n_empty` and otherwise ignored.
    """

    def __init__(self, aggregation: str = "per_image", allow_empty: bool = False):
        if aggregation not in AGGREGATIONS:
            raise UsageError(f"unknown aggregation {aggregation!r}; choose one of {', '.join(AGGREGATIONS)}")
        self.aggregation = aggregation
        self.allow_empty = allow_empty
        self._rows: list[np.ndarray] = []
        self.n_empty = 0

    def __len__(self) -> int:
        """The number of images with at least one valid pixel."""
        return len(self._rows)

    @property
    def n_pixels(self) -> int:
        """Valid pixels seen so far, over all images."""
        return int(sum(r[_N] for r in self._rows))

    def update(self, pred_depth, target_depth, mask=None) -> None:
        """Add one image ``(H, W)`` or a batch ``(B, H, W)`` / ``(B, 1, H, W)`` of images."""
        p, t, valid = check_depth_pair(pred_depth, target_depth, mask)
        if p.ndim == 2:
            p, t, valid = p[None], t[None], valid[None]
        elif p.ndim == 4 and p.shape[1] == 1:
            p, t, valid = p[:, 0], t[:, 0], valid[:, 0]
        elif p.ndim != 3:
            raise UsageError(f"expected an image (H, W) or a batch (B, H, W) / (B, 1, H, W), got shape {p.shape}")
        for i in range(p.shape[0]):
            self.add_pixels(p[i][valid[i]], t[i][valid[i]])

    def add_pixels(self, y: np.ndarray, ys: np.ndarray) -> None:
        """Add one image given as the 1-D predictions and ground truths of its valid pixels (not re-validated)."""
        y = np.ascontiguousarray(y, dtype=np.float64).ravel()
        ys = np.ascontiguousarray(ys, dtype=np.float64).ravel()
        stats = _image_stats(y, ys)
        if stats[_N] == 0:
            if not self.allow_empty:
                raise UsageError(f"image {len(self) + self.n_empty} has no valid pixel (empty mask or no "
                                 "ground truth); pass allow_empty=True to skip such images")
            self.n_empty += 1
            return
        self._rows.append(stats)

    def add_statistics(self, other: "MetricAccumulator") -> None:
        """Merge another accumulator's images into this one (e.g. from parallel workers)."""
        self._rows.extend(other._rows)
        self.n_empty += other.n_empty

    def _stats(self) -> np.ndarray:
        if not self._rows:
            raise UsageError("no valid pixel in the whole test set: nothing to evaluate"
                             + (f" ({self.n_empty} image(s) had none)" if self.n_empty else ""))
        return np.stack(self._rows)

    def per_image(self) -> dict[str, np.ndarray]:
        """Each metric for each image, as ``{name: array of shape (n_images,)}``."""
        return _metrics_from_stats(self._stats())

    def statistics(self) -> np.ndarray:
        """The per-image sufficient statistics, ``(n_images, 11)`` float64 (a copy; Chapter 9).

        Everything :meth:`compute` and :meth:`bootstrap` use: saved with a result, they let anyone
        recompute its numbers and intervals exactly (:meth:`from_statistics`)."""
        return self._stats().copy()

    @classmethod
    def from_statistics(cls, stats, aggregation: str = "per_image") -> "MetricAccumulator":
        """An accumulator holding the images of :meth:`statistics` ``stats`` ``(n_images, 11)``."""
        arr = np.asarray(stats, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != _N_STATS or (arr.size and arr[:, _N].min() < 1):
            raise UsageError(f"expected per-image statistics of shape (n_images, {_N_STATS}) with at least one "
                             f"valid pixel per image, got shape {arr.shape}")
        acc = cls(aggregation)
        acc._rows = list(arr)
        return acc

    def valid_pixels_per_image(self) -> np.ndarray:
        """The number of valid pixels of each image."""
        return self._stats()[:, _N].astype(np.int64)

    def bootstrap(self, n_resamples: int = 1000, level: float = 0.95, seed: int = 0,
                  aggregation: str | None = None) -> dict[str, tuple[float, float]]:
        """Percentile-bootstrap confidence intervals over **test images** (Chapter 9).

        The set's images are drawn with replacement ``n_resamples`` times (images, not pixels:
        pixels of one image are not independent) and the metrics recomputed from their
        statistics under ``aggregation``; the interval holds the central ``level`` of them.
        Deterministic for a given ``seed``. Returns ``{name: (low, high)}``.
        """
        if n_resamples < 1 or not 0 < level < 1:
            raise UsageError(f"need n_resamples >= 1 and 0 < level < 1, got {n_resamples} and {level}")
        aggregation = aggregation or self.aggregation
        if aggregation not in AGGREGATIONS:
            raise UsageError(f"unknown aggregation {aggregation!r}; choose one of {', '.join(AGGREGATIONS)}")
        stats = self._stats()
        idx = np.random.default_rng(seed).integers(0, len(stats), size=(n_resamples, len(stats)))
        if aggregation == "pooled":
            values = _metrics_from_stats(stats[idx].sum(axis=1))
        else:
            values = {k: v[idx].mean(axis=1) for k, v in _metrics_from_stats(stats).items()}
        tail = 100 * (1 - level) / 2
        return {k: (float(np.percentile(v, tail)), float(np.percentile(v, 100 - tail))) for k, v in values.items()}

    def compute(self, aggregation: str | None = None) -> dict[str, float]:
        """The metrics of the set under ``aggregation`` (default: the constructor's)."""
        aggregation = aggregation or self.aggregation
        if aggregation not in AGGREGATIONS:
            raise UsageError(f"unknown aggregation {aggregation!r}; choose one of {', '.join(AGGREGATIONS)}")
        stats = self._stats()
        if aggregation == "pooled":
            return {k: float(v) for k, v in _metrics_from_stats(stats.sum(axis=0)).items()}
        return {k: float(v.mean()) for k, v in _metrics_from_stats(stats).items()}
