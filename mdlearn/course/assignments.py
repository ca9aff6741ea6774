"""Graded assignments made from the chapters, and their autograder (``mdlearn assignments``).

Introduced with the course kit (issue 12). The chapters are the instructor versions: a graded
exercise is written in plain text inside code cells, so the marks survive Colab and JupyterLab
(cell metadata does not), in nbgrader's own notation:

* the instructor's solution sits between the lines ``### BEGIN SOLUTION`` and ``### END SOLUTION``
  of a code cell;
* the cell that grades it starts with the line ``# grade: <question-id>, <N> points`` (an id such
  as ``ch2-sync-rule``); its visible tests are ordinary code and its hidden tests sit between
  ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS``. Long tests may continue in further
  cells that start with the same line (the question passes if all of them run).

:func:`build_assignments` writes, per chapter, the student notebook (each solution replaced by a
stub that raises ``NotImplementedError``, hidden tests removed, visible tests kept) and a private
copy of the instructor notebook for the grader. Both rewrites are nbgrader's own preprocessors
(``ClearSolutions``, ``ClearHiddenTests``), driven without nbgrader's cell metadata and its
database: the markers are checked here first, so that a bad chapter is one clear line naming
the file and the cell rather than nbgrader's bare ``RuntimeError``.

:func:`grade_notebook` runs a submitted notebook in a fresh kernel with a time limit per cell and
in total, after putting the instructor's test cells (visible *and* hidden tests) back in place of
the student's by question id, so that editing or emptying a test cell changes nothing; a deleted
test cell scores 0 as ``missing`` (when some of a question's test cells are left, all are
restored). Each question scores its full points if its test cell ran
without an error, else 0. A kernel that dies or a cell that never ends costs the questions not
yet graded, never the grader.

Example:
    >>> check_marked_cell("x = 1\\n### BEGIN SOLUTION\\ny = 2\\n### END SOLUTION", "nb.ipynb", 3)
    >>> check_marked_cell("### BEGIN SOLUTION\\ny = 2", "nb.ipynb", 3)
    Traceback (most recent call last):
    ...
    mdlearn.errors.FormatError: nb.ipynb, cell 3: '### BEGIN SOLUTION' on line 1 is never closed by '### END SOLUTION'
"""

from __future__ import annotations

import copy
import json
import os
import re
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import FormatError, MdlearnError, UsageError

__all__ = ["Question", "Assignment", "QuestionResult", "GradeReport", "BUILD_FORMAT", "STATUSES",
           "check_marked_cell", "read_assignment", "student_notebook", "build_assignments",
           "find_source", "grade_notebook", "write_report", "read_manifest_summary"]

#: The manifest ``format`` of a folder written by :func:`build_assignments`.
BUILD_FORMAT = "mdlearn-assignments"
#: What a question's grade can say.
STATUSES = ("passed", "failed", "error", "missing", "timeout")

BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
#: The words nbgrader's preprocessors look for anywhere in a line (their delimiters).
_DELIMITERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
_GRADE = re.compile(r"^# grade: (?P<id>[a-z0-9][a-z0-9-]*), (?P<points>[1-9][0-9]*) points?$")
_HEADER_ID = re.compile(r"Assignment id: `(?P<name>[^`]+)`")
#: The ``ename`` the grader gives a cell stopped at its time limit.
_TIMEOUT_NAME = "GraderTimeout"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class Question:
    """One graded question of a chapter: its id, points and the instructor's test cells.

    A question's tests may span several cells (each starting with the same ``# grade:`` line),
    so that no cell grows long, e.g. the visible tests in one and the hidden ones in the next.
    """

    id: str
    points: int
    cells: tuple[int, ...]  # indices of the test cells in the instructor notebook
    sources: tuple[str, ...]  # the whole test cells, hidden tests included


@dataclass(frozen=True)
class Assignment:
    """A chapter read as an assignment: its checked questions, in notebook order."""

    path: Path
    name: str  # the chapter's stem, e.g. 02_aligning_rgb_and_depth
    questions: tuple[Question, ...]

    @property
    def max_points(self) -> int:
        return sum(q.points for q in self.questions)


@dataclass
class QuestionResult:
    """The grade of one question (``status`` one of :data:`STATUSES`)."""

    points: int
    max: int
    status: str
    reason: str = ""


