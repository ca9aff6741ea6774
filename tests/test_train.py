"""mdlearn.train: the training loop, the paper's optimiser, resumable checkpoints (Chapters 6-7)."""

from pathlib import Path

import numpy as np
import pytest
import torch

from mdlearn.data.sample import make_sample
from mdlearn.errors import MdlearnError, UsageError
from mdlearn.losses import NonFiniteLossError
from mdlearn.models import build_model
from mdlearn.runtime import seed_everything
from mdlearn.train import (ResumableSampler, Trainer, TrainConfig, load_model_weights, make_loader, make_optimizer,
                           masked_si_loss, model_from_checkpoint, paper_param_groups, read_checkpoint,
                           targets_at_output)

SIZE = (96, 72)  # (width, height): small enough for fast CPU tests (the book uses 152x114)


class RandomDepthDataset(torch.utils.data.Dataset):
    """``n`` samples in the mdlearn format: random images, smooth random depths with holes."""

    def __init__(self, n: int, size=SIZE, seed: int = 0, transform=None):
        self.transform = transform
        g = torch.Generator().manual_seed(seed)
        w, h = size
        self.samples = []
        for i in range(n):
            image = torch.rand(3, h, w, generator=g)
            ramp = torch.linspace(1.0, 6.0, h)[:, None].expand(h, w)
            depth = ramp * (0.5 + image[0]) * float(torch.rand((), generator=g) + 0.5)
            depth = torch.where(torch.rand(h, w, generator=g) < 0.1, torch.zeros(()), depth)
            self.samples.append(make_sample(image, depth, (w * 0.9, w * 0.9, w / 2, h / 2), name=f"s{i}",
                                            dataset="synthetic", split="train", gt="raw"))

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        return self.samples[i] if self.transform is None else self.transform(self.samples[i])


@pytest.fixture(scope="module")
def dataset():
    return RandomDepthDataset(10)


def tiny_model(dataset_name="nyu", seed=0, size=SIZE):
    seed_everything(seed)
    return build_model(dataset_name, size, fc_hidden=64)


def config(**kw):
    base = dict(stage="coarse", samples=16, batch_size=4, log_every=2, progress=False, seed=5)
    base.update(kw)
    return TrainConfig(**base)


def test_paper_param_groups_carry_the_papers_rates():
    model = tiny_model()
    coarse = paper_param_groups(model, "coarse")
    assert [(g["name"], g["lr"]) for g in coarse] == [("coarse conv1-5", 0.001), ("coarse fc6-7", 0.1)]
    ids = lambda ps: {id(p) for p in ps}  # noqa: E731
    convs = [p for i in range(1, 6) for p in getattr(model.coarse, f"conv{i}").parameters()]
    assert ids(coarse[0]["params"]) == ids(convs)
    assert ids(coarse[1]["params"]) == ids([*model.coarse.fc6.parameters(), *model.coarse.fc7.parameters()])
    fine = paper_param_groups(model, "fine", base_lr=2.0)
    assert [(g["name"], g["lr"]) for g in fine] == [("fine 1", 0.002), ("fine 3", 0.02), ("fine 4", 0.002)]
    assert ids(p for g in fine for p in g["params"]) == ids(model.fine.parameters())
    opt = make_optimizer(model, "coarse")
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["momentum"] == 0.9
    adam = make_optimizer(model, "fine", "adam", adam_lr=3e-4)
    assert {g["lr"] for g in adam.param_groups} == {3e-4}
    with pytest.raises(UsageError):
        paper_param_groups(model, "medium")
    with pytest.raises(UsageError):
        make_optimizer(model, "coarse", "rmsprop")


def test_targets_are_sampled_at_the_output_centres_without_mixing():
    model = tiny_model()
    rows, cols = model.output_grid()
    h, w = SIZE[1], SIZE[0]
    depth = (torch.arange(h)[:, None] * 1000 + torch.arange(w)[None, :] + 1).float()[None, None]
    depth[..., rows[1], cols[2]] = 0.0  # a hole exactly at one output centre
    d, v = targets_at_output(depth, depth > 0, rows, cols)
    assert d.shape == (1, 1, len(rows), len(cols))
    assert d[0, 0, 0, 0] == rows[0] * 1000 + cols[0] + 1
    assert not v[0, 0, 1, 2] and int((~v).sum()) == 1
    # every target value is one input pixel's depth, never a blend
    assert set(d[v].long().tolist()) <= set(depth.flatten().long().tolist())


