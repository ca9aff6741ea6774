"""mdlearn.runs and ``mdlearn train``: run folders, TensorBoard curves, exact resumption after kill -9."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from mdlearn import recipes
from mdlearn.cli import main
from mdlearn.errors import MdlearnError, UsageError
from mdlearn.runs import RUN_FORMAT, train_run
from mdlearn.assess import evaluate_network
from mdlearn.train import Trainer, read_checkpoint

# long enough that a subprocess can be killed in the middle (a few hundred tiny steps)
SAMPLES = 480


def _recipe():
    return recipes.get_recipe("smoke", coarse_samples=SAMPLES, fine_samples=16, schedule="cosine", log_every=5)


def _scalars(run: Path, tag: str) -> list[tuple[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tensorboard"))
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def test_kill_9_then_resume_ends_where_an_uninterrupted_run_ends(small_dataset, tmp_path, monkeypatch):
    root, _ = small_dataset
    monkeypatch.setenv("MDLEARN_DATA", str(tmp_path / "data"))
    ref = train_run(tmp_path / "a", _recipe(), "coarse", data_root=root, checkpoint_every=10, progress=False,
                    device="cpu")
    run = tmp_path / "b"
    cmd = [sys.executable, "-m", "mdlearn", "train", "--stage", "coarse", "--preset", "smoke", "--data", str(root),
           "--out", str(run), "--set", f"coarse_samples={SAMPLES}", "--set", "fine_samples=16", "--set",
           "schedule='cosine'", "--set", "log_every=5", "--checkpoint-every", "10", "--quiet", "--device", "cpu"]
    env = dict(os.environ, MDLEARN_DATA=str(tmp_path / "data"))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    last = run / "checkpoints" / "last.pt"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if last.is_file() and read_checkpoint(last)["step"] >= 20:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
    killed_at = read_checkpoint(last)["step"]
    assert 20 <= killed_at < SAMPLES // 4 and not (run / "checkpoints" / "final.pt").exists()
    assert main(["train", "--stage", "coarse", "--preset", "smoke", "--data", str(root), "--out", str(run), "--set",
                 f"coarse_samples={SAMPLES}", "--set", "fine_samples=16", "--set", "schedule='cosine'", "--set",
                 "log_every=5", "--quiet", "--device", "cpu"]) == 2  # an unfinished run needs --resume
    assert killed_at % 10 == 0  # the kill lost only the steps since that checkpoint (fewer than 10)
    fits = []
    fit = Trainer.fit

    def recorded_fit(self, **kw):
        start = self.step
        out = fit(self, **kw)
        fits.append((start, self.step))
        return out

    monkeypatch.setattr(Trainer, "fit", recorded_fit)
    final = train_run(run, _recipe(), "coarse", data_root=root, resume=True, checkpoint_every=10, progress=False,
                      device="cpu")
    assert fits == [(killed_at, SAMPLES // 4)]  # resumed at the checkpoint: only the lost steps are redone
    a, b = read_checkpoint(ref), read_checkpoint(final)
    for k, v in a["model"].items():
        torch.testing.assert_close(b["model"][k], v, rtol=0, atol=1e-6, msg=k)
    assert [r["loss"] for r in b["history"]] == pytest.approx([r["loss"] for r in a["history"]], rel=1e-5)
    # TensorBoard: what the killed process logged after its last checkpoint was purged, not duplicated
    sa, sb = _scalars(tmp_path / "a", "coarse/loss"), _scalars(run, "coarse/loss")
    assert [s for s, _ in sb] == [s for s, _ in sa]
    assert [v for _, v in sb] == pytest.approx([v for _, v in sa], rel=1e-5)
    history = json.loads((run / "history.json").read_text())
    assert [r["step"] for r in history] == [r["step"] for r in a["history"]]  # every interval logged once
    assert history[-1]["step"] == SAMPLES // 4
    # and the same numbers: evaluate gives the uninterrupted run's metrics
    got = evaluate_network(final, root, "nyu_paper", progress=False, device="cpu")
    want = evaluate_network(ref, root, "nyu_paper", progress=False, device="cpu")
    assert got.result.n_images == want.result.n_images and got.result.n_pixels == want.result.n_pixels
    assert got.result.metrics == pytest.approx(want.result.metrics, rel=1e-5, abs=1e-7)


def test_training_feeds_a_gpu_from_worker_processes_into_pinned_memory(monkeypatch):
    import mdlearn.runtime
    from mdlearn.runs import _loader_options

    assert _loader_options("cpu") == {"num_workers": 0, "pin_memory": False}  # the model needs the cores
    monkeypatch.setattr(mdlearn.runtime, "default_device", lambda prefer=None: torch.device("cuda", 0))
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    assert _loader_options(None) == {"num_workers": 4, "pin_memory": True}
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert _loader_options(None) == {"num_workers": 0, "pin_memory": True}


def test_run_folders_are_never_reused_for_something_else(small_dataset, tmp_path, monkeypatch):
    root, _ = small_dataset
    monkeypatch.setenv("MDLEARN_DATA", str(tmp_path / "data"))
    small = recipes.get_recipe("smoke", coarse_samples=8, fine_samples=8)
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(UsageError, match="not an mdlearn run"):
        train_run(other, small, "coarse", data_root=root, progress=False, device="cpu")
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]
    with pytest.raises(MdlearnError, match="no run to resume"):
        train_run(tmp_path / "new", small, "coarse", data_root=root, resume=True, progress=False, device="cpu")
    coarse = train_run(tmp_path / "c", small, "coarse", data_root=root, progress=False, device="cpu")
    cfg = json.loads((tmp_path / "c" / "config.json").read_text())
    assert cfg["format"] == RUN_FORMAT and cfg["stage"] == "coarse" and cfg["recipe"]["coarse_samples"] == 8
    assert read_checkpoint(coarse)["meta"]["input_intrinsics"][0] > 0  # the camera predict uses
    with pytest.raises(UsageError, match="finished"):
        train_run(tmp_path / "c", small, "coarse", data_root=root, resume=True, progress=False, device="cpu")
    with pytest.raises(UsageError, match=r"another configuration \(run vs now: recipe.coarse_samples 8 vs 16"):
        train_run(tmp_path / "c", recipes.get_recipe("smoke", coarse_samples=16, fine_samples=8), "coarse",
                  data_root=root, resume=True, progress=False, device="cpu")
    with pytest.raises(UsageError, match="pass --init"):
        train_run(tmp_path / "f", small, "fine", data_root=root, progress=False, device="cpu")
    with pytest.raises(UsageError, match="not a finished run"):
        train_run(tmp_path / "f", small, "fine", data_root=root, init=other, progress=False, device="cpu")
    fine = train_run(tmp_path / "f", small, "fine", data_root=root, init=tmp_path / "c", progress=False,
                     device="cpu")
    state = read_checkpoint(fine)
    assert state["stage"] == "fine"
    before = read_checkpoint(coarse)["model"]
    for k, v in state["model"].items():  # the coarse half is the coarse run's, untouched
        if k.startswith("coarse."):
            assert torch.equal(v, before[k]), k
