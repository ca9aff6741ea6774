"""Named evaluation protocols: crop, valid depth range, clamping, scale alignment, aggregation (Chapter 4).

Introduced in Chapter 4. Two papers' "RMSE on NYU" are comparable only if they cropped the same
pixels, kept the same ground-truth range, treated out-of-range predictions the same way, aligned
(or did not align) the scale the same way and averaged over the same things. Each of those choices
is a field of an :class:`EvalProtocol`, every protocol has a name, and every results table the
book prints carries the protocol's :meth:`~EvalProtocol.card`.

Protocols provided (see :data:`PROTOCOLS`):

* ``nyu_eigen`` — NYU Depth v2 as BTS, AdaBins and ZoeDepth evaluate it: their "Eigen crop"
  (:data:`~mdlearn.data.crops.NYU_CROP_EIGEN`), ground truth kept where ``1e-3 < gt < 10`` m,
  predictions clamped to ``[1e-3, 10]``, no scale alignment, per image.
* ``nyu_toolbox`` — the same, but with the NYU toolbox's projection mask
  (:data:`~mdlearn.data.crops.NYU_CROP_TOOLBOX`): one row and one column more than ``nyu_eigen``.
* ``nyu_paper`` — our reading of the 2014 paper: toolbox mask, every pixel with a ground truth
  (the filled test depths are all in ``(0, 10]``), averages pooled over all test pixels, predictions
  not clamped (a bad prediction is an error).
* ``kitti_garg`` — KITTI with the Garg crop (:data:`~mdlearn.data.crops.KITTI_CROP_GARG`,
  fractions of the image size, as in monodepth / monodepth2 / BTS), ``1e-3 < gt < 80`` m, predictions clamped to ``[1e-3, 80]``, per image.
* ``kitti_eigen`` — the same with the Eigen crop.
* ``kitti_garg_median`` — monodepth2's *monocular* evaluation: Garg crop, per-image median scaling
  of the prediction, then clamping.

Derive variants with :meth:`EvalProtocol.replace` (a new name is required, so a changed protocol
never prints an old name).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from .data import kitti as _kitti
from .data.crops import KITTI_CROP_EIGEN, KITTI_CROP_GARG, NYU_CROP_EIGEN, NYU_CROP_TOOLBOX, FractionCrop, PixelCrop
from .data.kinect import NYU_MAX_DEPTH
from .errors import UsageError
from .metrics import (AGGREGATIONS, HIGHER_IS_BETTER, METRIC_NAMES, MetricAccumulator, as_depth_array, as_mask_array,
                      check_depth_pair, check_pred_on, check_target)

__all__ = [
    "ALIGNMENTS", "ALIGNMENT_SCOPES", "EvalProtocol", "EvalResult", "PROTOCOLS", "get_protocol",
    "align_scale", "oracle_mean_substitution", "median_scaling", "results_table",
    "nyu_eigen", "nyu_toolbox", "nyu_paper", "kitti_garg", "kitti_eigen", "kitti_garg_median",
]

#: How a prediction's global scale may be fitted to the ground truth before the metrics.
#: ``none``; ``median``: s = median(gt) / median(pred) (monodepth2); ``least_squares``: the s that
#: minimises sum (s y - y*)^2, s = sum(y y*) / sum(y^2); ``least_squares_log``: the s that minimises
#: sum (log(s y) - log y*)^2, s = exp(alpha) with the alpha of Eq. 1 (the paper's oracle).
ALIGNMENTS = ("none", "median", "least_squares", "least_squares_log")
#: Whether one scale is fitted per image or one for the whole test set.
ALIGNMENT_SCOPES = ("image", "set")


def _crop_mask(crop: PixelCrop | FractionCrop, shape: tuple[int, ...]) -> np.ndarray:
    """``(H, W)`` bool mask of ``crop`` on an image of shape ``(..., H, W)`` (checks the shape first)."""
    crop.bounds(tuple(shape))
    return crop.mask(*tuple(shape)[-2:])


def _scale_parts(method: str, y: np.ndarray, ys: np.ndarray) -> tuple[float, float]:
    """Numerator and denominator-like parts of a scale fit, summable over images (not for median)."""
    if method == "least_squares":
        return float((y * ys).sum()), float((y * y).sum())  # not np.dot: BLAS threads stall when busy
    if method == "least_squares_log":
        return float((np.log(ys) - np.log(y)).sum()), float(y.size)
    raise AssertionError(method)


def _scale_from_parts(method: str, a: float, b: float) -> float:
    if method == "least_squares":
        return a / b
    return math.exp(a / b)


def align_scale(pred_depth, target_depth, mask=None, method: str = "median") -> float:
    """The global scale ``s`` that best aligns ``s * pred`` with the ground truth, by ``method``.

    Introduced in Chapter 4. ``method`` is one of :data:`ALIGNMENTS` (``"none"`` gives 1). Only
    pixels with ``target > 0`` (and ``mask``) count. ``least_squares_log`` gives
    :math:`e^{\\alpha}` with the :math:`\\alpha` of Eq. 1 — the scale the scale-invariant error
    forgives.
    """
    if method not in ALIGNMENTS:
        raise UsageError(f"unknown alignment {method!r}; choose one of {', '.join(ALIGNMENTS)}")
    p, t, valid = check_depth_pair(pred_depth, target_depth, mask)
    if not valid.any():
        raise UsageError("no valid pixel to fit a scale on (empty mask or no ground truth)")
    if method == "none":
        return 1.0
    y, ys = p[valid], t[valid]
    if method == "median":
        return float(np.median(ys) / np.median(y))
    return _scale_from_parts(method, *_scale_parts(method, y, ys))


def _scaled(pred_depth, scale: float):
    """``pred_depth * scale``, keeping the input's type (NumPy or torch)."""
    return pred_depth * scale


