"""Building the HTML book (``make book`` runs :func:`build_book`; Chapter 1 explains the layout).

Jupyter Book caches executed notebooks keyed on their code cells only, and Sphinx re-reads only
the notebooks whose text changed, so a change to the ``mdlearn`` package alone would re-execute
nothing. :func:`build_book` therefore keys the build on the package's sources too: when they
change it clears the execution cache and rebuilds every page.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

from .chapters import list_chapters, notebooks_with_outputs
from ..errors import MdlearnError
from ..paths import project_root

__all__ = ["package_hash", "build_book"]


def package_hash() -> str:
    """Hash of every source file of the ``mdlearn`` package."""
    pkg = Path(__file__).resolve().parent.parent  # the whole mdlearn package
    h = hashlib.sha256()
    for f in sorted(pkg.rglob("*.py")):
        h.update(str(f.relative_to(pkg)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def build_book(root: str | Path | None = None) -> Path:
    """Execute the chapters (``book`` preset) and build the HTML book into ``_build/html``.

    Raises :class:`~mdlearn.errors.MdlearnError` if a chapter carries committed outputs or if the
    build fails (a failing chapter fails the build). Returns the path of ``index.html``.
    """
    root = Path(root) if root is not None else project_root()
    if root is None:
        raise MdlearnError("the book can only be built from a clone of the mdlearn repository")
    bad = notebooks_with_outputs(list_chapters(root / "chapters"))
    if bad:
        raise MdlearnError("notebooks must be committed without outputs: " + ", ".join(bad))
    build = root / "_build"
    stamp = build / ".mdlearn-package-hash"
    current = package_hash()
    jb = Path(sys.executable).parent / "jupyter-book"
    cmd = [str(jb) if jb.exists() else "jupyter-book", "build", str(root)]
    if not stamp.is_file() or stamp.read_text() != current:
        # the package changed: drop the execution cache and make Sphinx re-read (so re-execute)
        # every chapter, not only the notebooks whose own text changed
        shutil.rmtree(build / ".jupyter_cache", ignore_errors=True)
        cmd.append("--all")
    if subprocess.run(cmd, cwd=root).returncode != 0:
        raise MdlearnError("jupyter-book build failed (see the messages above)")
    index = build / "html" / "index.html"
    if not index.is_file():
        raise MdlearnError(f"{index}: the build finished but wrote no index page")
    build.mkdir(exist_ok=True)
    stamp.write_text(current)
    return index
