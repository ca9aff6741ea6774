"""mdlearn.reproduction: the paper's tables as data, our numbers at full resolution, the comparison (Chapter 9)."""

import json

import numpy as np
import pytest
import torch

from mdlearn import recipes
from mdlearn import reproduction as rp
from mdlearn.assess import evaluate_network, protocol_for_size
from mdlearn.errors import FormatError, UsageError
from mdlearn.evaluation import get_protocol
from mdlearn.metrics import MetricAccumulator
from mdlearn.runs import train_run


def test_the_paper_columns_agree_with_the_facts_file_summary():
    # eigen2014-facts.md Section 6 transcribes the same tables independently
    cf1, cf2 = rp.PAPER_TABLE1["Coarse+Fine"], rp.PAPER_TABLE2["Coarse+Fine"]
    assert (cf1["delta1"], cf1["abs_rel"], cf1["rmse"]) == (0.611, 0.215, 0.907)
    assert (cf2["delta1"], cf2["abs_rel"], cf2["rmse"]) == (0.692, 0.190, 7.156)
    # Section 3.2: "for our system, these error rates are 0.28 and 0.22"
    assert round(rp.PAPER_TABLE1["Coarse"]["rmse_log"], 2) == 0.28
    assert round(rp.PAPER_TABLE1["Coarse"]["rmse_log_si"], 2) == 0.22
    for table in (rp.PAPER_TABLE1, rp.PAPER_TABLE2):
        for column in table.values():
            assert tuple(column) == rp.TABLE_METRICS
            assert all(v is None or 0 < v < 10 for v in column.values())


def _item(name, gt, pred, region=None):
    region = np.ones(gt.shape, bool) if region is None else region
    return rp.TestPrediction(name, None, gt, region, {"Mean": pred, "Coarse+Fine": gt.copy()})


