"""Named training recipes, trained once and reused; the Mean baseline; evaluating a trained model (Chapters 6-7).

A :class:`Recipe` fixes everything that determines a trained network: the data (a named dataset
of :mod:`mdlearn.datasets`, cached at training resolution by :mod:`mdlearn.data.cache`), the
network's input size, the augmentation (:mod:`mdlearn.data.augment`), the optimiser and the
training length of both stages. :func:`trained_checkpoint` returns the checkpoint of a recipe's
stage, training it with :class:`mdlearn.train.Trainer` only when no current one exists: the
file lives in ``data/models/`` under a name that hashes the recipe, the dataset's own index and
the sources that determine the weights (models, training loop, loss, augmentation, cache, the
dataset reader), so rebuilding the book or re-running a chapter trains nothing, and a change to
any of them retrains. The command line (``mdlearn train``) runs the same function.

=============== =================== ======= ======= ========== ===== ========= =========
recipe          data                cached  input   optimiser  batch coarse    fine
=============== =================== ======= ======= ========== ===== ========= =========
``paper``       NYU-like sync       320x240 304x228 SGD, paper 32    2,000,000 1,500,000
``book``        ``indoor``          160x120 152x114 Adam 3e-4  16    35,000    25,000
``smoke``       ``indoor-smoke``    80x60   76x57   Adam 3e-4  4     64        64
``kitti-paper`` KITTI-like raw      612x184 576x172 SGD, paper 32    1,500,000 1,000,000
``kitti-book``  ``kitti-raw-book``  306x92  288x86  Adam 3e-4  16    20,000    12,000
``kitti-smoke`` ``kitti-raw-smoke`` 204x61  192x57  Adam 3e-4  4     64        64
=============== =================== ======= ======= ========== ===== ========= =========

The KITTI recipes train on a ``mdlearn prepare kitti-raw`` output (the named datasets are
prepared into ``data/<name>-prepared``); the coarse network sees the whole crop, the fine one its
bottom rows (:meth:`mdlearn.models.DepthNet.fine_input`).

**Why the book differs from the paper.** The paper trains for 3.5 million samples on a GPU; a
laptop CPU manages a few dozen samples a second at the paper's input size. The ``book`` recipe
halves the input (152x114: a quarter of the pixels and of the convolution work; the fully
connected layers shrink with it) and uses Adam, which needs no tuning of the per-layer learning
rates the paper found on a validation set, so that a few minutes of training already beat the
Mean baseline clearly (Chapter 6 shows the numbers). ``paper`` is the paper's recipe exactly.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import UsageError

__all__ = ["Recipe", "RECIPES", "get_recipe", "recipe_key", "training_data", "train_stage", "trained_checkpoint",
           "predict", "mean_log_depth", "evaluate", "relative_improvement", "TABLE1_METRICS", "models_dir",
           "format_results", "targets", "build", "make_scheduler", "input_intrinsics", "init_coarse_bias"]

#: The eight metrics of the paper's Table 1 (``log10`` is not among them).
TABLE1_METRICS = ("delta1", "delta2", "delta3", "abs_rel", "sq_rel", "rmse", "rmse_log", "rmse_log_si")


@dataclass(frozen=True)
class Recipe:
    """Everything that determines a trained network (Chapter 6). Sizes: ``cache_size`` and
    ``input_size`` are ``(height, width)`` pixels; ``coarse_samples`` / ``fine_samples`` count
    training samples."""

    name: str
    family: str  # "nyu" or "kitti": which network and augmentation
    dataset: str  # a named dataset of mdlearn.datasets (its folder under data/)
    cache_size: tuple[int, int]
    input_size: tuple[int, int]
    optimizer: str  # "sgd" (paper) or "adam"
    lr: float  # Adam's rate, or the global factor on the paper's SGD rates
    batch_size: int
    micro_batch: int
    coarse_samples: int
    fine_samples: int
    augment: bool = True
    lam: float = 0.5
    seed: int = 0
    log_every: int = 25
    #: start the fine stage from this recipe's coarse checkpoint (e.g. a lambda variant of the
    #: fine stage only); None: this recipe's own coarse stage
    coarse_recipe: str | None = None
    #: the augmentation's zoom range and rotation (degrees); None: the paper's for the family
    aug_scale: tuple[float, float] | None = None
    aug_degrees: float | None = None
    #: the learning rate over a stage: "constant" (the paper: one rate throughout) or "cosine"
    #: (decayed to zero along a half cosine over the stage's optimiser steps; short runs end at a
    #: better minimum instead of wandering at the initial rate)
    schedule: str = "constant"
    #: Coarse 7's bias at the start of the coarse stage: "default" (PyTorch's initialisation, as
    #: the paper's random one) or "mean" (the training set's mean log-depth image at the output
    #: units: the network starts at the Mean baseline and learns what differs from it)
    coarse_bias: str = "default"

    def describe(self) -> dict[str, Any]:
        return asdict(self)


RECIPES: dict[str, Recipe] = {
    "paper": Recipe("paper", "nyu", "indoor", (240, 320), (228, 304), "sgd", 1.0, 32, 32, 2_000_000, 1_500_000,
                    log_every=100),
    # ~14 + ~6 + ~1.5 minutes (with the lambda-0 fine variant of Chapter 7) on a quiet 2-core CPU
    # (~45 coarse / ~70 fine samples/s). Measured on the 228 synthetic test views: Coarse +35.8 %,
    # Coarse+Fine +38.0 % over Mean on average, all eight metrics better (before the network
    # normalised its input: +24.0 % / +24.9 %; constant rate, 22k + 12k samples: +20.8 %)
    "book": Recipe("book", "nyu", "indoor", (120, 160), (114, 152), "adam", 3e-4, 16, 16, 35_000, 25_000,
                   schedule="cosine"),
    "smoke": Recipe("smoke", "nyu", "indoor-smoke", (60, 80), (57, 76), "adam", 3e-4, 4, 4, 64, 64, log_every=4),
    # KITTI (paper section 4.2: 1224x368 halved to 612x184, the whole 576x172 crop to the coarse
    # network, its bottom rows to the fine one; 1.5M + 1M samples). book / smoke keep the 576x172
    # aspect at a half / a third of the size. kitti-book, measured on a quiet 2-core CPU: coarse
    # 448 s + fine 153 s; on the 30 test frames of kitti-raw-book under kitti_eigen, Coarse
    # +24.7 %, Coarse+Fine +30.4 % over Mean on average, all eight metrics better (the paper's
    # Table 2: +34.9 %). Without the mean-depth bias: +17.2 % / +27.1 %.
    "kitti-paper": Recipe("kitti-paper", "kitti", "kitti-raw-full", (184, 612), (172, 576), "sgd", 1.0, 32, 32,
                          1_500_000, 1_000_000, log_every=100),
    "kitti-book": Recipe("kitti-book", "kitti", "kitti-raw-book", (92, 306), (86, 288), "adam", 3e-4, 16, 16,
                         20_000, 12_000, schedule="cosine", coarse_bias="mean"),
    "kitti-smoke": Recipe("kitti-smoke", "kitti", "kitti-raw-smoke", (61, 204), (57, 192), "adam", 3e-4, 4, 4,
                          64, 64, log_every=4),
}


def get_recipe(recipe: str, /, **overrides: Any) -> Recipe:
    """The recipe named ``recipe`` with ``overrides`` applied (a new ``name=`` among them names a
    variant; Chapter 6). Raises ``UsageError`` for an unknown recipe or field."""
    name = recipe
    if name not in RECIPES:
        raise UsageError(f"unknown recipe {name!r}; known: {', '.join(RECIPES)}")
    fields = set(Recipe.__dataclass_fields__)
    bad = [k for k in overrides if k not in fields]
    if bad:
        raise UsageError(f"recipe has no field {bad[0]!r}; fields: {', '.join(sorted(fields))}")
    return replace(RECIPES[name], **{k: (tuple(v) if isinstance(v, list) else v) for k, v in overrides.items()})


def models_dir() -> Path:
    """Where trained checkpoints are cached: ``data/models`` (:func:`mdlearn.paths.data_dir`)."""
    from .paths import data_dir

    return data_dir() / "models"


def _sources_hash() -> str:
    from .jobs import source_hash

    pkg = Path(__file__).resolve().parent
    files = [pkg / f for f in ("models.py", "train.py", "losses.py", "recipes.py", "runtime.py")]
    files += [pkg / "data" / f for f in ("augment.py", "cache.py", "sample.py", "transforms.py", "nyu_dataset.py",
                                         "formats.py")]
    return source_hash(files)


def recipe_key(recipe: Recipe, stage: str, data_root: Path) -> str:
    """The hash naming a recipe stage's checkpoint: recipe, stage, the dataset's own index, sources."""
    index = data_root / "index.json"
    h = hashlib.sha256(json.dumps(recipe.describe(), sort_keys=True).encode())
    h.update(stage.encode())
    h.update(index.read_bytes() if index.is_file() else str(data_root).encode())
    h.update(_sources_hash().encode())
    return h.hexdigest()[:16]


def _data_root(recipe: Recipe, data_root: str | os.PathLike | None, progress: bool = True) -> Path:
    if data_root is not None:
        return Path(data_root)
    from .datasets import ensure_dataset

    root = Path(ensure_dataset(recipe.dataset, progress=progress))
    if recipe.family == "kitti":  # the drives' sparse depth, as chapter 3 prepares it
        from .data.kitti_prepare import ensure_prepared

        return ensure_prepared(root, root.with_name(f"{root.name}-prepared"), progress=progress)
    return root


def training_data(recipe: Recipe, split: str, data_root: str | os.PathLike | None = None, augment: bool | None = None,
                  progress: bool = True):
    """The cached ``split`` of the recipe's dataset with its transform (Chapters 6-7).

    Training samples get the paper's augmentation at the recipe's input size (unless
    ``augment`` is false); test samples the deterministic centre crop. A folder without
    ``train_files_with_gt.txt`` but with the ``files_with_gt.txt`` of ``mdlearn prepare nyu-raw``
    trains on that list.
    """
    from .data.augment import paper_augmentation, test_transform
    from .data.cache import CachedDataset, ensure_cache
    from .data.nyu_dataset import NYUSyncDataset

    root = _data_root(recipe, data_root)
    listed = root / f"{split}_files_with_gt.txt"
    resize = None
    if recipe.family == "kitti":  # a `prepare kitti-raw` output; crop and sparse resize to the cache size
        from .data.kitti_dataset import prepared_dataset
        from .data.transforms import kitti_paper_input

        source, resize = prepared_dataset(root, split), kitti_paper_input(size=recipe.cache_size)
    elif split == "train" and not listed.is_file() and (root / "files_with_gt.txt").is_file():
        # a folder `mdlearn prepare nyu-raw` wrote from training scenes: its one list is the training list
        source = NYUSyncDataset(root, "train", list_file=root / "files_with_gt.txt")
    else:
        source = NYUSyncDataset(root, split)
    cache = ensure_cache(source, models_dir().parent / "cache" / f"{root.name}-"
                         f"{recipe.cache_size[1]}x{recipe.cache_size[0]}", size=recipe.cache_size, resize=resize,
                         progress=progress)
    use_aug = recipe.augment if augment is None else augment
    if split == "train" and use_aug:
        tf = paper_augmentation(recipe.family, recipe.input_size, scale=recipe.aug_scale,
                                degrees=recipe.aug_degrees)
    else:
        tf = test_transform(recipe.family, recipe.input_size)
    return CachedDataset(cache, split, transform=tf)


def build(recipe: Recipe):
    """The untrained network of a recipe, seeded (same recipe, same initial weights)."""
    from .models import build_model
    from .runtime import seed_everything

    seed_everything(recipe.seed)
    h, w = recipe.input_size
    return build_model(recipe.family, (w, h))


def input_intrinsics(recipe: Recipe, data_root: str | os.PathLike | None = None) -> list[float]:
    """``[fx, fy, cx, cy]`` (pixels) of the camera at the network input on the deterministic
    (test-time) path of the recipe's data: what a checkpoint records for ``mdlearn predict``."""
    sample = training_data(recipe, "train", data_root, augment=False, progress=False)[0]
    return [float(v) for v in sample["intrinsics"]]