def median_scaling(pred_depth, target_depth, mask=None):
    """Multiply the prediction by median(gt) / median(pred) over valid pixels (monodepth2 mono eval).

    Introduced in Chapter 4. For methods that only predict depth up to scale (self-supervised
    monocular ones); supervised methods such as the paper's are evaluated without it.
    """
    return _scaled(pred_depth, align_scale(pred_depth, target_depth, mask, "median"))


def oracle_mean_substitution(pred_depth, target_depth, mask=None):
    """The paper's oracle (Section 3.2): give the prediction the ground truth's mean log depth.

    Introduced in Chapter 4. Returns ``pred * exp(alpha)`` with
    :math:`\\alpha = \\frac1n\\sum_i (\\log y^*_i - \\log y_i)` over valid pixels, so the mean log
    depth of the result equals the ground truth's. Its ``rmse_log`` equals the original prediction's
    ``rmse_log_si``: what is left once the global scale is known.
    """
    return _scaled(pred_depth, align_scale(pred_depth, target_depth, mask, "least_squares_log"))


@dataclass(frozen=True)
class EvalProtocol:
    """Every choice that turns predictions and ground truth into a table of numbers.

    Introduced in Chapter 4.

    Attributes:
        name: short identifier, printed with every result.
        description: one line: dataset and whose convention this is.
        crop: a crop of :mod:`mdlearn.data.crops` or ``None`` (whole image).
        min_depth, max_depth: ground truth counts where ``min_depth < gt < max_depth`` (strict on both
            sides, as in public evaluation code: on NYU a ground truth of exactly 10 m is dropped).
        clamp_predictions: clip predictions to ``[min_depth, max_depth]`` after alignment (NaN and
            -inf become ``min_depth``, +inf ``max_depth``); if ``False``, a non-positive or non-finite
            prediction on a valid pixel is an error.
        alignment: one of :data:`ALIGNMENTS`; scale fitted before clamping.
        alignment_scope: ``"image"`` (a scale per image) or ``"set"`` (one for the whole set).
        aggregation: ``"per_image"`` or ``"pooled"`` (see :mod:`mdlearn.metrics`).
        reference: which public code or paper this protocol reproduces.
        ground_truth: which ground truth the numbers are computed against (for KITTI, the variant
            name of :mod:`mdlearn.data.kitti_depth` first: ``camz``, ``velx`` or ``annotated``),
            so that every results table says it.
    """

    name: str
    description: str
    crop: PixelCrop | FractionCrop | None
    min_depth: float
    max_depth: float
    clamp_predictions: bool
    alignment: str = "none"
    alignment_scope: str = "image"
    aggregation: str = "per_image"
    reference: str = ""
    ground_truth: str = ""

    def __post_init__(self):
        if self.alignment not in ALIGNMENTS:
            raise UsageError(f"unknown alignment {self.alignment!r}; choose one of {', '.join(ALIGNMENTS)}")
        if self.alignment_scope not in ALIGNMENT_SCOPES:
            raise UsageError(f"unknown alignment scope {self.alignment_scope!r}; choose one of "
                             f"{', '.join(ALIGNMENT_SCOPES)}")
        if self.aggregation not in AGGREGATIONS:
            raise UsageError(f"unknown aggregation {self.aggregation!r}; choose one of {', '.join(AGGREGATIONS)}")
        if not (0 <= self.min_depth < self.max_depth):
            raise UsageError(f"need 0 <= min_depth < max_depth, got {self.min_depth} and {self.max_depth}")
        if self.clamp_predictions and self.min_depth <= 0:
            raise UsageError("clamping predictions needs min_depth > 0 (a clamped depth must stay positive)")

    def replace(self, name: str, **changes) -> "EvalProtocol":
        """A copy with ``changes`` applied and a new ``name`` (required, so results stay traceable).

        Unless ``reference`` is among the changes, the copy's reference says what it was derived
        from and what changed, so its card never claims to reproduce code it no longer matches.
        """
        if name == self.name:
            raise UsageError(f"a modified protocol needs a new name, not {name!r}")
        if "reference" not in changes:
            what = ", ".join(f"{k}={v!r}" for k, v in changes.items() if k != "description")
            changes["reference"] = f"variant of {self.name}" + (f" with {what}" if what else "")
        return dataclasses.replace(self, name=name, **changes)

    # -- the steps -----------------------------------------------------------------------------------

    def valid_mask(self, target_depth, mask=None) -> np.ndarray:
        """Pixels this protocol evaluates: inside the crop, ``min_depth < gt < max_depth``, and ``mask``.

        Raises :class:`~mdlearn.errors.UsageError` for a ground truth with NaN, infinite or negative
        values, and for a crop that does not fit the image size.
        """
        t = as_depth_array(target_depth, "target_depth")
        check_target(t)
        valid = (t > self.min_depth) & (t < self.max_depth)
        if self.crop is not None:
            valid &= _crop_mask(self.crop, t.shape)
        m = as_mask_array(mask, t.shape)
        if m is not None:
            valid &= m
        return valid

    def _values(self, pred_depth, target_depth, mask=None) -> tuple[np.ndarray, np.ndarray]:
        """The valid pixels' predictions (sanitised, unscaled, unclamped) and ground truths."""
        p = as_depth_array(pred_depth, "pred_depth")
        t = as_depth_array(target_depth, "target_depth")
        if p.shape != t.shape:
            raise UsageError(f"shape mismatch: pred_depth has shape {p.shape} but target_depth has shape "
                             f"{t.shape}; resize the prediction to the ground truth first")
        if p.ndim != 2 and not (p.ndim == 3 and p.shape[0] == 1):
            raise UsageError(f"protocol {self.name} takes one image (H, W) or (1, H, W) at a time, got shape "
                             f"{p.shape}; pass a batch as a list of images (scales and averages are per image)")
        valid = self.valid_mask(t, mask)
        y, ys = p[valid], t[valid]
        if self.clamp_predictions:
            y = np.nan_to_num(y, nan=self.min_depth, posinf=self.max_depth, neginf=self.min_depth)
        else:
            check_pred_on(y, f"protocol {self.name}: ")
        return y, ys

    def _fit_scale(self, y: np.ndarray, ys: np.ndarray) -> float:
        if self.alignment == "none" or y.size == 0:
            return 1.0
        if self.alignment == "median":
            return float(np.median(ys) / np.median(y))
        if self.clamp_predictions and self.alignment == "least_squares_log":
            y = np.maximum(y, self.min_depth)  # logs need positive values
        return _scale_from_parts(self.alignment, *_scale_parts(self.alignment, y, ys))

    def _finish(self, y: np.ndarray, scale: float) -> np.ndarray:
        if scale != 1.0:
            y = y * scale
        if self.clamp_predictions:
            y = np.clip(y, self.min_depth, self.max_depth)
        return y

    def prepare(self, pred_depth, target_depth, mask=None, scale: float | None = None
                ) -> tuple[np.ndarray, np.ndarray, float]:
        """Apply the protocol to one pair: the valid pixels' final predictions, ground truths, and the scale.

        Steps, in order: valid pixels (crop, ``min_depth < gt < max_depth``, ``mask``); non-finite
        predictions replaced (if clamping) or rejected; scale fitted (or ``scale`` used, for
        set-level alignment) and applied; predictions clipped to ``[min_depth, max_depth]`` (if
        clamping). Returns 1-D float64 arrays ``(pred, target)`` and the scale.
        """
        y, ys = self._values(pred_depth, target_depth, mask)
        if scale is None:
            scale = self._fit_scale(y, ys)
        return self._finish(y, scale), ys, float(scale)

    def accumulator(self) -> MetricAccumulator:
        """An empty :class:`~mdlearn.metrics.MetricAccumulator` with this protocol's aggregation."""
        return MetricAccumulator(self.aggregation)

    def set_scale(self, preds: Sequence, targets: Sequence, masks: Sequence | None = None) -> float:
        """The one scale of ``alignment_scope="set"``, fitted over all valid pixels of the set."""
        if self.alignment == "none":
            return 1.0
        masks = masks if masks is not None else [None] * len(preds)
        if self.alignment == "median":  # exact: holds the set's valid pixels in memory
            ys_all, y_all = [], []
            for p, t, m in zip(preds, targets, masks):
                y, ys = self._values(p, t, m)
                # kept in the input's own precision: exact, and half the memory for float32 maps
                y_all.append(y.astype(_storage_dtype(p)))
                ys_all.append(ys.astype(_storage_dtype(t)))
            y = np.concatenate(y_all) if y_all else np.zeros(0)
            ys = np.concatenate(ys_all) if ys_all else np.zeros(0)
            if y.size == 0:
                raise UsageError("no valid pixel in the whole test set: nothing to fit a scale on")
            return float(np.median(ys.astype(np.float64)) / np.median(y.astype(np.float64)))
        a = b = 0.0
        for p, t, m in zip(preds, targets, masks):
            da, db = _scale_parts(self.alignment, *self._values(p, t, m))
            a, b = a + da, b + db
        if b == 0:
            raise UsageError("no valid pixel in the whole test set: nothing to fit a scale on")
        return _scale_from_parts(self.alignment, a, b)

    def evaluate(self, preds: Iterable, targets: Iterable, masks: Iterable | None = None,
                 allow_empty: bool = False) -> "EvalResult":
        """Evaluate a test set: predictions and ground truths (NumPy or torch, one image each).

        With ``alignment_scope="set"`` the inputs must be sequences (they are read twice). Images
        without a valid pixel raise unless ``allow_empty`` (then they are counted and skipped); a set
        without any valid pixel always raises.
        """
        set_scale = None
        if self.alignment != "none" and self.alignment_scope == "set":
            if not all(isinstance(x, (Sequence, np.ndarray)) or x is None for x in (preds, targets, masks)):
                raise UsageError(f"protocol {self.name} fits one scale over the whole set: pass lists, not iterators")
            set_scale = self.set_scale(preds, targets, masks)
        acc = MetricAccumulator(self.aggregation, allow_empty=allow_empty)
        scales = []
        masks_it = masks if masks is not None else _nones()
        n_images = 0
        for p, t, m in zip(preds, targets, masks_it):
            s = self.update(acc, p, t, m, scale=set_scale)
            n_images += 1
            if s is not None:
                scales.append(s)
        if n_images == 0:
            raise UsageError("no images to evaluate")
        return self.result(acc, scales)

    def update(self, acc: MetricAccumulator, pred_depth, target_depth, mask=None,
               scale: float | None = None) -> float | None:
        """Add one image to ``acc`` under this protocol (:meth:`prepare`, then its statistics).

        Returns the image's scale, or ``None`` for an image without a valid pixel (counted in
        ``acc.n_empty`` if ``acc.allow_empty``, else a :class:`~mdlearn.errors.UsageError`). The
        streaming form of :meth:`evaluate`: several accumulators filled from disjoint parts of a
        test set and merged (:meth:`MetricAccumulator.add_statistics`) give the same
        :meth:`result` as one (Chapter 9, distributed evaluation).
        """
        y, ys, s = self.prepare(pred_depth, target_depth, mask, scale=scale)
        if y.size == 0:
            if not acc.allow_empty:
                raise UsageError(f"protocol {self.name}: image {len(acc) + acc.n_empty} has no valid pixel inside the "
                                 f"crop and the range {self.min_depth:g} < gt < {self.max_depth:g}")
            acc.n_empty += 1
            return None
        acc.add_pixels(y, ys)
        return s

    def result(self, acc: MetricAccumulator, scales: Sequence[float] = ()) -> "EvalResult":
        """The :class:`EvalResult` of a filled accumulator (``scales``: those :meth:`update` returned)."""
        return EvalResult(self, acc.compute(), len(acc), acc.n_pixels, acc.n_empty, np.array(scales, dtype=np.float64),
                          acc.per_image(), acc)

    # -- reporting ------------------------------------------------------------------------------------

    def card(self) -> str:
        """A few lines that say exactly how numbers under this protocol were computed."""
        crop = self.crop.describe() if self.crop is not None else "none (whole image)"
        if self.clamp_predictions:
            clamp = (f"clamped to [{self.min_depth:g}, {self.max_depth:g}] m after alignment "
                     f"(NaN -> {self.min_depth:g}, +inf -> {self.max_depth:g})")
        else:
            clamp = "not clamped; a non-positive or non-finite prediction is an error"
        align = "none" if self.alignment == "none" else f"{self.alignment}, one scale per {self.alignment_scope}"
        agg = ("per image, then the mean over images" if self.aggregation == "per_image"
               else "pooled over all valid pixels of the set")
        lines = [f"protocol {self.name}: {self.description}"]
        if self.ground_truth:
            lines.append(f"  ground truth {self.ground_truth}")
        lines += [f"  crop         {crop}",
                 f"  valid GT     {self.min_depth:g} < gt < {self.max_depth:g} m (and gt > 0)",
                 f"  predictions  {clamp}",
                 f"  alignment    {align}",
                 f"  aggregation  {agg}"]
        if self.reference:
            lines.append(f"  reproduces   {self.reference}")
        return "\n".join(lines)


