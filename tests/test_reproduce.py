"""``mdlearn reproduce``: the chapters executed as the chain, and the table computed from their results.

The end-to-end tests run the real chain at the ``smoke`` preset (chapters 6, 7 and 9 through
papermill; about a minute each on a 2-core machine once the smoke checkpoints are cached): Table 1
on the synthetic rooms, Table 2 on the synthetic street drives.
"""

import json

import numpy as np
import pytest

from mdlearn import reproduction as rp
from mdlearn.course.reproduce import CHAIN, REPRODUCE_FORMAT, reproduce
from mdlearn.errors import MdlearnError, UsageError
from mdlearn.metrics import MetricAccumulator


@pytest.mark.parametrize("dataset,msg", [("kitti", "needs --train-data"), ("nyu", "needs --train-data"),
                                         ("make3d", "unknown --dataset")])
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


def test_kitti_takes_a_prepared_kitti_folder_only(tmp_path, small_dataset):
    with pytest.raises(UsageError, match="--train-data .*prepare kitti-raw"):
        reproduce("kitti", "smoke", tmp_path / "out", train_data=small_dataset[0], progress=False)
    with pytest.raises(UsageError, match="are for --dataset nyu or kitti"):
        reproduce("street", "smoke", tmp_path / "out", train_data=small_dataset[0], progress=False)
    assert not (tmp_path / "out").exists()


def _check_table(out, name, paper):
    """Every number of OUT/NAME.json and .md recomputed from results.json's per-image statistics."""
    data, methods = rp.read_results(out / "results.json")
    js = json.loads((out / f"{name}.json").read_text())
    text = (out / f"{name}.md").read_text()
    n, seed = data["bootstrap"]["n_resamples"], data["bootstrap"]["seed"]
    assert set(js["ours"]) == set(rp.METHODS) and js["paper"] == paper
    for m in rp.METHODS:
        stats = np.asarray(data["methods"][m]["statistics"])
        acc = MetricAccumulator.from_statistics(stats, data["methods"][m]["aggregation"])
        ours = acc.compute()
        ci = acc.bootstrap(n, 0.95, seed)
        for k in rp.TABLE_METRICS:
            assert js["ours"][m][k] == ours[k]
            assert js["confidence_95"][m][k] == list(ci[k])
            assert js["ours_minus_paper"][m][k] == pytest.approx(ours[k] - paper[m][k])
            assert f"{ours[k]:.3f} [{ci[k][0]:.3f}, {ci[k][1]:.3f}]" in text
            assert f"| {paper[m][k]:.3f} |" in text
        assert len(stats) == len(data["methods"][m]["images"]) == js["images"][m] > 0
    return data, js, text


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
    _, js, _ = _check_table(out, "table1", rp.PAPER_TABLE1)
    assert js["synthetic"] and not (out / "table2.md").exists()
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


@pytest.mark.slow
def test_street_chain_writes_table2_from_kitti_networks(tmp_path):
    """--dataset street: chapters 6 and 7 train the kitti-smoke networks, chapter 9 scores them at
    the ground truth's resolution under kitti_eigen; table2 holds the paper's Table 2 beside them."""
    out = tmp_path / "r"
    table = reproduce("street", "smoke", out, progress=False)
    assert table == out / "table2.md" and not (out / "table1.md").exists()
    manifest = json.loads((out / "index.json").read_text())
    assert manifest["spec"]["recipe"] == "kitti-smoke" and manifest["spec"]["dataset"] == "street"
    data, js, text = _check_table(out, "table2", rp.PAPER_TABLE2)
    assert data["recipe"] == "kitti-smoke" and data["synthetic"] and js["synthetic"]
    assert js["table"] == "Table 2" and "Synthetic data — not comparable with the paper" in text
    assert "protocol kitti_eigen" in text and "camz_time" in text
    assert "paper Make3D" in text and "paper Ladicky&al" not in text  # Table 2's columns
    for chapter in ("06_the_coarse_network", "07_the_fine_network"):  # they ran the KITTI recipe
        nb = json.loads((out / "notebooks" / f"{chapter}.ipynb").read_text())
        params = next(c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", []))
        assert "kitti-smoke" in "".join(params["source"])


@pytest.mark.slow
def test_kitti_chain_on_a_prepared_folder(tmp_path):
    """--dataset kitti: a `prepare kitti-raw` output (here the street world's, as chapter 3 prepares it)."""
    from mdlearn import recipes

    folder = rp.recipe_data_root(recipes.get_recipe("kitti-smoke"))
    table = reproduce("kitti", "smoke", tmp_path / "r", train_data=folder, progress=False)
    js = json.loads((tmp_path / "r" / "table2.json").read_text())
    assert not js["synthetic"] and "not comparable" not in table.read_text()
    assert js["images"]["Coarse+Fine"] > 0 and folder.name in js["data"]
    manifest = json.loads((tmp_path / "r" / "index.json").read_text())
    assert manifest["spec"]["train_data"] == manifest["spec"]["test_data"] == str(folder.resolve())