@dataclass
class GradeReport:
    """What :func:`grade_notebook` found: per question id a :class:`QuestionResult`, and notes."""

    assignment: str
    submission: str
    source: str
    preset: str | None
    questions: dict[str, QuestionResult]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def points(self) -> int:
        return sum(r.points for r in self.questions.values())

    @property
    def max_points(self) -> int:
        return sum(r.max for r in self.questions.values())

    def to_json(self) -> dict[str, Any]:
        """The report as plain JSON-able values (what ``--out`` writes)."""
        return {"assignment": self.assignment, "submission": self.submission, "source": self.source,
                "preset": self.preset, "points": self.points, "max_points": self.max_points,
                "questions": {k: asdict(v) for k, v in self.questions.items()},
                "notes": list(self.notes), "seconds": round(self.seconds, 1)}

    def summary(self) -> str:
        """One line per question, then the total."""
        lines = [f"{k}: {r.points}/{r.max} {r.status}" + (f" ({r.reason})" if r.reason else "")
                 for k, r in self.questions.items()]
        lines += [f"note: {n}" for n in self.notes]
        lines.append(f"total: {self.points}/{self.max_points} points ({self.assignment})")
        return "\n".join(lines)


# ------------------------------------------------------------------------------ reading chapters


def _source(cell: dict) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def _where(path: str | os.PathLike, index: int, cell: dict | None = None) -> str:
    cid = cell.get("id") if cell else None
    return f"{path}, cell {index}" + (f" (id {cid})" if cid else "")


def check_marked_cell(source: str, path: str | os.PathLike, index: int, grade_cell: bool = False,
                      cell: dict | None = None) -> None:
    """Raise :class:`FormatError` unless the markers of one code cell are balanced and allowed.

    A marker is a line that is exactly one of ``### BEGIN SOLUTION``, ``### END SOLUTION``,
    ``### BEGIN HIDDEN TESTS``, ``### END HIDDEN TESTS`` (indentation aside). Regions open and
    close in order and do not nest; solutions live outside grade cells, hidden tests inside them;
    no other line may hold the marker words (nbgrader would cut at it). The message names
    ``path``, the cell ``index`` (and its id) and the line.
    """
    where = _where(path, index, cell)
    open_marker, open_line = None, 0
    for n, line in enumerate(source.split("\n"), 1):
        text = line.strip()
        if text in (BEGIN_SOLUTION, BEGIN_HIDDEN):
            if open_marker:
                raise FormatError(f"{where}: {text!r} on line {n} inside the region opened by "
                                  f"{open_marker!r} on line {open_line} (regions do not nest)")
            if (text == BEGIN_SOLUTION) == grade_cell:
                raise FormatError(f"{where}: {text!r} on line {n}: "
                                  + ("a solution cannot sit in a '# grade:' test cell" if grade_cell
                                     else "hidden tests belong in a cell that starts with '# grade:'"))
            open_marker, open_line = text, n
        elif text in (END_SOLUTION, END_HIDDEN):
            expected = END_SOLUTION if open_marker == BEGIN_SOLUTION else END_HIDDEN
            if open_marker is None or text != expected:
                raise FormatError(f"{where}: {text!r} on line {n} closes no region"
                                  + (f" (the open one, from line {open_line}, needs {expected!r})"
                                     if open_marker else ""))
            open_marker = None
        elif any(d in line for d in _DELIMITERS):
            raise FormatError(f"{where}: line {n} holds marker words but is not a marker line: {text[:60]!r}")
    if open_marker:
        closing = END_SOLUTION if open_marker == BEGIN_SOLUTION else END_HIDDEN
        raise FormatError(f"{where}: {open_marker!r} on line {open_line} is never closed by {closing!r}")


def _grade_header(source: str, where: str) -> tuple[str, int] | None:
    """``(id, points)`` if the cell is a test cell; FormatError for a malformed header."""
    lines = source.split("\n")
    if not lines[0].startswith("# grade:"):
        if any(line.startswith("# grade:") for line in lines[1:]):
            raise FormatError(f"{where}: '# grade:' must be the first line of the test cell")
        return None
    m = _GRADE.match(lines[0].rstrip())
    if not m:
        raise FormatError(f"{where}: malformed grade line {lines[0]!r}; expected "
                          "'# grade: <question-id>, <N> points'")
    return m["id"], int(m["points"])