def _storage_dtype(x) -> type:
    """float32 if ``x`` (array or tensor) holds values exactly representable in float32, else float64."""
    name = str(getattr(x, "dtype", "float64")).replace("torch.", "")
    return np.float32 if name in ("float32", "float16", "bfloat16", "uint8", "int8", "uint16", "int16") else np.float64


def _nones():
    while True:
        yield None


@dataclass
class EvalResult:
    """The metrics of one test set under one protocol (printing it prints the protocol's card)."""

    protocol: EvalProtocol
    metrics: dict[str, float]
    n_images: int
    n_pixels: int
    n_empty: int
    scales: np.ndarray
    per_image: dict[str, np.ndarray]
    accumulator: MetricAccumulator | None = None

    def confidence_intervals(self, n_resamples: int = 1000, level: float = 0.95,
                             seed: int = 0) -> dict[str, tuple[float, float]]:
        """Bootstrap intervals over test images (:meth:`MetricAccumulator.bootstrap`), Chapter 9."""
        if self.accumulator is None:
            raise UsageError("this result keeps no per-image statistics to resample")
        return self.accumulator.bootstrap(n_resamples, level, seed)

    def __str__(self) -> str:
        extra = f", {self.n_empty} without valid pixels skipped" if self.n_empty else ""
        return results_table({f"{self.n_images} images, {self.n_pixels} px{extra}": self.metrics}, self.protocol)


