"""mdlearn.assess and ``mdlearn evaluate``: a network on a test set at full resolution (Chapter 9)."""

import json

import numpy as np
import pytest

from mdlearn import recipes
from mdlearn.assess import evaluate_network, protocol_for_size, unit_blocks_to_full
from mdlearn.cli import main
from mdlearn.runs import train_run


def test_every_full_pixel_takes_the_unit_whose_block_holds_it():
    rows, cols = np.array([5, 9, 13]), np.array([4, 8, 12, 16])
    logd = np.log(np.arange(1, 13, dtype=np.float64).reshape(3, 4))
    full, resized, offset = (48, 64), (24, 32), (2, 3)
    depth, region = unit_blocks_to_full(logd, rows, cols, 4, offset, resized, full)
    for Y in range(full[0]):
        for X in range(full[1]):  # brute force: input coordinate of the pixel centre, nearest unit
            y = (Y + 0.5) * resized[0] / full[0] - 0.5 - offset[0]
            x = (X + 0.5) * resized[1] / full[1] - 0.5 - offset[1]
            i, j = np.argmin(np.abs(rows - y)), np.argmin(np.abs(cols - x))
            inside = abs(rows[i] - y) <= 2 and abs(cols[j] - x) <= 2
            assert region[Y, X] == inside
            assert depth[Y, X] == (pytest.approx(np.exp(logd[i, j])) if inside else 0.0)
    assert region.sum() == (3 * 4 * 2) * (4 * 4 * 2)  # 12 units of 4x4 input = 8x8 full pixels


def test_a_pixel_crop_of_another_size_becomes_fractions_and_says_so():
    same = protocol_for_size("nyu_paper", (480, 640))
    assert same.name == "nyu_paper"
    small = protocol_for_size("nyu_paper", (120, 160))
    assert small.name == "nyu_paper@120x160" and "scaled" in small.card()
    assert small.crop.bounds((120, 160)) == (11, 117, 10, 150)  # 44:471, 40:601 of 480x640, quartered


def test_evaluate_command_end_to_end(small_dataset, tmp_path, monkeypatch, capsys):
    root, _ = small_dataset
    monkeypatch.setenv("MDLEARN_DATA", str(tmp_path / "data"))
    rec = recipes.get_recipe("smoke", coarse_samples=8, fine_samples=8)
    ckpt = train_run(tmp_path / "run", rec, "coarse", data_root=root, progress=False, device="cpu")
    ev = evaluate_network(ckpt, root, "nyu_paper", progress=False, device="cpu")
    n_test = len((root / "test_files_with_gt.txt").read_text().split("\n")) - 1
    assert ev.result.n_images + ev.result.n_empty == n_test and ev.scale == "coarse"
    assert ev.result.protocol.name == "nyu_paper@120x160" and 0 < ev.region_in_crop <= 1
    out = tmp_path / "metrics.json"
    argv = ["evaluate", "--checkpoint", str(ckpt), "--data", str(root), "--out", str(out), "--quiet",
            "--device", "cpu"]
    assert main(argv) == 0
    saved = json.loads(out.read_text())
    assert saved["metrics"] == pytest.approx(ev.result.metrics) and "protocol nyu_paper@120x160" in saved["card"]
    assert saved["ground_truth"] == "filled"
    for k, (lo, hi) in saved["confidence_95"].items():
        assert lo <= hi and (ev.result.n_images > 1 or lo == hi == pytest.approx(saved["metrics"][k]))
    capsys.readouterr()
    assert main(argv) == 2 and "refusing to replace" in capsys.readouterr().err
    assert main(argv[:-5] + ["--protocol", "nyu_best"]) == 2
    assert "unknown protocol 'nyu_best'" in capsys.readouterr().err
    assert main(["evaluate", "--checkpoint", str(root / "test_files_with_gt.txt"), "--data", str(root)]) == 1
    assert "not a readable checkpoint" in capsys.readouterr().err


def test_bad_inputs_are_one_line_and_leave_nothing_behind(small_dataset, tmp_path, monkeypatch, capsys):
    import shutil

    import torch

    from mdlearn.train import read_checkpoint

    root, _ = small_dataset
    monkeypatch.setenv("MDLEARN_DATA", str(tmp_path / "data"))
    ckpt = train_run(tmp_path / "run", recipes.get_recipe("smoke", coarse_samples=4, batch_size=4), "coarse",
                     data_root=root, progress=False, device="cpu")
    state = read_checkpoint(ckpt)
    other_arch = tmp_path / "other_arch.pt"  # a checkpoint of another network, whatever its weights
    torch.save({**state, "arch": {**state["arch"], "name": "resnet50"}}, other_arch)
    other_size = tmp_path / "other_size.pt"  # the same network at another input size
    torch.save({**state, "arch": {**state["arch"], "input_size": [96, 72]}}, other_size)
    empty = tmp_path / "empty"
    empty.mkdir()
    broken = tmp_path / "broken"  # a test image that cannot be decoded
    shutil.copytree(root, broken)
    first = (broken / "test_files_with_gt.txt").read_text().split()[0]
    (broken / first).write_bytes(b"not an image")
    train = ["train", "--preset", "smoke", "--quiet", "--device", "cpu", "--set", "coarse_samples=4"]
    evaluate = ["evaluate", "--quiet", "--device", "cpu", "--out", str(tmp_path / "m.json")]
    cases = [
        (train + ["--stage", "coarse", "--data", str(empty), "--out", str(tmp_path / "t1")], 2,
         "expected a folder in the NYU sync layout"),
        (train + ["--stage", "coarse", "--dataset", "kitti", "--data", str(root), "--out", str(tmp_path / "t2")], 2,
         "expected the output folder of `mdlearn prepare kitti-raw"),
        (train + ["--stage", "fine", "--data", str(root), "--init", str(other_size), "--out", str(tmp_path / "t3")],
         2, "checkpoint is for another architecture (checkpoint vs model: input_size [96, 72] vs [76, 57])"),
        (evaluate + ["--checkpoint", str(ckpt), "--data", str(empty)], 2, "expected a folder in the NYU sync layout"),
        (evaluate + ["--checkpoint", str(ckpt), "--data", str(root), "--protocol", "kitti_eigen"], 2,
         "an NYU network, but protocol kitti_eigen is for KITTI test sets"),
        (evaluate + ["--checkpoint", str(other_arch), "--data", str(root)], 2, "another architecture ('resnet50')"),
        (evaluate + ["--checkpoint", str(ckpt), "--data", str(broken)], 1, first),
    ]
    capsys.readouterr()
    for argv, status, fragment in cases:
        assert main(argv) == status, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and fragment in err[0], (argv, err)
    assert not any((tmp_path / n).exists() for n in ("t1", "t2", "t3", "m.json"))  # nothing half-written
