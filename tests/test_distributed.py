"""Multi-process training (DistributedDataParallel, gloo on CPU): the same weights as one process (Chapter 8)."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from hypothesis import given, settings
from hypothesis import strategies as st

from mdlearn.train import ResumableSampler, Trainer, TrainConfig, make_loader, make_optimizer, read_checkpoint


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 30), world=st.integers(1, 4), steps=st.integers(0, 5), per_rank=st.integers(1, 4))
def test_shards_together_see_exactly_the_single_process_stream(n, world, steps, per_rank):
    start = steps * per_rank * world  # checkpoints fall on optimiser steps: multiples of the global batch
    single = ResumableSampler(n, seed=3)
    single.set_start(start)
    it = iter(single)
    expect = [next(it) for _ in range(per_rank * world * 3)]
    shards = []
    for rank in range(world):
        s = ResumableSampler(n, seed=3, rank=rank, world_size=world)
        s.set_start(start)
        it = iter(s)
        shards.append([next(it) for _ in range(per_rank * 3)])
    for k in range(3):  # each optimiser step: the processes' samples are the single process's
        got = sorted(x for sh in shards for x in sh[k * per_rank:(k + 1) * per_rank])
        assert got == sorted(expect[k * per_rank * world:(k + 1) * per_rank * world])


def _model(seed=0):
    from mdlearn.models import build_model
    from mdlearn.runtime import seed_everything

    seed_everything(seed)
    return build_model("nyu", (96, 72), fc_hidden=64, dropout=0.0)  # no dropout: no per-process masks


def _train(ds, samples, *, ckpt=None, resume=None, stage="coarse", init=None):
    model = _model()
    if init is not None:
        model.load_state_dict(init)
    cfg = TrainConfig(stage=stage, samples=samples, batch_size=8, log_every=1, progress=False,
                      checkpoint_path=ckpt, seed=1)
    trainer = Trainer(model, make_optimizer(model, stage, "sgd", lr_scale=0.5), make_loader(ds, 2, seed=4), cfg)
    if resume:
        trainer.resume(resume)
    trainer.fit()
    return trainer


def _worker(rank, world, tmp, init):
    import torch.distributed as dist
    from test_train import RandomDepthDataset

    dist.init_process_group("gloo", init_method=f"file://{tmp}/store", rank=rank, world_size=world)
    torch.set_num_threads(1)
    try:
        ds = RandomDepthDataset(16)
        whole = _train(ds, 48)
        half = Path(tmp) / "half.pt"
        _train(ds, 24, ckpt=str(half))
        resumed = _train(ds, 48, resume=half)
        fine = _train(ds, 16, stage="fine", init=init)
        if rank == 0:
            torch.save({"whole": whole.model.state_dict(), "resumed": resumed.model.state_dict(),
                        "loss": [r["loss"] for r in whole.history], "fine": fine.model.state_dict(),
                        "seen": whole.samples_seen}, Path(tmp) / "ddp.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_processes_reach_the_weights_of_one_with_the_same_global_batch(tmp_path):
    from test_train import RandomDepthDataset

    torch.set_num_threads(1)
    ds = RandomDepthDataset(16)
    one = _train(ds, 48)
    init = one.model.state_dict()
    one_fine = _train(ds, 16, stage="fine", init=init)
    mp.spawn(_worker, args=(2, str(tmp_path), init), nprocs=2, join=True)
    got = torch.load(tmp_path / "ddp.pt", weights_only=True)
    assert got["seen"] == one.samples_seen == 48
    for key, ref in one.model.state_dict().items():
        torch.testing.assert_close(got["whole"][key], ref, rtol=1e-4, atol=1e-5, msg=key)
        torch.testing.assert_close(got["resumed"][key], got["whole"][key], rtol=0, atol=1e-6, msg=key)
    for key, ref in one_fine.model.state_dict().items():
        torch.testing.assert_close(got["fine"][key], ref, rtol=1e-4, atol=1e-5, msg=key)
    assert got["loss"] == pytest.approx([r["loss"] for r in one.history], rel=1e-4)
    state = read_checkpoint(tmp_path / "half.pt")
    assert len(state["rng_ranks"]) == 2 and state["samples_seen"] == 24
    # a two-process checkpoint cannot silently continue in one process
    with pytest.raises(Exception, match="written by 2 process"):
        _train(ds, 48, resume=tmp_path / "half.pt")


def _failure(done) -> str:
    """What a failed torchrun printed, each process's own error lines first (its traceback tail
    alone hides which process failed first and why)."""
    text = done.stdout + done.stderr
    first = [ln for ln in text.splitlines() if "Error" in ln or ln.startswith("mdlearn")]
    return "\n".join(first[-20:]) + "\n---\n" + text[-3000:]


@pytest.mark.slow
def test_torchrun_two_processes_write_one_run(small_dataset, tmp_path):
    import shutil
    import subprocess
    import sys

    root, _ = small_dataset
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.is_file():
        torchrun = shutil.which("torchrun")
    if not torchrun:
        pytest.skip("torchrun not found next to the interpreter")
    run = tmp_path / "run"
    env = dict(os.environ, MDLEARN_DATA=str(tmp_path / "data"), OMP_NUM_THREADS="1")
    cmd = [str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "mdlearn", "train", "--stage", "coarse",
           "--preset", "smoke", "--data", str(root), "--out", str(run), "--set", "coarse_samples=32", "--quiet",
           "--checkpoint-every", "3"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, _failure(done)
    assert done.stdout.count("finished coarse stage") == 1  # one report, from process 0
    state = read_checkpoint(run / "checkpoints" / "final.pt")
    assert state["samples_seen"] == 32 and len(state["rng_ranks"]) == 2 and state["meta"]["processes"] == 2
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["final.pt", "last.pt"]
    # evaluate under torchrun: one report, one file, the numbers of one process
    import json

    from mdlearn.assess import evaluate_network

    out = tmp_path / "metrics.json"
    cmd = [str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "mdlearn", "evaluate", "--checkpoint",
           str(run / "checkpoints" / "final.pt"), "--data", str(root), "--split", "train", "--out", str(out),
           "--quiet", "--device", "cpu"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, _failure(done)
    assert done.stdout.count(f"wrote {out}") == 1 and done.stdout.count("protocol nyu_paper") == 1
    got = json.loads(out.read_text())
    want = evaluate_network(run / "checkpoints" / "final.pt", root, split="train", progress=False, device="cpu")
    assert got["processes"] == 2 and got["images"] == want.result.n_images == 4
    assert got["metrics"] == want.to_json()["metrics"]


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 40), world=st.integers(1, 8))
def test_evaluation_shards_count_every_test_image_exactly_once(n, world):
    from mdlearn.assess import shard

    blocks = [list(shard(n, r, world)) for r in range(world)]
    assert [i for b in blocks for i in b] == list(range(n))  # disjoint, complete, in order: no padding
    assert max(map(len, blocks)) - min(map(len, blocks)) <= 1


def _eval_worker(rank, world, tmp, ckpt, root):
    import torch.distributed as dist

    from mdlearn.assess import evaluate_network

    dist.init_process_group("gloo", init_method=f"file://{tmp}/eval-store", rank=rank, world_size=world)
    torch.set_num_threads(1)
    try:
        got = {p: evaluate_network(ckpt, root, p, split="train", progress=False, device="cpu").to_json()
               for p in ("nyu_paper", "nyu_eigen")}
        if rank == 0:
            torch.save(got, Path(tmp) / "eval.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_processes_evaluate_exactly_what_one_does(small_dataset, tmp_path, monkeypatch):
    from mdlearn import recipes
    from mdlearn.assess import evaluate_network
    from mdlearn.runs import train_run

    root, _ = small_dataset
    monkeypatch.setenv("MDLEARN_DATA", str(tmp_path / "data"))
    ckpt = train_run(tmp_path / "run", recipes.get_recipe("smoke", coarse_samples=8), "coarse", data_root=root,
                     progress=False, device="cpu")
    one = {p: evaluate_network(ckpt, root, p, split="train", progress=False, device="cpu").to_json()
           for p in ("nyu_paper", "nyu_eigen")}  # pooled and per-image aggregation
    assert one["nyu_paper"]["images"] == 4  # the 2 training rooms x 2 views: one shard of 2 per process
    mp.spawn(_eval_worker, args=(2, str(tmp_path), str(ckpt), str(root)), nprocs=2, join=True)
    two = torch.load(tmp_path / "eval.pt", weights_only=False)
    for p in one:
        assert two[p].pop("processes") == 2 and one[p].pop("processes") == 1
        assert two[p] == one[p], p  # metrics, counts, region fraction and bootstrap intervals, bit for bit
