"""What every chapter page gives a reader besides its content (issue 12): how long each preset
takes, a first cell that installs the package where it is missing and says the device, and the
launch buttons of the one repository setting."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mdlearn.course.chapters import list_chapters
from mdlearn.course.presets import PRESETS

REPO = Path(__file__).resolve().parents[1]
CHAPTERS = list_chapters(REPO / "chapters")
CONFIG = yaml.safe_load((REPO / "_config.yml").read_text())


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def _first_code(path: Path) -> dict:
    return next(c for c in _cells(path) if c["cell_type"] == "code")


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_opening_states_the_time_of_every_preset(path):
    cells = _cells(path)
    opening = "\n".join("".join(c["source"]) for c in cells[:next(
        i for i, c in enumerate(cells) if c["cell_type"] == "code")])
    assert opening.startswith("# ") and "This chapter" in opening  # what it teaches
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `(\w+)` \|.*\| ([^|]+) \|$", opening, re.M)}
    assert set(rows) == set(PRESETS), rows
    for preset in ("smoke", "book"):  # measured: a number with its unit
        assert re.search(r"\d+ (s|minutes?)\b", rows[preset]), (preset, rows[preset])


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_first_code_cell_installs_from_the_repository_setting_and_names_the_device(path):
    source = "".join(_first_code(path)["source"])
    assert 'find_spec("mdlearn") is None' in source and '"pip", "install"' in source
    assert f'url = "git+{CONFIG["repository"]["url"]}"' in source  # the one repository setting
    assert "default_device()" in source


def test_first_code_cell_runs_where_the_package_is_installed():
    """In a clone (or after the install) the cell installs nothing and prints the device."""
    source = "".join(_first_code(CHAPTERS[0])["source"])
    env = {**os.environ, "PYTHONPATH": str(REPO), "MDLEARN_DEVICE": "cpu"}
    done = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "mdlearn computes on cpu (MDLEARN_DEVICE overrides)"


def test_launch_buttons_open_colab_binder_and_jupyterlab_from_the_repository():
    launch = CONFIG["launch_buttons"]
    assert launch["colab_url"] == "https://colab.research.google.com"
    assert launch["binderhub_url"] == "https://mybinder.org"
    assert launch["notebook_interface"] == "jupyterlab"
    repo = CONFIG["repository"]
    assert repo["url"].startswith("https://github.com/") and repo["branch"] and "path_to_book" in repo