def results_table(rows: dict[str, dict[str, float]], protocol: EvalProtocol, digits: int = 3,
                  metrics: Sequence[str] = METRIC_NAMES) -> str:
    """A plain-text table of several methods' metrics, headed by the protocol's card.

    Introduced in Chapter 4. ``rows`` maps a row label to a metrics dict.
    """
    label_w = max([len(k) for k in rows] + [6])
    col_w = max(digits + 4, max(len(m) for m in metrics))
    arrows = "".join(f" {('higher' if HIGHER_IS_BETTER[m] else 'lower'):>{col_w}}" for m in metrics)
    head = "".join(f" {m:>{col_w}}" for m in metrics)
    lines = [protocol.card(), "", f"{'':{label_w}}{head}", f"{'better':>{label_w}}{arrows}"]
    for label, values in rows.items():
        lines.append(f"{label:{label_w}}" + "".join(f" {values[m]:>{col_w}.{digits}f}" for m in metrics))
    return "\n".join(lines)


nyu_eigen = EvalProtocol(
    "nyu_eigen", "NYU Depth v2 test set as BTS / AdaBins / ZoeDepth evaluate it",
    NYU_CROP_EIGEN, 1e-3, NYU_MAX_DEPTH, clamp_predictions=True, aggregation="per_image",
    reference="cleinc/bts pytorch/bts_eval.py with --eigen_crop (same in AdaBins, ZoeDepth)",
    ground_truth="the 654 labeled test images as BTS's extraction writes them (rawDepths: projected, unfilled)")
