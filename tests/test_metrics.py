"""mdlearn.metrics: Table 1 metrics per image and over a test set (Chapter 4)."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mdlearn.errors import UsageError
from mdlearn.metrics import METRIC_NAMES, MetricAccumulator, depth_metrics


@st.composite
def image_pairs(draw, max_n=40):
    """A small prediction / ground-truth pair (float64), with some missing ground truth."""
    n = draw(st.integers(2, max_n))
    seed = draw(st.integers(0, 2**31 - 1))
    g = np.random.default_rng(seed)
    gt = np.exp(g.uniform(math.log(0.05), math.log(80.0), n))
    gt[g.random(n) < draw(st.floats(0.0, 0.4))] = 0.0
    gt[g.integers(n)] = g.uniform(0.5, 5.0)  # at least one valid pixel
    pred = np.exp(g.uniform(math.log(0.05), math.log(80.0), n))
    return pred, gt


def independent_metrics(pred, gt):
    """The paper's formulas, written differently from the package: explicit loops, Eq. 2's pairwise form."""
    pairs = [(float(p), float(t)) for p, t in zip(pred.ravel(), gt.ravel()) if t > 0]
    n = len(pairs)
    out = {}
    for k, name in enumerate(("delta1", "delta2", "delta3"), 1):
        out[name] = sum(1 for p, t in pairs if max(p / t, t / p) < 1.25 ** k) / n
    out["abs_rel"] = sum(abs(p - t) / t for p, t in pairs) / n
    out["sq_rel"] = sum((p - t) ** 2 / t for p, t in pairs) / n
    out["rmse"] = math.sqrt(sum((p - t) ** 2 for p, t in pairs) / n)
    out["rmse_log"] = math.sqrt(sum((math.log(p) - math.log(t)) ** 2 for p, t in pairs) / n)
    # Eq. 2: D = 1 / (2 n^2) sum_ij ((log y_i - log y_j) - (log y*_i - log y*_j))^2
    lp = [math.log(p) for p, _ in pairs]
    lt = [math.log(t) for _, t in pairs]
    D = sum(((lp[i] - lp[j]) - (lt[i] - lt[j])) ** 2 for i in range(n) for j in range(n)) / (2 * n * n)
    out["rmse_log_si"] = math.sqrt(D)
    out["log10"] = sum(abs(math.log10(p) - math.log10(t)) for p, t in pairs) / n
    return out


def assert_metrics_close(got, expected, rel=1e-9, abs_=1e-12):
    assert set(got) == set(METRIC_NAMES)
    for k in METRIC_NAMES:
        assert got[k] == pytest.approx(expected[k], rel=rel, abs=abs_), k


def test_keys_and_order():
    assert METRIC_NAMES == ("delta1", "delta2", "delta3", "abs_rel", "sq_rel", "rmse", "rmse_log", "rmse_log_si",
                            "log10")


def test_hand_computed_values():
    # pixel 1: pred 2, gt 1 (ratio 2); pixel 2: exact; pixel 3: no ground truth
    m = depth_metrics(np.array([2.0, 4.0, 7.0]), np.array([1.0, 4.0, 0.0]))
    ln2 = math.log(2)
    expected = {"delta1": 0.5, "delta2": 0.5, "delta3": 0.5,  # 2 > 1.25^3 = 1.953125
                "abs_rel": 0.5, "sq_rel": 0.5, "rmse": math.sqrt(0.5), "rmse_log": ln2 / math.sqrt(2),
                "rmse_log_si": ln2 / 2,  # d = (ln 2, 0): mean d^2 - mean(d)^2 = ln2^2 / 4
                "log10": math.log10(2) / 2}
    assert_metrics_close(m, expected, rel=1e-12)


def test_thresholds_are_strict_and_symmetric():
    gt = np.ones(4)
    # ratios 1.25 (not < 1.25), 1/1.25 (same), 1.2 and 1/1.9
    m = depth_metrics(np.array([1.25, 0.8, 1.2, 1 / 1.9]), gt)
    assert m["delta1"] == 0.25
    assert m["delta2"] == 0.75 and m["delta3"] == 1.0


def test_perfect_prediction():
    gt = np.array([[0.5, 3.0], [9.0, 0.0]])
    m = depth_metrics(gt.copy(), gt)
    assert m["delta1"] == m["delta2"] == m["delta3"] == 1.0
    assert all(m[k] == 0 for k in METRIC_NAMES[3:])


@settings(max_examples=80, deadline=None)
@given(image_pairs())
def test_agrees_with_an_independent_implementation(pair):
    pred, gt = pair
    assert_metrics_close(depth_metrics(pred, gt), independent_metrics(pred, gt), rel=1e-9, abs_=1e-9)


@settings(max_examples=60, deadline=None)
@given(image_pairs(), st.floats(1e-3, 1e3))
def test_rmse_log_si_is_invariant_to_scaling_the_prediction(pair, c):
    pred, gt = pair
    a = depth_metrics(pred, gt)["rmse_log_si"]
    b = depth_metrics(c * pred, gt)["rmse_log_si"]
    assert b == pytest.approx(a, rel=1e-9, abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(image_pairs())
def test_scale_invariant_error_is_the_log_error_after_the_best_scale(pair):
    pred, gt = pair
    m = depth_metrics(pred, gt)
    v = gt > 0
    alpha = np.mean(np.log(gt[v]) - np.log(pred[v]))  # Eq. 1's closed-form alpha
    assert m["rmse_log_si"] <= m["rmse_log"] + 1e-12
    assert depth_metrics(pred * np.exp(alpha), gt)["rmse_log"] == pytest.approx(m["rmse_log_si"], rel=1e-9, abs=1e-12)


def test_torch_numpy_and_mask_agree():
    g = np.random.default_rng(0)
    gt = g.uniform(0.5, 8, (6, 7)).astype(np.float32)
    pred = g.uniform(0.5, 8, (6, 7)).astype(np.float32)
    mask = g.random((6, 7)) < 0.6
    a = depth_metrics(pred, gt, mask)
    b = depth_metrics(torch.from_numpy(pred), torch.from_numpy(gt), torch.from_numpy(mask))
    c = depth_metrics(pred[mask], gt[mask])
    assert a == b
    assert_metrics_close(a, c, rel=1e-12)
    # half-precision network outputs (bfloat16 has no NumPy dtype) are accepted
    h = depth_metrics(torch.from_numpy(pred).to(torch.bfloat16), torch.from_numpy(gt), torch.from_numpy(mask))
    assert h["abs_rel"] == pytest.approx(a["abs_rel"], rel=2e-2)
    # a NaN prediction outside the mask does not matter
    pred2 = pred.copy()
    pred2[~mask] = np.nan
    assert depth_metrics(pred2, gt, mask) == a


def _images(seed, sizes=((6, 8), (6, 8), (6, 8))):
    g = np.random.default_rng(seed)
    out = []
    for (h, w) in sizes:
        gt = g.uniform(0.5, 9.0, (h, w))
        gt[g.random((h, w)) < g.uniform(0.0, 0.8)] = 0.0  # different numbers of valid pixels
        gt[0, 0] = 2.0
        pred = gt * np.exp(g.normal(g.normal(0, 0.3), 0.2, (h, w))) + (gt == 0)
        out.append((pred, gt))
    return out


def test_accumulator_per_image_is_the_mean_of_per_image_metrics():
    imgs = _images(1)
    acc = MetricAccumulator("per_image")
    for p, t in imgs:
        acc.update(p, t)
    per = [depth_metrics(p, t) for p, t in imgs]
    expected = {k: float(np.mean([m[k] for m in per])) for k in METRIC_NAMES}
    assert_metrics_close(acc.compute(), expected, rel=1e-12)
    assert len(acc) == 3 and acc.n_pixels == sum(int((t > 0).sum()) for _, t in imgs)
    np.testing.assert_allclose(acc.per_image()["rmse"], [m["rmse"] for m in per], rtol=1e-12)


def test_accumulator_pooled_is_over_all_pixels_with_a_scale_per_image():
    imgs = _images(2)
    acc = MetricAccumulator("pooled")
    for p, t in imgs:
        acc.update(p, t)
    allp = np.concatenate([p[t > 0] for p, t in imgs])
    allt = np.concatenate([t[t > 0] for p, t in imgs])
    pooled = depth_metrics(allp, allt)
    got = acc.compute()
    for k in METRIC_NAMES:
        if k != "rmse_log_si":
            assert got[k] == pytest.approx(pooled[k], rel=1e-12), k
    # the scale-invariant error keeps each image's own alpha, pooled over pixels
    resid = np.concatenate([(lambda d: d - d.mean())(np.log(p[t > 0]) - np.log(t[t > 0])) for p, t in imgs])
    assert got["rmse_log_si"] == pytest.approx(math.sqrt(np.mean(resid ** 2)), rel=1e-12)
    # the other aggregation from the same statistics differs (unequal valid-pixel counts)
    assert acc.compute("per_image")["rmse"] != pytest.approx(got["rmse"], rel=1e-6)


def test_pooled_equals_per_image_for_one_image():
    (p, t), = _images(3, sizes=((9, 9),))
    acc = MetricAccumulator()
    acc.update(p, t)
    assert_metrics_close(acc.compute("pooled"), acc.compute("per_image"), rel=1e-12)
    assert_metrics_close(acc.compute(), depth_metrics(p, t), rel=1e-12)


def test_batched_update_equals_image_by_image():
    imgs = _images(4)
    one, batch, batch4 = MetricAccumulator(), MetricAccumulator(), MetricAccumulator()
    for p, t in imgs:
        one.update(p, t)
    batch.update(np.stack([p for p, _ in imgs]), np.stack([t for _, t in imgs]))
    batch4.update(torch.from_numpy(np.stack([p for p, _ in imgs]))[:, None],
                  torch.from_numpy(np.stack([t for _, t in imgs]))[:, None])
    for agg in ("pooled", "per_image"):
        assert one.compute(agg) == batch.compute(agg) == batch4.compute(agg)


def test_accumulators_merge():
    imgs = _images(5)
    a, b, full = MetricAccumulator(), MetricAccumulator(), MetricAccumulator()
    for i, (p, t) in enumerate(imgs):
        (a if i < 2 else b).update(p, t)
        full.update(p, t)
    a.add_statistics(b)
    assert a.compute() == full.compute() and a.compute("pooled") == full.compute("pooled")


# ----------------------------------------------------------------------------------- bad input

def test_shape_mismatch_is_named():
    with pytest.raises(UsageError,
                       match=r"shape mismatch: pred_depth has shape \(2, 3\) but target_depth has shape \(3, 2\)"):
        depth_metrics(np.ones((2, 3)), np.ones((3, 2)))
    with pytest.raises(UsageError, match="mask has shape"):
        depth_metrics(np.ones((2, 3)), np.ones((2, 3)), np.ones((3, 2), bool))
    with pytest.raises(UsageError, match="bool"):
        depth_metrics(np.ones((2, 3)), np.ones((2, 3)), np.ones((2, 3)))


def test_empty_mask_is_an_error():
    with pytest.raises(UsageError, match="no valid pixel"):
        depth_metrics(np.ones((2, 2)), np.ones((2, 2)), np.zeros((2, 2), bool))
    with pytest.raises(UsageError, match="no valid pixel"):
        depth_metrics(np.ones((2, 2)), np.zeros((2, 2)))


def test_no_valid_pixel_in_the_whole_test_set():
    acc = MetricAccumulator(allow_empty=True)
    acc.update(np.ones((2, 2)), np.zeros((2, 2)))
    assert acc.n_empty == 1
    with pytest.raises(UsageError, match="no valid pixel in the whole test set.*1 image"):
        acc.compute()
    with pytest.raises(UsageError, match="no valid pixel in the whole test set"):
        MetricAccumulator().compute()
    with pytest.raises(UsageError, match="image 0 has no valid pixel"):
        MetricAccumulator().update(np.ones((2, 2)), np.zeros((2, 2)))


@pytest.mark.parametrize("value,msg", [(np.nan, "1 NaN"), (-1.0, "1 negative"), (np.inf, "1 infinite")])
def test_bad_ground_truth_is_named(value, msg):
    gt = np.ones((2, 2))
    gt[1, 1] = value
    with pytest.raises(UsageError, match=f"target_depth has {msg}"):
        depth_metrics(np.ones((2, 2)), gt)


@pytest.mark.parametrize("value,msg", [(0.0, "1 non-positive and 0 non-finite"), (-3.0, "1 non-positive"),
                                       (np.nan, "0 non-positive and 1 non-finite"), (np.inf, "1 non-finite")])
def test_bad_predictions_on_valid_pixels_are_errors(value, msg):
    pred = np.ones((2, 2))
    pred[0, 1] = value
    with pytest.raises(UsageError, match=msg):
        depth_metrics(pred, np.ones((2, 2)))


def test_other_bad_arguments():
    with pytest.raises(UsageError, match="unknown aggregation"):
        MetricAccumulator("median")
    acc = MetricAccumulator()
    acc.update(np.ones((2, 2)), np.ones((2, 2)))
    with pytest.raises(UsageError, match="unknown aggregation"):
        acc.compute("mean")
    with pytest.raises(UsageError, match="NumPy array or a torch tensor"):
        depth_metrics([1.0], [1.0])
    with pytest.raises(UsageError, match=r"\(B, H, W\)"):
        acc.update(np.ones(3), np.ones(3))


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 12), seed=st.integers(0, 1000))
def test_bootstrap_intervals_bracket_the_estimate_and_are_reproducible(n, seed):
    from mdlearn.metrics import MetricAccumulator

    rng = np.random.default_rng(seed)
    acc = MetricAccumulator("pooled")
    for _ in range(n):
        gt = rng.uniform(0.5, 8, (5, 6))
        acc.update(gt * rng.uniform(0.6, 1.5, gt.shape), gt)
    for agg in ("pooled", "per_image"):
        ci = acc.bootstrap(400, seed=1, aggregation=agg)
        point = acc.compute(agg)
        assert ci == acc.bootstrap(400, seed=1, aggregation=agg)
        for k, (lo, hi) in ci.items():
            assert lo <= hi
            # resampled means, and pooled ratios (mediants of the images' ratios), stay within
            # the range of the images' own values
            per = acc.per_image()[k]
            assert per.min() - 1e-9 <= lo and hi <= per.max() + 1e-9
            assert per.min() - 1e-9 <= point[k] <= per.max() + 1e-9


def test_bootstrap_of_identical_images_is_a_point_and_wider_with_spread():
    from mdlearn.metrics import MetricAccumulator

    same, spread = MetricAccumulator("pooled"), MetricAccumulator("pooled")
    gt = np.linspace(1, 5, 30).reshape(5, 6)
    for i in range(8):
        same.update(gt * 1.1, gt)
        spread.update(gt * (1.0 + 0.05 * i), gt)
    lo, hi = same.bootstrap(200)["abs_rel"]
    assert lo == pytest.approx(0.1) and hi == pytest.approx(0.1)
    lo, hi = spread.bootstrap(200)["abs_rel"]
    assert lo < spread.compute()["abs_rel"] < hi and hi - lo > 0.02
