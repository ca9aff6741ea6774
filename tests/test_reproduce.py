"""``mdlearn reproduce``: the chapters executed as the chain, and the table computed from their results.

The end-to-end test runs the real chain at the ``smoke`` preset (chapters 6, 7 and 9 through
papermill; about a minute on a 2-core machine once the smoke checkpoints are cached).
"""

import json

import numpy as np
import pytest

from mdlearn import reproduction as rp
from mdlearn.course.reproduce import CHAIN, REPRODUCE_FORMAT, reproduce
from mdlearn.errors import MdlearnError, UsageError
from mdlearn.metrics import MetricAccumulator


@pytest.mark.parametrize("dataset,msg", [("kitti", "not available yet"), ("street", "not available yet"),
                                         ("nyu", "needs --train-data"), ("make3d", "unknown --dataset")])
def test_datasets_that_cannot_run_are_refused_before_any_work(tmp_path, dataset, msg):
    with pytest.raises(UsageError, match=msg):
        reproduce(dataset, "smoke", tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_a_folder_it_did_not_write_is_left_alone(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    with pytest.raises(UsageError, match="not written by mdlearn-reproduce"):
        reproduce("indoor", "smoke", out, progress=False)
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
    with pytest.raises(UsageError, match="unknown preset"):
        reproduce("indoor", "paper", tmp_path / "other", progress=False)


@pytest.mark.slow
def test_smoke_chain_writes_a_table_computed_from_its_results(tmp_path):
    out = tmp_path / "r"
    lines = []
    table = reproduce("indoor", "smoke", out, progress=False, log=lines.append)
    assert table == out / "table1.md" and len(lines) == 2 * len(CHAIN) + 2  # start + done per chapter
    manifest = json.loads((out / "index.json").read_text())
    assert manifest["format"] == REPRODUCE_FORMAT and manifest["spec"]["dataset"] == "indoor"
    for _, chapter in CHAIN:  # the executed chapters are the record, with their outputs
        nb = json.loads((out / "notebooks" / f"{chapter}.ipynb").read_text())
        assert any(c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code")
    data, methods = rp.read_results(out / "results.json")
    js = json.loads((out / "table1.json").read_text())
    n, seed = data["bootstrap"]["n_resamples"], data["bootstrap"]["seed"]
    assert set(js["ours"]) == set(rp.METHODS) and js["synthetic"] and js["paper"] == rp.PAPER_TABLE1
    for m in rp.METHODS:  # every number recomputed from the per-image statistics
        stats = np.asarray(data["methods"][m]["statistics"])
        acc = MetricAccumulator.from_statistics(stats, data["methods"][m]["aggregation"])
        ours = acc.compute()
        ci = acc.bootstrap(n, 0.95, seed)
        for k in rp.TABLE_METRICS:
            assert js["ours"][m][k] == ours[k]
            assert js["confidence_95"][m][k] == list(ci[k])
            assert js["ours_minus_paper"][m][k] == pytest.approx(ours[k] - rp.PAPER_TABLE1[m][k])
            assert f"{ours[k]:.3f} [{ci[k][0]:.3f}, {ci[k][1]:.3f}]" in table.read_text()
        assert len(stats) == len(data["methods"][m]["images"]) == js["images"][m] > 0
    assert "Synthetic data — not comparable with the paper" in table.read_text()
    with pytest.raises(UsageError, match="pass --overwrite"):
        reproduce("indoor", "smoke", out, progress=False)
    assert not list(tmp_path.glob("r.partial-*"))


@pytest.mark.slow
def test_nyu_chain_on_files_in_the_real_formats(tmp_path, monkeypatch, small_dataset):
    """--dataset nyu: prepare nyu-raw (training) and prepare nyu-labeled (test) folders, as from the
    real downloads, written here by the project's own writers (tests/test_chain.py does the same)."""
    from mdlearn.cli import main
    from mdlearn.datasets import get_dataset
    from mdlearn.synthetic.nyu_labeled import labeled_from_sync
    from mdlearn.synthetic.nyu_raw import KinectSpec, write_nyu_raw

    street = get_dataset("kitti-raw-smoke")
    data = tmp_path / "data"
    data.mkdir()
    if street.is_ready():  # chapter 9's street world: borrowed, not regenerated
        (data / street.name).symlink_to(street.path())
    monkeypatch.setenv("MDLEARN_DATA", str(data))
    raw, sync = tmp_path / "raw", tmp_path / "sync"
    write_nyu_raw(raw, KinectSpec(scenes=1, frames_per_scene=8, seed=3, resolution=0.25), progress=False)
    assert main(["prepare", "nyu-raw", str(raw), str(sync), "--workers", "1", "--quiet"]) == 0
    mat, splits = labeled_from_sync(small_dataset[0], tmp_path / "labeled")
    assert main(["prepare", "nyu-labeled", str(mat), str(splits), str(tmp_path / "nyu"), "--quiet"]) == 0
    with pytest.raises(UsageError, match="needs --train-data"):
        reproduce("nyu", "smoke", tmp_path / "r", train_data=sync, progress=False)
    with pytest.raises(UsageError, match="no test_files_with_gt.txt"):
        reproduce("nyu", "smoke", tmp_path / "r", train_data=sync, test_data=sync, progress=False)
    with pytest.raises(UsageError, match="are for --dataset nyu"):
        reproduce("indoor", "smoke", tmp_path / "r", train_data=sync, progress=False)
    table = reproduce("nyu", "smoke", tmp_path / "r", train_data=sync, test_data=tmp_path / "nyu" / "test",
                      progress=False)
    js = json.loads((tmp_path / "r" / "table1.json").read_text())
    assert not js["synthetic"] and "not comparable" not in table.read_text()
    assert js["data"].endswith(str(tmp_path / "nyu" / "test"))
    n_test = len((small_dataset[0] / "test_files_with_gt.txt").read_text().splitlines())
    assert 0 < js["images"]["Coarse+Fine"] <= n_test
    manifest = json.loads((tmp_path / "r" / "index.json").read_text())
    assert manifest["spec"]["train_data"] == str(sync.resolve())


def test_a_failing_chapter_leaves_no_output_and_keeps_its_notebook(tmp_path):
    train, test = tmp_path / "train", tmp_path / "test"
    for folder, name in ((train, "files_with_gt.txt"), (test, "test_files_with_gt.txt")):
        folder.mkdir()
        (folder / name).write_text("room/rgb_00000.png room/sync_depth_00000.png 518.8579\n")  # no such files
    out = tmp_path / "r"
    with pytest.raises(MdlearnError, match="chapter 06_the_coarse_network failed at preset smoke"):
        reproduce("nyu", "smoke", out, train_data=train, test_data=test, progress=False)
    assert not out.exists() and not list(tmp_path.glob("r.partial-*"))
    kept = tmp_path / "r.failed-06_the_coarse_network.ipynb"
    nb = json.loads(kept.read_text())
    assert any(o.get("output_type") == "error" for c in nb["cells"] for o in c.get("outputs", []))
