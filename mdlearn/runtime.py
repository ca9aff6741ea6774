"""Device choice and seeding, shared by every chapter that computes with torch (Chapter 1)."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from .errors import UsageError

__all__ = ["default_device", "seed_everything"]


def _available(kind: str) -> bool:
    if kind == "cuda":
        return torch.cuda.is_available()
    if kind == "mps":
        return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    return kind == "cpu"


def default_device(prefer: str | None = None) -> torch.device:
    """The device to compute on: ``prefer`` or ``$MDLEARN_DEVICE`` if set, else CUDA, MPS, CPU.

    Introduced in Chapter 1. A requested device that is not a device name (``"gpu"``) or is not
    available on this machine raises :class:`~mdlearn.errors.UsageError` naming where the request
    came from (the ``prefer`` argument, e.g. ``train --device``, or ``MDLEARN_DEVICE``).

    >>> default_device("cpu")
    device(type='cpu')
    """
    choice = prefer or os.environ.get("MDLEARN_DEVICE")
    if choice:
        where = "device" if prefer else "MDLEARN_DEVICE"
        try:
            dev = torch.device(choice)
        except RuntimeError:
            raise UsageError(f"{where} {choice!r} is not a device; use cpu, cuda, cuda:N or mps") from None
        if not _available(dev.type):
            raise UsageError(f"{where} {choice!r}: {dev.type.upper()} is not available on this machine "
                             f"(torch {torch.__version__}); use 'cpu' or leave it unset")
        if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UsageError(f"{where} {choice!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
        return dev
    for kind in ("cuda", "mps"):
        if _available(kind):
            return torch.device(kind)
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) for a reproducible run (Chapter 1)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
