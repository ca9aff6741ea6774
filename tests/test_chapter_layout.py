"""Chapters that read like a book page: code fits the column, set-up is collapsed, and the
chapter ends with a summary before its exercises (issue 9). Chapters join FORMATTED when done."""

import json
from pathlib import Path

import pytest

from mdlearn.course.chapters import list_chapters

REPO = Path(__file__).resolve().parents[1]
#: Chapters already laid out for the book.
FORMATTED = ("01_", "02_", "03_", "04_", "05_", "06_", "07_", "08_", "09_")
CHAPTERS = [p for p in list_chapters(REPO / "chapters") if p.name.startswith(FORMATTED)]
#: Characters of code the book's theme shows in a 1280-pixel-wide window.
COLUMN = 76


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_code_lines_fit_the_column(path):
    cells = json.loads(path.read_text())["cells"]
    long = [(c.get("id"), line) for c in cells if c["cell_type"] == "code"
            for line in "".join(c["source"]).splitlines() if len(line) > COLUMN]
    assert not long, f"{len(long)} code lines over {COLUMN} characters, e.g. {long[0]}"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_install_cell_is_collapsed(path):
    cells = json.loads(path.read_text())["cells"]
    install = [c for c in cells if c["cell_type"] == "code" and "pip\", \"install" in "".join(c["source"])]
    assert install, "no install cell"
    assert all("hide-input" in c["metadata"].get("tags", []) for c in install)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_summary_comes_before_the_exercises(path):
    text = "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"]
                     if c["cell_type"] == "markdown")
    assert "## Summary" in text and "## Exercises" in text
    assert text.index("## Summary") < text.index("## Exercises")