def _items(n=5, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        gt = rng.uniform(1, 5, (12, 16)).astype(np.float32)
        out.append(_item(f"v{i}", gt, (gt * rng.uniform(0.7, 1.3, gt.shape)).astype(np.float32)))
    return out


def test_evaluate_methods_equals_each_protocol_on_its_own():
    items = _items()
    protos = {"eigen": get_protocol("kitti_garg"), "pooled": get_protocol("kitti_garg").replace(
        "pooled", aggregation="pooled")}
    res = rp.evaluate_methods(items, protos)
    for label, proto in protos.items():
        alone = proto.evaluate([i.preds["Mean"] for i in items], [i.gt for i in items])
        assert res[label]["Mean"].metrics == pytest.approx(alone.metrics, rel=1e-12)
        assert res[label]["Coarse+Fine"].metrics["abs_rel"] == 0.0  # the ground truth itself
        assert res[label]["Mean"].images == [i.name for i in items]
        assert res[label]["Mean"].confidence(200, seed=1) == alone.accumulator.bootstrap(200, seed=1)


def test_region_and_masks_restrict_the_pixels():
    gt = np.full((4, 4), 2.0, np.float32)
    pred = gt.copy()
    pred[:, :2] = 4.0  # wrong on the left half
    region = np.zeros((4, 4), bool)
    region[:, 2:] = True
    res = rp.evaluate_methods([_item("a", gt, pred, region)], {"all": get_protocol("nyu_paper").replace(
        "whole", crop=None), "left": get_protocol("nyu_paper").replace("whole-left", crop=None)},
        masks={"left": lambda item: np.arange(4)[None, :].repeat(4, 0) < 3})
    assert res["all"]["Mean"].metrics["abs_rel"] == 0.0  # the left half lies outside the region
    assert res["left"]["Mean"].accumulator().valid_pixels_per_image().tolist() == [4]
    with pytest.raises(UsageError, match="one scale per set"):
        rp.evaluate_methods([], {"s": get_protocol("nyu_paper").replace("s", alignment="median",
                                                                          alignment_scope="set")})
    with pytest.raises(UsageError, match="masks for unknown"):
        rp.evaluate_methods([], {"a": get_protocol("nyu_paper")}, masks={"b": None})


def test_statistics_round_trip_and_results_file(tmp_path):
    res = rp.evaluate_methods(_items(6, seed=3), {"p": get_protocol("kitti_eigen")})["p"]
    acc = res["Mean"].accumulator()
    again = MetricAccumulator.from_statistics(acc.statistics(), "per_image")
    assert again.compute() == acc.compute() and again.bootstrap(50) == acc.bootstrap(50)
    with pytest.raises(UsageError, match="per-image statistics"):
        MetricAccumulator.from_statistics(np.zeros((2, 3)))
    doc = rp.results_to_json(res, dataset="x", synthetic=True, data_label="six views", n_resamples=300)
    path = tmp_path / "results.json"
    path.write_text(json.dumps(doc))
    data, back = rp.read_results(path)
    assert data["data_label"] == "six views" and data["bootstrap"]["n_resamples"] == 300
    for m in res:
        assert back[m].metrics == res[m].metrics
        assert back[m].confidence(300) == res[m].confidence(300)
        assert data["methods"][m]["confidence_95"] == {k: list(v) for k, v in res[m].confidence(300).items()}
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(FormatError, match="not an mdlearn results file"):
        rp.read_results(tmp_path / "bad.json")


def test_comparison_table_puts_ours_beside_the_paper():
    res = rp.evaluate_methods(_items(4), {"p": get_protocol("kitti_eigen")})["p"]
    md, js = rp.comparison_table(res, table="nyu", synthetic=True, data_label="four views", n_resamples=100)
    assert "Synthetic data — not comparable with the paper" in md and js["synthetic"]
    assert js["paper"] == rp.PAPER_TABLE1 and set(js["ours"]) == {"Mean", "Coarse+Fine"}
    for m in js["ours"]:
        for k in rp.TABLE_METRICS:
            assert js["ours"][m][k] == res[m].metrics[k]
            assert js["ours_minus_paper"][m][k] == pytest.approx(res[m].metrics[k] - rp.PAPER_TABLE1[m][k])
            lo, hi = js["confidence_95"][m][k]
            assert lo <= hi
    assert md.count("\n| ") == 1 + len(rp.TABLE_METRICS)  # header + one row per metric
    assert "| 0.542 | – |" in md  # Ladicky's delta1, Karsch's dash
    real, _ = rp.comparison_table(res, table="kitti", synthetic=False, data_label="real", n_resamples=10)
    assert "not comparable" not in real and "paper Ladicky" not in real and "5.712" in real
    with pytest.raises(UsageError, match="unknown table"):
        rp.comparison_table(res, table="make3d", synthetic=True, data_label="")


def test_log_mean_depth_fills_pixels_never_seen():
    a = np.array([[1.0, 0.0], [4.0, 0.0]], np.float32)
    b = np.array([[4.0, 0.0], [4.0, 2.0]], np.float32)
    m = rp.log_mean_depth([a, b])
    assert m[0, 0] == pytest.approx(2.0) and m[1, 0] == pytest.approx(4.0) and m[1, 1] == pytest.approx(2.0)
    assert m[0, 1] == pytest.approx(np.exp(np.mean(np.log([2, 4, 2]))))  # the seen pixels' means
    with pytest.raises(UsageError):
        rp.log_mean_depth([np.zeros((2, 2), np.float32)])
    mean = np.array([[0.0, 2.0], [8.0, 0.0]], np.float32)
    assert rp.fill_unseen(mean).tolist() == [[4.0, 2.0], [8.0, 4.0]] and mean[0, 0] == 0


def test_full_resolution_predictions_equal_evaluate_network(small_dataset, tmp_path, monkeypatch):
    root, _ = small_dataset
    monkeypatch.setenv("MDLEARN_DATA", str(tmp_path / "data"))
    rec = recipes.get_recipe("smoke", coarse_samples=8, fine_samples=8)
    coarse = train_run(tmp_path / "c", rec, "coarse", data_root=root, progress=False, device="cpu")
    fine = train_run(tmp_path / "f", rec, "fine", data_root=root, init=coarse, progress=False, device="cpu")
    with pytest.raises(UsageError, match="fine-stage"):
        next(rp.full_resolution_predictions(coarse, root, progress=False, device="cpu"))
    model = recipes.build(rec)
    mean_log = rp.mean_log_at_output(rec, model, root)
    assert mean_log.shape == tuple(len(t) for t in model.output_grid())
    items = list(rp.full_resolution_predictions(fine, root, mean_log=mean_log, progress=False, device="cpu"))
    assert [list(i.preds) for i in items] == [["Mean", "Coarse", "Coarse+Fine"]] * len(items)
    proto = protocol_for_size("nyu_paper", items[0].gt.shape)
    res = rp.evaluate_methods(items, {"p": proto})["p"]
    for method, scale in (("Coarse", "coarse"), ("Coarse+Fine", "fine")):
        ev = evaluate_network(fine, root, "nyu_paper", scale=scale, progress=False, device="cpu")
        assert res[method].metrics == pytest.approx(ev.result.metrics, rel=1e-12)
    for i in items:  # the Mean is one map for every image, on the networks' pixels
        assert np.array_equal(i.preds["Mean"] > 0, i.region)
        assert np.array_equal(i.preds["Mean"], items[0].preds["Mean"])


def test_kitti_full_resolution_predictions_equal_evaluate_network(tmp_path, prepared_street):
    """Table 2's path: a KITTI network's Mean / Coarse / Coarse+Fine mapped back through the crop box."""
    raw, depth, test_drive = prepared_street  # one test frame without its depth map
    rec = recipes.get_recipe("kitti-smoke", coarse_samples=8, fine_samples=8)
    coarse = train_run(tmp_path / "c", rec, "coarse", data_root=depth, progress=False, device="cpu")
    fine = train_run(tmp_path / "f", rec, "fine", data_root=depth, init=coarse, progress=False, device="cpu")
    assert rp.recipe_data_root(rec, depth) == depth
    model = recipes.build(rec)
    mean_log = rp.mean_log_at_output(rec, model, depth)
    assert mean_log.shape == tuple(len(t) for t in model.output_grid())
    items = list(rp.full_resolution_predictions(fine, depth, mean_log=mean_log, progress=False, device="cpu"))
    proto = protocol_for_size("kitti_eigen", items[0].gt.shape)
    res = rp.evaluate_methods(items, {"p": proto})["p"]
    for method, scale in (("Coarse", "coarse"), ("Coarse+Fine", "fine")):
        ev = evaluate_network(fine, depth, "kitti_eigen", scale=scale, progress=False, device="cpu")
        assert res[method].metrics == pytest.approx(ev.result.metrics, rel=1e-12)
        assert len(res[method].images) == ev.result.n_images and ev.missing_ground_truth == 1
    rows = np.flatnonzero(items[0].region.any(1))
    assert rows.min() > 0.3 * items[0].gt.shape[0]  # the fine rows: the lower part of the crop box
    for i in items:
        assert np.array_equal(i.preds["Mean"] > 0, i.region)


def test_predict_in_region_covers_the_rows_of_the_output_grid(small_dataset):
    from mdlearn.assess import predict_in_region
    from mdlearn.models import build_model

    root, _ = small_dataset
    rec = recipes.get_recipe("smoke")
    test = recipes.training_data(rec, "test", root, progress=False)
    model = recipes.build(rec)
    depth, region = predict_in_region(model, test, scale="coarse", device="cpu")
    assert region.all() and np.array_equal(depth, recipes.predict(model, test, scale="coarse", device="cpu"))
    kitti = build_model("kitti", (192, 57))
    rows = kitti.output_grid()[0]
    images = [{"image": torch.rand(3, 57, 192)} for _ in range(3)]
    depth, region = predict_in_region(kitti, images, device="cpu")
    top = 57 - kitti.config.fine_rows
    assert depth.shape == (3, 57, 192) and not region[:top].any() and region[top:].all()
    assert (depth[:, :top] == 0).all() and (depth[:, top:] > 0).all() and top < int(rows.min())
    # recipes.predict is the same prediction (it used to stretch a KITTI output over every row)
    assert np.array_equal(recipes.predict(kitti, images, device="cpu"), depth)
