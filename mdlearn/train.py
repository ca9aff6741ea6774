"""Training the coarse and fine networks: the loop, the paper's optimiser, resumable checkpoints (Chapters 6-7).

Introduced in Chapter 6 (training the coarse network) and used again in Chapter 7 (the fine
network) and by the command line. The loop *receives* what it trains (model, data, optimiser,
loss) and owns only the bookkeeping around them::

    model = build_model("nyu", (152, 114))
    loader = make_loader(dataset, batch_size=8, seed=0)
    opt = make_optimizer(model, "coarse")                      # the paper's SGD, per-layer rates
    trainer = Trainer(model, opt, loader, TrainConfig(stage="coarse", samples=20_000, batch_size=32))
    history = trainer.fit()                                    # list of dicts, one per log interval

**Recipe (paper Sections 3.3 and 4).** SGD, momentum 0.9, batch 32; learning rates 0.001 for
Coarse 1-5 and 0.1 for Coarse 6-7; in the fine stage 0.001 / 0.01 / 0.001 for "fine layers
1, 2, 3". Fig. 1's Fine 2 is the weightless concatenation, so we read "fine layers 1, 2, 3" as
the three fine *convolutions* (Fine 1, Fine 3, Fine 4), the middle one at 0.01: an
interpretation (``eigen2014-facts.md`` Section 5). The coarse stage trains the coarse network
alone; the fine stage freezes it (``requires_grad=False``, eval mode, and the forward pass runs it
under ``no_grad``, so no gradient can reach it). Training length is counted in **samples**
(2M coarse + 1.5M fine on NYU). Loss: Eq. 4 with lambda = 0.5 (:mod:`mdlearn.losses`).

**Targets at the output resolution.** The network predicts on a grid 4x coarser than its input
(74x55 for 304x228). Each output unit is centred on one input pixel
(:meth:`mdlearn.models.DepthNet.output_grid`); the target is the depth *at that pixel*, and the
unit is trained only if that pixel is valid (nearest-neighbour sampling of depth and validity
together): no interpolation ever mixes a missing value (0) or two surfaces into a target.

**Reproducible and resumable.** The data order comes from :class:`ResumableSampler`, a seeded
function of ``(seed, epoch)`` that can start at any sample; a checkpoint stores the model, the
optimiser, scheduler, AMP scaler, step, samples seen, every RNG state (Python, NumPy, torch CPU
and CUDA), the configuration, ``mdlearn.__version__`` and the architecture. Resuming continues
*exactly* where the run stopped (bit-identical weights on CPU; with worker processes too, since
each sample's augmentation is seeded from its stream position, :class:`PositionSeeded`).

**Host synchronisation.** The loss is accumulated on the device and read back only every
``log_every`` optimiser steps; a NaN/inf loss is therefore detected at the next log point (or
before any checkpoint is written) and reported with the step where it first occurred. With
float16 autocast on CUDA the GradScaler itself reads one flag per step (that is how it skips
overflowing steps); ``amp_dtype="bfloat16"`` needs no scaler and no per-step read.
"""

from __future__ import annotations

import contextlib
import copy
import os
import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from . import __version__
from .errors import MdlearnError, UsageError
from .losses import PAPER_LAMBDA, NonFiniteLossError, scale_invariant_loss
from .models import DepthNet, canonical_description
from .runtime import default_device

__all__ = [
    "PositionSeeded",
    "STAGES", "PAPER_LEARNING_RATES", "TrainConfig", "Trainer", "ResumableSampler", "make_loader",
    "paper_param_groups", "make_optimizer", "set_stage", "targets_at_output", "masked_si_loss",
    "save_checkpoint_file", "read_checkpoint", "load_model_weights", "model_from_checkpoint",
    "CHECKPOINT_FORMAT", "distributed_context",
]

STAGES = ("coarse", "fine")

#: The paper's learning rates (Section 4.1) per parameter group, before the global factor.
#: Fine: "fine layers 1, 2, 3" read as the convolutions Fine 1, Fine 3, Fine 4 (see module docstring).
PAPER_LEARNING_RATES: dict[str, dict[str, tuple[tuple[str, ...], float]]] = {
    "coarse": {
        "coarse conv1-5": (("coarse.conv1.", "coarse.conv2.", "coarse.conv3.", "coarse.conv4.", "coarse.conv5."),
                           0.001),
        "coarse fc6-7": (("coarse.fc6.", "coarse.fc7."), 0.1),
    },
    "fine": {
        "fine 1": (("fine.conv1.",), 0.001),
        "fine 3": (("fine.conv3.",), 0.01),
        "fine 4": (("fine.conv4.",), 0.001),
    },
}

#: The ``format`` entry of every mdlearn checkpoint.
CHECKPOINT_FORMAT = "mdlearn.checkpoint"
_CHECKPOINT_VERSION = 1


