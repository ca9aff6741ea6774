"""Training runs on disk: the folder ``mdlearn train`` writes and ``--resume`` continues (Chapter 8).

A run folder holds::

    RUN/config.json            what was run: recipe, stage, data folder, initial weights, versions
    RUN/checkpoints/last.pt    the latest checkpoint (atomic; everything needed to resume exactly)
    RUN/checkpoints/final.pt   the finished stage (written once, at the end)
    RUN/tensorboard/           the loss and learning rates as TensorBoard event files
    RUN/history.json           the same history as plain JSON (rewritten at every checkpoint)

A run never writes into a folder it did not create (``config.json`` marks it as a run), a
finished run is never trained again, and ``--resume`` refuses a folder whose configuration
differs from the one asked for. The folder is created only once the data folder, the ``--init``
checkpoint and the model are set up: a misuse (a folder in the wrong layout, a checkpoint of
another architecture or dataset) leaves nothing behind.

**Families.** The dataset family picks the recipe of each preset (:data:`PRESET_RECIPES`): NYU
(``smoke`` / ``book`` / ``paper``) or KITTI (``kitti-smoke`` / ``kitti-book`` / ``kitti-paper``), the
latter whenever ``--data`` is a ``prepare kitti-raw`` output or ``--dataset`` names KITTI
(:func:`data_family`).

**Feeding a GPU.** On CUDA the data are decoded and augmented in ``DataLoader`` worker processes
into pinned memory, and the loop reads values back only every ``log_every`` steps
(:class:`mdlearn.train.Trainer`). Resumption is exact with workers too: each sample's
augmentation is seeded from its position in the stream (:class:`mdlearn.train.PositionSeeded`),
not from the restarted workers' generators. Training stopped at any point (``kill -9`` included) resumes from
``last.pt`` and loses at most the steps since it was written; the result equals an uninterrupted
run's (the checkpoint carries the sampler position and every random state, see
:class:`mdlearn.train.Trainer`).

Several GPUs or machines: ``torchrun --nproc_per_node=N -m mdlearn train ...`` runs the same
command in N processes with DistributedDataParallel; each process takes its share of every global
batch (:class:`mdlearn.train.ResumableSampler`), process 0 writes the run folder, and the
result equals a one-process run with the same global batch (``--set batch_size=...``).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from .errors import MdlearnError, UsageError
from .jobs import write_json_atomically

__all__ = ["RUN_FORMAT", "PRESET_RECIPES", "train_run", "run_config", "init_distributed", "data_family",
           "check_data_folder"]

#: The ``format`` entry of a run's ``config.json``.
RUN_FORMAT = "mdlearn-run"
#: Which recipe of :mod:`mdlearn.recipes` each preset trains, per dataset family.
PRESET_RECIPES = {"nyu": {"smoke": "smoke", "book": "book", "full": "paper"},
                  "kitti": {"smoke": "kitti-smoke", "book": "kitti-book", "full": "kitti-paper"}}

_NYU_LAYOUT = ("a folder in the NYU sync layout (<split>_files_with_gt.txt, or the files_with_gt.txt of "
               "`mdlearn prepare nyu-raw`, listing RGB / depth pairs)")


def data_family(dataset: str | None = None, data: str | os.PathLike | None = None) -> str:
    """``"nyu"`` or ``"kitti"``: the family ``--dataset`` names (``nyu``, ``kitti`` or a named
    dataset: ``kitti-raw-*`` are KITTI), else the one the ``--data`` folder holds (a
    ``prepare kitti-raw`` output is KITTI), else NYU (Chapter 8)."""
    if dataset is not None:
        return "kitti" if dataset == "kitti" or dataset.startswith("kitti-") else "nyu"
    if data is not None:
        from .data.kitti_dataset import is_prepared_folder

        return "kitti" if is_prepared_folder(data) else "nyu"
    return "nyu"


def check_data_folder(family: str, root: str | os.PathLike, split: str = "train") -> None:
    """Fail early, before anything is written, when ``root`` is not a ``family`` dataset folder with
    a ``split`` list: one :class:`~mdlearn.errors.UsageError` line saying what was expected."""
    from .data.kitti_dataset import is_prepared_folder, prepared_dataset

    root = Path(root)
    if family == "kitti":
        prepared_dataset(root, split)  # raises the UsageError naming the expected layout
        return
    if is_prepared_folder(root):
        raise UsageError(f"{root}: a KITTI depth folder (prepare kitti-raw), but the network is for NYU; expected "
                         f"{_NYU_LAYOUT}")
    if not root.is_dir():
        raise UsageError(f"{root}: no such folder; expected {_NYU_LAYOUT}")
    lists = [root / f"{split}_files_with_gt.txt"] + ([root / "files_with_gt.txt"] if split == "train" else [])
    if not any(f.is_file() for f in lists):
        raise UsageError(f"{root}: no {' or '.join(f.name for f in lists)}; expected {_NYU_LAYOUT}")


def run_config(recipe, stage: str, data_root: Path, init: Path | None) -> dict[str, Any]:
    """The ``config.json`` of a run (plain JSON): what determines its result."""
    from . import __version__

    config = {"format": RUN_FORMAT, "mdlearn_version": __version__, "recipe": recipe.describe(), "stage": stage,
              "data": str(Path(data_root).resolve()), "init": str(Path(init).resolve()) if init else None}
    return json.loads(json.dumps(config))  # as it reads back from the file (tuples become lists)


def _same_run(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What differs between two run configurations, field by field (run vs now)."""
    a, b = old.get("recipe") or {}, new.get("recipe") or {}
    diffs = [f"recipe.{k} {a.get(k)!r} vs {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    return diffs + [f"{k} {old.get(k)!r} vs {new.get(k)!r}" for k in ("stage", "data", "init")
                    if old.get(k) != new.get(k)]