def test_one_step_on_a_fixed_batch_lowers_the_loss(dataset):
    model = tiny_model()
    model.coarse.drop6.p = 0.0  # a deterministic forward, to compare the loss before and after
    batch = torch.utils.data.default_collate([dataset[i] for i in range(4)])
    opt = make_optimizer(model, "coarse", lr_scale=0.1)
    trainer = Trainer(model, opt, [batch], config(samples=4), device="cpu")
    with torch.no_grad():
        before = float(trainer.compute_loss(batch).mean())
    trainer.fit()
    with torch.no_grad():
        after = float(trainer.compute_loss(batch).mean())
    assert trainer.step == 1 and trainer.samples_seen == 4
    assert after < before


def test_fine_stage_leaves_the_coarse_network_untouched(dataset):
    model = tiny_model()
    coarse_before = {k: v.clone() for k, v in model.coarse.state_dict().items()}
    fine_before = {k: v.clone() for k, v in model.fine.state_dict().items()}
    opt = make_optimizer(model, "fine")
    trainer = Trainer(model, opt, make_loader(dataset, 2, seed=1), config(stage="fine", samples=8), device="cpu")
    trainer.fit()
    assert not any(p.requires_grad for p in model.coarse.parameters())
    assert all(p.grad is None for p in model.coarse.parameters())
    assert all(torch.equal(v, model.coarse.state_dict()[k]) for k, v in coarse_before.items())
    assert any(not torch.equal(v, model.fine.state_dict()[k]) for k, v in fine_before.items())


def test_resumable_sampler_positions():
    s = ResumableSampler(5, seed=3)
    it = iter(s)
    stream = [next(it) for _ in range(12)]
    assert sorted(stream[:5]) == list(range(5)) and sorted(stream[5:10]) == list(range(5))
    assert stream[:5] != stream[5:10] or stream[:5] != list(range(5))  # epochs are reshuffled
    s.set_start(7)
    it = iter(s)
    assert [next(it) for _ in range(5)] == stream[7:12]
    assert list(ResumableSampler(3, shuffle=False).permutation(4)) == [0, 1, 2]


def _run(dataset, tmp_path: Path, *, steps: int, model_seed: int = 0, kill_after: int | None = None,
         resume: Path | None = None, checkpoint_every: int = 0, stage: str = "coarse", workers: int = 0) -> Trainer:
    model = tiny_model(seed=model_seed)
    opt = make_optimizer(model, stage, lr_scale=0.1)
    loader = make_loader(dataset, 2, seed=5, num_workers=workers)  # micro-batches of 2, accumulated to 4
    cfg = config(stage=stage, samples=4 * steps, checkpoint_every=checkpoint_every,
                 checkpoint_path=str(tmp_path / "ckpt-{step}.pt") if checkpoint_every else None)
    trainer = Trainer(model, opt, loader, cfg, device="cpu")
    if resume is not None:
        trainer.resume(resume)

    def on_step(t):
        if kill_after is not None and t.step == kill_after:
            raise KeyboardInterrupt  # the process dies after this step

    trainer.fit(on_step=on_step)
    return trainer


