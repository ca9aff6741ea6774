"""The numbers the prose quotes are glued from the computation (issue 12): every glue role in a
chapter's markdown names a key that a code cell of the same chapter glues, and every glued key is
quoted; ``glue_number`` stores plain numbers myst-nb can format, with or without myst-nb."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mdlearn.course.chapters import list_chapters
from mdlearn.course.glue import GLUE_CALL, GLUE_ROLE, glue_number

REPO = Path(__file__).resolve().parents[1]
CHAPTERS = list_chapters(REPO / "chapters")


def _sources(path: Path, kind: str) -> list[str]:
    return ["".join(c["source"]) for c in json.loads(path.read_text())["cells"]
            if c["cell_type"] == kind]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_quoted_key_is_glued_in_the_same_chapter_and_every_glued_key_quoted(path):
    quoted = {m.group(1) for s in _sources(path, "markdown") for m in GLUE_ROLE.finditer(s)}
    calls = [m.group(1) for s in _sources(path, "code") for m in GLUE_CALL.finditer(s)]
    glued = set(calls)
    assert not quoted - glued, f"quoted but never glued: {sorted(quoted - glued)}"
    assert not glued - quoted, f"glued but never quoted: {sorted(glued - quoted)}"
    twice = sorted({k for k in calls if calls.count(k) > 1})
    assert not twice, f"glued by more than one call: {twice}"  # myst-nb keeps one of them
    prefix = f"ch{int(path.stem[:2])}-"
    assert all(k.startswith(prefix) for k in glued), f"keys must start with {prefix}: {sorted(glued)}"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_no_glue_role_is_left_malformed(path):
    """A role whose backticks or format the regular expression misses would render raw."""
    for s in _sources(path, "markdown"):
        roles = s.count("{glue")
        assert roles == len(GLUE_ROLE.findall(s)), s[:200]
        for m in GLUE_ROLE.finditer(s):
            spec = m.group(0)[:-1].split("`", 1)[1].partition(":")[2]
            if spec:
                format(7 if spec.endswith("d") else 0.5, spec)  # a valid format specification


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_chapter_glues_its_numbers(path):
    assert GLUE_CALL.search("\n".join(_sources(path, "code"))), path.stem


def _glued(monkeypatch) -> list:
    """What glue_number hands to IPython's display, recorded instead of shown."""
    pytest.importorskip("myst_nb")
    import myst_nb.ext.glue as ext

    shown = []
    monkeypatch.setattr(ext, "ipy_display", lambda data, **k: shown.append((data, k)))
    return shown


PLAIN = "application/papermill.record/text/plain"  # display=False: not shown in the page


@pytest.mark.parametrize("value, expected", [
    (np.float32(0.25), 0.25), (np.float64(2.5), 2.5), (np.int64(7), 7), (torch.tensor(3), 3),
    (torch.tensor(0.5), 0.5), (np.array(1.5), 1.5), (4, 4), (0.125, 0.125)])
def test_glue_number_stores_a_plain_number(monkeypatch, value, expected):
    shown = _glued(monkeypatch)
    assert glue_number("x", value) is None  # ends a cell without printing the value
    (data, kw), = shown
    assert kw["metadata"]["scrapbook"]["name"] == "x"
    stored = ast.literal_eval(data[PLAIN])
    assert stored == expected and type(stored) is type(expected)


@pytest.mark.parametrize("bad", [True, "0.3", None, np.zeros(2)])
def test_glue_number_refuses_what_is_not_one_real_number(bad):
    with pytest.raises((TypeError, ValueError)):
        glue_number("x", bad)


def test_glue_number_refuses_a_name_myst_cannot_quote():
    with pytest.raises(TypeError, match="name"):
        glue_number("a b:c", 1.0)


def test_myst_nb_formats_the_stored_number(monkeypatch):
    from myst_nb.core.variables import format_plain_text

    shown = _glued(monkeypatch)
    glue_number("x", np.float64(0.28012))
    assert format_plain_text(shown[0][0][PLAIN], ".2f") == "0.28"


def test_glue_number_works_without_myst_nb(monkeypatch):
    monkeypatch.setitem(sys.modules, "myst_nb", None)  # as in Colab: the import fails
    assert glue_number("x", np.float64(1.25)) is None
    with pytest.raises(TypeError):
        glue_number("x", "1.25")  # the value is still checked