def _resolve_init(init: str | os.PathLike | None) -> Path | None:
    """A checkpoint file, or a coarse run folder (its ``final.pt``)."""
    if init is None:
        return None
    p = Path(init)
    if p.is_dir():
        final = p / "checkpoints" / "final.pt"
        if not final.is_file():
            raise UsageError(f"{p}: not a finished run (no checkpoints/final.pt); pass a checkpoint file or a "
                             "finished coarse run folder")
        return final
    if not p.is_file():
        raise UsageError(f"{p}: no such checkpoint file or run folder")
    return p


def init_distributed() -> tuple[int, int]:
    """Join the process group ``torchrun`` describes (``WORLD_SIZE`` > 1 in the environment):
    NCCL on CUDA (each process on ``cuda:LOCAL_RANK``), gloo on CPU. Returns ``(rank, world)``;
    ``(0, 1)`` and nothing done for a single process (Chapter 8)."""
    import torch
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not dist.is_initialized():
        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if cuda else "gloo")
    return dist.get_rank(), dist.get_world_size()


def _loader_options(device: str | None) -> dict[str, Any]:
    """``DataLoader`` settings that keep an accelerator fed: on CUDA, worker processes (up to 4,
    one core left to the main process) decode and augment while the GPU computes, into pinned
    memory (copied asynchronously by the trainer's ``non_blocking`` transfers); on the CPU the
    main process does it (workers would compete with the model for the same cores)."""
    from .runtime import default_device

    if default_device(device).type != "cuda":
        return {"num_workers": 0, "pin_memory": False}
    return {"num_workers": max(0, min(4, (os.cpu_count() or 1) - 1)), "pin_memory": True}


def _barrier(world: int) -> None:
    if world > 1:
        import torch.distributed as dist

        dist.barrier()


