"""The NYU subcommands of the command line: synth nyu-raw, prepare nyu-raw, prepare nyu-labeled."""

from test_nyu_raw import _bad_raw_dir, raw_dir  # noqa: F401  (the module fixture)

import numpy as np
import scipy.io
from test_nyu_labeled import _write_labeled

from mdlearn.cli import main


def test_cli_prepare_reports_skipped_scenes_and_exits_1(raw_dir, tmp_path, capsys):  # noqa: F811
    bad, _ = _bad_raw_dir(raw_dir, tmp_path)
    rc = main(["prepare", "nyu-raw", str(bad), str(tmp_path / "out2"), "--quiet", "--workers", "1"])
    text = capsys.readouterr().out
    assert rc == 1 and "skipped truncated" in text and "skipped order" in text


def test_cli_synth_and_prepare(tmp_path, capsys):
    raw = tmp_path / "raw"
    assert main(["synth", "nyu-raw", str(raw), "--scenes", "1", "--frames-per-scene", "3", "--resolution",
                 "0.125", "--quiet"]) == 0
    assert main(["prepare", "nyu-raw", str(raw), str(tmp_path / "sync"), "--quiet"]) == 0
    assert "1 scenes prepared" in capsys.readouterr().out
    assert main(["prepare", "nyu-raw", str(raw), str(tmp_path / "sync"), "--quiet"]) == 0
    assert "1 already done" in capsys.readouterr().out
    assert main(["synth", "nyu-raw", str(raw), "--scenes", "1", "--frames-per-scene", "3", "--quiet"]) == 2
    assert main(["synth", "nyu-raw", str(tmp_path / "x"), "--scenes", "0", "--frames-per-scene", "3"]) == 2
    assert "already holds files" in capsys.readouterr().err


def test_cli_prepare_nyu_labeled(tmp_path, capsys):
    p, s = tmp_path / "labeled.mat", tmp_path / "splits.mat"
    _write_labeled(p)
    scipy.io.savemat(s, {"trainNdxs": np.array([[1], [3], [4], [6]]), "testNdxs": np.array([[2], [5]])})
    assert main(["prepare", "nyu-labeled", str(p), str(s), str(tmp_path / "o"), "--quiet"]) == 0
    assert "extracted 4 train and 2 test pairs of 6" in capsys.readouterr().out
    assert main(["prepare", "nyu-labeled", str(p), str(tmp_path / "nope.mat"), str(tmp_path / "o2"), "--quiet"]) == 1
    assert "nope.mat: no such file" in capsys.readouterr().err
