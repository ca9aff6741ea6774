"""The command line: one-line errors with exit status 2 for misuse, and the happy paths."""

import json
import subprocess
import sys

import pytest

from mdlearn.cli import main


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "mdlearn", *args], capture_output=True, text=True)


@pytest.mark.parametrize("args,msg", [
    (["synth", "indoor", "OUT", "--rooms", "0", "--views-per-room", "2"], "--rooms must be a positive integer"),
    (["synth", "indoor", "OUT", "--rooms", "2", "--views-per-room", "-1"], "--views-per-room"),
    (["synth", "indoor", "OUT", "--rooms", "2", "--views-per-room", "1", "--resolution", "-1"], "--resolution"),
    (["synth", "indoor", "OUT", "--rooms", "two", "--views-per-room", "1"], "invalid int value"),
    (["chapter", "run", "1", "--preset", "huge"], "invalid choice: 'huge'"),
    (["chapter", "run", "99"], "no chapter '99'"),
    (["chapter", "run", "1", "-p", "no_such_parameter", "3"], "no parameter 'no_such_parameter'"),
    (["data", "ensure", "no-such-dataset"], "unknown dataset"),
    (["reproduce", "--dataset", "kitti", "--preset", "smoke", "--out", "OUT"], "needs --train-data"),
    (["reproduce", "--dataset", "indoor", "--preset", "huge", "--out", "OUT"], "invalid choice: 'huge'"),
])
def test_misuse_is_one_line_and_exit_2(tmp_path, args, msg):
    args = [str(tmp_path / a) if a == "OUT" else a for a in args]
    r = run_cli(*args)
    assert r.returncode == 2, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and msg in lines[0], r.stderr
    assert not (tmp_path / "OUT").exists()


def test_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = run_cli("synth", "indoor", str(blocker / "out"), "--rooms", "1", "--views-per-room", "1")
    assert r.returncode == 2 and "file" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_synth_indoor_writes_a_dataset(tmp_path, capsys):
    out = tmp_path / "ds"
    assert main(["synth", "indoor", str(out), "--rooms", "2", "--views-per-room", "2", "--seed", "3",
                 "--resolution", "0.1", "--quiet", "--workers", "1"]) == 0
    assert "wrote 4 views of 2 rooms" in capsys.readouterr().out
    index = json.loads((out / "index.json").read_text())
    assert index["spec"]["seed"] == 3 and index["counts"]["test_rooms"] == 1
    assert main(["synth", "indoor", str(out), "--rooms", "2", "--views-per-room", "2", "--quiet"]) == 2


def test_chapter_list_and_data_list(capsys):
    assert main(["chapter", "list"]) == 0
    assert "01_depth_from_a_single_image" in capsys.readouterr().out
    assert main(["data", "list"]) == 0
    assert "indoor" in capsys.readouterr().out
