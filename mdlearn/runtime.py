"""Device choice and seeding, shared by every chapter that computes with torch (Chapter 1)."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

__all__ = ["default_device", "seed_everything"]


def default_device(prefer: str | None = None) -> torch.device:
    """The device to compute on: ``prefer`` or ``$MDLEARN_DEVICE`` if set, else CUDA, MPS, CPU.

    Introduced in Chapter 1.
    """
    choice = prefer or os.environ.get("MDLEARN_DEVICE")
    if choice:
        dev = torch.device(choice)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {choice!r} requested but CUDA is not available on this machine")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) for a reproducible run (Chapter 1)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
