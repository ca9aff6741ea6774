"""What every long job shares (Chapter 1): staging, worker pools, source hashes, manifests, reports.

The five jobs (``synth indoor``, ``synth nyu-raw``, ``synth kitti-raw``, ``prepare nyu-raw``,
``prepare kitti-raw``; ``prepare nyu-labeled`` too) are written on top of this module:

* **Staging** — a folder is written as ``TARGET.partial-<pid>`` beside its destination and renamed
  when complete, so nothing that looks finished is ever half-written. The synth writers and
  ``prepare nyu-labeled`` stage the whole output folder; the ``prepare`` jobs stage each unit (a
  scene folder, a drive's ``proj_depth/<tag>`` folder) and are resumable per unit. Partial folders
  of processes that no longer run are removed by the next run (:func:`clean_stale`); those of live
  processes, and anything not named ``TARGET.partial-<digits>`` / ``TARGET.old-<digits>``, never.
* **Ownership** — every job writes one manifest, ``OUT/index.json`` (:data:`MANIFEST_NAME`):
  ``format`` (which job), ``version``, ``spec`` (the settings that determine the bytes),
  ``source_hash`` (the modules that made them) and job-specific content (the indoor set's views,
  the drives' speeds, the report). A job replaces or deletes only folders whose manifest names
  that job; anything else in the way is an error (:func:`check_output_folder`).
* **Workers** — :func:`run_tasks` runs tasks on a process pool with a tqdm bar. Workers ignore
  Ctrl-C (the parent terminates them) and die with their parent (``PR_SET_PDEATHSIG`` on Linux, a
  parent-pid watchdog elsewhere).
* **Reports and exit status** — :class:`JobReport` (written / resumed / skipped with reasons);
  ``exit_code`` is 0 when every input was done, 1 when some were skipped; misuse is 2
  (:data:`EXIT_STATUS_HELP`, shown by ``--help``).
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import multiprocessing as mp
import os
import re
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .errors import FormatError, UsageError

__all__ = ["MANIFEST_NAME", "EXIT_STATUS_HELP", "exclusive", "lock_path", "check_count", "source_hash", "write_manifest", "read_manifest", "made_by",
           "is_current", "input_id", "check_output_folder", "open_resumable_output", "clean_stale", "stage",
           "publish", "staged_folder", "run_tasks", "JobReport", "write_atomically", "write_json_atomically"]

#: The one manifest file name of every job's output folder.
MANIFEST_NAME = "index.json"
#: The exit-status rule of the ``prepare`` commands (their ``--help`` shows it).
EXIT_STATUS_HELP = ("exit status 0 if every input was prepared (now or by an earlier run), 1 if some were "
                    "skipped (each is named with its reason) or the job failed, 2 for misuse: impossible "
                    "arguments, no input found, an output folder that is not writable or not this job's.")


# ------------------------------------------------------------------------------ hashes and manifests


def write_atomically(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it onto ``path``: the
    file is complete or absent, never half-written; the temporary is removed on any failure."""
    import tempfile

    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write_json_atomically(path: str | os.PathLike, obj: object) -> Path:
    """``obj`` as indented, key-sorted JSON, written with :func:`write_atomically`."""
    def _write(tmp: Path) -> None:
        tmp.write_text(json.dumps(obj, indent=1, sort_keys=True) + "\n")

    return write_atomically(path, _write)


def source_hash(files: Iterable[str]) -> str:
    """A 16-hex-digit hash of the named modules (paths relative to the ``mdlearn`` package).

    Stored in a manifest so that output made by older code is recognised as stale.
    """
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for rel in files:
        f = root / rel
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def write_manifest(folder: str | os.PathLike, kind: str, spec: dict, sources: str | None = None,
                   version: int = 1, **content) -> dict:
    """Write ``folder/index.json`` (atomically) for an output of job ``kind``; return the document."""
    doc = {"format": kind, "version": version, "spec": spec, "source_hash": sources, **content}
    path = Path(folder) / MANIFEST_NAME
    tmp = path.with_name(f".{MANIFEST_NAME}.partial-{os.getpid()}")
    tmp.write_text(json.dumps(doc, indent=1))
    os.replace(tmp, path)
    return doc


def read_manifest(folder: str | os.PathLike, kind: str | None = None) -> dict:
    """The manifest of ``folder`` (of job ``kind`` if given); :class:`FormatError` naming the file."""
    path = Path(folder) / MANIFEST_NAME
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise FormatError(f"{path}: no such file") from None
    except (OSError, ValueError) as e:
        raise FormatError(f"{path}: not a readable manifest ({e})") from None
    if not isinstance(doc, dict) or not str(doc.get("format", "")).startswith("mdlearn-"):
        raise FormatError(f"{path}: not an mdlearn manifest")
    if kind is not None and doc["format"] != kind:
        raise FormatError(f"{path}: written by {doc['format']}, not {kind}")
    return doc