@pytest.mark.slow
def test_kill_and_resume_gives_the_weights_of_an_uninterrupted_run(dataset, tmp_path):
    steps = 6  # 24 samples: crosses two epochs of the 10-sample dataset; the checkpoint is mid-epoch
    straight = _run(dataset, tmp_path / "a", steps=steps)
    with pytest.raises(KeyboardInterrupt):
        _run(dataset, tmp_path / "b", steps=steps, kill_after=4, checkpoint_every=3)
    ckpt = tmp_path / "b" / "ckpt-3.pt"
    assert ckpt.is_file() and not (tmp_path / "b" / "ckpt-4.pt").exists()
    assert not [p for p in (tmp_path / "b").iterdir() if ".tmp-" in p.name]  # atomic writes leave no temp files
    # a new trainer, with differently initialised weights, continues from the checkpoint
    resumed = _run(dataset, tmp_path / "c", steps=steps, model_seed=99, resume=ckpt)
    assert resumed.step == straight.step == steps and resumed.samples_seen == straight.samples_seen
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    oa, ob = straight.optimizer.state_dict()["state"], resumed.optimizer.state_dict()["state"]
    assert all(torch.equal(oa[k]["momentum_buffer"], ob[k]["momentum_buffer"]) for k in oa)
    assert [r["loss"] for r in straight.history] == [r["loss"] for r in resumed.history]


@pytest.mark.slow
def test_resume_with_loader_workers_augments_like_an_uninterrupted_run(tmp_path):
    """Workers restart on resume; each sample's draws are seeded from its stream position, so the
    resumed run (and a run with another number of workers) sees the same augmented samples."""
    from mdlearn.data.augment import paper_augmentation

    jittered = RandomDepthDataset(10, transform=paper_augmentation("nyu", (SIZE[1], SIZE[0])))
    straight = _run(jittered, tmp_path / "a", steps=6, workers=2)
    with pytest.raises(KeyboardInterrupt):
        _run(jittered, tmp_path / "b", steps=6, kill_after=4, checkpoint_every=3, workers=2)
    resumed = _run(jittered, tmp_path / "c", steps=6, model_seed=99, resume=tmp_path / "b" / "ckpt-3.pt", workers=2)
    one_worker = _run(jittered, tmp_path / "d", steps=6, workers=1)
    a = straight.model.state_dict()
    for other in (resumed, one_worker):
        b = other.model.state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r["loss"] for r in straight.history] == [r["loss"] for r in resumed.history]


def test_checkpoint_contents_load_with_weights_only(dataset, tmp_path):
    trainer = _run(dataset, tmp_path, steps=1)
    path = trainer.save_checkpoint(tmp_path / "run.pt")
    state = torch.load(path, weights_only=True)
    for key in ("model", "optimizer", "scaler", "rng", "stage", "step", "samples_seen", "config", "arch",
                "mdlearn_version", "data", "history"):
        assert key in state
    assert state["arch"]["input_size"] == list(SIZE) and state["samples_seen"] == 4
    assert set(state["rng"]) == {"python", "numpy", "torch", "cuda"}
    assert state["data"]["sampler"] == {"n": 10, "seed": 5, "shuffle": True}
    assert read_checkpoint(path)["step"] == 1
    # the model can be rebuilt from the checkpoint alone
    model = model_from_checkpoint(path, device="cpu")
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in trainer.model.state_dict().items())
    # the fine stage starts from the coarse stage's weights
    fine_model = tiny_model(seed=3)
    load_model_weights(fine_model, path)
    assert all(torch.equal(v, fine_model.state_dict()[k]) for k, v in trainer.model.state_dict().items())


def _one_line(excinfo, *fragments):
    msg = str(excinfo.value)
    assert "\n" not in msg
    for f in fragments:
        assert f in msg, msg


