"""The package as a whole: every module imports cheaply, without data, and its examples run (doctest)."""

import json
import os
import pkgutil
import subprocess
import sys

import pytest

import mdlearn


def _modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(mdlearn.__path__, "mdlearn.") if not m.name.endswith("__main__"))


def test_every_module_imports_without_data_or_side_effects(tmp_path):
    # what doctest collection does: import every module, here with no data folder and no real samples
    env = dict(os.environ, MDLEARN_DATA=str(tmp_path / "data"), MDLEARN_SHARED_DATA=str(tmp_path / "shared"))
    code = ("import importlib, json, sys\n"
            f"names = {_modules()!r}\n"
            "for n in names: importlib.import_module(n)\n"
            "print(json.dumps(names))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert "mdlearn.data.crops" in json.loads(r.stdout.splitlines()[-1])
    assert list(tmp_path.iterdir()) == []  # nothing written, nothing generated


def test_doctests_are_part_of_the_suite():
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    root = Path(__file__).resolve().parents[1]
    cfg = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "--doctest-modules" in cfg["addopts"] and "mdlearn" in cfg["testpaths"]
    assert "data" not in cfg["norecursedirs"]  # it would skip mdlearn/data's examples
    test_line = next(line for line in (root / "Makefile").read_text().splitlines() if "-m pytest" in line)
    assert " mdlearn " in test_line