def made_by(folder: str | os.PathLike) -> str | None:
    """The job (``format``) whose manifest ``folder`` holds, or ``None``."""
    try:
        return read_manifest(folder)["format"]
    except FormatError:
        return None


def is_current(folder: str | os.PathLike, kind: str, spec: dict | None = None, sources: str | None = None,
               version: int | None = None) -> bool:
    """Whether ``folder`` holds a finished output of ``kind`` (with this spec, sources, version if given)."""
    try:
        doc = read_manifest(folder, kind)
    except FormatError:
        return False
    return (doc.get("status", "done") == "done" and (spec is None or doc.get("spec") == spec)
            and (sources is None or doc.get("source_hash") == sources)
            and (version is None or doc.get("version") == version))


def input_id(folder: str | os.PathLike) -> str | None:
    """A short id of an mdlearn-made input folder (its job, spec and sources); ``None`` for other data."""
    try:
        doc = read_manifest(folder)
    except FormatError:
        return None
    key = json.dumps([doc.get("format"), doc.get("spec"), doc.get("source_hash")], sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------ output folders


def _check_writable(folder: Path) -> None:
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{folder}: output folder is not writable")


def _check_owned(out: Path, kind: str) -> None:
    owner = made_by(out)
    if owner != kind:
        what = f"it holds an output of {owner}" if owner else f"it holds files but no {MANIFEST_NAME}"
        raise UsageError(f"{out}: not written by {kind} ({what}); it is left alone: choose a new or empty folder")


def check_output_folder(out: str | os.PathLike, kind: str, overwrite: bool) -> Path:
    """Check that a staged job ``kind`` may write ``out``; return it as a ``Path``.

    ``out`` may be absent, an empty writable folder, or (with ``overwrite``) an earlier output of
    the same job. A folder written by anything else is never replaced. Raises
    :class:`~mdlearn.errors.UsageError` naming the folder and the problem.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: exists and is not a folder")
    if out.is_dir():
        _check_writable(out)
        if any(out.iterdir()):
            _check_owned(out, kind)
            if not overwrite:
                raise UsageError(f"{out}: already holds files of {kind}; pass --overwrite to replace them")
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"{parent}: cannot create the output folder ({e.strerror})") from None
    _check_writable(parent)
    return out


def open_resumable_output(out: str | os.PathLike, kind: str, spec: dict, overwrite: bool) -> dict | None:
    """Open the output folder of a resumable job ``kind`` (``prepare``); return the earlier manifest.

    A non-empty ``out`` must hold this job's manifest. Other settings than the earlier run's are
    refused unless ``overwrite``, which deletes the units the earlier run listed (``units``), so
    settings are never mixed. Writes a ``status: running`` manifest so that an interrupted run is
    recognised as this job's and resumed.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: exists and is not a folder")
    old = None
    if out.is_dir():
        _check_writable(out)
        if any(out.iterdir()):
            _check_owned(out, kind)
            old = read_manifest(out, kind)
            if old.get("spec") != spec and not overwrite:
                raise UsageError(f"{out} was prepared with settings {old.get('spec')}, not {spec}; "
                                 "use another output folder or --overwrite")
            if overwrite:
                for rel in old.get("units", []):
                    shutil.rmtree(out / rel, ignore_errors=True)
    else:
        try:
            out.mkdir(parents=True)
        except OSError as e:
            raise UsageError(f"{out}: cannot create the output folder ({e.strerror})") from None
    write_manifest(out, kind, spec, status="running", units=[] if overwrite or old is None else old.get("units", []))
    return old


# ------------------------------------------------------------------------------ staging


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(target: str | os.PathLike) -> list[Path]:
    """Delete ``TARGET.partial-<pid>`` / ``TARGET.old-<pid>`` left by processes that no longer run."""
    target = Path(target)
    pattern = re.compile(rf"{re.escape(target.name)}\.(?:partial|old)-(\d+)")
    removed = []
    if not target.parent.is_dir():
        return removed
    for p in target.parent.iterdir():
        m = pattern.fullmatch(p.name)
        if m and p.is_dir() and not p.is_symlink() and not _pid_alive(int(m.group(1))):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


def stage(target: str | os.PathLike) -> Path:
    """Clean stale partials of ``target`` and create an empty ``TARGET.partial-<pid>``; return it."""
    target = Path(target)
    clean_stale(target)
    tmp = target.with_name(f"{target.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
    except OSError as e:
        raise UsageError(f"{target.parent}: cannot write there ({e.strerror})") from None
    return tmp


def publish(tmp: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Rename the finished ``tmp`` to ``target``; an existing ``target`` is moved aside, then deleted
    (its permissions are kept). Callers check beforehand that ``target`` may be replaced."""
    tmp, target = Path(tmp), Path(target)
    if target.exists():
        shutil.copymode(target, tmp)
        trash = target.with_name(f"{target.name}.old-{os.getpid()}")
        target.rename(trash)
        tmp.rename(target)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        tmp.rename(target)
    return target


@contextmanager
def staged_folder(out: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty staging folder for ``out``; publish it as ``out`` if the block succeeds.

    On any exception (``KeyboardInterrupt`` included) the staging folder is deleted and ``out`` is
    left as it was.
    """
    tmp = stage(out)
    try:
        yield tmp
        publish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def lock_path(target: str | os.PathLike) -> Path:
    """The lock file :func:`exclusive` takes for ``target``: in this user's folder of the system's
    temporary directory, named by a hash of ``target``'s absolute path, so that no output folder
    gets a file its job did not write."""
    import getpass
    import tempfile

    key = hashlib.sha256(str(Path(target).resolve()).encode()).hexdigest()[:24]
    return Path(tempfile.gettempdir()) / f"mdlearn-locks-{getpass.getuser()}" / f"{key}.lock"


@contextmanager
def exclusive(target: str | os.PathLike) -> Iterator[None]:
    """Hold an inter-process lock on making ``target`` for the duration of the block.

    Two processes on one machine that both find a shared output missing (torchrun's workers, two
    notebooks on one data folder) would otherwise both write it and race on the rename; the
    second one now waits, then finds it current. The lock file is :func:`lock_path`; ``filelock``
    (a dependency of torch) does the ``flock`` / Windows locking.
    """
    from filelock import FileLock

    lock = lock_path(target)
    lock.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(lock):
        yield


# ------------------------------------------------------------------------------ worker pools


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(1)


def _worker_init(parent: int) -> None:
    """In each worker: leave Ctrl-C to the parent, and die when the parent dies."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    armed = False
    if sys.platform.startswith("linux"):
        try:
            PR_SET_PDEATHSIG = 1
            armed = ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
        except (OSError, AttributeError):
            armed = False
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)
    if not armed:
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


def run_tasks(fn: Callable, tasks: Iterable, *, workers: int = 1, desc: str = "", unit: str = "task",
              total: int | None = None, weight: Callable | None = None, progress: bool = True,
              start_method: str = "spawn", chunksize: int = 1) -> Iterator:
    """Run ``fn`` on every task, yielding results as they finish (in any order), with a tqdm bar.

    ``workers`` processes (1: in this process); the bar counts ``weight(result)`` per result
    (default 1) up to ``total`` (default: the number of tasks). ``fn`` must be a module-level
    function. When the consumer stops (an exception, Ctrl-C) the workers are terminated; workers
    also die when this process dies. Start the pool from the main thread.
    """
    from tqdm.auto import tqdm

    tasks = list(tasks)
    bar = tqdm(total=len(tasks) if total is None else total, desc=desc, unit=unit, disable=not progress)
    try:
        if workers <= 1 or len(tasks) < 2:
            for t in tasks:
                r = fn(t)
                bar.update(weight(r) if weight else 1)
                yield r
            return
        pool = mp.get_context(start_method).Pool(min(workers, len(tasks)), initializer=_worker_init,
                                                 initargs=(os.getpid(),))
        try:
            for r in pool.imap_unordered(fn, tasks, chunksize):
                bar.update(weight(r) if weight else 1)
                yield r
            pool.close()
        finally:
            pool.terminate()
            pool.join()
    finally:
        bar.close()


# ------------------------------------------------------------------------------ reports


@dataclass
class JobReport:
    """What a resumable job did, per unit (scene, drive): written now, resumed, skipped with why.

    ``counts`` holds job-specific totals (frames, maps, stationary frames, ...). ``exit_code``: 0
    when nothing was skipped, 1 otherwise (:data:`EXIT_STATUS_HELP`).
    """

    job: str
    out: Path
    unit: str
    written: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return 1 if self.skipped else 0

    def summary(self) -> str:
        """One line of totals, then one line per skipped input with its reason."""
        extra = ", ".join(f"{v} {k}" for k, v in self.counts.items())
        lines = [f"{self.job} -> {self.out}: {len(self.written)} {self.unit}s prepared, {len(self.resumed)} already "
                 f"done, {len(self.skipped)} skipped" + (f" ({extra})" if extra else "")]
        lines += [f"  skipped {name}: {why}" for name, why in sorted(self.skipped.items())]
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {"written": self.written, "resumed": self.resumed, "skipped": self.skipped, "counts": self.counts}


def check_count(flag: str, value: object, minimum: int = 1) -> None:
    """Raise :class:`~mdlearn.errors.UsageError` naming ``flag`` unless ``value`` is an int >= ``minimum``
    (the size arguments every synthetic-world spec validates)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}" if minimum else \
            "a non-negative integer"
        raise UsageError(f"{flag} must be {what}, got {value}")