def _read_notebook(path: str | os.PathLike, what: str):
    import nbformat

    try:
        nb = nbformat.read(str(path), as_version=4)
        nbformat.validate(nb, relax_add_props=True)
        return nb
    except FileNotFoundError:
        raise UsageError(f"{path}: no such {what}") from None
    except Exception as e:  # unreadable JSON, not a notebook, a broken cell: never a traceback
        first = str(e).strip().split("\n")[0]
        raise FormatError(f"{path}: not a readable notebook ({type(e).__name__}: {first})"[:300]) from None


def read_assignment(path: str | os.PathLike) -> Assignment:
    """Read and check a chapter (or a copy of one) as an assignment.

    Raises :class:`FormatError` naming the file and cell for unbalanced or misplaced markers, a
    malformed ``# grade:`` line, one question given two different point values or marker words
    in a markdown cell.
    """
    path = Path(path)
    nb = _read_notebook(path, "chapter")
    found: dict[str, list] = {}  # id -> [points, cells, sources]
    for i, cell in enumerate(nb.cells):
        src = _source(cell)
        where = _where(path, i, cell)
        if cell.cell_type != "code":
            if any(d in src for d in _DELIMITERS):
                raise FormatError(f"{where}: marker words in a {cell.cell_type} cell (only code cells "
                                  "hold solutions and tests)")
            continue
        header = _grade_header(src, where)
        check_marked_cell(src, path, i, grade_cell=header is not None, cell=cell)
        if header:
            qid, points = header
            entry = found.setdefault(qid, [points, [], []])
            if entry[0] != points:
                raise FormatError(f"{where}: question {qid!r} is worth {points} points here but "
                                  f"{entry[0]} in cell {entry[1][0]}")
            entry[1].append(i)
            entry[2].append(src)
    questions = tuple(Question(qid, p, tuple(cells), tuple(srcs)) for qid, (p, cells, srcs) in found.items())
    return Assignment(path, path.stem, questions)


# ------------------------------------------------------------------------------ building


def student_notebook(path: str | os.PathLike):
    """The student version of a chapter, as an ``nbformat`` notebook (not written).

    Solutions become ``# YOUR CODE HERE`` / ``raise NotImplementedError()`` (indented like the
    marker), hidden tests are removed and outputs cleared, by nbgrader's ``ClearSolutions``,
    ``ClearHiddenTests`` and ``ClearOutput``; ``enforce_metadata=False`` lets them work on the
    plain-text markers alone (no nbgrader cell metadata). A first markdown cell names the
    assignment (the grader reads its id from it, or from the notebook metadata ``mdlearn``).
    Raises :class:`FormatError` for a chapter whose markers are wrong and :class:`UsageError`
    for one without graded questions.
    """
    import nbformat
    from nbconvert.preprocessors import ClearOutputPreprocessor

    try:
        from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions
    except ImportError:
        raise MdlearnError("building assignments needs nbgrader: pip install 'mdlearn[course]' "
                           "(or nbgrader)") from None

    assignment = read_assignment(path)
    if not assignment.questions:
        raise UsageError(f"{assignment.path}: no graded questions (no cell starts with '# grade:')")
    nb = copy.deepcopy(_read_notebook(path, "chapter"))
    resources: dict[str, Any] = {}
    for pre in (ClearSolutions(enforce_metadata=False), ClearHiddenTests(enforce_metadata=False),
                ClearOutputPreprocessor()):
        nb, resources = pre.preprocess(nb, resources)
    leftover = [i for i, c in enumerate(nb.cells) if any(d in _source(c) for d in _DELIMITERS)]
    if leftover:  # cannot happen after read_assignment's checks; never hand out a solution
        raise MdlearnError(f"{path}: markers left in cells {leftover} of the student version")
    lines = [f"**Assignment id: `{assignment.name}`** (the grader reads this line: keep it).", "",
             "Write your answers where a cell says `# YOUR CODE HERE` (delete the "
             "`raise NotImplementedError()` line). The cells that start with `# grade:` test them; "
             "the grader runs them again, with more tests, in a fresh kernel:", ""]
    lines += [f"* `{q.id}`: {q.points} point{'s' if q.points != 1 else ''}" for q in assignment.questions]
    header = nbformat.v4.new_markdown_cell("\n".join(lines))
    header.id = "mdlearn-assignment"
    nb.cells.insert(0, header)
    nb.metadata["mdlearn"] = {"assignment": assignment.name,
                              "questions": {q.id: q.points for q in assignment.questions}}
    return nb


