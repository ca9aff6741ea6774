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
