"""Building the HTML book (``make book`` runs :func:`build_book`; Chapter 1 explains the layout).

Jupyter Book caches executed notebooks keyed on their code cells only, and Sphinx re-reads only
the notebooks whose text changed, so a change to the ``mdlearn`` package alone would re-execute
nothing. :func:`build_book` therefore keys the build on the package's sources too: when they
change it clears the execution cache and rebuilds every page.

Two things every build adds so that the pages work offline:

* **Widget JavaScript served by the book.** Pages with ipywidgets load ``require.js`` and
  ``@jupyter-widgets/html-manager`` (the pinned :data:`WIDGET_JS` packages, fetched once with
  ``npm pack`` into ``_build/widgets-js``) from the book itself; ``_config.yml`` points myst-nb's
  ``nb_ipywidgets_js`` at them and lists the folder in ``html_extra_path`` (not
  ``html_static_path``, whose every ``.js`` Jupyter Book adds to every page).
* **Text progress bars.** Notebooks executed for the book run with a kernel start-up file that
  makes ``tqdm.auto`` the text bar, so training progress is not saved as a widget view.

Other presets (``build_book(preset="smoke")``, ``mdlearn book build --preset smoke``) build the
same book from chapters executed at that preset into a separate project folder
(``_build/book-<preset>``): the test suite renders and checks the whole book this way in a few
minutes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .chapters import list_chapters, notebooks_with_outputs, parameters_of
from .presets import PRESETS
from ..errors import MdlearnError, UsageError
from ..paths import project_root

__all__ = ["WIDGET_JS", "WIDGETS_FOLDER", "package_hash", "widget_js", "kernel_env", "build_book"]

#: npm packages whose files the book serves to render ipywidgets offline (name -> pinned version)
WIDGET_JS = {"@jupyter-widgets/html-manager": "1.0.15", "requirejs": "2.3.8"}
#: where the widget files land in the built book: ``_static/<WIDGETS_FOLDER>/``
WIDGETS_FOLDER = "mdlearn-widgets"
#: files taken from each npm package's tarball (paths inside ``package/``; fonts by suffix)
#: (``package.json`` names the version and licence; kept as ``<package>-package.json``)
_WIDGET_FILES = {"@jupyter-widgets/html-manager": ("dist/embed-amd.js", "package.json"),
                 "requirejs": ("require.js", "package.json")}
_FONT_SUFFIXES = (".woff", ".woff2", ".ttf", ".eot", ".svg")
#: loaded between require.js and embed-amd.js: the bundle finds its fonts beside itself (left
#: alone, it looks for them under the page's folder, where the CDN layout would have them)
_ASSETS_PATH_JS = """\
// Written by mdlearn.course.book: embed-amd.js loads its fonts from this folder. Its modules
// (@jupyter-widgets/base, /controls, ..., /html-manager/dist/libembed-amd) each take their
// public path from the URL require.js gives their name: map every one of them here, or the
// module whose style sheet comes first asks for the fonts under the page's folder.
(function () {
  var here = document.currentScript.src.replace(/[?#].*$/, "").replace(/[^/]*$/, "");
  window.__jupyter_widgets_assets_path__ = here;
  require.config({paths: {"@jupyter-widgets/html-manager/dist": here.replace(/\\/$/, ""),
                          "@jupyter-widgets": here.replace(/\\/$/, "")}});
})();
"""

_KERNEL_STARTUP = '''\
# Written by mdlearn.course.book: notebooks executed for the book show tqdm's text bar, so that
# progress is not saved as a widget view (a reader of the static page has no kernel behind it).
import tqdm.auto as _mdlearn_auto
import tqdm.std as _mdlearn_std

_mdlearn_auto.tqdm, _mdlearn_auto.trange = _mdlearn_std.tqdm, _mdlearn_std.trange
del _mdlearn_auto, _mdlearn_std
'''


def package_hash() -> str:
    """Hash of every source file of the ``mdlearn`` package."""
    pkg = Path(__file__).resolve().parent.parent  # the whole mdlearn package
    h = hashlib.sha256()
    for f in sorted(pkg.rglob("*.py")):
        h.update(str(f.relative_to(pkg)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def widget_js(build: str | os.PathLike) -> Path:
    """The folder of widget JavaScript for ``html_extra_path``: ``BUILD/widgets-js``.

    It holds ``_static/mdlearn-widgets/`` with ``require.js``, ``embed-amd.js`` (the
    html-manager bundle, which includes the standard widgets) and the fonts it refers to, taken
    from the :data:`WIDGET_JS` packages with ``npm pack`` (about a second; the registry must be
    reachable the first time), and ``assets-path.js``, which tells the bundle where its fonts
    are (``_config.yml`` loads the three in the order require, assets-path, embed-amd). Kept
    between builds; fetched again only when the pinned versions change (``assets-path.js`` is
    rewritten whenever its text in this module changes). Raises :class:`~mdlearn.errors.MdlearnError` when npm is missing or fails.
    """
    root = Path(build) / "widgets-js"
    target = root / "_static" / WIDGETS_FOLDER
    stamp = Path(build) / "widgets-js.versions.json"  # outside: html_extra_path copies root's files
    wanted = json.dumps(WIDGET_JS, sort_keys=True)
    if stamp.is_file() and stamp.read_text() == wanted and (target / "embed-amd.js").is_file():
        assets = target / "assets-path.js"  # ours, not npm's: rewritten whenever this module's text changes
        if not assets.is_file() or assets.read_text() != _ASSETS_PATH_JS:
            from ..jobs import write_atomically

            write_atomically(assets, lambda path: path.write_text(_ASSETS_PATH_JS))
        return root
    npm = shutil.which("npm")
    if npm is None:
        raise MdlearnError("the book's widgets need npm to fetch " + ", ".join(WIDGET_JS)
                           + " once (Debian/Ubuntu: `sudo apt-get install npm`)")
    shutil.rmtree(root, ignore_errors=True)
    with tempfile.TemporaryDirectory() as tmp:
        specs = [f"{name}@{version}" for name, version in WIDGET_JS.items()]
        done = subprocess.run([npm, "pack", "--silent", "--pack-destination", tmp, *specs],
                              capture_output=True, text=True)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
            raise MdlearnError(f"npm pack {' '.join(specs)} failed: {last}")
        staging = Path(tmp) / "out"
        staging.mkdir()
        for name in WIDGET_JS:
            tgz = next(Path(tmp).glob(name.lstrip("@").replace("/", "-") + "-*.tgz"), None)
            if tgz is None:
                raise MdlearnError(f"npm pack wrote no tarball for {name}")
            with tarfile.open(tgz) as tar:
                members = {m.name: m for m in tar.getmembers() if m.isfile()}
                for rel in _WIDGET_FILES[name]:
                    member = members.get(f"package/{rel}")
                    if member is None:
                        raise MdlearnError(f"{tgz.name}: no {rel} in the package")
                    dest = Path(rel).name if rel.endswith(".js") else f"{name.split('/')[-1]}-{rel}"
                    (staging / dest).write_bytes(tar.extractfile(member).read())
                if name == "@jupyter-widgets/html-manager":  # the fonts embed-amd.js loads beside itself
                    for n, m in members.items():
                        if n.startswith("package/dist/") and n.endswith(_FONT_SUFFIXES):
                            (staging / Path(n).name).write_bytes(tar.extractfile(m).read())
        (staging / "assets-path.js").write_text(_ASSETS_PATH_JS)
        target.parent.mkdir(parents=True)
        shutil.move(str(staging), target)
    stamp.write_text(wanted)
    return root


def kernel_env(build: str | os.PathLike) -> dict[str, str]:
    """The environment for kernels that execute chapters for the book (text progress bars).

    Writes ``BUILD/kernel-startup.py`` and returns ``os.environ`` with ``PYTHONSTARTUP`` set to
    it (IPython kernels run that file before the first cell) and without ``MPLBACKEND``: a
    non-interactive backend inherited from the shell (CI exports ``Agg``) would keep every
    figure out of the executed chapters; their kernels must use the notebook's inline backend.
    """
    startup = Path(build) / "kernel-startup.py"
    startup.parent.mkdir(parents=True, exist_ok=True)
    if not startup.is_file() or startup.read_text() != _KERNEL_STARTUP:
        startup.write_text(_KERNEL_STARTUP)
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    return {**env, "PYTHONSTARTUP": str(startup.resolve())}


def _jupyter_book() -> str:
    jb = Path(sys.executable).parent / "jupyter-book"
    return str(jb) if jb.exists() else "jupyter-book"


def _execute_chapters(chapters: list[Path], preset: str, dest: Path, env: dict[str, str],
                      workers: int) -> None:
    """Execute ``chapters`` at ``preset`` into ``dest`` (``workers`` at a time), skipping
    up-to-date ones.

    A copy is up to date when the chapter's file, the package's sources and the preset are those
    it was executed from (``dest/keys.json``). Chapters with a ``recipe`` parameter share the
    training cache and the cached models (made on first use, with no lock between processes), so
    they run one after the other, in book order, in one lane; the others run beside them.
    """
    dest.mkdir(parents=True, exist_ok=True)
    keys_file = dest / "keys.json"
    keys = json.loads(keys_file.read_text()) if keys_file.is_file() else {}
    pkg = package_hash()

    def key(path: Path) -> str:
        return hashlib.sha256(path.read_bytes() + pkg.encode() + preset.encode()).hexdigest()[:16]

    todo = [p for p in chapters if keys.get(p.stem) != key(p) or not (dest / p.name).is_file()]
    logs = dest / "logs"
    logs.mkdir(exist_ok=True)

    def run(path: Path) -> tuple[Path, int]:
        partial = dest / f"{path.stem}.partial.ipynb"
        with open(logs / f"{path.stem}.log", "w") as log:
            rc = subprocess.run([sys.executable, "-m", "mdlearn", "chapter", "run", str(path),
                                 "--preset", preset, "--quiet", "-o", str(partial)],
                                env=env, stdout=log, stderr=subprocess.STDOUT).returncode
        if rc == 0:
            partial.replace(dest / path.name)
        return path, rc

    shared = [p for p in todo if "recipe" in parameters_of(p)]
    lanes = ([shared] if shared else []) + [[p] for p in todo if p not in shared]
    failed = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for results in pool.map(lambda lane: [run(p) for p in lane], lanes):
            for path, rc in results:
                if rc == 0:
                    keys[path.stem] = key(path)
                    keys_file.write_text(json.dumps(keys, indent=1) + "\n")
                else:
                    failed.append(f"{path.name} (see {logs / (path.stem + '.log')})")
    if failed:
        raise MdlearnError(f"chapters failed at preset {preset!r}: " + ", ".join(failed))


def _stage_project(root: Path, stage: Path, preset: str, workers: int, env: dict[str, str],
                   widgets: Path) -> None:
    """Lay out a Jupyter Book project in ``stage`` whose chapters are executed at ``preset``."""
    import yaml

    stage.mkdir(parents=True, exist_ok=True)
    for folder in ("book", "_static"):
        if (root / folder).is_dir():
            shutil.copytree(root / folder, stage / folder, dirs_exist_ok=True)
    shutil.copy2(root / "_toc.yml", stage / "_toc.yml")
    cfg = yaml.safe_load((root / "_config.yml").read_text())
    cfg["execute"]["execute_notebooks"] = "off"  # executed below, at the preset
    sphinx_cfg = cfg.setdefault("sphinx", {}).setdefault("config", {})
    sphinx_cfg["html_extra_path"] = [str(widgets.resolve())]
    (stage / "_config.yml").write_text(
        f"# Written by mdlearn.course.book from {root / '_config.yml'}: chapters executed at "
        f"preset {preset!r}\n" + yaml.safe_dump(cfg, sort_keys=False))
    chapters = list_chapters(root / "chapters")
    _execute_chapters(chapters, preset, stage / "chapters", env, workers)
    for stale in (stage / "chapters").glob("[0-9][0-9]_*.ipynb"):  # chapters since removed
        if stale.name not in {c.name for c in chapters}:
            stale.unlink()


def build_book(root: str | os.PathLike | None = None, preset: str = "book",
               out: str | os.PathLike | None = None, workers: int = 2) -> Path:
    """Execute the chapters and build the HTML book; returns the path of its ``index.html``.

    With the ``book`` preset and no ``out`` (what ``make book`` does), Jupyter Book executes the
    chapters itself (cached) and writes ``_build/html``. With another preset, or with ``out``,
    the chapters are executed at ``preset`` (``workers`` at a time, each kept until its chapter
    or the package changes) into the project folder ``out`` (default ``_build/book-<preset>``),
    which is built into ``out/_build/html``.

    Raises :class:`~mdlearn.errors.UsageError` for an unknown preset and
    :class:`~mdlearn.errors.MdlearnError` if a chapter carries committed outputs or if the
    build fails (a failing chapter fails the build).
    """
    if preset not in PRESETS:
        raise UsageError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    root = Path(root) if root is not None else project_root()
    if root is None:
        raise MdlearnError("the book can only be built from a clone of the mdlearn repository")
    bad = notebooks_with_outputs(list_chapters(root / "chapters"))
    if bad:
        raise MdlearnError("notebooks must be committed without outputs: " + ", ".join(bad))
    build = root / "_build"
    build.mkdir(exist_ok=True)
    widgets = widget_js(build)
    env = kernel_env(build)
    if preset != "book" or out is not None:
        stage = Path(out) if out is not None else build / f"book-{preset}"
        _stage_project(root, stage, preset, workers, env, widgets)
        if subprocess.run([_jupyter_book(), "build", str(stage)], cwd=stage, env=env).returncode != 0:
            raise MdlearnError(f"jupyter-book build of {stage} failed (see the messages above)")
        index = stage / "_build" / "html" / "index.html"
    else:
        stamp = build / ".mdlearn-package-hash"
        current = package_hash()
        cmd = [_jupyter_book(), "build", str(root)]
        if not stamp.is_file() or stamp.read_text() != current:
            # the package changed: drop the execution cache and make Sphinx re-read (so re-execute)
            # every chapter, not only the notebooks whose own text changed
            shutil.rmtree(build / ".jupyter_cache", ignore_errors=True)
            cmd.append("--all")
        if subprocess.run(cmd, cwd=root, env=env).returncode != 0:
            raise MdlearnError("jupyter-book build failed (see the messages above)")
        stamp.write_text(current)
        index = build / "html" / "index.html"
    if not index.is_file():
        raise MdlearnError(f"{index}: the build finished but wrote no index page")
    return index