nyu_toolbox = nyu_eigen.replace(
    "nyu_toolbox", description="NYU Depth v2 with the toolbox projection mask (1 row, 1 col larger)",
    crop=NYU_CROP_TOOLBOX, reference="NYU Depth v2 toolbox get_projection_mask.m; otherwise as nyu_eigen")
nyu_paper = EvalProtocol(
    "nyu_paper", "NYU Depth v2, our reading of Eigen et al. 2014 (averages over all test pixels T)",
    NYU_CROP_TOOLBOX, 0.0, math.inf, clamp_predictions=False, aggregation="pooled",
    reference="Eigen, Puhrsch & Fergus 2014, Section 4.3 (pooling and mask are our reading; the paper is silent)",
    ground_truth="the 654 labeled test images with filled-in depths (paper Section 4.1)")
kitti_garg = EvalProtocol(
    "kitti_garg", "KITTI Eigen split with the Garg crop, supervised (no scale alignment)",
    KITTI_CROP_GARG, _kitti.KITTI_MIN_DEPTH, _kitti.KITTI_MAX_DEPTH, clamp_predictions=True,
    aggregation="per_image",
    reference="cleinc/bts pytorch/bts_eval.py with --garg_crop (same crop and caps in monodepth2, ZoeDepth)",
    ground_truth="annotated: the official annotated maps, 652 of the 697 Eigen test frames (45 have none)")
kitti_eigen = kitti_garg.replace(
    "kitti_eigen", description="KITTI Eigen split with the Eigen crop, no scale alignment",
    crop=KITTI_CROP_EIGEN, reference="monodepth evaluate_kitti.py --eigen_crop",
    ground_truth="velx: Velodyne forward x projected into image_02, all 697 Eigen test frames")
kitti_garg_median = kitti_garg.replace(
    "kitti_garg_median", description="KITTI, Garg crop, per-image median scaling (monocular methods)",
    alignment="median", alignment_scope="image",
    reference="monodepth2 evaluate_depth.py --eval_mono (median scaling, then clamping)",
    ground_truth="velx: Velodyne forward x (monodepth2 export_gt_depth.py), all 697 Eigen test frames")

#: Every named protocol.
PROTOCOLS: dict[str, EvalProtocol] = {p.name: p for p in (nyu_eigen, nyu_toolbox, nyu_paper, kitti_garg,
                                                            kitti_eigen, kitti_garg_median)}


def get_protocol(name: str) -> EvalProtocol:
    """A protocol by name (see :data:`PROTOCOLS`)."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise UsageError(f"unknown evaluation protocol {name!r}; known: {', '.join(PROTOCOLS)}") from None