def build_assignments(out: str | os.PathLike, chapters: list[str] | None = None,
                      overwrite: bool = False) -> Path:
    """Write ``out/student/<chapter>.ipynb`` (to hand out) and ``out/autograder/<chapter>.ipynb``.

    ``chapters`` are numbers or names (:func:`~mdlearn.course.chapters.find_chapter`); the default
    is every chapter with graded questions. The autograder folder holds verbatim copies of the
    instructor notebooks (the chapters, solutions and hidden tests included): keep it private and
    pass it to ``grade --source``. ``out/index.json`` lists the questions and points. The whole
    folder is staged and appears complete or not at all; an earlier build is replaced only with
    ``overwrite``. Returns ``out``.
    """
    import shutil

    import nbformat

    from ..jobs import check_output_folder, staged_folder, write_manifest
    from .chapters import find_chapter, list_chapters

    if chapters:
        paths = [find_chapter(str(c)) for c in chapters]
    else:
        paths = [p for p in list_chapters() if read_assignment(p).questions]
        if not paths:
            raise UsageError("no chapter has graded questions")
    built = {p.stem: (student_notebook(p), read_assignment(p)) for p in paths}
    out = check_output_folder(Path(out).resolve(), BUILD_FORMAT, overwrite)
    with staged_folder(out) as tmp:
        (tmp / "student").mkdir()
        (tmp / "autograder").mkdir()
        for p in paths:
            nb, assignment = built[p.stem]
            nbformat.write(nb, str(tmp / "student" / p.name))
            shutil.copyfile(p, tmp / "autograder" / p.name)
        write_manifest(tmp, BUILD_FORMAT, {"chapters": [p.stem for p in paths]},
                       assignments={a.name: {"questions": {q.id: q.points for q in a.questions},
                                             "max_points": a.max_points}
                                    for _, a in built.values()})
    return out


# ------------------------------------------------------------------------------ grading


def _assignment_name(nb) -> str | None:
    meta = nb.metadata.get("mdlearn", {})
    if isinstance(meta, dict) and isinstance(meta.get("assignment"), str):
        return meta["assignment"]
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            m = _HEADER_ID.search(_source(cell))
            if m:
                return m["name"]
    return None


def find_source(name: str, source: str | os.PathLike | None = None) -> Path:
    """The instructor notebook of assignment ``name`` (a chapter number or stem).

    ``source`` is a build folder (its ``autograder/``), a folder of chapters, an instructor
    notebook, or ``None`` for the book's chapters. Raises :class:`UsageError` if there is none.
    """
    from .chapters import find_chapter

    if source is None:
        return find_chapter(name)
    src = Path(source)
    if src.is_file():
        return src
    if not src.is_dir():
        raise UsageError(f"--source {src}: no such file or folder")
    if (src / "autograder").is_dir():
        src = src / "autograder"
    return find_chapter(name, src)


def _reason(content: dict) -> str:
    """One line: the exception and its message, or the test line that failed."""
    ename, evalue = content.get("ename", "Error"), str(content.get("evalue", "")).strip()
    text = f"{ename}: {evalue}" if evalue else ename
    if not evalue:  # a bare assert: show the line it stopped at
        tb = _ANSI.sub("", "\n".join(content.get("traceback", [])))
        arrows = [line.split("---->", 1)[1].strip() for line in tb.splitlines() if "---->" in line]
        if arrows:
            text += f" at line {arrows[-1]}"
    text = " ".join(text.split())
    return text if len(text) <= 200 else text[:197] + "..."


def _label(index: int, cell) -> str:
    """``cell 12 ('import os')``: a cell of the executed notebook, by index and first line."""
    first = _source(cell).strip().split("\n")[0]
    return f"cell {index} ({first[:40]!r})"