def init_coarse_bias(model, recipe: Recipe, data_root: str | os.PathLike | None = None) -> None:
    """Apply ``recipe.coarse_bias`` to a fresh model (Chapter 6): with ``"mean"``, Coarse 7's bias
    becomes the mean log-depth image of the training set (:func:`mean_log_depth`, log metres)
    sampled at the output units' pixels (:meth:`~mdlearn.models.DepthNet.output_grid`)."""
    if recipe.coarse_bias == "default":
        return
    if recipe.coarse_bias != "mean":
        raise UsageError(f"unknown coarse_bias {recipe.coarse_bias!r}; known: default, mean")
    mean = mean_log_depth(training_data(recipe, "train", data_root, augment=False, progress=False))
    rows, cols = model.output_grid()
    logm = np.log(np.maximum(mean[np.ix_(rows.numpy(), cols.numpy())], 1e-3))
    with torch.no_grad():
        model.coarse.fc7.bias.copy_(torch.from_numpy(logm.astype(np.float32)).reshape(-1))


def make_scheduler(optimizer: torch.optim.Optimizer, schedule: str, steps: int):
    """The learning-rate schedule named by a recipe over ``steps`` optimiser steps (Chapter 6):
    ``None`` for ``"constant"``, a ``LambdaLR`` with factor ``(1 + cos(pi * t / steps)) / 2`` for
    ``"cosine"`` (every group's rate decays to zero together, their ratios kept)."""
    if schedule == "constant":
        return None
    if schedule == "cosine":
        n = max(1, int(steps))
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda t: 0.5 * (1.0 + math.cos(math.pi * min(t, n) / n)))
    raise UsageError(f"unknown learning-rate schedule {schedule!r}; known: constant, cosine")


