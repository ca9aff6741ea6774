"""The book's chapters as runnable jobs: list, run with a preset, prepare for nbval, check outputs.

Introduced in Chapter 1 (and used by ``make book``, ``make test`` and ``mdlearn chapter``).
A chapter is a notebook ``chapters/NN_name.ipynb`` with exactly one cell tagged ``parameters``
holding literal assignments, among them ``preset``. Papermill injects other values after it.
"""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

from ..errors import UsageError
from ..paths import chapters_dir
from .presets import PRESETS

__all__ = ["list_chapters", "find_chapter", "parameters_of", "run_chapter", "prepare_chapter",
           "notebooks_with_outputs", "strip_outputs"]


def list_chapters(folder: str | os.PathLike | None = None) -> list[Path]:
    """The chapter notebooks, in book order."""
    folder = Path(folder) if folder is not None else chapters_dir()
    return sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))


def find_chapter(name: str, folder: str | os.PathLike | None = None) -> Path:
    """A chapter by number (``1``, ``01``), stem (``01_depth_from_a_single_image``) or path."""
    p = Path(name)
    if p.suffix == ".ipynb" and p.is_file():
        return p
    chapters = list_chapters(folder)
    for c in chapters:
        if name in (c.stem, c.name) or (name.isdigit() and c.stem.startswith(f"{int(name):02d}_")):
            return c
    raise UsageError(f"no chapter {name!r}; known: {', '.join(c.stem for c in chapters) or '(none)'}")


def parameters_of(path: str | os.PathLike) -> dict:
    """The literal values of a notebook's ``parameters`` cell (raises if it is missing or not literal)."""
    nb = json.loads(Path(path).read_text())
    cells = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise UsageError(f"{path}: expected exactly one cell tagged 'parameters', found {len(cells)}")
    values = {}
    for node in ast.parse("".join(cells[0]["source"])).body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            raise UsageError(f"{path}: the parameters cell may only hold simple assignments")
        try:
            values[node.targets[0].id] = ast.literal_eval(node.value)
        except ValueError:
            raise UsageError(f"{path}: parameter {node.targets[0].id!r} is not a literal value") from None
    return values


def _check(path: Path, preset: str, params: dict) -> dict:
    if preset not in PRESETS:
        raise UsageError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    known = parameters_of(path)
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise UsageError(f"{path.name} has no parameter {unknown[0]!r}; its parameters: {', '.join(known)}")
    return {**params, "preset": preset}


def run_chapter(name: str, preset: str, output: str | os.PathLike | None = None,
                params: dict | None = None, progress: bool = True) -> Path:
    """Execute a chapter with papermill under ``preset`` and write the executed copy.

    The default output is ``_build/runs/<chapter>-<preset>.ipynb``. Returns its path.
    """
    import papermill as pm

    path = find_chapter(name)
    parameters = _check(path, preset, params or {})
    out = Path(output) if output is not None else path.parent.parent / "_build" / "runs" / f"{path.stem}-{preset}.ipynb"
    out.parent.mkdir(parents=True, exist_ok=True)
    pm.execute_notebook(str(path), str(out), parameters=parameters, cwd=str(path.parent),
                        kernel_name="python3", progress_bar=progress, request_save_on_cell_execute=True)
    return out


def prepare_chapter(path: str | os.PathLike, preset: str, out_dir: str | os.PathLike) -> Path:
    """Write a copy of a chapter with ``preset`` injected but not executed (for nbval)."""
    import papermill as pm

    path = Path(path)
    parameters = _check(path, preset, {})
    out = Path(out_dir) / path.name
    out.parent.mkdir(parents=True, exist_ok=True)
    pm.execute_notebook(str(path), str(out), parameters=parameters, prepare_only=True,
                        kernel_name="python3", progress_bar=False)
    return out


def notebooks_with_outputs(paths) -> list[str]:
    """Notebooks among ``paths`` that carry outputs or execution counts (they must be committed clean)."""
    bad = []
    for p in paths:
        nb = json.loads(Path(p).read_text())
        for c in nb["cells"]:
            if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count") is not None):
                bad.append(str(p))
                break
    return bad


def strip_outputs(paths) -> list[str]:
    """Remove outputs and execution counts in place; returns the notebooks it changed."""
    changed = []
    for p in map(Path, paths):
        nb = json.loads(p.read_text())
        dirty = False
        for c in nb["cells"]:
            if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count") is not None):
                c["outputs"], c["execution_count"] = [], None
                dirty = True
        if dirty:
            p.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
            changed.append(str(p))
    return changed
