"""Assignments from the chapters and their autograder (mdlearn.course.assignments, issue 12).

The expensive cases run real chapters in a kernel at the smoke preset: every student notebook
once (only NotImplementedError may be raised, every question scores 0), and chapter 2 twice more
(the instructor version scores full marks, a planted wrong answer loses exactly its question's
points). The bad inputs use a small two-question notebook written here.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import nbformat
import pytest

from mdlearn.cli import main
from mdlearn.course.assignments import (BEGIN_HIDDEN, BEGIN_SOLUTION, END_HIDDEN, END_SOLUTION,
                                        build_assignments, check_marked_cell, grade_notebook,
                                        read_assignment, student_notebook)
from mdlearn.course.chapters import list_chapters
from mdlearn.errors import FormatError

REPO = Path(__file__).resolve().parents[1]
CHAPTERS = [p for p in list_chapters(REPO / "chapters") if read_assignment(p).questions]
QID = re.compile(r"^# grade: ([a-z0-9-]+)", re.M)


def _text(nb, kind: str | None = None) -> str:
    return "\n".join("".join(c["source"]) if isinstance(c["source"], list) else c["source"]
                     for c in nb["cells"] if kind in (None, c["cell_type"]))


def _regions(source: str, begin: str, end: str) -> list[list[str]]:
    out, cur = [], None
    for line in source.split("\n"):
        if line.strip() == begin:
            cur = []
        elif line.strip() == end:
            out.append(cur)
            cur = None
        elif cur is not None:
            cur.append(line)
    return out


@pytest.fixture(scope="module")
def kit(tmp_path_factory) -> Path:
    return build_assignments(tmp_path_factory.mktemp("kit") / "assignments")


# ------------------------------------------------------------------------------ the chapters


def test_every_chapter_from_2_on_has_a_graded_question():
    names = {p.name[:2] for p in CHAPTERS}
    assert {"02", "03", "04", "05", "06", "07"} <= names
    for p in CHAPTERS:
        a = read_assignment(p)
        assert all(q.id.startswith(f"ch{int(p.name[:2])}-") for q in a.questions), p.name
        assert all(any(BEGIN_HIDDEN in s for s in q.sources) for q in a.questions), "hidden tests"


def test_build_writes_student_and_autograder_copies(kit):
    index = json.loads((kit / "index.json").read_text())
    assert index["format"] == "mdlearn-assignments"
    assert sorted(index["assignments"]) == [p.stem for p in CHAPTERS]
    for p in CHAPTERS:
        assert (kit / "autograder" / p.name).read_bytes() == p.read_bytes()
        nb = nbformat.read(str(kit / "student" / p.name), as_version=4)
        assert nb.metadata["mdlearn"]["assignment"] == p.stem
        assert f"Assignment id: `{p.stem}`" in nb.cells[0].source


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_student_notebook_leaks_no_solution_or_hidden_test(kit, path):
    teacher = json.loads(path.read_text())
    student = json.loads((kit / "student" / path.name).read_text())
    text = _text(student)
    for word in ("BEGIN SOLUTION", "END SOLUTION", "HIDDEN TESTS"):
        assert word not in text
    # every line of a solution or hidden region that appears nowhere else in the chapter is gone
    source = _text(teacher)
    secret = [r for c in teacher["cells"] if c["cell_type"] == "code"
              for b, e in ((BEGIN_SOLUTION, END_SOLUTION), (BEGIN_HIDDEN, END_HIDDEN))
              for r in _regions("".join(c["source"]), b, e)]
    assert secret
    outside = source
    for region in secret:
        outside = outside.replace("\n".join(region), "")
    lines = {line.strip() for region in secret for line in region if line.strip()}
    private = [line for line in lines if line not in outside]
    assert private and not [line for line in private if line in text]
    # the visible tests are kept, word for word, and each solution is a stub
    a = read_assignment(path)
    for q in a.questions:
        for test in q.sources:
            assert test.split(BEGIN_HIDDEN)[0].rstrip() in text
    assert _text(student, "code").count("raise NotImplementedError()") == len(_regions(source, BEGIN_SOLUTION, END_SOLUTION))


@pytest.mark.slow
@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_unsolved_student_notebook_runs_and_scores_zero(kit, path, tmp_path):
    """The student version runs top to bottom (smoke) with NotImplementedError as its only error."""
    executed = tmp_path / "executed.ipynb"
    report = grade_notebook(kit / "student" / path.name, source=kit, executed=executed,
                            cell_timeout=240, timeout=480)
    assert report.points == 0 and report.max_points == read_assignment(path).max_points
    for qid, r in report.questions.items():
        assert (r.status, r.points) == ("error", 0), (qid, r)
        assert r.reason.startswith("NotImplementedError"), (qid, r.reason)
    errors = [o for c in nbformat.read(str(executed), as_version=4).cells if c.cell_type == "code"
              for o in c.outputs if o.output_type == "error"]
    assert errors and {o.ename for o in errors} == {"NotImplementedError"}
    assert not report.notes


@pytest.fixture(scope="module")
def chapter2() -> Path:
    return next(p for p in CHAPTERS if p.name.startswith("02_"))


@pytest.mark.slow
def test_instructor_notebook_scores_full_marks(chapter2, tmp_path, capsys):
    out = tmp_path / "grades.json"
    assert main(["assignments", "grade", str(chapter2), "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["points"] == doc["max_points"] == read_assignment(chapter2).max_points
    assert {q["status"] for q in doc["questions"].values()} == {"passed"}
    assert doc["preset"] == "smoke"
    assert f"total: {doc['points']}/{doc['points']} points" in capsys.readouterr().out


@pytest.mark.slow
def test_planted_wrong_answer_loses_exactly_its_points(chapter2, tmp_path):
    nb = nbformat.read(str(chapter2), as_version=4)
    a = read_assignment(chapter2)
    assert len(a.questions) >= 2
    cell = next(c for c in nb.cells if "def keep_one_to_one" in c.source)
    # plausible but wrong: a tie goes to the earlier RGB frame
    right = "nearest = len(t_rgb) - 1 - gap[:, ::-1].argmin(axis=1)"
    assert right in cell.source
    cell.source = cell.source.replace(right, "nearest = gap.argmin(axis=1)")
    sub = tmp_path / chapter2.name
    nbformat.write(nb, str(sub))
    report = grade_notebook(sub)
    lost = a.max_points - report.points
    assert lost == next(q.points for q in a.questions if q.id == "ch2-sync-rule")
    assert report.questions["ch2-sync-rule"].status == "failed"
    assert report.questions["ch2-sync-rule"].reason.startswith("AssertionError")
    assert {k: r.status for k, r in report.questions.items() if k != "ch2-sync-rule"} == {
        q.id: "passed" for q in a.questions if q.id != "ch2-sync-rule"}


# ------------------------------------------------------------------------------ bad input

PARAMS = 'preset = "book"  # run size\n'
DOUBLE = "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION"
DOUBLE_TEST = ("# grade: t-double, 2 points\nassert double(2) == 4\n"
               "### BEGIN HIDDEN TESTS\nassert double(-3) == -6\n### END HIDDEN TESTS")
SQUARE = "def square(x):\n    ### BEGIN SOLUTION\n    return x * x\n    ### END SOLUTION"
SQUARE_TEST = "# grade: t-square, 3 points\nassert square(3) == 9"
SQUARE_HIDDEN = ("# grade: t-square, 3 points\n# more tests when graded\n### BEGIN HIDDEN TESTS\n"
                 "assert square(-4) == 16\nassert preset == 'smoke'\n### END HIDDEN TESTS")


def _notebook(path: Path, *sources: str, tagged: bool = True) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells.append(nbformat.v4.new_markdown_cell("# A test assignment"))
    params = nbformat.v4.new_code_cell(PARAMS)
    if tagged:
        params.metadata["tags"] = ["parameters"]
    nb.cells.append(params)
    nb.cells += [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(nb, str(path))
    return path


@pytest.fixture()
def teacher(tmp_path) -> Path:
    return _notebook(tmp_path / "teacher.ipynb", DOUBLE, DOUBLE_TEST, SQUARE, SQUARE_TEST, SQUARE_HIDDEN)


def _submit(tmp_path: Path, teacher: Path, edit) -> Path:
    """The student version of ``teacher`` with ``edit(cells)`` applied, as the student saved it."""
    nb = student_notebook(teacher)
    for c in nb.cells:  # Colab drops cell metadata
        c.metadata = {}
    nb.metadata = {}
    edit(nb.cells)
    path = tmp_path / "submission.ipynb"
    nbformat.write(nb, str(path))
    return path


def _solve(cells, name: str, body: str) -> None:
    cell = next(c for c in cells if c.source.startswith(f"def {name}("))
    cell.source = cell.source.replace("# YOUR CODE HERE\n    raise NotImplementedError()", body)


@pytest.mark.parametrize("source, message", [
    ("x = 1\n### BEGIN SOLUTION\ny = 2", "'### BEGIN SOLUTION' on line 2 is never closed"),
    ("### END SOLUTION", "closes no region"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", "do not nest"),
    ("### BEGIN SOLUTION\nx = 1\n### END HIDDEN TESTS", "needs '### END SOLUTION'"),
    ("### BEGIN HIDDEN TESTS\nassert 1\n### END HIDDEN TESTS", "belong in a cell that starts with"),
    ("x = 1  # BEGIN SOLUTION here", "not a marker line"),
])
def test_unbalanced_markers_name_the_cell(source, message):
    with pytest.raises(FormatError, match=re.escape(message)) as err:
        check_marked_cell(source, "ch.ipynb", 7)
    assert str(err.value).startswith("ch.ipynb, cell 7: ") and "\n" not in str(err.value)


@pytest.mark.parametrize("cells, index, message", [
    ([DOUBLE.replace("    ### END SOLUTION", "")], 2, "'### BEGIN SOLUTION' on line 2 is never closed"),
    ([DOUBLE_TEST.replace("2 points", "two points")], 2, "malformed grade line"),
    ([DOUBLE_TEST, DOUBLE_TEST.replace("2 points", "3 points")], 3,
     "question 't-double' is worth 3 points here but 2 in cell 2"),
    (["# grade: t-x, 1 point\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION"], 2,
     "a solution cannot sit in a '# grade:' test cell"),
    (["x = 1\n# grade: t-x, 1 point"], 2, "'# grade:' must be the first line"),
])
def test_bad_chapter_is_one_clear_error(tmp_path, cells, index, message, capsys):
    bad = _notebook(tmp_path / "09_bad.ipynb", *cells)
    with pytest.raises(FormatError, match=re.escape(message)):
        read_assignment(bad)
    assert main(["assignments", "build", "--chapters", str(bad), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"mdlearn: error: {bad}, cell {index} (id ") and message in err
    assert "\n" not in err
    assert not (tmp_path / "out").exists()


def test_markers_in_markdown_are_refused(tmp_path):
    bad = _notebook(tmp_path / "bad.ipynb", DOUBLE, DOUBLE_TEST)
    nb = nbformat.read(str(bad), as_version=4)
    nb.cells[0].source += "\n### BEGIN SOLUTION\nsecret\n### END SOLUTION"
    nbformat.write(nb, str(bad))
    with pytest.raises(FormatError, match=r"cell 0.*marker words in a markdown cell"):
        read_assignment(bad)


@pytest.mark.slow
def test_solved_fixture_full_marks_and_preset_injected(tmp_path, teacher):
    sub = _submit(tmp_path, teacher, lambda cells: (_solve(cells, "double", "return x + x"),
                                                    _solve(cells, "square", "return x ** 2")))
    report = grade_notebook(sub, source=teacher)  # the id is read from the header cell
    assert report.points == report.max_points == 5, report.summary()
    assert report.assignment == "teacher"


@pytest.mark.slow
def test_hidden_and_edited_tests_still_grade(tmp_path, teacher):
    def edit(cells):
        _solve(cells, "double", "return 4")  # passes the visible test only
        _solve(cells, "square", "return x * abs(x)")  # wrong for negatives
        tests = [c for c in cells if c.source.startswith("# grade: t-square")]
        tests[0].source = "# grade: t-square, 3 points\npass"  # an emptied test cell
        cells.remove(tests[1])  # and the (empty) hidden test cell deleted

    report = grade_notebook(_submit(tmp_path, teacher, edit), source=teacher)
    assert report.points == 0
    assert report.questions["t-double"].status == "failed"
    assert "double(-3) == -6" in report.questions["t-double"].reason
    assert report.questions["t-square"].status == "failed"


@pytest.mark.slow
def test_deleted_test_cell_is_missing(tmp_path, teacher):
    def edit(cells):
        _solve(cells, "double", "return 2 * x")
        cells[:] = [c for c in cells if not c.source.startswith("# grade: t-square")]

    report = grade_notebook(_submit(tmp_path, teacher, edit), source=teacher)
    assert (report.questions["t-double"].status, report.points) == ("passed", 2)
    assert report.questions["t-square"].status == "missing"
    assert "deleted" in report.questions["t-square"].reason


@pytest.mark.slow
def test_crashing_kernel_is_reported_not_raised(tmp_path, teacher, capsys):
    def edit(cells):
        _solve(cells, "double", "return 2 * x")
        _solve(cells, "square", "return x * x")
        at = next(i for i, c in enumerate(cells) if c.source.startswith("def square"))
        cells.insert(at, nbformat.v4.new_code_cell("import os\nos._exit(1)"))

    sub = _submit(tmp_path, teacher, edit)
    out = tmp_path / "grades.json"
    assert main(["assignments", "grade", str(sub), "--source", str(teacher), "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["questions"]["t-double"]["status"] == "passed"
    square = doc["questions"]["t-square"]
    assert (square["points"], square["max"], square["status"]) == (0, 3, "error")
    assert "kernel died" in doc["questions"]["t-square"]["reason"]
    assert doc["points"] == 2 and any("kernel died" in n for n in doc["notes"])


@pytest.mark.slow
def test_endless_loops_time_out(tmp_path, teacher):
    def edit(cells):
        _solve(cells, "double", "while True:\n        pass")  # interrupted at the cell limit
        _solve(cells, "square", "return x * x")
        # before the t-square tests, a cell that swallows the interrupt: the total limit ends the run
        at = next(i for i, c in enumerate(cells) if c.source.startswith("# grade: t-square"))
        cells.insert(at, nbformat.v4.new_code_cell(
            "import time\nwhile True:\n    try:\n        time.sleep(1)\n"
            "    except KeyboardInterrupt:\n        pass"))

    report = grade_notebook(_submit(tmp_path, teacher, edit), source=teacher, cell_timeout=4,
                            timeout=10)
    assert report.questions["t-double"].status == "timeout"
    assert report.questions["t-square"].status == "timeout", report.summary()
    assert report.points == 0
    assert "ran past its time limit" in report.questions["t-double"].reason
    assert any("interrupted" in n or "10 s limit" in n for n in report.notes), report.notes


def test_unreadable_or_anonymous_submission(tmp_path, teacher, capsys):
    junk = tmp_path / "junk.ipynb"
    junk.write_text("{not json")
    assert main(["assignments", "grade", str(junk), "--source", str(teacher)]) == 1
    assert capsys.readouterr().err.startswith(f"mdlearn: error: {junk}: not a readable notebook")
    junk.write_text('{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "code"}]}')
    assert main(["assignments", "grade", str(junk), "--source", str(teacher)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"mdlearn: error: {junk}: not a readable notebook") and err.count("\n") == 1
    anonymous = _notebook(tmp_path / "homework.ipynb", DOUBLE)
    assert main(["assignments", "grade", str(anonymous)]) == 2
    assert "no assignment id" in capsys.readouterr().err
    assert main(["assignments", "grade", str(tmp_path / "absent.ipynb")]) == 2


def test_student_notebook_of_a_fixture(teacher):
    nb = student_notebook(teacher)
    text = _text(nb)
    assert "return 2 * x" not in text and "double(-3)" not in text and "square(-4)" not in text
    assert "assert double(2) == 4" in text
    assert _text(nb, "code").count("raise NotImplementedError()") == 2
    assert copy.deepcopy(nb).metadata["mdlearn"]["questions"] == {"t-double": 2, "t-square": 3}


def test_build_cli_refuses_what_it_must(tmp_path, capsys):
    out = tmp_path / "kit"
    assert main(["assignments", "build", "--chapters", "4", "--out", str(out)]) == 0
    assert "04_scale_invariant_error: 1 question(s)" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "student").iterdir()) == ["04_scale_invariant_error.ipynb"]
    assert main(["assignments", "build", "--chapters", "4", "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["assignments", "build", "--chapters", "3", "--out", str(out), "--overwrite"]) == 0
    assert sorted(p.name for p in (out / "student").iterdir()) == ["03_depth_from_a_laser_scanner.ipynb"]
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    assert main(["assignments", "build", "--out", str(other), "--overwrite"]) == 2
    assert (other / "notes.txt").read_text() == "keep me"
    assert main(["assignments", "build", "--chapters", "1", "--out", str(tmp_path / "k1")]) == 2
    assert "no graded questions" in capsys.readouterr().err