def test_foreign_corrupt_and_non_checkpoint_files_fail_clearly(dataset, tmp_path):
    trainer = _run(dataset, tmp_path, steps=1)
    good = trainer.save_checkpoint(tmp_path / "good.pt")

    kitti = tiny_model("kitti", size=(192, 72))
    ktrainer = Trainer(kitti, make_optimizer(kitti, "coarse"), [], config(), device="cpu")
    kpath = ktrainer.save_checkpoint(tmp_path / "kitti.pt")
    other_size = tiny_model(size=(100, 76))
    strainer = Trainer(other_size, make_optimizer(other_size, "coarse"), [], config(), device="cpu")
    spath = strainer.save_checkpoint(tmp_path / "other_size.pt")

    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    plain = tmp_path / "plain_state_dict.pt"
    torch.save(trainer.model.state_dict(), plain)

    fresh = tiny_model(seed=7)
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    victim = Trainer(fresh, make_optimizer(fresh, "coarse"), make_loader(dataset, 2, seed=5), config(), device="cpu")
    cases = [
        (kpath, ["kitti.pt", "another architecture", "dataset 'kitti' vs 'nyu'"]),
        (spath, ["other_size.pt", "input_size [100, 76] vs [96, 72]"]),
        (truncated, ["truncated.pt", "not a readable checkpoint"]),
        (text, ["notes.txt", "not a readable checkpoint"]),
        (plain, ["plain_state_dict.pt", "not an mdlearn checkpoint"]),
        (tmp_path / "absent.pt", ["absent.pt", "no such checkpoint"]),
    ]
    for path, fragments in cases:
        with pytest.raises(MdlearnError) as e:
            victim.resume(path)
        _one_line(e, *fragments)
        with pytest.raises(MdlearnError):
            load_model_weights(fresh, path)
    # a checkpoint of the same model but another stage or batch size
    fine_cfg = Trainer(fresh, make_optimizer(fresh, "coarse"), [], config(batch_size=8), device="cpu")
    with pytest.raises(MdlearnError) as e:
        fine_cfg.resume(good)
    _one_line(e, "good.pt", "batch_size 4 vs 8")
    # nothing was partially loaded
    assert all(torch.equal(v, fresh.state_dict()[k]) for k, v in before.items())
    assert victim.step == 0 and victim.samples_seen == 0


def test_a_nan_loss_stops_training_naming_the_step(dataset, tmp_path):
    model = tiny_model()
    calls = {"n": 0}

    def poisoned(pred, target, valid):
        calls["n"] += 1
        loss = masked_si_loss(pred, target, valid)
        return loss * float("nan") if calls["n"] == 3 else loss  # the second step's first micro-batch

    cfg = config(samples=40, log_every=4, checkpoint_path=str(tmp_path / "ck.pt"), checkpoint_every=4)
    trainer = Trainer(model, make_optimizer(model, "coarse"), make_loader(dataset, 2), cfg, loss_fn=poisoned,
                      device="cpu")
    with pytest.raises(NonFiniteLossError, match="step 2") as e:
        trainer.fit()
    assert isinstance(e.value, MdlearnError) and "\n" not in str(e.value)
    assert trainer.step == 4 and not (tmp_path / "ck.pt").exists()


def test_micro_batches_must_divide_the_batch(dataset):
    model = tiny_model()
    trainer = Trainer(model, make_optimizer(model, "coarse"), make_loader(dataset, 3), config(), device="cpu")
    with pytest.raises(UsageError, match="batch size 3 does not divide"):
        trainer.fit()


#: Tensor methods that read a value back to the host (a device synchronisation on CUDA / MPS):
#: reading values, converting, printing a tensor, and indexing with a bool mask (a data-dependent shape)
SYNC_METHODS = ("item", "cpu", "tolist", "numpy", "__array__", "__float__", "__int__", "__bool__", "__index__",
                "__repr__", "__str__", "__format__", "nonzero")
SYNC_FUNCTIONS = ((torch, "nonzero"), (torch, "masked_select"), (torch.cuda, "synchronize"))


def _count_syncs(monkeypatch, dataset, steps: int, log_every: int, kind: str = "sgd", stage: str = "coarse") -> int:
    model = tiny_model()
    opt = make_optimizer(model, stage, kind, lr_scale=0.1)
    trainer = Trainer(model, opt, make_loader(dataset, 2),
                      config(samples=2 * steps, batch_size=2, log_every=log_every, stage=stage), device="cpu")
    count = {"n": 0}

    def cpu_resident(t) -> bool:
        # non-fused Adam keeps its step counters on the CPU on every device and reads them with
        # .item() each step: no device synchronisation
        return any(t is st.get("step") for st in opt.state.values())

    with monkeypatch.context() as m:
        for name in SYNC_METHODS:
            original = getattr(torch.Tensor, name)

            def counted(self, *a, _original=original, **k):
                if not cpu_resident(self):
                    count["n"] += 1
                return _original(self, *a, **k)

            m.setattr(torch.Tensor, name, counted)
        for module, name in SYNC_FUNCTIONS:
            original = getattr(module, name)

            def counted_fn(*a, _original=original, **k):
                count["n"] += 1
                return _original(*a, **k)

            m.setattr(module, name, counted_fn)
        getitem = torch.Tensor.__getitem__

        def counted_getitem(self, index):
            parts = index if isinstance(index, tuple) else (index,)
            if any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in parts):
                count["n"] += 1
            return getitem(self, index)

        m.setattr(torch.Tensor, "__getitem__", counted_getitem)
        trainer.fit()
    return count["n"]


