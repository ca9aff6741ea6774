"""mdlearn.evaluation: named protocols (crop, range, clamping, alignment, aggregation) and their cards."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from mdlearn.data.formats import read_depth_png_kitti, read_depth_png_mm
from mdlearn.errors import UsageError
from mdlearn.data.crops import KITTI_CROP_EIGEN, KITTI_CROP_GARG, NYU_CROP_EIGEN, NYU_CROP_TOOLBOX
from mdlearn.evaluation import (PROTOCOLS,
                                align_scale, get_protocol, kitti_eigen, kitti_garg, kitti_garg_median, median_scaling,
                                nyu_eigen, nyu_paper, nyu_toolbox, oracle_mean_substitution, results_table)
from mdlearn.metrics import METRIC_NAMES, depth_metrics

NYU_FRAMES = ("00000", "00050", "00100")
KITTI_FRAMES = ("0000000005", "0000000050", "0000000100")


# ------------------------------------------------------------------------------------------- crops

def test_nyu_crops_name_both_conventions():
    assert NYU_CROP_EIGEN.bounds((480, 640)) == (45, 471, 41, 601)  # BTS & co., 426x560
    assert NYU_CROP_TOOLBOX.bounds((480, 640)) == (44, 471, 40, 601)  # toolbox mask(45:471, 41:601), 427x561
    m_e = nyu_eigen.valid_mask(np.ones((480, 640)))
    m_t = nyu_toolbox.valid_mask(np.ones((480, 640)))
    assert m_e.sum() == 426 * 560 and m_t.sum() == 427 * 561
    assert (m_t | m_e).sum() == m_t.sum()  # the toolbox mask contains the common crop: one row, one column more
    with pytest.raises(UsageError, match="defined for 480x640 images, got 240x320"):
        nyu_eigen.valid_mask(np.ones((240, 320)))


def test_kitti_crops_are_fractions_truncated_like_the_public_scripts():
    assert KITTI_CROP_GARG.bounds((375, 1242)) == (153, 371, 44, 1197)
    assert KITTI_CROP_EIGEN.bounds((375, 1242)) == (124, 342, 44, 1197)
    assert KITTI_CROP_GARG.bounds((352, 1216)) == (int(0.40810811 * 352), int(0.99189189 * 352),
                                                   int(0.03594771 * 1216), int(0.96405229 * 1216))
    assert "153:371" in kitti_garg.card() and "124:342" in kitti_eigen.card()


def test_ground_truth_range_is_strict_on_both_sides():
    gt = np.array([[0.0, 1e-3, 0.0011, 5.0, 9.999, 10.0, 10.5]])
    assert nyu_eigen.replace("n", crop=None).valid_mask(gt).tolist() == [[False, False, True, True, True, False, False]]


# ------------------------------------------------------------------------- clamping and bad input

def test_clamping_protocols_clip_and_replace_non_finite_predictions():
    p = nyu_eigen.replace("nyu_nocrop", crop=None)
    gt = np.full((1, 6), 2.0)
    pred = np.array([[20.0, -1.0, 0.0, np.nan, np.inf, 3.0]])
    y, ys, s = p.prepare(pred, gt)
    assert s == 1.0 and y.tolist() == [10.0, 1e-3, 1e-3, 1e-3, 10.0, 3.0]


def test_non_clamping_protocol_rejects_bad_predictions():
    with pytest.raises(UsageError, match="nyu_paper: pred_depth has 1 non-positive and 1 non-finite"):
        pred = np.ones((480, 640))
        pred[100, 100:102] = [0.0, np.nan]  # inside the crop
        nyu_paper.evaluate([pred], [np.full((480, 640), 2.0)])
    pred = np.ones((480, 640))
    pred[0, :2] = [0.0, np.nan]  # outside the crop: does not matter
    assert nyu_paper.evaluate([pred], [np.full((480, 640), 2.0)]).metrics["abs_rel"] == pytest.approx(0.5)


def test_bad_input_errors_name_the_problem():
    with pytest.raises(UsageError, match="shape mismatch"):
        nyu_eigen.evaluate([np.ones((480, 640))], [np.ones((480, 641))])
    gt = np.full((480, 640), 2.0)
    gt[3, 3] = np.nan
    with pytest.raises(UsageError, match="NaN"):
        nyu_eigen.evaluate([np.ones((480, 640))], [gt])
    with pytest.raises(UsageError, match="image 0 has no valid pixel"):
        nyu_eigen.evaluate([np.ones((480, 640))], [np.zeros((480, 640))])
    with pytest.raises(UsageError, match="no valid pixel in the whole test set"):
        nyu_eigen.evaluate([np.ones((480, 640))], [np.full((480, 640), 12.0)], allow_empty=True)
    with pytest.raises(UsageError, match="no images"):
        nyu_eigen.evaluate([], [])
    with pytest.raises(UsageError, match=r"one image \(H, W\) or \(1, H, W\) at a time"):
        nyu_eigen.evaluate([np.ones((2, 480, 640))], [np.ones((2, 480, 640))])
    one = nyu_eigen.evaluate([np.full((1, 480, 640), 3.0)], [np.full((1, 480, 640), 2.0)])
    assert one.metrics["abs_rel"] == pytest.approx(0.5)


def test_protocol_construction_is_checked():
    with pytest.raises(UsageError, match="unknown alignment"):
        nyu_eigen.replace("x", alignment="mean")
    with pytest.raises(UsageError, match="unknown aggregation"):
        nyu_eigen.replace("x", aggregation="mean")
    with pytest.raises(UsageError, match="unknown alignment scope"):
        nyu_eigen.replace("x", alignment_scope="batch")
    with pytest.raises(UsageError, match="new name"):
        nyu_eigen.replace("nyu_eigen", aggregation="pooled")
    with pytest.raises(UsageError, match="min_depth > 0"):
        nyu_eigen.replace("x", min_depth=0.0)
    with pytest.raises(UsageError, match="unknown evaluation protocol 'nyu'.*nyu_eigen"):
        get_protocol("nyu")
    assert get_protocol("kitti_garg") is kitti_garg
    assert set(PROTOCOLS) >= {"nyu_eigen", "nyu_toolbox", "nyu_paper", "kitti_garg", "kitti_eigen", "kitti_garg_median"}


# ------------------------------------------------------------------------------ alignment, oracle

def _scene(seed, shape=(30, 40)):
    g = np.random.default_rng(seed)
    gt = g.uniform(0.5, 9.0, shape)
    gt[g.random(shape) < 0.3] = 0
    return g, gt


@pytest.mark.parametrize("method", ["median", "least_squares", "least_squares_log"])
def test_alignment_recovers_an_exact_scale(method):
    _, gt = _scene(0)
    pred = np.where(gt > 0, gt, 1.0) / 3.7
    assert align_scale(pred, gt, method=method) == pytest.approx(3.7, rel=1e-12)


def test_alignment_definitions():
    g, gt = _scene(1)
    pred = np.where(gt > 0, gt, 1.0) * np.exp(g.normal(0.2, 0.3, gt.shape))
    v = gt > 0
    y, ys = pred[v], gt[v]
    assert align_scale(pred, gt, method="median") == pytest.approx(np.median(ys) / np.median(y), rel=1e-12)
    assert align_scale(pred, gt, method="least_squares") == pytest.approx((y @ ys) / (y @ y), rel=1e-12)
    assert align_scale(pred, gt, method="least_squares_log") == pytest.approx(np.exp(np.mean(np.log(ys / y))),
                                                                               rel=1e-12)
    assert align_scale(pred, gt, method="none") == 1.0
    # least squares minimises sum (s y - y*)^2: nudging s either way does worse
    s = align_scale(pred, gt, method="least_squares")
    cost = lambda s_: np.sum((s_ * y - ys) ** 2)  # noqa: E731
    assert cost(s) < cost(s * 1.001) and cost(s) < cost(s / 1.001)
    np.testing.assert_allclose(median_scaling(pred, gt), pred * np.median(ys) / np.median(y), rtol=1e-12)


def test_oracle_mean_substitution():
    g, gt = _scene(2)
    pred = np.where(gt > 0, gt, 1.0) * np.exp(g.normal(0.4, 0.25, gt.shape))
    v = gt > 0
    oracle = oracle_mean_substitution(pred, gt)
    assert np.mean(np.log(oracle[v])) == pytest.approx(np.mean(np.log(gt[v])), abs=1e-12)
    before, after = depth_metrics(pred, gt), depth_metrics(oracle, gt)
    assert after["rmse_log"] == pytest.approx(before["rmse_log_si"], rel=1e-10)
    assert after["rmse_log_si"] == pytest.approx(before["rmse_log_si"], rel=1e-10)
    assert after["rmse_log"] < before["rmse_log"]
    # torch in, torch out
    assert torch.is_tensor(oracle_mean_substitution(torch.from_numpy(pred), torch.from_numpy(gt)))


def test_set_alignment_fits_one_scale_and_needs_sequences():
    gts = [_scene(s, (480, 640))[1] for s in (3, 4)]
    preds = [np.where(t > 0, t, 1.0) * c for t, c in zip(gts, (0.5, 2.0))]
    per_image = nyu_eigen.replace("nyu_median", alignment="median").evaluate(preds, gts)
    np.testing.assert_allclose(per_image.scales, [2.0, 0.5], rtol=1e-12)
    assert per_image.metrics["abs_rel"] == pytest.approx(0.0, abs=1e-12)
    per_set = nyu_eigen.replace("nyu_median_set", alignment="median", alignment_scope="set").evaluate(preds, gts)
    assert len(set(per_set.scales.tolist())) == 1
    stacked = nyu_eigen.replace("nyu_median_set", alignment="median", alignment_scope="set").evaluate(
        np.stack(preds), np.stack(gts))  # a stacked array is a sequence of images too
    assert stacked.metrics == per_set.metrics
    assert per_set.metrics["abs_rel"] > 0.1
    with pytest.raises(UsageError, match="pass lists, not iterators"):
        ls_set = nyu_eigen.replace("nyu_ls_set", alignment="least_squares", alignment_scope="set")
        ls_set.evaluate(iter(preds), iter(gts))


def test_clamping_happens_after_alignment():
    # monodepth2 order: scale first, then clip. A prediction of 100 m scaled by 0.5 is 50 m, not 40.
    gt = np.full((375, 1242), 20.0)
    pred = np.full((375, 1242), 40.0)
    pred[200, 100] = 100.0
    y, ys, s = kitti_garg_median.prepare(pred, gt)
    assert s == pytest.approx(0.5) and y.max() == pytest.approx(50.0)


# ------------------------------------------------------------------------------- cards and tables

def test_card_states_every_choice_and_results_print_it():
    card = nyu_eigen.card()
    for needle in ("nyu_eigen", "45:471", "41:601", "426x560", "0.001 < gt < 10", "clamped to [0.001, 10]",
                   "alignment    none", "per image", "bts_eval.py"):
        assert needle in card, needle
    assert "pooled" in nyu_paper.card() and "not clamped" in nyu_paper.card()
    assert "median, one scale per image" in kitti_garg_median.card()
    res = nyu_eigen.evaluate([np.full((480, 640), 2.5)], [np.full((480, 640), 2.0)])
    assert str(res).startswith(card) and "1 images, 238560 px" in str(res)
    table = results_table({"a": res.metrics, "b": res.metrics}, nyu_eigen)
    assert table.startswith(card) and all(k in table for k in METRIC_NAMES)
    assert res.metrics["abs_rel"] == pytest.approx(0.25)


def test_aggregation_follows_the_protocol():
    gts = [_scene(s, (480, 640))[1] for s in (5, 6)]
    gts[1][:300] = 0  # unequal valid-pixel counts
    g = np.random.default_rng(7)
    preds = [np.where(t > 0, t, 1.0) * np.exp(g.normal(0, s, t.shape)) for t, s in zip(gts, (0.1, 0.5))]
    a = nyu_eigen.evaluate(preds, gts)
    b = nyu_eigen.replace("nyu_eigen_pooled", aggregation="pooled").evaluate(preds, gts)
    ra = [depth_metrics(np.clip(p, 1e-3, 10), t, nyu_eigen.valid_mask(t))["rmse"] for p, t in zip(preds, gts)]
    assert a.metrics["rmse"] == pytest.approx(np.mean(ra), rel=1e-12)
    assert b.metrics["rmse"] != pytest.approx(a.metrics["rmse"], rel=1e-3)


# --------------------------------------------------------- real ground truth, public-script formulas
#
# The references below are written in this file from the published formulas of the public evaluation
# scripts (BTS / AdaBins / ZoeDepth for NYU, monodepth2 for KITTI): read the PNG, build the valid mask
# gt > min & gt < max inside the crop, treat the prediction, compute each metric on the masked pixels
# of each image, average over images. Computed in float64.

def _public_errors(gt, pred):
    thresh = np.maximum(gt / pred, pred / gt)
    err = np.log(pred) - np.log(gt)
    return {
        "delta1": (thresh < 1.25).mean(), "delta2": (thresh < 1.25 ** 2).mean(), "delta3": (thresh < 1.25 ** 3).mean(),
        "abs_rel": np.mean(np.abs(gt - pred) / gt), "sq_rel": np.mean((gt - pred) ** 2 / gt),
        "rmse": np.sqrt(np.mean((gt - pred) ** 2)), "rmse_log": np.sqrt(np.mean((np.log(gt) - np.log(pred)) ** 2)),
        "silog": np.sqrt(np.mean(err ** 2) - np.mean(err) ** 2) * 100,
        "log10": np.mean(np.abs(np.log10(gt) - np.log10(pred))),
    }


def _perturbed_prediction(gt, seed, scale, fill):
    """A dense 'prediction': ground truth times log-normal noise and a global scale, holes filled."""
    g = np.random.default_rng(seed)
    pred = np.where(gt > 0, gt, fill) * scale * np.exp(g.normal(0.0, 0.15, gt.shape))
    return pred.astype(np.float32)


def _compare(got, per_image_refs):
    for k in METRIC_NAMES:
        ref_key = "silog" if k == "rmse_log_si" else k
        expected = np.mean([r[ref_key] for r in per_image_refs]) / (100 if k == "rmse_log_si" else 1)
        assert got[k] == pytest.approx(expected, rel=1e-9, abs=1e-12), k


@pytest.mark.shared_data
def test_nyu_eigen_reproduces_the_bts_style_evaluation_on_real_ground_truth(shared_data):
    preds, gts, refs = [], [], []
    for i, frame in enumerate(NYU_FRAMES):
        path = shared_data / "nyu" / "sync_pairs" / f"sync_depth_{frame}.png"
        # as the public scripts read it: float32 millimetres / 1000, then float64 arithmetic
        gt = (np.asarray(Image.open(path), dtype=np.float32) / np.float32(1000.0)).astype(np.float64)
        pred = _perturbed_prediction(gt, i, 1.1, 2.5).astype(np.float64)
        pred[10:20, 100:110] = 14.0  # beyond the cap
        pred[300, 300:305] = [0.0, -1.0, np.nan, np.inf, 1e-5]  # clamped / replaced as BTS does
        preds.append(pred.copy())
        gts.append(read_depth_png_mm(path))  # mdlearn's reader
        # reference
        p = pred.copy()
        p[p < 1e-3] = 1e-3
        p[p > 10] = 10
        p[np.isinf(p)] = 10
        p[np.isnan(p)] = 1e-3
        valid = (gt > 1e-3) & (gt < 10)
        crop = np.zeros(gt.shape, bool)
        crop[45:471, 41:601] = True
        valid &= crop
        refs.append(_public_errors(gt[valid], p[valid]))
    result = nyu_eigen.evaluate(preds, gts)
    assert result.n_images == 3
    _compare(result.metrics, refs)
    # the numbers are plausible for a 15 % log-normal perturbation with a 10 % scale error
    assert 0.5 < result.metrics["delta1"] < 0.95 and 0.1 < result.metrics["rmse_log_si"] < 0.2


@pytest.mark.shared_data
@pytest.mark.parametrize("protocol", ["kitti_garg", "kitti_eigen", "kitti_garg_median"])
def test_kitti_protocols_reproduce_the_monodepth2_style_evaluation_on_real_ground_truth(shared_data, protocol):
    proto = get_protocol(protocol)
    preds, gts, refs = [], [], []
    for i, frame in enumerate(KITTI_FRAMES):
        path = shared_data / "kitti" / "gt_pairs" / "depth" / f"{frame}.png"
        gt = np.asarray(Image.open(path), dtype=np.float64) / 256.0  # KITTI depth PNG: uint16 / 256
        pred = _perturbed_prediction(gt, 10 + i, 0.8, 30.0).astype(np.float64)
        pred[200:205, 600:620] = 150.0  # beyond the 80 m cap
        preds.append(pred)
        gts.append(read_depth_png_kitti(path))
        h, w = gt.shape
        rows = (0.40810811, 0.99189189) if protocol != "kitti_eigen" else (0.3324324, 0.91351351)
        crop = np.zeros(gt.shape, bool)
        crop[int(rows[0] * h):int(rows[1] * h), int(0.03594771 * w):int(0.96405229 * w)] = True
        mask = (gt > 1e-3) & (gt < 80) & crop
        p, t = pred[mask], gt[mask]
        if protocol == "kitti_garg_median":
            p = p * (np.median(t) / np.median(p))
        p = np.clip(p, 1e-3, 80)
        refs.append(_public_errors(t, p))
    result = proto.evaluate(preds, gts)
    _compare(result.metrics, refs)
    if protocol == "kitti_garg_median":
        assert np.all(np.abs(result.scales - 1 / 0.8) < 0.05)  # median scaling undoes the 0.8


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(["median", "least_squares", "least_squares_log"]), st.sampled_from(["image", "set"]),
       st.floats(1e-3, 1e3))
def test_aligned_protocols_are_invariant_to_the_scale_of_the_prediction(method, scope, c):
    g, gt = _scene(8, (20, 30))
    pred = np.where(gt > 0, gt, 1.0) * np.exp(g.normal(0.0, 0.3, gt.shape))
    proto = nyu_paper.replace("aligned", crop=None, alignment=method, alignment_scope=scope)
    a = proto.evaluate([pred, pred[::-1]], [gt, gt[::-1]]).metrics
    b = proto.evaluate([c * pred, c * pred[::-1]], [gt, gt[::-1]]).metrics
    for k in METRIC_NAMES:
        assert b[k] == pytest.approx(a[k], rel=1e-9, abs=1e-12), k


def test_every_protocol_card_names_its_ground_truth():
    from mdlearn.data.kitti_depth import GT_VARIANTS
    from mdlearn.evaluation import PROTOCOLS

    for name, protocol in PROTOCOLS.items():
        assert protocol.ground_truth, name
        assert f"ground truth {protocol.ground_truth}" in protocol.card()
        if name.startswith("kitti"):
            assert protocol.ground_truth.split(":")[0] in GT_VARIANTS, protocol.ground_truth
