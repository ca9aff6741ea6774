"""The real-data chain end to end on files in the real formats, at smoke size (Chapters 2, 8, 9).

What a researcher with the real NYU Depth v2 downloads runs: raw Kinect dumps -> ``prepare
nyu-raw`` -> ``train`` (coarse, then fine) -> the labeled ``.mat`` + ``splits.mat`` -> ``prepare
nyu-labeled`` -> ``evaluate --protocol nyu_paper``. Every file here is written by the project's
own writers in the real datasets' formats, so a first real run does not discover a broken link.
"""

import json
import math

import pytest

from mdlearn.cli import main
from mdlearn.synthetic.nyu_labeled import labeled_from_sync
from mdlearn.synthetic.nyu_raw import KinectSpec, write_nyu_raw


@pytest.mark.slow
def test_nyu_raw_dumps_to_table_1_numbers(tmp_path, monkeypatch, small_dataset, capsys):
    monkeypatch.setenv("MDLEARN_DATA", str(tmp_path / "data"))
    raw, sync = tmp_path / "raw", tmp_path / "sync"
    write_nyu_raw(raw, KinectSpec(scenes=1, frames_per_scene=8, seed=3, resolution=0.25), progress=False)
    assert main(["prepare", "nyu-raw", str(raw), str(sync), "--workers", "1", "--quiet"]) == 0
    common = ["--preset", "smoke", "--data", str(sync), "--quiet", "--device", "cpu"]
    assert main(["train", "--stage", "coarse", "--out", str(tmp_path / "c"), *common]) == 0
    assert main(["train", "--stage", "fine", "--init", str(tmp_path / "c"), "--out", str(tmp_path / "f"),
                 *common]) == 0
    indoor, _ = small_dataset
    mat, splits = labeled_from_sync(indoor, tmp_path / "labeled")
    assert main(["prepare", "nyu-labeled", str(mat), str(splits), str(tmp_path / "nyu"), "--quiet"]) == 0
    out = tmp_path / "metrics.json"
    assert main(["evaluate", "--checkpoint", str(tmp_path / "f" / "checkpoints" / "final.pt"), "--data",
                 str(tmp_path / "nyu" / "test"), "--protocol", "nyu_paper", "--out", str(out), "--quiet",
                 "--device", "cpu"]) == 0
    result = json.loads(out.read_text())
    n_test = len((indoor / "test_files_with_gt.txt").read_text().splitlines())
    assert result["images"] + result["images_without_ground_truth"] == n_test and result["scale"] == "fine"
    assert result["protocol"] == "nyu_paper@120x160" and result["ground_truth"] == "filled"
    assert all(math.isfinite(v) for v in result["metrics"].values()) and result["pixels"] > 0
    assert "finished fine stage" in capsys.readouterr().out


@pytest.mark.slow
def test_kitti_raw_drives_to_eigen_split_numbers(tmp_path, prepared_street, capsys):
    """Synthetic raw drives -> ``prepare kitti-raw`` -> train coarse + fine (smoke) -> evaluate kitti_eigen."""
    from mdlearn.train import read_checkpoint

    # two drives (training, test); one test frame lost its depth map: evaluate must count it
    raw, depth, test_drive = prepared_street
    common = ["--preset", "smoke", "--data", str(depth), "--quiet", "--device", "cpu", "--set", "coarse_samples=8",
              "--set", "fine_samples=8"]
    assert main(["train", "--stage", "coarse", "--out", str(tmp_path / "c"), *common]) == 0
    assert main(["train", "--stage", "fine", "--init", str(tmp_path / "c"), "--out", str(tmp_path / "f"),
                 *common]) == 0
    final = tmp_path / "f" / "checkpoints" / "final.pt"
    state = read_checkpoint(final)
    assert state["meta"]["recipe"]["name"] == "kitti-smoke" and state["arch"]["dataset"] == "kitti"
    assert state["arch"]["input_size"] == [192, 57] and state["arch"]["fine_rows"] < 57  # the bottom rows
    out = tmp_path / "metrics.json"
    assert main(["evaluate", "--checkpoint", str(final), "--data", str(depth), "--protocol", "kitti_eigen",
                 "--out", str(out), "--quiet", "--device", "cpu"]) == 0
    result = json.loads(out.read_text())
    assert result["protocol"] == "kitti_eigen" and result["scale"] == "fine" and result["ground_truth"] == "camz_time"
    assert result["frames_without_ground_truth_file"] == 1
    assert result["images"] + result["images_without_ground_truth"] == 3  # the test drive's frames, left camera
    assert "ground truth camz_time (prepare kitti-raw)" in result["card"] and "1 of them without" in result["card"]
    assert "697" not in result["card"]  # the card names the data evaluated, not the real Eigen split
    assert all(math.isfinite(v) for v in result["metrics"].values()) and result["pixels"] > 0
    assert 0 < result["network_region_inside_crop"] <= 1
    capsys.readouterr()
    # the other dataset's protocol or data: one line, exit 2
    for argv, fragment in [(["--data", str(depth), "--protocol", "nyu_paper"], "is for NYU test sets"),
                           (["--data", str(raw), "--protocol", "kitti_eigen"], "run `mdlearn prepare kitti-raw")]:
        assert main(["evaluate", "--checkpoint", str(final), *argv, "--quiet", "--device", "cpu"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and fragment in err[0], err
    # maps redone with other settings: the training cache notices and is rebuilt, never reused stale
    from mdlearn import recipes

    cache_index = tmp_path / "data" / "cache" / "kitti-204x61" / "train" / "index.json"
    before = json.loads(cache_index.read_text())["spec"]["source"]["params"]["ground_truth_spec"]
    assert main(["prepare", "kitti-raw", str(raw), str(depth), "--pixel", "floor", "--overwrite", "--workers", "1",
                 "--quiet"]) == 0
    recipes.training_data(recipes.get_recipe("kitti-smoke"), "train", depth, progress=False)
    after = json.loads(cache_index.read_text())["spec"]["source"]["params"]["ground_truth_spec"]
    assert '"pixel": "round"' in before and '"pixel": "floor"' in after