def _prepare_run(nb, assignment: Assignment, preset: str | None, notes: list[str]):
    """The notebook to execute: instructor test cells restored, ``preset`` injected.

    Returns ``(notebook, {cell index: question id})``.
    """
    import nbformat

    from ..course.presets import PRESETS

    run = copy.deepcopy(nb)
    by_id = {q.id: q for q in assignment.questions}
    cells, tests, placed = [], {}, set()
    for cell in run.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            first = _source(cell).split("\n")[0].rstrip()
            m = re.match(r"^# grade: (?P<id>[a-z0-9][a-z0-9-]*)\b", first)
            if m and m["id"] in by_id:
                # where the student's first test cell of a question is, all of the instructor's
                # test cells of it go; the student's other copies are dropped
                if m["id"] not in placed:
                    placed.add(m["id"])
                    for src in by_id[m["id"]].sources:
                        tests[len(cells)] = m["id"]
                        cells.append(nbformat.v4.new_code_cell(src))
                continue
        cells.append(cell)
    run.cells = cells
    if preset is not None:
        if preset not in PRESETS:
            raise UsageError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        # the parameters cell: by its tag, else by the instructor's first parameter line
        source = _read_notebook(assignment.path, "chapter")
        ref = [_source(c).split("\n")[0] for c in source.cells
               if "parameters" in c.metadata.get("tags", [])]
        found = [i for i, c in enumerate(run.cells) if "parameters" in c.metadata.get("tags", [])]
        if not found and ref:
            found = [i for i, c in enumerate(run.cells)
                     if c.cell_type == "code" and _source(c).split("\n")[0] == ref[0]]
        if found:  # papermill's convention: a cell after it sets the value
            injected = nbformat.v4.new_code_cell(f"preset = {preset!r}  # set by the grader")
            injected.metadata["tags"] = ["injected-parameters"]
            at = found[0] + 1
            run.cells.insert(at, injected)
            tests = {(i + 1 if i >= at else i): q for i, q in tests.items()}
        else:
            notes.append("no parameters cell found: graded at the notebook's own preset")
    return run, tests


