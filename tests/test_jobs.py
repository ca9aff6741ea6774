"""What every long job shares (mdlearn.jobs): staging, stale partial folders, worker pools that die with
their parent, ownership of output folders, unwritable outputs, one exit-code rule for ``prepare``.

Tests run as root, for whom a chmod'd folder is still writable: unwritable folders are simulated by
patching ``os.access`` (the check every job goes through) for exactly that path.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mdlearn import jobs
from mdlearn.cli import main
from mdlearn.errors import MdlearnError
from mdlearn.synthetic.kitti_raw import KittiRawSpec, write_kitti_raw
from mdlearn.synthetic.nyu_raw import KinectSpec, ensure_nyu_raw, write_nyu_raw
from mdlearn.synthetic.nyu_sync import IndoorSpec, write_indoor_dataset

TINY_INDOOR = IndoorSpec(rooms=1, views_per_room=1, resolution=0.1)


@pytest.fixture(scope="module")
def kitti_raw(tmp_path_factory):
    out = tmp_path_factory.mktemp("jobs") / "kraw"
    write_kitti_raw(out, KittiRawSpec(drives=2, frames_per_drive=2, resolution=0.1, azimuth_steps=200),
                    workers=1, progress=False)
    return out


@pytest.fixture(scope="module")
def nyu_raw(tmp_path_factory):
    out = tmp_path_factory.mktemp("jobs") / "nraw"
    write_nyu_raw(out, KinectSpec(scenes=1, frames_per_scene=3, resolution=0.125), progress=False)
    return out


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _deny_access(monkeypatch, path: Path):
    real = os.access

    def access(p, mode, *a, **k):
        if Path(p).resolve() == path.resolve() and mode & os.W_OK:
            return False
        return real(p, mode, *a, **k)

    monkeypatch.setattr(os, "access", access)


# ----------------------------------------------------------------------------- ownership


def test_ensure_nyu_raw_never_replaces_a_folder_it_did_not_write(tmp_path):
    mine = tmp_path / "raw"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    with pytest.raises(MdlearnError, match="not written by"):
        ensure_nyu_raw(mine, KinectSpec(scenes=1, frames_per_scene=2, resolution=0.125), progress=False)
    assert (mine / "thesis.tex").read_text() == "years of work"


def test_ensure_functions_return_the_path(tmp_path):
    out = ensure_nyu_raw(tmp_path / "raw", KinectSpec(scenes=1, frames_per_scene=2, resolution=0.125),
                         progress=False)
    assert out == tmp_path / "raw" and (out / "index.json").is_file()


# ----------------------------------------------------------------------------- prepare kitti-raw settings


def test_prepare_kitti_raw_refuses_changed_settings_or_redoes_them(kitti_raw, tmp_path, capsys):
    out = tmp_path / "p"
    assert main(["prepare", "kitti-raw", str(kitti_raw), str(out), "--workers", "1", "--quiet"]) == 0
    png = next(out.rglob("*.png"))
    before = png.read_bytes()
    assert main(["prepare", "kitti-raw", str(kitti_raw), str(out), "--pixel", "floor", "--workers", "1",
                 "--quiet"]) == 2
    assert "--overwrite" in capsys.readouterr().err and png.read_bytes() == before
    assert main(["prepare", "kitti-raw", str(kitti_raw), str(out), "--pixel", "floor", "--workers", "1",
                 "--quiet", "--overwrite"]) == 0
    assert main(["prepare", "kitti-raw", str(kitti_raw), str(tmp_path / "ref"), "--pixel", "floor", "--workers",
                 "1", "--quiet"]) == 0
    assert png.read_bytes() == (tmp_path / "ref" / png.relative_to(out)).read_bytes()
    manifest = json.loads((out / "index.json").read_text())
    assert manifest["spec"]["pixel"] == "floor"


# ----------------------------------------------------------------------------- unwritable outputs


def test_prepare_into_an_unwritable_folder_is_one_line_exit_2(kitti_raw, nyu_raw, tmp_path, monkeypatch, capsys):
    for cmd, raw in (("kitti-raw", kitti_raw), ("nyu-raw", nyu_raw)):
        out = tmp_path / f"ro-{cmd}"
        out.mkdir()
        _deny_access(monkeypatch, out)
        assert main(["prepare", cmd, str(raw), str(out), "--workers", "1", "--quiet"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(out) in err[0] and "not writable" in err[0]
        assert not any(out.iterdir())


def test_synth_into_an_empty_unwritable_folder_leaves_it_alone(tmp_path, monkeypatch, capsys):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    _deny_access(monkeypatch, out)
    assert main(["synth", "indoor", str(out), "--rooms", "1", "--views-per-room", "1", "--resolution", "0.1",
                 "--workers", "1", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not writable" in err[0]
    assert (out.stat().st_mode & 0o777) == 0o555 and not any(out.iterdir())


def test_synth_into_an_empty_folder_keeps_its_mode(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    out.chmod(0o750)
    write_indoor_dataset(out, TINY_INDOOR, workers=1, progress=False)
    assert (out.stat().st_mode & 0o777) == 0o750 and (out / "index.json").is_file()


# ----------------------------------------------------------------------------- no input, exit codes


def test_prepare_without_input_is_an_error_naming_what_was_expected(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    for cmd, expected in (("nyu-raw", "no raw scenes"), ("kitti-raw", "no drives")):
        assert main(["prepare", cmd, str(empty), str(tmp_path / f"o-{cmd}"), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert expected in err and str(empty) in err and "expected" in err
        assert not (tmp_path / f"o-{cmd}" / "index.json").exists()


def test_prepare_exit_1_when_some_inputs_were_skipped(kitti_raw, tmp_path, capsys):
    bad = tmp_path / "raw"
    shutil.copytree(kitti_raw, bad)
    next(bad.glob("*/*_drive_0002_sync/image_02/timestamps.txt")).unlink()
    assert main(["prepare", "kitti-raw", str(bad), str(tmp_path / "o"), "--workers", "1", "--quiet"]) == 1
    assert "drive_0002" in capsys.readouterr().out


def test_prepare_help_documents_the_exit_codes(capsys):
    for cmd in ("nyu-raw", "kitti-raw"):
        with pytest.raises(SystemExit):
            main(["prepare", cmd, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "exit status 0" in text and "1 if some" in text and "2" in text


# ----------------------------------------------------------------------------- stale partial folders


def test_stale_partial_folders_of_dead_processes_are_cleaned(tmp_path):
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = tmp_path / f"out.partial-{_dead_pid()}"
        keep = [tmp_path / f"out.partial-{live.pid}", tmp_path / "out.partial-notapid",
                tmp_path / f"other.partial-{_dead_pid()}", tmp_path / f"out.partialx-{_dead_pid()}"]
        for d in [dead, *keep]:
            d.mkdir()
            (d / "junk").write_text("x")
        write_indoor_dataset(tmp_path / "out", TINY_INDOOR, workers=1, progress=False)
        assert not dead.exists()
        assert all((d / "junk").is_file() for d in keep)
    finally:
        live.kill()
        live.wait()


def test_prepare_nyu_raw_cleans_stale_scene_partials(nyu_raw, tmp_path):
    out = tmp_path / "sync"
    assert main(["prepare", "nyu-raw", str(nyu_raw), str(out), "--workers", "1", "--quiet"]) == 0
    scene = next(p.name for p in nyu_raw.iterdir() if p.is_dir())
    shutil.rmtree(out / scene)
    stale = out / f"{scene}.partial-{_dead_pid()}"
    stale.mkdir()
    (stale / "junk").write_text("x")
    assert main(["prepare", "nyu-raw", str(nyu_raw), str(out), "--workers", "1", "--quiet"]) == 0
    assert not stale.exists() and (out / scene).is_dir()


# ----------------------------------------------------------------------------- workers die with their parent


def _descendants(pid: int) -> set[int]:
    out, todo = set(), [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                kids = (task / "children").read_text().split()
            except OSError:
                continue
            for k in map(int, kids):
                if k not in out:
                    out.add(k)
                    todo.append(k)
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs /proc")
def test_workers_stop_when_their_parent_is_killed(tmp_path):
    script = textwrap.dedent(f"""
        from mdlearn.synthetic.nyu_sync import IndoorSpec, write_indoor_dataset
        write_indoor_dataset({str(tmp_path / "out")!r}, IndoorSpec(rooms=4, views_per_room=5000, resolution=0.3),
                             workers=2, progress=False)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    everything: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        workers: set[int] = set()
        while time.monotonic() < deadline and len(workers) < 2:
            time.sleep(0.5)
            workers = {p for p in _descendants(parent.pid) if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text()}
        assert len(workers) >= 2, "the job never started its workers"
        everything = _descendants(parent.pid)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 5  # a worker busy with a long task must not finish it first
        while time.monotonic() < deadline and any(_alive(p) for p in everything):
            time.sleep(0.2)
        assert not [p for p in everything if _alive(p)], "workers outlived their parent"
    finally:  # whatever happened, leave no process of this test behind
        everything |= _descendants(parent.pid) if parent.poll() is None else set()
        parent.kill()
        parent.wait()
        for p in everything:
            if _alive(p):
                os.kill(p, signal.SIGKILL)


def test_exclusive_lets_one_of_two_processes_make_a_shared_output(tmp_path):
    """Two processes that both find ``out`` missing: with ``jobs.exclusive`` only one makes it."""
    script = (
        "import sys, time; from pathlib import Path; from mdlearn.jobs import exclusive\n"
        "out = Path(sys.argv[1])\n"
        "with exclusive(out):\n"
        "    if not out.exists():\n"
        "        time.sleep(1.0)  # a slow job: the other process is waiting by now\n"
        "        (out.parent / f'made-by-{sys.argv[2]}').touch()\n"
        "        out.mkdir()\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "shared"), str(i)]) for i in range(2)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    assert len(list(tmp_path.glob("made-by-*"))) == 1
    assert (tmp_path / "shared").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["shared", *(p.name for p in tmp_path.glob("made-by-*"))])
    assert jobs.lock_path(tmp_path / "shared").is_file()  # the lock is kept outside the output's folder