def _check_stage(stage: str) -> None:
    if stage not in STAGES:
        raise UsageError(f"stage must be one of {list(STAGES)}, got {stage!r}")


def set_stage(model: DepthNet, stage: str) -> None:
    """Prepare ``model`` for a stage: ``"coarse"`` unfreezes the coarse network, ``"fine"`` freezes it.

    Introduced in Chapter 7. Freezing sets ``requires_grad=False`` on every coarse parameter and
    keeps the coarse network in eval mode (no dropout): the fine network learns on the fixed
    coarse prediction, as in the paper. The fine parameters stay trainable in both stages (the
    coarse stage simply does not run them).
    """
    _check_stage(stage)
    model.freeze_coarse(stage == "fine")


def paper_param_groups(model: DepthNet, stage: str, base_lr: float = 1.0) -> list[dict[str, Any]]:
    """SGD parameter groups with the paper's per-layer learning rates times ``base_lr`` (Chapter 6).

    ``"coarse"``: Coarse 1-5 at 0.001, Coarse 6-7 at 0.1. ``"fine"``: Fine 1 at 0.001, Fine 3 at
    0.01, Fine 4 at 0.001 (our reading of the paper's "fine layers 1, 2, 3"). ``base_lr`` is the
    one global factor the paper tuned "to a factor of 5". Each group carries a ``"name"``.
    Only the stage's parameters appear: the fine stage never hands a coarse parameter to the optimiser.
    """
    _check_stage(stage)
    if not base_lr > 0:
        raise UsageError(f"base_lr must be > 0, got {base_lr}")
    named = dict(model.named_parameters())
    groups, used = [], set()
    for name, (prefixes, lr) in PAPER_LEARNING_RATES[stage].items():
        params = [p for n, p in named.items() if n.startswith(prefixes)]
        used.update(n for n in named if n.startswith(prefixes))
        groups.append({"name": name, "params": params, "lr": lr * base_lr})
    prefix = "coarse." if stage == "coarse" else "fine."
    left = [n for n in named if n.startswith(prefix) and n not in used]
    if left:  # a layer added to the model without a learning rate would silently not train
        raise UsageError(f"parameters without a paper learning rate in stage {stage!r}: {left}")
    return groups


def make_optimizer(model: DepthNet, stage: str, kind: str = "sgd", *, lr_scale: float = 1.0, momentum: float = 0.9,
                   weight_decay: float = 0.0, adam_lr: float = 1e-4) -> torch.optim.Optimizer:
    """The optimiser for a stage: the paper's SGD, or Adam for the book's CPU preset (Chapter 6).

    ``kind="sgd"``: :func:`paper_param_groups` (rates times ``lr_scale``), momentum 0.9 (paper).
    ``kind="adam"``: one learning rate ``adam_lr * lr_scale`` for all the stage's parameters (the
    paper's per-layer ratios are an SGD recipe; Adam normalises step sizes per parameter anyway);
    the groups keep the paper's names so a scheduler or a plot can tell them apart.
    """
    groups = paper_param_groups(model, stage, lr_scale)
    if kind == "sgd":
        return torch.optim.SGD(groups, lr=groups[0]["lr"], momentum=momentum, weight_decay=weight_decay)
    if kind == "adam":
        for g in groups:
            g["lr"] = adam_lr * lr_scale
        return torch.optim.Adam(groups, lr=adam_lr * lr_scale, weight_decay=weight_decay)
    raise UsageError(f"optimizer kind must be 'sgd' (paper) or 'adam', got {kind!r}")