def grade_notebook(submission: str | os.PathLike, source: str | os.PathLike | None = None,
                   chapter: str | None = None, preset: str | None = "smoke", timeout: float = 1200,
                   cell_timeout: float = 300, executed: str | os.PathLike | None = None) -> GradeReport:
    """Grade a submitted student notebook; never raises for what the submission does.

    Args:
        submission: the student's ``.ipynb``.
        source: where the instructor notebook is (see :func:`find_source`).
        chapter: which assignment (number or stem); default: the id stored in the submission,
            else its file name.
        preset: run size injected as the ``preset`` parameter (``None``: the notebook's own).
        timeout: seconds for the whole run; questions not graded by then score 0 (``timeout``).
        cell_timeout: seconds for one cell; a cell past it is interrupted and the run goes on.
        executed: if given, the executed notebook is written there (the student's feedback).

    Returns:
        a :class:`GradeReport`. A question scores its points if every test cell of it ran without
        an error; ``failed`` is an ``AssertionError``, ``error`` any other exception (or a dead
        kernel), ``timeout`` a cell stopped at a limit, ``missing`` a deleted test cell.

    Raises :class:`UsageError` for impossible arguments (no such file, no assignment id, limits
    below a second) and :class:`MdlearnError` if no kernel can be started at all.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    if timeout < 1 or cell_timeout < 1:
        raise UsageError(f"time limits must be at least 1 s (got --timeout {timeout}, --cell-timeout {cell_timeout})")
    start = time.monotonic()
    nb = _read_notebook(submission, "submission")
    name = chapter or _assignment_name(nb)
    if name is None:  # a chapter itself, or a copy under the chapter's file name
        try:
            found = find_source(Path(submission).stem, source)
        except UsageError:
            raise UsageError(f"{submission}: no assignment id in the notebook; pass --chapter N") from None
    else:
        found = find_source(str(name), source)
    assignment = read_assignment(found)
    notes: list[str] = []
    run, tests = _prepare_run(nb, assignment, preset, notes)
    replies: dict[int, dict] = {}
    stopped: dict[str, str] = {}  # why cells after some point did not run: {"status", "reason"}

    def on_executed(cell=None, cell_index=None, execute_reply=None, **_):
        replies[cell_index] = (execute_reply or {}).get("content", {})

    with tempfile.TemporaryDirectory(prefix="mdlearn-grade-") as work:
        client = NotebookClient(
            run, timeout=int(cell_timeout), kernel_name="python3", allow_errors=True,
            interrupt_on_timeout=True, shutdown_kernel="immediate", startup_timeout=120,
            error_on_timeout={"ename": _TIMEOUT_NAME, "traceback": [],
                              "evalue": "the cell ran past its time limit and was interrupted"},
            resources={"metadata": {"path": work}}, on_cell_executed=on_executed)
        try:
            with client.setup_kernel():
                for i, cell in enumerate(run.cells):
                    if cell.cell_type != "code" or not _source(cell).strip():
                        continue
                    left = timeout - (time.monotonic() - start)
                    if left < 1:
                        stopped = {"status": "timeout",
                                   "reason": f"the run reached its {timeout:g} s limit before {_label(i, cell)}"}
                        break
                    client.timeout = int(min(cell_timeout, left))
                    try:
                        client.execute_cell(cell, i)
                    except DeadKernelError:
                        stopped = {"status": "error",
                                   "reason": f"the kernel died while running {_label(i, cell)}"}
                        break
                    except Exception as e:  # a lost kernel connection: grade what ran
                        stopped = {"status": "error",
                                   "reason": f"{_label(i, cell)} could not run ({type(e).__name__}: {e})"[:200]}
                        break
                    if replies.get(i, {}).get("ename") == _TIMEOUT_NAME and i not in tests:
                        notes.append(f"{_label(i, cell)} ran past its time limit and was interrupted")
        except Exception as e:  # starting or stopping the kernel failed
            if not replies and not stopped:  # nothing ran: the grader's machine, not the submission
                raise MdlearnError(f"could not start a python3 kernel to grade {submission}: "
                                   f"{type(e).__name__}: {e}") from None
            stopped = stopped or {"status": "error", "reason": f"the kernel failed ({type(e).__name__}: {e})"}
        if stopped:
            notes.append(stopped["reason"])
        if executed is not None:
            try:
                nbformat.write(run, str(executed))
            except OSError as e:
                notes.append(f"could not write the executed notebook {executed} ({e.strerror})")

    results: dict[str, QuestionResult] = {}
    cells_of: dict[str, list[int]] = {}
    for i, qid in tests.items():
        cells_of.setdefault(qid, []).append(i)
    for q in assignment.questions:
        r = QuestionResult(0, q.points, "missing", "its test cell is not in the notebook (deleted?)")
        for i in sorted(cells_of.get(q.id, [])):
            content = replies.get(i)
            if content is None:
                r = QuestionResult(0, q.points, stopped.get("status", "error"),
                                   stopped.get("reason", "its test cell did not run"))
                break
            if content.get("status") == "ok":
                r = QuestionResult(q.points, q.points, "passed")
                continue
            status = ("timeout" if content.get("ename") == _TIMEOUT_NAME else
                      "failed" if content.get("ename") == "AssertionError" else "error")
            r = QuestionResult(0, q.points, status,
                               content.get("evalue", "") if status == "timeout" else _reason(content))
            break
        results[q.id] = r
    return GradeReport(assignment.name, str(submission), str(assignment.path), preset, results, notes,
                       time.monotonic() - start)


def write_report(report: GradeReport, path: str | os.PathLike) -> Path:
    """Write ``report`` as JSON to ``path`` (complete or absent)."""
    from ..jobs import write_json_atomically

    return write_json_atomically(path, report.to_json())


def read_manifest_summary(out: str | os.PathLike) -> str:
    """What a build folder holds, one line per assignment (printed by ``assignments build``)."""
    from ..jobs import read_manifest

    doc = read_manifest(out, BUILD_FORMAT)
    lines = [f"{name}: {len(a['questions'])} question(s), {a['max_points']} points"
             for name, a in doc["assignments"].items()]
    lines.append(f"student notebooks in {Path(out) / 'student'}; the grader's copies in "
                 f"{Path(out) / 'autograder'} (keep them private)")
    return "\n".join(lines)