@pytest.mark.slow
@pytest.mark.parametrize("kind,stage", [("sgd", "coarse"), ("adam", "fine")])  # the paper; the book
def test_the_loop_does_not_synchronise_the_host_per_step(monkeypatch, dataset, kind, stage):
    n, k = 8, 4
    few = _count_syncs(monkeypatch, dataset, n, k, kind, stage)
    many = _count_syncs(monkeypatch, dataset, 2 * n, k, kind, stage)
    growth = many - few
    assert growth < n  # one read per step would add at least n
    assert growth <= 2 * (n // k)  # the loss and the NaN flag, once per log interval


def test_the_sync_counter_sees_a_per_step_read(monkeypatch, dataset):
    """The counter itself: a loop that reads its loss every step is caught."""
    def loss_read_every_step(p, t, v):
        loss = masked_si_loss(p, t, v)
        print(loss.detach())  # printing a tensor waits for its value
        return loss

    def count(steps):
        model = tiny_model()
        trainer = Trainer(model, make_optimizer(model, "coarse"), make_loader(dataset, 2),
                          config(samples=2 * steps, batch_size=2, log_every=100), loss_fn=loss_read_every_step,
                          device="cpu")
        calls = {"n": 0}
        original = torch.Tensor.__repr__

        def counted(self, *a, **k):
            calls["n"] += 1
            return original(self, *a, **k)

        with monkeypatch.context() as m:
            m.setattr(torch.Tensor, "__repr__", counted)
            trainer.fit()
        return calls["n"]

    assert count(8) - count(4) >= 4


def test_seeded_runs_are_reproducible(dataset, tmp_path):
    a = _run(dataset, tmp_path, steps=2)
    b = _run(dataset, tmp_path, steps=2)
    assert all(torch.equal(v, b.model.state_dict()[k]) for k, v in a.model.state_dict().items())
    assert np.isfinite([r["loss"] for r in a.history]).all() and len(a.history) == 1


def test_mixed_precision_and_channels_last_path_runs_on_cpu(dataset):
    # the CUDA path (autocast + channels-last) exercised with CPU bfloat16; the loss stays float32
    model = tiny_model()
    cfg = config(samples=4, amp=True, amp_dtype="bfloat16", channels_last=True)
    trainer = Trainer(model, make_optimizer(model, "coarse", lr_scale=0.1), make_loader(dataset, 2), cfg, device="cpu")
    batch = next(iter(make_loader(dataset, 2)))
    assert trainer.compute_loss(batch).dtype == torch.float32
    history = trainer.fit()
    assert np.isfinite(history[-1]["loss"]) and trainer.step == 1
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert model.coarse.conv2.weight.is_contiguous(memory_format=torch.channels_last)


def test_checkpoints_written_during_fit_record_the_training_time(dataset, tmp_path):
    path = tmp_path / "c.pt"
    model = tiny_model()
    trainer = Trainer(model, make_optimizer(model, "coarse"), make_loader(dataset, 4, seed=0),
                      config(samples=16, checkpoint_path=str(path)))
    trainer.fit()
    state = read_checkpoint(path)  # written inside fit(), at the last step
    assert 0 < state["elapsed_seconds"] <= trainer.elapsed_seconds()
    assert state["elapsed_seconds"] == pytest.approx(state["history"][-1]["seconds"], rel=0.5, abs=0.5)
