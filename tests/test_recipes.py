"""mdlearn.recipes: named recipes, checkpoints trained once and reused, the Mean baseline, Table-1 helpers."""

import numpy as np
import pytest
import torch

from mdlearn import recipes
from mdlearn.data.sample import make_sample
from mdlearn.errors import UsageError


def test_get_recipe_overrides_and_errors():
    r = recipes.get_recipe("book", lam=0.0, name="book-l0")
    assert r.lam == 0.0 and r.name == "book-l0" and recipes.RECIPES["book"].lam == 0.5
    with pytest.raises(UsageError, match="unknown recipe"):
        recipes.get_recipe("nope")
    with pytest.raises(UsageError, match="no field"):
        recipes.get_recipe("book", learning_rate=1.0)


def test_paper_recipe_is_the_papers():
    p = recipes.RECIPES["paper"]
    assert (p.input_size, p.optimizer, p.batch_size) == ((228, 304), "sgd", 32)
    assert (p.coarse_samples, p.fine_samples, p.lam) == (2_000_000, 1_500_000, 0.5)


def test_relative_improvement_signs():
    base = {m: 1.0 for m in recipes.TABLE1_METRICS}
    ours = {m: (1.5 if m.startswith("delta") else 0.5) for m in recipes.TABLE1_METRICS}
    gain = recipes.relative_improvement(ours, base)
    assert all(abs(v - 0.5) < 1e-12 for v in gain.values())
    worse = recipes.relative_improvement(base, ours)
    assert all(v < 0 for v in worse.values())


class _Fixed(torch.utils.data.Dataset):
    def __init__(self, depths):
        self.depths = depths

    def __len__(self):
        return len(self.depths)

    def __getitem__(self, i):
        d = self.depths[i]
        return make_sample(np.zeros((*d.shape, 3), np.uint8), d, (5.0, 5.0, 1.0, 1.0), name=str(i), dataset="t",
                           split="train", gt="filled")


def test_mean_log_depth_is_the_geometric_mean_over_valid_samples():
    a = np.full((2, 3), 2.0, np.float32)
    b = np.full((2, 3), 8.0, np.float32)
    b[0, 0] = 0.0  # invalid in b: the mean there is a's value alone
    m = recipes.mean_log_depth(_Fixed([a, b]))
    assert np.isclose(m[1, 1], 4.0) and np.isclose(m[0, 0], 2.0)


def test_evaluate_and_format_results():
    gt = np.full((2, 4, 4), 2.0, np.float32)
    r = recipes.evaluate(gt * 1.1, gt)
    assert abs(r["rmse_log"] - np.log(1.1)) < 1e-6 and r["rmse_log_si"] < 1e-6
    text = recipes.format_results({"Mean": r, "Coarse": r})
    assert text.count("\n") == 2 and max(len(line) for line in text.splitlines()) <= 80


@pytest.mark.slow
def test_trained_checkpoint_trains_once_then_reuses(tmp_path, monkeypatch):
    """The smoke recipe end to end on a tiny generated world: coarse then fine, cached by key."""
    monkeypatch.setenv("MDLEARN_DATA", str(tmp_path))
    calls = []
    real = recipes.train_stage
    monkeypatch.setattr(recipes, "train_stage", lambda *a, **k: calls.append(a[1]) or real(*a, **k))
    fine = recipes.trained_checkpoint("smoke", "fine", progress=False, device="cpu")
    assert calls == ["coarse", "fine"] and fine.is_file() and fine.parent == tmp_path / "models"
    again = recipes.trained_checkpoint("smoke", "fine", progress=False, device="cpu")
    assert again == fine and calls == ["coarse", "fine"]  # nothing retrained
    other = recipes.get_recipe("smoke", name="smoke-l0", lam=0.0, coarse_recipe="smoke")
    recipes.trained_checkpoint(other, "fine", progress=False, device="cpu")
    assert calls == ["coarse", "fine", "fine"]  # the variant reuses the smoke coarse stage
    from mdlearn.train import model_from_checkpoint

    model = model_from_checkpoint(fine, device="cpu")
    test = recipes.training_data(recipes.get_recipe("smoke"), "test", progress=False)
    pred = recipes.predict(model, test, device="cpu")
    assert pred.shape == recipes.targets(test).shape and np.isfinite(pred).all() and (pred > 0).all()


def test_cosine_schedule_decays_every_group_to_zero_keeping_ratios():
    import pytest
    import torch

    from mdlearn.errors import UsageError
    from mdlearn.recipes import make_scheduler

    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [a], "lr": 0.1}, {"params": [b], "lr": 0.001}])
    assert make_scheduler(opt, "constant", 10) is None
    sched = make_scheduler(opt, "cosine", 10)
    seen = []
    for _ in range(10):
        opt.step()
        sched.step()
        seen.append([g["lr"] for g in opt.param_groups])
    assert seen[4][0] == pytest.approx(0.05) and seen[4][1] == pytest.approx(0.0005)  # half way: half the rate
    assert seen[-1] == pytest.approx([0.0, 0.0], abs=1e-12)
    assert all(x[0] >= y[0] for x, y in zip(seen, seen[1:]))
    with pytest.raises(UsageError, match="schedule"):
        make_scheduler(opt, "step", 10)


def test_mean_bias_starts_coarse_7_at_the_mean_baseline(small_dataset, tmp_path, monkeypatch):
    import pytest
    import torch

    from mdlearn.errors import UsageError

    root, _ = small_dataset
    monkeypatch.setenv("MDLEARN_DATA", str(tmp_path))
    rec = recipes.get_recipe("smoke", coarse_bias="mean")
    model = recipes.build(rec)
    before = model.coarse.fc7.bias.detach().clone()
    recipes.init_coarse_bias(model, rec, root)
    mean = recipes.mean_log_depth(recipes.training_data(rec, "train", root, augment=False, progress=False))
    rows, cols = model.output_grid()
    expect = np.log(mean[np.ix_(rows.numpy(), cols.numpy())]).reshape(-1)
    np.testing.assert_allclose(model.coarse.fc7.bias.detach().numpy(), expect, rtol=1e-6)
    assert not torch.allclose(before, model.coarse.fc7.bias)
    default = recipes.build(recipes.get_recipe("smoke"))
    recipes.init_coarse_bias(default, recipes.get_recipe("smoke"), root)
    assert torch.equal(default.coarse.fc7.bias, before)  # "default" leaves PyTorch's initialisation
    with pytest.raises(UsageError, match="coarse_bias"):
        recipes.init_coarse_bias(default, recipes.get_recipe("smoke", coarse_bias="median"), root)
