"""Output folders that are either complete or absent (Chapter 1; every writer and ``prepare`` uses it).

A long job writes into ``OUT.partial-<pid>`` beside its destination and renames it to ``OUT`` only
when everything is written, so an interrupted or failed run never leaves a folder that looks
finished. An existing ``OUT`` is replaced only when the caller allowed it (``--overwrite``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import UsageError

__all__ = ["check_output_folder", "staged_folder"]


def check_output_folder(out: str | os.PathLike, overwrite: bool, marker: str | None = None) -> Path:
    """Check that ``out`` may be written: absent, empty, or ``overwrite`` given; its parent writable.

    ``marker`` names the file that identifies a finished output of this kind (for the message).
    Raises :class:`~mdlearn.errors.UsageError` naming the folder and the problem.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        what = "an mdlearn dataset" if marker and (out / marker).exists() else "files"
        raise UsageError(f"{out}: already holds {what}; pass --overwrite to replace it")
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"{parent}: cannot create the output folder ({e.strerror})") from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{parent}: output folder is not writable")
    return out


@contextmanager
def staged_folder(out: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty staging folder for ``out``; publish it as ``out`` if the block succeeds.

    On any exception (``KeyboardInterrupt`` included) the staging folder is deleted and ``out`` is
    left as it was. On success an existing ``out`` is moved aside, the staging folder renamed into
    place, and the old one deleted.
    """
    out = Path(out)
    tmp = out.parent / f"{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
    except OSError as e:
        raise UsageError(f"{out.parent}: cannot write there ({e.strerror})") from None
    try:
        yield tmp
        if out.exists():
            trash = out.parent / f"{out.name}.old-{os.getpid()}"
            out.rename(trash)
            tmp.rename(out)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