def train_stage(recipe: Recipe, stage: str, out: str | os.PathLike, *, data_root: str | os.PathLike | None = None,
                init: str | os.PathLike | None = None, progress: bool = True, device: str | None = None):
    """Train one stage of ``recipe`` and write its final checkpoint to ``out`` (Chapters 6-7).

    The fine stage starts from ``init`` (the coarse stage's checkpoint). Checkpoints are written
    atomically; ``out`` is complete or absent. Returns the :class:`~mdlearn.train.Trainer`.
    """
    from .train import Trainer, TrainConfig, load_model_weights, make_loader, make_optimizer

    if stage not in ("coarse", "fine"):
        raise UsageError(f"stage must be 'coarse' or 'fine', got {stage!r}")
    if stage == "fine" and init is None:
        raise UsageError("the fine stage starts from a trained coarse network: pass its checkpoint as init")
    model = build(recipe)
    if init is not None:
        load_model_weights(model, init)
    data = training_data(recipe, "train", data_root, progress=progress)
    loader = make_loader(data, recipe.micro_batch, seed=recipe.seed)
    kind = recipe.optimizer
    opt = make_optimizer(model, stage, kind, **({"adam_lr": recipe.lr} if kind == "adam" else {"lr_scale": recipe.lr}))
    samples = recipe.coarse_samples if stage == "coarse" else recipe.fine_samples
    scheduler = make_scheduler(opt, recipe.schedule, -(-samples // recipe.batch_size))
    cfg = TrainConfig(stage=stage, samples=samples, batch_size=recipe.batch_size, lam=recipe.lam, seed=recipe.seed,
                      log_every=recipe.log_every, checkpoint_path=str(out), progress=progress)
    torch.manual_seed(recipe.seed + (1 if stage == "fine" else 0))
    if stage == "coarse":
        init_coarse_bias(model, recipe, data_root)
    meta = {"recipe": recipe.describe(), "input_intrinsics": input_intrinsics(recipe, data_root)}
    trainer = Trainer(model, opt, loader, cfg, scheduler=scheduler, device=device, meta=meta)
    trainer.fit()
    return trainer


def trained_checkpoint(recipe: Recipe | str, stage: str, *, data_root: str | os.PathLike | None = None,
                       progress: bool = True, device: str | None = None) -> Path:
    """The checkpoint of ``recipe``'s ``stage``, trained now only if no current one is cached (Chapters 6-7).

    ``data/models/<recipe>-<stage>-<key>.pt`` with :func:`recipe_key`; the fine stage first
    ensures the coarse one. Returns the path.
    """
    from .jobs import exclusive

    recipe = get_recipe(recipe) if isinstance(recipe, str) else recipe
    root = _data_root(recipe, data_root)
    out = models_dir() / f"{recipe.name}-{stage}-{recipe_key(recipe, stage, root)}.pt"
    if out.is_file():
        return out
    init = None
    if stage == "fine":
        base = get_recipe(recipe.coarse_recipe) if recipe.coarse_recipe else recipe
        init = trained_checkpoint(base, "coarse", data_root=root, progress=progress, device=device)
    with exclusive(out):  # a second notebook asking for the same model waits, then loads it
        if not out.is_file():
            train_stage(recipe, stage, out, data_root=root, init=init, progress=progress, device=device)
    return out


def predict(model, dataset, scale: str = "fine", batch_size: int = 16, device: str | None = None) -> np.ndarray:
    """Depth predictions ``(N, H, W)`` float32 metres for every sample of ``dataset`` (Chapter 6).

    The network's log-depth map (4x coarser than its input) is upsampled bilinearly **in log
    depth** and exponentiated, so it can be compared with the sample's depth pixel for pixel:
    over the whole input for NYU networks; for KITTI ones over the bottom ``fine_rows`` rows
    their output stands for, with 0 (no prediction) above
    (:func:`mdlearn.assess.predict_in_region`, which also returns that region).
    """
    from .assess import predict_in_region

    return predict_in_region(model, dataset, scale=scale, batch_size=batch_size, device=device)[0]


def targets(dataset) -> np.ndarray:
    """The ground-truth depth ``(N, H, W)`` of every sample of ``dataset`` (0 = invalid)."""
    return np.stack([dataset[i]["depth"][0].numpy() for i in range(len(dataset))]).astype(np.float32)


def mean_log_depth(dataset) -> np.ndarray:
    """The paper's **Mean** baseline: the mean depth image of the training set (Chapter 6).

    Averaged in log depth (the geometric mean per pixel, over the samples where it is valid), the
    quantity the network predicts. ``dataset`` should give un-augmented samples (centre crops).
    """
    total, count = None, None
    for i in range(len(dataset)):
        d = dataset[i]["depth"][0].double()
        v = d > 0
        logd = torch.where(v, d.clamp_min(1e-6).log(), torch.zeros_like(d))
        total = logd if total is None else total + logd
        count = v.double() if count is None else count + v.double()
    if total is None:
        raise UsageError("the Mean baseline needs at least one training sample")
    return torch.where(count > 0, (total / count.clamp_min(1)).exp(), torch.zeros_like(total)).float().numpy()


def evaluate(preds: np.ndarray, gts: np.ndarray, aggregation: str = "pooled") -> dict[str, float]:
    """Table 1's metrics of ``preds`` against ``gts`` (both ``(N, H, W)`` metres), pooled over all
    valid test pixels by default (our reading of the paper's averages over T; Chapter 4)."""
    from .metrics import MetricAccumulator

    acc = MetricAccumulator(aggregation)
    for p, g in zip(preds, gts):
        acc.update(p, g)
    return acc.compute()


def relative_improvement(ours: dict[str, float], baseline: dict[str, float],
                         metrics: tuple[str, ...] = TABLE1_METRICS) -> dict[str, float]:
    """Per metric, how much better ``ours`` is than ``baseline`` as a fraction of the baseline.

    Errors: ``(baseline - ours) / baseline``; thresholds (higher is better):
    ``(ours - baseline) / baseline``. Positive = better. Chapter 6 uses it to compare with the
    paper, whose Coarse+Fine improves on its own Mean by 35 % on average over Table 1's eight.
    """
    from .metrics import HIGHER_IS_BETTER

    out = {}
    for m in metrics:
        b, o = baseline[m], ours[m]
        out[m] = (o - b) / b if HIGHER_IS_BETTER[m] else (b - o) / b
    return out


def format_results(results: dict[str, dict[str, float]], metrics: tuple[str, ...] = TABLE1_METRICS,
                   digits: int = 3) -> str:
    """Rows of Table 1 (one per method) as fixed-width text fitting the book's column (Chapters 6-7).

    Columns: d1-d3 = the thresholds delta < 1.25^k, absrel, sqrel, rmse (metres), rmselog, si =
    the scale-invariant error sqrt(D) of Eq. 1.
    """
    short = {"delta1": "d1", "delta2": "d2", "delta3": "d3", "abs_rel": "absrel",
             "sq_rel": "sqrel", "rmse": "rmse", "rmse_log": "rmselog", "rmse_log_si": "si"}
    w = max(8, digits + 4)
    w = max(w, max(len(short.get(m, m)) for m in metrics) + 1)
    lines = [f"{'':11s}" + "".join(f"{short.get(m, m):>{w}s}" for m in metrics)]
    for name, r in results.items():
        lines.append(f"{name[:11]:11s}" + "".join(f"{r[m]:>{w}.{digits}f}" for m in metrics))
    return "\n".join(lines)
