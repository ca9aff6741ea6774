"""Where the book's data lives (Chapter 1).

Inside a clone of the repository the data folder is ``<repo>/data``; elsewhere (a pip install in
Colab, say) it is ``./data`` under the working directory. ``MDLEARN_DATA`` overrides both.

The real dataset samples (a few NYU and KITTI files the tests, benchmarks and chapters compare
against) live in ``shared/data`` beside the repository, found by :func:`shared_data_dir`;
``MDLEARN_SHARED_DATA`` overrides it.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import UsageError

__all__ = ["project_root", "data_dir", "shared_data_dir", "chapters_dir"]


def project_root(start: str | os.PathLike | None = None) -> Path | None:
    """The repository root (the folder holding ``_toc.yml`` and ``mdlearn/``), or ``None``.

    Searches upwards from ``start`` (default: the working directory), then from this package.
    """
    candidates = [Path(start or os.getcwd()).resolve(), Path(__file__).resolve().parent]
    for base in candidates:
        for folder in (base, *base.parents):
            if (folder / "_toc.yml").is_file() and (folder / "mdlearn").is_dir():
                return folder
    return None


def data_dir() -> Path:
    """The folder datasets are generated into or placed in (created on demand by writers)."""
    env = os.environ.get("MDLEARN_DATA")
    if env:
        return Path(env).expanduser().resolve()
    root = project_root()
    return (root / "data") if root is not None else Path.cwd() / "data"


def shared_data_dir() -> Path:
    """The folder of the real dataset samples (``MANIFEST.md``, ``nyu/``, ``kitti/``); may not exist.

    Introduced in Chapter 2. ``$MDLEARN_SHARED_DATA`` if set; else the nearest ``shared/data``
    beside the repository or one of the folders above it (a git worktree may sit deeper than the
    clone); else ``<repo>/../shared/data`` (or ``./shared/data`` outside a clone), which callers
    report as missing. Callers check for the files they need and skip what needs absent ones.
    """
    env = os.environ.get("MDLEARN_SHARED_DATA")
    if env:
        return Path(env).expanduser().resolve()
    root = project_root()
    if root is None:
        return Path.cwd() / "shared" / "data"
    for folder in root.parents:
        if (folder / "shared" / "data").is_dir():
            return folder / "shared" / "data"
    return root.parent / "shared" / "data"


def chapters_dir() -> Path:
    """The folder of the book's chapter notebooks (needs a clone of the repository)."""
    root = project_root()
    if root is None:
        raise UsageError(f"chapters/ is only available in a clone of the mdlearn repository (none found above {Path.cwd()})")
    return root / "chapters"