def targets_at_output(depth: torch.Tensor, valid: torch.Tensor, rows: torch.Tensor,
                      cols: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Depth and validity at the output units' centre pixels (nearest neighbour; Chapter 6).

    Args:
        depth: ``(B, 1, H, W)`` float metres, 0 = invalid, at the network's input resolution.
        valid: ``(B, 1, H, W)`` bool.
        rows, cols: integer pixel indices ``(h,)``, ``(w,)`` from
            :meth:`mdlearn.models.DepthNet.output_grid` (on the same device).

    Returns:
        ``(B, 1, h, w)`` depth (metres) and ``(B, 1, h, w)`` bool validity (``valid & depth > 0``).
    """
    d = depth.index_select(-2, rows).index_select(-1, cols)
    v = valid.index_select(-2, rows).index_select(-1, cols) & (d > 0)
    return d, v


def masked_si_loss(pred_log_depth: torch.Tensor, target_depth: torch.Tensor, valid: torch.Tensor,
                   lam: float = PAPER_LAMBDA) -> torch.Tensor:
    """The default training loss: Eq. 4 per sample, ``(B,)`` float32, without host synchronisation.

    :func:`mdlearn.losses.scale_invariant_loss` with ``reduction="none"`` and ``check=False`` (its
    checks read values back to the host each call; the :class:`Trainer` checks finiteness on the
    device instead). Introduced in Chapter 6.
    """
    return scale_invariant_loss(pred_log_depth, target_depth, valid, lam, reduction="none", check=False)


# ------------------------------------------------------------------------------------------ data


class ResumableSampler(torch.utils.data.Sampler[int]):
    """An endless, seeded stream of dataset indices that can start at any sample (Chapter 6).

    Epoch ``e`` is the permutation ``numpy.random.default_rng([seed, e]).permutation(n)`` (or
    ``0..n-1`` without shuffling); the stream runs epoch after epoch. :meth:`set_start` positions
    it at global sample ``k`` (epoch ``k // n``, offset ``k % n``) so a resumed run sees exactly the
    samples an uninterrupted one would. The data order is a function of ``(seed, position)`` only:
    it draws from no global random generator.

    With ``world_size`` processes (DistributedDataParallel), process ``rank`` takes the global
    positions ``start + rank``, ``start + rank + world_size``, ...: at every optimiser step the
    processes together see exactly the samples one process would, whatever the number of
    processes, so the global stream (and a checkpoint's position in it) does not depend on it.
    """

    def __init__(self, n: int, seed: int = 0, shuffle: bool = True, rank: int = 0, world_size: int = 1,
                 with_positions: bool = False) -> None:
        if n < 1:
            raise UsageError(f"cannot sample from an empty dataset (n={n})")
        if not 0 <= rank < world_size:
            raise UsageError(f"need 0 <= rank < world_size, got rank {rank} of {world_size}")
        self.n, self.seed, self.shuffle = int(n), int(seed), bool(shuffle)
        self.rank, self.world_size = int(rank), int(world_size)
        #: yield ``(index, global position)`` pairs, for :class:`PositionSeeded`
        self.with_positions = bool(with_positions)
        self.start = 0

    def set_start(self, position: int) -> None:
        """Start the next iteration at global sample ``position`` (>= 0)."""
        if position < 0:
            raise UsageError(f"sampler position must be >= 0, got {position}")
        self.start = int(position)

    def permutation(self, epoch: int) -> np.ndarray:
        """The order of epoch ``epoch``: ``(n,)`` int64 dataset indices."""
        if not self.shuffle:
            return np.arange(self.n)
        return np.random.default_rng([self.seed, int(epoch)]).permutation(self.n)

    def __iter__(self) -> Iterator[int]:
        position = self.start
        epoch, offset = divmod(position, self.n)
        while True:
            for i in self.permutation(epoch)[offset:]:
                if (position - self.start) % self.world_size == self.rank:
                    yield (int(i), position) if self.with_positions else int(i)  # type: ignore[misc]
                position += 1
            epoch, offset = epoch + 1, 0

    def state_dict(self) -> dict[str, Any]:
        return {"n": self.n, "seed": self.seed, "shuffle": self.shuffle}


class PositionSeeded(torch.utils.data.Dataset):
    """``dataset`` indexed by the ``(index, position)`` pairs of a ``ResumableSampler(...,
    with_positions=True)``, seeding torch's generator from ``(seed, position)`` before each sample
    (Chapter 8).

    The random augmentations of the sample at global stream position ``p`` are then a function of
    ``(seed, p)`` alone: the same in any ``DataLoader`` worker, for any number of workers or
    processes, and after a resume, which restarts the workers. (A worker's own generator, seeded
    once per iterator, would restart with it, so the augmentations after a resume would differ.)
    """

    def __init__(self, dataset: torch.utils.data.Dataset, seed: int = 0) -> None:
        self.dataset, self.seed = dataset, int(seed)

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, item: tuple[int, int]) -> Any:
        index, position = item
        # SeedSequence mixes (seed, position) into well-separated 64-bit seeds
        torch.manual_seed(int(np.random.SeedSequence([self.seed, int(position)]).generate_state(1, np.uint64)[0]))
        return self.dataset[index]


def distributed_context() -> tuple[int, int]:
    """``(rank, world_size)`` of this process: from ``torch.distributed`` when a process group is
    initialised (``torchrun``), else ``(0, 1)`` (Chapter 8)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def make_loader(dataset: torch.utils.data.Dataset, batch_size: int, *, seed: int = 0, shuffle: bool = True,
                num_workers: int = 0, pin_memory: bool | None = None, **kwargs: Any) -> torch.utils.data.DataLoader:
    """A resumable ``DataLoader``: endless micro-batches of ``batch_size`` samples (Chapter 6).

    The order comes from a :class:`ResumableSampler`. With ``num_workers`` > 0 every sample's
    random draws are seeded from ``(seed, its stream position)`` (:class:`PositionSeeded`), so
    a resumed run augments exactly like an uninterrupted one; in the main process
    (``num_workers=0``) they come from torch's global generator, which checkpoints restore.
    Worker seeds come from a generator seeded with ``seed`` (never the global RNG), so creating
    the loader does not disturb other random streams. ``batch_size`` is the *micro*-batch: the :class:`Trainer` accumulates micro-batches
    up to ``TrainConfig.batch_size`` samples per optimiser step. Extra ``kwargs`` go to ``DataLoader``.
    Under ``torchrun`` (an initialised process group) the sampler takes this process's share of
    the global stream (:class:`ResumableSampler`), and ``batch_size`` is per process.
    """
    if batch_size < 1:
        raise UsageError(f"batch_size must be >= 1, got {batch_size}")
    if pin_memory is None:
        pin_memory = torch.cuda.is_available()
    rank, world = distributed_context()
    workers = num_workers > 0
    sampler = ResumableSampler(len(dataset), seed=seed, shuffle=shuffle, rank=rank,  # type: ignore[arg-type]
                               world_size=world, with_positions=workers)
    if workers:
        dataset = PositionSeeded(dataset, seed)
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                                       pin_memory=pin_memory, drop_last=True,
                                       generator=torch.Generator().manual_seed(seed), **kwargs)


def _resumable_sampler(data: Iterable) -> ResumableSampler | None:
    sampler = getattr(data, "sampler", None)
    if isinstance(sampler, ResumableSampler):
        return sampler
    batch_sampler = getattr(data, "batch_sampler", None)
    sampler = getattr(batch_sampler, "sampler", None)
    return sampler if isinstance(sampler, ResumableSampler) else None


# -------------------------------------------------------------------------------- configuration


@dataclass
class TrainConfig:
    """What a training run does (stored in its checkpoints; Chapter 6).

    Attributes:
        stage: ``"coarse"`` or ``"fine"``.
        samples: training length in samples (the paper: 2M coarse, 1.5M fine on NYU).
        batch_size: samples per optimiser step (32 in the paper); micro-batches from the data are
            accumulated up to it, so it must be a multiple of the data's batch size.
        lam: lambda of Eq. 4 (0.5).
        seed: recorded; the data order is seeded by the loader, the weights by whoever built the model.
        log_every: optimiser steps between host reads (history rows, progress-bar loss, NaN check).
        checkpoint_every: optimiser steps between checkpoints (0: only at the end).
        checkpoint_path: where checkpoints go (None: none are written). ``{step}`` in it is replaced
            by the step number; without it, one file is replaced atomically each time.
        amp: mixed precision (autocast); ``None`` = on for CUDA only.
        amp_dtype: ``"float16"`` (with a GradScaler) or ``"bfloat16"``.
        channels_last: channels-last memory format; ``None`` = on for CUDA only.
        progress: show a tqdm progress bar.
    """

    stage: str = "coarse"
    samples: int = 2_000_000
    batch_size: int = 32
    lam: float = PAPER_LAMBDA
    seed: int = 0
    log_every: int = 50
    checkpoint_every: int = 0
    checkpoint_path: str | None = None
    amp: bool | None = None
    amp_dtype: str = "float16"
    channels_last: bool | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        _check_stage(self.stage)
        for name in ("samples", "batch_size", "log_every"):
            if int(getattr(self, name)) < 1:
                raise UsageError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.checkpoint_every < 0:
            raise UsageError(f"TrainConfig.checkpoint_every must be >= 0, got {self.checkpoint_every}")
        if self.amp_dtype not in ("float16", "bfloat16"):
            raise UsageError(f"TrainConfig.amp_dtype must be 'float16' or 'bfloat16', got {self.amp_dtype!r}")
        if not 0.0 <= self.lam <= 1.0:
            raise UsageError(f"TrainConfig.lam must lie in [0, 1], got {self.lam}")
        if self.checkpoint_path is not None:
            self.checkpoint_path = str(self.checkpoint_path)

    def describe(self) -> dict[str, Any]:
        return asdict(self)


#: Config entries that must agree for a resumed run to continue the same computation.
_RESUME_KEYS = ("stage", "batch_size", "lam", "seed", "amp", "amp_dtype")


# ---------------------------------------------------------------------------------- checkpoints


def _rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
        "cuda": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else [],
    }
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"][: torch.cuda.device_count()])


def save_checkpoint_file(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` with ``torch.save`` atomically: a temporary file in the same folder, then ``os.replace``.

    A crash mid-write leaves the previous checkpoint (or nothing), never a truncated file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    line = text[0] if text else ""
    return f"{type(e).__name__}: {line[:160]}" if line else type(e).__name__


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read an mdlearn checkpoint with ``torch.load(weights_only=True)`` and check its envelope (Chapter 6).

    Raises:
        MdlearnError: (one line naming ``path``) the file is missing, corrupt or truncated, is not
            an mdlearn checkpoint, or has another format version.
    """
    path = Path(path)
    if not path.is_file():
        raise MdlearnError(f"{path}: no such checkpoint file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - every unpickling / zip / EOF failure means a bad file
        raise MdlearnError(f"{path}: not a readable checkpoint (corrupt, truncated or not a torch file: "
                           f"{_first_line(e)})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise MdlearnError(f"{path}: not an mdlearn checkpoint (no format entry {CHECKPOINT_FORMAT!r})")
    if state.get("format_version") != _CHECKPOINT_VERSION:
        raise MdlearnError(f"{path}: checkpoint format version {state.get('format_version')!r}, this mdlearn "
                           f"({__version__}) reads version {_CHECKPOINT_VERSION}")
    missing = [k for k in ("arch", "model", "stage", "step", "samples_seen", "config") if k not in state]
    if missing:
        raise MdlearnError(f"{path}: incomplete mdlearn checkpoint, missing {missing}")
    return state


def _arch_mismatch(path: Path, theirs: dict[str, Any], ours: dict[str, Any]) -> MdlearnError:
    diffs = [f"{k} {theirs.get(k)!r} vs {ours.get(k)!r}" for k in sorted(set(theirs) | set(ours))
             if theirs.get(k) != ours.get(k)]
    return MdlearnError(f"{path}: checkpoint is for another architecture (checkpoint vs model: {'; '.join(diffs)})")


def _check_model_state(path: Path, model: nn.Module, state: dict[str, Any]) -> None:
    own = model.state_dict()
    theirs = state["model"]
    if not isinstance(theirs, dict):
        raise MdlearnError(f"{path}: the model entry is not a state_dict")
    problems = [f"missing {k}" for k in own if k not in theirs]
    problems += [f"unexpected {k}" for k in theirs if k not in own]
    problems += [f"{k} has shape {tuple(theirs[k].shape)}, the model needs {tuple(v.shape)}"
                 for k, v in own.items() if k in theirs and (not torch.is_tensor(theirs[k]) or theirs[k].shape != v.shape)]
    if problems:
        raise MdlearnError(f"{path}: model weights do not fit: {'; '.join(problems[:8])}"
                           + (f" (+{len(problems) - 8} more)" if len(problems) > 8 else ""))


def load_model_weights(model: DepthNet, path: str | Path) -> dict[str, Any]:
    """Load only the weights of a checkpoint into ``model`` (e.g. the coarse result before the fine stage).

    Strict: the checkpoint's architecture (dataset, input size, ...) must equal the model's; nothing
    is loaded otherwise. Returns the checkpoint dict. Introduced in Chapter 7.
    """
    path = Path(path)
    state = read_checkpoint(path)
    if canonical_description(state["arch"]) != model.describe():
        raise _arch_mismatch(path, canonical_description(state["arch"]), model.describe())
    _check_model_state(path, model, state)
    model.load_state_dict(state["model"])
    return state


def model_from_checkpoint(path: str | Path, device: torch.device | str | None = None) -> DepthNet:
    """Rebuild the model a checkpoint was trained with and load its weights (eval mode). Chapter 7."""
    from .models import model_from_description

    path = Path(path)
    state = read_checkpoint(path)
    try:
        model = model_from_description(state["arch"])
    except (KeyError, TypeError, UsageError) as e:
        raise MdlearnError(f"{path}: unusable architecture entry {state['arch']!r} ({_first_line(e)})") from None
    _check_model_state(path, model, state)
    model.load_state_dict(state["model"])
    if state["stage"] == "fine":
        model.freeze_coarse(True)
    return model.to(device or default_device()).eval()


# --------------------------------------------------------------------------------------- trainer


LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


class Trainer:
    """The training loop shared by the chapters and the command line (Chapters 6-7).

    It receives everything it trains: ``model`` (a :class:`~mdlearn.models.DepthNet`),
    ``optimizer`` (e.g. :func:`make_optimizer`), ``data`` (an iterable of collated sample batches:
    ``image`` ``(B, 3, H, W)``, ``depth`` ``(B, 1, H, W)`` metres, ``valid`` ``(B, 1, H, W)``; best
    :func:`make_loader`, whose order can be resumed), ``config`` (:class:`TrainConfig`) and
    optionally ``loss_fn(pred_log_depth, target_depth, valid) -> (B,)`` per-sample losses (default
    :func:`masked_si_loss` with ``config.lam``) and a ``scheduler`` stepped once per optimiser step.
    ``meta`` (plain python: str, numbers, lists, dicts) is stored in every checkpoint as is, e.g.
    the recipe and the camera intrinsics at the network input that ``mdlearn predict`` uses.

    The constructor moves the model to ``device`` (default :func:`mdlearn.runtime.default_device`),
    in channels-last format on CUDA, and applies :func:`set_stage`. Build the optimiser *before*
    the trainer (parameters keep their identity when moved) but do not step it.

    Attributes kept for plots and resumption: ``step`` (optimiser steps done), ``samples_seen``,
    ``history`` (list of dicts: ``step``, ``samples``, ``loss`` = mean over the interval, ``lr``
    of each group, ``seconds`` since the start, plus whatever ``on_log`` returns).
    """

    def __init__(self, model: DepthNet, optimizer: torch.optim.Optimizer, data: Iterable[dict[str, Any]],
                 config: TrainConfig, *, loss_fn: LossFn | None = None,
                 scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
                 device: torch.device | str | None = None, meta: dict[str, Any] | None = None) -> None:
        self.model, self.optimizer, self.data, self.config = model, optimizer, data, config
        self.scheduler = scheduler
        self.meta = dict(meta or {})
        self.loss_fn: LossFn = loss_fn or (lambda p, t, v: masked_si_loss(p, t, v, config.lam))
        self.device = default_device(device)
        cuda = self.device.type == "cuda"
        self.amp = cuda if config.amp is None else bool(config.amp)
        self.amp_dtype = torch.float16 if config.amp_dtype == "float16" else torch.bfloat16
        self.channels_last = cuda if config.channels_last is None else bool(config.channels_last)
        model.to(self.device)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        set_stage(model, config.stage)
        self.rank, self.world_size = distributed_context()
        if config.batch_size % self.world_size:
            raise UsageError(f"TrainConfig.batch_size {config.batch_size} must be a multiple of the number of "
                             f"processes ({self.world_size})")
        #: samples per optimiser step on this process (the global batch split over the processes)
        self.local_batch = config.batch_size // self.world_size
        self.ddp: nn.Module | None = None
        if self.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            # wrap only the stack this stage trains: in the coarse stage the fine layers are unused
            # (DDP would wait for their gradients), in the fine stage the coarse ones are frozen
            core = model.coarse if config.stage == "coarse" else model
            self.ddp = DistributedDataParallel(core, device_ids=[self.device.index] if cuda else None)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp and self.amp_dtype == torch.float16)
        rows, cols = model.output_grid()
        self._rows, self._cols = rows.to(self.device), cols.to(self.device)
        self.step = 0
        self.samples_seen = 0
        self.history: list[dict[str, Any]] = []
        self._elapsed = 0.0
        self._fit_started: float | None = None  # perf_counter() at the start of the running fit()
        self._bad_step = torch.full((), -1, dtype=torch.long, device=self.device)
        self._running = torch.zeros((), dtype=torch.float32, device=self.device)
        self._running_steps = 0

    # ------------------------------------------------------------------------------ one step

    def _to_device(self, t: torch.Tensor) -> torch.Tensor:
        return t.as_subclass(torch.Tensor).to(self.device, non_blocking=True)

    def compute_loss(self, batch: dict[str, Any]) -> torch.Tensor:
        """Per-sample losses ``(B,)`` (float32) of one micro-batch: forward under autocast, targets at the output grid."""
        image = self._to_device(batch["image"])
        if self.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        depth, valid = self._to_device(batch["depth"]), self._to_device(batch["valid"]).bool()
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp):
            if self.ddp is None:
                pred = self.model(image, scale=self.config.stage)
            elif self.config.stage == "coarse":  # DDP wraps the coarse stack alone: normalise as DepthNet does
                pred = self.ddp(self.model.normalise(image))
            else:
                pred = self.ddp(image, scale="fine")
        target, tvalid = targets_at_output(depth, valid, self._rows, self._cols)
        return self.loss_fn(pred.float(), target, tvalid)

    def _batches(self) -> Iterator[dict[str, Any]]:
        sampler = _resumable_sampler(self.data)
        if sampler is not None:
            sampler.set_start(self.samples_seen)
            while True:
                yield from self.data
        # any other iterable: replay it from the start and skip what was consumed (exact if deterministic)
        skip = self.samples_seen
        while True:
            empty = True
            for batch in self.data:
                empty = False
                if skip > 0:
                    skip -= int(batch["image"].shape[0])
                    continue
                yield batch
            if empty:
                raise UsageError("the training data yielded no batch")

    def _sync(self) -> None:
        """Read the device-side accumulators (the only host synchronisation of the loop)."""
        bad = int(self._bad_step.item())
        if bad >= 0:
            raise NonFiniteLossError(
                f"training loss became NaN/inf at step {bad} (stage {self.config.stage}); stopping without "
                "writing a checkpoint (lower the learning rate or check the inputs)")

    def _log(self, on_log: Callable[["Trainer", dict[str, Any]], dict[str, Any] | None] | None,
             t0: float, bar: Any) -> None:
        self._sync()
        if self._running_steps == 0:
            return
        self._reduce_running()
        row: dict[str, Any] = {
            "step": self.step, "samples": self.samples_seen,
            "loss": float(self._running.item()) / self._running_steps,
            "lr": [float(g["lr"]) for g in self.optimizer.param_groups],
            "seconds": self._elapsed + time.perf_counter() - t0,
        }
        self._running.zero_()
        self._running_steps = 0
        if on_log is not None:
            row.update(on_log(self, row) or {})
        self.history.append(row)
        bar.set_postfix(loss=f"{row['loss']:.4f}", refresh=False)

    def elapsed_seconds(self) -> float:
        """Training time so far, over every :meth:`fit` call (resumed runs included), in seconds."""
        running = time.perf_counter() - self._fit_started if self._fit_started is not None else 0.0
        return self._elapsed + running

    def _reduce_running(self) -> None:
        """Average the unlogged loss sum over the processes (a collective; every rank calls it at
        the same steps). Linear, so reducing early (at a checkpoint) changes no logged value."""
        if self.world_size > 1:
            torch.distributed.all_reduce(self._running, op=torch.distributed.ReduceOp.SUM)
            self._running /= self.world_size

    def fit(self, *, on_log: Callable[["Trainer", dict[str, Any]], dict[str, Any] | None] | None = None,
            on_step: Callable[["Trainer"], None] | None = None) -> list[dict[str, Any]]:
        """Train until ``config.samples`` samples have been seen; return :attr:`history`.

        ``on_log(trainer, row)`` runs at every log point and may return extra entries (validation
        metrics) for the history row; ``on_step(trainer)`` runs after every optimiser step.
        Checkpoints are written every ``config.checkpoint_every`` steps and at the end when
        ``config.checkpoint_path`` is set.

        Raises:
            NonFiniteLossError: (an ``MdlearnError``) the loss was NaN/inf; names the step.
            UsageError: the data's batch size does not divide ``config.batch_size``.
        """
        cfg = self.config
        self.model.train()
        t0 = time.perf_counter()
        self._fit_started = t0
        bar = tqdm(total=cfg.samples, initial=min(self.samples_seen, cfg.samples), unit="sample",
                   disable=not cfg.progress or self.rank != 0, desc=f"{cfg.stage} stage", dynamic_ncols=True)
        batches = self._batches()
        try:
            while self.samples_seen < cfg.samples:
                self.optimizer.zero_grad(set_to_none=True)
                taken = 0
                step_loss = torch.zeros((), dtype=torch.float32, device=self.device)
                while taken < self.local_batch:
                    batch = next(batches)
                    b = int(batch["image"].shape[0])
                    if self.local_batch % b:
                        raise UsageError(f"the data's batch size {b} does not divide TrainConfig.batch_size "
                                         f"{cfg.batch_size} (per process: {self.local_batch}); use a micro-batch "
                                         "that divides it")
                    # per-sample losses summed and divided by the (per-process) batch: accumulating
                    # micro-batches gives the gradient of the mean over the batch; DDP then
                    # averages the processes' gradients, i.e. the mean over the global batch
                    last = taken + b >= self.local_batch
                    with (self.ddp.no_sync() if self.ddp is not None and not last else contextlib.nullcontext()):
                        loss = self.compute_loss(batch).sum() / self.local_batch
                        self.scaler.scale(loss).backward()
                    step_loss += loss.detach()
                    taken += b
                self.scaler.step(self.optimizer)
                self.scaler.update()
                if self.scheduler is not None:
                    self.scheduler.step()
                self.step += 1
                self.samples_seen += taken * self.world_size
                finite = torch.isfinite(step_loss)
                self._bad_step = torch.where((self._bad_step < 0) & ~finite, self.step, self._bad_step)
                self._running += step_loss
                self._running_steps += 1
                bar.update(taken)
                done = self.samples_seen >= cfg.samples
                if self.step % cfg.log_every == 0 or done:
                    self._log(on_log, t0, bar)
                if cfg.checkpoint_path and ((cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0) or done):
                    self.save_checkpoint(cfg.checkpoint_path.replace("{step}", str(self.step)))
                if on_step is not None:
                    on_step(self)
        finally:
            self._elapsed += time.perf_counter() - t0
            self._fit_started = None
            bar.close()
            batches.close()
        return self.history

    # --------------------------------------------------------------------------- checkpoints

    def state(self) -> dict[str, Any]:
        """Everything a resumed run needs, as tensors and plain python (``weights_only``-loadable)."""
        sampler = _resumable_sampler(self.data)
        rng_states = [_rng_state()]
        if self.world_size > 1:  # every process's random streams (a collective: all ranks call state())
            rng_states = [None] * self.world_size
            torch.distributed.all_gather_object(rng_states, _rng_state())
            self._reduce_running()
        return {
            "format": CHECKPOINT_FORMAT,
            "format_version": _CHECKPOINT_VERSION,
            "mdlearn_version": __version__,
            "arch": self.model.describe(),
            "stage": self.config.stage,
            "step": self.step,
            "samples_seen": self.samples_seen,
            "config": self.config.describe(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict(),
            "rng": rng_states[0],
            "rng_ranks": rng_states,
            "data": {"samples_seen": self.samples_seen,
                     "sampler": sampler.state_dict() if sampler is not None else None},
            "history": copy.deepcopy(self.history),
            # the unfinished log interval, so a resumed run logs the same means
            "log_accumulator": {"loss_sum": self._running.detach().to("cpu", copy=True), "steps": self._running_steps},
            "elapsed_seconds": self.elapsed_seconds(),
            "meta": copy.deepcopy(self.meta),
        }

    def save_checkpoint(self, path: str | Path) -> Path:
        """Write :meth:`state` atomically to ``path`` (after checking the loss stayed finite).

        Under DDP every process must call it at the same step; process 0 writes the file."""
        self._sync()
        state = self.state()
        if self.rank == 0:
            save_checkpoint_file(state, path)
        if self.world_size > 1:
            torch.distributed.barrier()
        return Path(path)

    def resume(self, path: str | Path) -> None:
        """Continue from a checkpoint: restore everything :meth:`state` saved, or nothing.

        Strict: the file must be an mdlearn checkpoint of this architecture, stage, batch size,
        lambda, seed and precision, with an optimiser of the same parameter groups, and a data
        sampler with the same dataset size and seed. Any mismatch raises a one-line
        :class:`MdlearnError` naming ``path`` and the mismatch; the trainer, model and optimiser
        are then left exactly as they were.
        """
        path = Path(path)
        state = read_checkpoint(path)
        if canonical_description(state["arch"]) != self.model.describe():
            raise _arch_mismatch(path, canonical_description(state["arch"]), self.model.describe())
        ours = self.config.describe()
        theirs = state["config"]
        diffs = [f"{k} {theirs.get(k)!r} vs {ours.get(k)!r}" for k in _RESUME_KEYS if theirs.get(k) != ours.get(k)]
        if diffs:
            raise MdlearnError(f"{path}: checkpoint was trained with another configuration "
                               f"(checkpoint vs now: {'; '.join(diffs)})")
        _check_model_state(path, self.model, state)
        own_groups = self.optimizer.state_dict()["param_groups"]
        their_groups = state.get("optimizer", {}).get("param_groups", []) if isinstance(state.get("optimizer"), dict) else []
        shape_own = [(g.get("name"), len(g["params"])) for g in own_groups]
        shape_theirs = [(g.get("name"), len(g.get("params", []))) for g in their_groups]
        if shape_own != shape_theirs:
            raise MdlearnError(f"{path}: optimiser parameter groups differ (checkpoint {shape_theirs} vs now {shape_own})")
        sampler = _resumable_sampler(self.data)
        saved_sampler = (state.get("data") or {}).get("sampler")
        if sampler is not None and saved_sampler is not None and saved_sampler != sampler.state_dict():
            raise MdlearnError(f"{path}: the data differ (checkpoint sampler {saved_sampler} vs now {sampler.state_dict()})")
        ranks = state.get("rng_ranks") or [state["rng"]]
        if len(ranks) != self.world_size:
            raise MdlearnError(f"{path}: checkpoint was written by {len(ranks)} process(es), this run has "
                               f"{self.world_size}; resume with the same number to continue exactly")
        if (self.scheduler is None) != (state.get("scheduler") is None):
            raise MdlearnError(f"{path}: checkpoint {'has' if state.get('scheduler') is not None else 'has no'} "
                               f"scheduler state but this trainer {'has none' if self.scheduler is None else 'has one'}")
        # all or nothing: snapshot, load, and roll back on any failure
        backup = (copy.deepcopy(self.model.state_dict()), copy.deepcopy(self.optimizer.state_dict()),
                  copy.deepcopy(self.scaler.state_dict()),
                  copy.deepcopy(self.scheduler.state_dict()) if self.scheduler is not None else None, _rng_state())
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scaler.load_state_dict(state["scaler"])
            if self.scheduler is not None:
                self.scheduler.load_state_dict(state["scheduler"])
            _set_rng_state(ranks[self.rank])
            step, seen = int(state["step"]), int(state["samples_seen"])
            history = list(state.get("history") or [])
            elapsed = float(state.get("elapsed_seconds", 0.0))
            acc = state.get("log_accumulator") or {"loss_sum": torch.zeros(()), "steps": 0}
            running, running_steps = acc["loss_sum"].to(self._running), int(acc["steps"])
        except Exception as e:  # noqa: BLE001 - restore, then report on one line
            self.model.load_state_dict(backup[0])
            self.optimizer.load_state_dict(backup[1])
            self.scaler.load_state_dict(backup[2])
            if self.scheduler is not None and backup[3] is not None:
                self.scheduler.load_state_dict(backup[3])
            _set_rng_state(backup[4])
            raise MdlearnError(f"{path}: cannot restore the checkpoint ({_first_line(e)})") from None
        self.step, self.samples_seen, self.history, self._elapsed = step, seen, history, elapsed
        self._bad_step.fill_(-1)
        self._running.copy_(running)
        self._running_steps = running_steps