def train_run(out: str | os.PathLike, recipe, stage: str, *, data_root: str | os.PathLike | None = None,
              init: str | os.PathLike | None = None, resume: bool = False, checkpoint_every: int = 200,
              progress: bool = True, device: str | None = None) -> Path:
    """Train one stage of ``recipe`` into the run folder ``out`` and return ``out/checkpoints/final.pt``.

    Args:
        out: the run folder: new (or empty), or, with ``resume``, a run of the same configuration.
        recipe: a :class:`mdlearn.recipes.Recipe`.
        stage: ``"coarse"`` or ``"fine"`` (which needs ``init``).
        data_root: a dataset folder of the recipe's family (default: the recipe's named dataset): NYU
            sync layout, or for KITTI a ``prepare kitti-raw`` output.
        init: the coarse stage's checkpoint, or its finished run folder (fine stage).
        checkpoint_every: optimiser steps between writes of ``last.pt``.

    Raises:
        UsageError: ``out`` holds something else, or a run of another configuration, or is a
            finished run; a fine stage without ``init``; a missing ``init`` or one of another
            architecture or dataset; a data folder in the wrong layout. Nothing is written then.
        MdlearnError: ``resume`` without a run in ``out``; unreadable checkpoints.
    """
    from torch.utils.tensorboard import SummaryWriter

    from . import recipes
    from .train import Trainer, TrainConfig, load_model_weights, make_loader, make_optimizer

    if stage not in ("coarse", "fine"):
        raise UsageError(f"stage must be 'coarse' or 'fine', got {stage!r}")
    if checkpoint_every < 1:
        raise UsageError(f"--checkpoint-every must be at least 1, got {checkpoint_every}")
    rank, world = init_distributed()
    if world > 1 and device is None:
        import torch

        device = f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu"
    init_path = _resolve_init(init)
    if recipe.batch_size % world:
        raise UsageError(f"the batch of {recipe.batch_size} does not split over {world} processes; "
                         f"--set batch_size=... to a multiple of {world}")
    # a process's micro-batch: the recipe's, or its whole share of the batch if that is smaller
    micro = min(recipe.micro_batch, recipe.batch_size // world)
    if (recipe.batch_size // world) % micro:
        raise UsageError(f"micro-batch {micro} does not divide the per-process batch {recipe.batch_size // world}; "
                         "--set micro_batch=... to a divisor")
    if stage == "fine" and init_path is None:
        raise UsageError("the fine stage starts from a trained coarse network: pass --init CHECKPOINT_OR_RUN")
    # What the processes share and may have to make (the default dataset, the training cache, the
    # mean-depth bias) process 0 makes first while the others wait, then they find it current.
    if rank != 0:
        _barrier(world)
    root = recipes._data_root(recipe, data_root, progress=progress)
    out = Path(out)
    config = run_config(recipe, stage, root, init_path)
    cfg_file = out / "config.json"
    final, last = out / "checkpoints" / "final.pt", out / "checkpoints" / "last.pt"
    new_run = not cfg_file.is_file()
    if not new_run:
        try:
            old = json.loads(cfg_file.read_text())
        except (OSError, ValueError) as e:
            raise MdlearnError(f"{cfg_file}: unreadable run configuration ({e})") from None
        if old.get("format") != RUN_FORMAT:
            raise UsageError(f"{out}: holds a config.json that is not an mdlearn run; choose another --out")
        diffs = _same_run(old, config)
        if diffs:
            raise UsageError(f"{out}: a run of another configuration (run vs now: {'; '.join(diffs)}); choose another --out")
        if final.is_file():
            raise UsageError(f"{out}: this run is finished ({final}); nothing to do")
        if not resume:
            raise UsageError(f"{out}: an unfinished run of this configuration exists; pass --resume to continue it")
    else:
        if resume:
            raise MdlearnError(f"{out}: no run to resume (no config.json)")
        if out.exists() and any(out.iterdir()):
            raise UsageError(f"{out}: exists and is not an mdlearn run; choose a new or empty --out")
    check_data_folder(recipe.family, root, "train")

    model = recipes.build(recipe)
    if init_path is not None:
        try:
            load_model_weights(model, init_path)
        except MdlearnError as e:  # another architecture or dataset: a misuse, named on one line
            raise UsageError(f"--init {e}") from None
    elif stage == "coarse":
        recipes.init_coarse_bias(model, recipe, root)
    data = recipes.training_data(recipe, "train", root, progress=progress)
    if rank == 0:
        _barrier(world)
    loader = make_loader(data, micro, seed=recipe.seed, **_loader_options(device))
    kind = recipe.optimizer
    opt = make_optimizer(model, stage, kind, **({"adam_lr": recipe.lr} if kind == "adam" else {"lr_scale": recipe.lr}))
    if new_run:  # everything is set up: only now the run folder is created
        _barrier(world)  # every process has checked before process 0 creates the run
        if rank == 0:
            (out / "checkpoints").mkdir(parents=True, exist_ok=True)
            write_json_atomically(cfg_file, config)
    _barrier(world)
    samples = recipe.coarse_samples if stage == "coarse" else recipe.fine_samples
    scheduler = recipes.make_scheduler(opt, recipe.schedule, -(-samples // recipe.batch_size))
    tcfg = TrainConfig(stage=stage, samples=samples, batch_size=recipe.batch_size, lam=recipe.lam, seed=recipe.seed,
                       log_every=recipe.log_every, checkpoint_every=checkpoint_every, checkpoint_path=str(last),
                       progress=progress)
    import torch

    torch.manual_seed(recipe.seed + (1 if stage == "fine" else 0))
    meta = {"recipe": recipe.describe(), "input_intrinsics": recipes.input_intrinsics(recipe, root), "run": str(out),
            "processes": world}
    trainer = Trainer(model, opt, loader, tcfg, scheduler=scheduler, device=device, meta=meta)
    if resume and last.is_file():
        trainer.resume(last)
        if rank == 0:
            print(f"resuming {out} at step {trainer.step} ({trainer.samples_seen:,} of {samples:,} samples)",
                  file=sys.stderr)
    # purge_step: events a killed run logged after its last checkpoint (step > trainer.step) are
    # dropped, then logged again by this run
    writer = (SummaryWriter(str(out / "tensorboard"), purge_step=trainer.step + 1 if trainer.step else None)
              if rank == 0 else None)
    names = [g.get("name", f"group {i}") for i, g in enumerate(opt.param_groups)]

    def on_log(t: Trainer, row: dict[str, Any]) -> None:
        if writer is None:
            return
        writer.add_scalar(f"{stage}/loss", row["loss"], row["step"])
        for name, lr in zip(names, row["lr"]):
            writer.add_scalar(f"{stage}/lr/{name}", lr, row["step"])
        writer.add_scalar(f"{stage}/samples_per_second", row["samples"] / max(row["seconds"], 1e-9), row["step"])

    def on_step(t: Trainer) -> None:
        if writer is not None and t.step % checkpoint_every == 0:
            writer.flush()
            write_json_atomically(out / "history.json", t.history)

    try:
        trainer.fit(on_log=on_log, on_step=on_step)
    finally:
        if writer is not None:
            writer.close()
    state = trainer.state()  # a collective under DDP
    if rank == 0:
        write_json_atomically(out / "history.json", trainer.history)
        # the finished stage: the last state under its final name, written atomically
        from .train import save_checkpoint_file

        save_checkpoint_file(state, final)
    _barrier(world)
    return final
