"""The book's configuration does what the README promises (offline math, failing builds, launch buttons)."""

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def test_config_executes_strictly_with_an_explicit_timeout():
    cfg = yaml.safe_load((REPO / "_config.yml").read_text())
    ex = cfg["execute"]
    assert ex["execute_notebooks"] in ("cache", "force")
    assert isinstance(ex["timeout"], int) and ex["timeout"] > 30
    assert ex["allow_errors"] is False and ex["raise_on_error"] is True
    assert "sphinx-mathjax-offline" in cfg["sphinx"]["extra_extensions"]
    assert cfg["launch_buttons"]["colab_url"] and cfg["launch_buttons"]["binderhub_url"]
    assert cfg["launch_buttons"]["notebook_interface"] == "jupyterlab"
    assert cfg["repository"]["url"]
    assert str(cfg["copyright"]).strip()


def test_bibliography_cites_the_paper():
    cfg = yaml.safe_load((REPO / "_config.yml").read_text())
    bib = (REPO / cfg["bibtex_bibfiles"][0]).read_text()
    assert "@inproceedings{eigen2014depth" in bib
    chapter1 = next((REPO / "chapters").glob("01_*.ipynb")).read_text()
    assert "{cite}`eigen2014depth`" in chapter1


def test_requirements_pin_the_toolchain_and_install_the_package():
    lines = [x.split("#")[0].strip() for x in (REPO / "requirements.txt").read_text().splitlines()]
    lines = [x for x in lines if x]
    assert "torch==2.14.1" in lines and "torchvision==0.29.1" in lines
    assert any(x.startswith("jupyter-book==1.") for x in lines)
    assert "-e ." in lines
    pinned = [x for x in lines if not x.startswith("-e")]
    assert all("==" in x for x in pinned), [x for x in pinned if "==" not in x]


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    assert "make test" in readme and "make book" in readme
    assert "make test" in [line.strip() for line in ci.splitlines()]


def test_widget_javascript_is_served_by_the_book():
    """myst-nb loads the widget scripts from the book (no CDN), in the order they need."""
    from mdlearn.course.book import WIDGET_JS, WIDGETS_FOLDER

    cfg = yaml.safe_load((REPO / "_config.yml").read_text())["sphinx"]["config"]
    scripts = list(cfg["nb_ipywidgets_js"])
    assert scripts == [f"{WIDGETS_FOLDER}/require.js", f"{WIDGETS_FOLDER}/assets-path.js",
                       f"{WIDGETS_FOLDER}/embed-amd.js"]
    assert all("://" not in s for s in scripts)
    # html_extra_path, not html_static_path: Jupyter Book adds every .js of a static path to every page
    assert cfg["html_extra_path"] == ["_build/widgets-js"] and "html_static_path" not in cfg
    assert all(v.count(".") == 2 for v in WIDGET_JS.values())  # pinned versions


def test_executed_chapters_show_text_progress_bars(tmp_path, monkeypatch):
    """A kernel started with kernel_env saves tqdm.auto's bar as text, not as a widget view."""
    import nbformat
    from nbclient import NotebookClient

    from mdlearn.course.book import kernel_env

    env = kernel_env(tmp_path)
    monkeypatch.setenv("PYTHONSTARTUP", env["PYTHONSTARTUP"])
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("from tqdm.auto import tqdm\nfor _ in tqdm(range(3)): pass")]
    NotebookClient(nb, kernel_name="python3", timeout=120).execute()
    outputs = nb.cells[0].outputs
    assert not any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    assert any(o.get("name") == "stderr" and "3/3" in o.get("text", "") for o in outputs), outputs


def test_executed_chapters_keep_their_figures_when_the_shell_says_agg(tmp_path, monkeypatch):
    """CI exports MPLBACKEND=Agg; a kernel started with that would save no figure at all."""
    import nbformat
    from nbclient import NotebookClient

    from mdlearn.course.book import kernel_env

    monkeypatch.setenv("MPLBACKEND", "Agg")
    env = kernel_env(tmp_path)
    assert "MPLBACKEND" not in env
    monkeypatch.delenv("MPLBACKEND")
    monkeypatch.setenv("PYTHONSTARTUP", env["PYTHONSTARTUP"])
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import matplotlib.pyplot as plt\nplt.plot([0, 1])\nplt.show()")]
    NotebookClient(nb, kernel_name="python3", timeout=120).execute()
    assert any("image/png" in o.get("data", {}) for o in nb.cells[0].outputs), nb.cells[0].outputs


def test_widget_js_rewrites_a_stale_assets_path_without_fetching(tmp_path, monkeypatch):
    """assets-path.js is the book's own file: a build after its text changed gets the new one
    (an old copy kept mapping only html-manager/dist) even when the npm files are current."""
    import json as _json

    from mdlearn.course import book

    folder = tmp_path / "widgets-js" / "_static" / book.WIDGETS_FOLDER
    folder.mkdir(parents=True)
    (folder / "embed-amd.js").write_text("// the bundle")
    (folder / "assets-path.js").write_text("// an older version")
    (tmp_path / "widgets-js.versions.json").write_text(_json.dumps(book.WIDGET_JS, sort_keys=True))
    monkeypatch.setattr(book.shutil, "which", lambda name: None)  # npm must not be needed
    assert book.widget_js(tmp_path) == tmp_path / "widgets-js"
    assert (folder / "assets-path.js").read_text() == book._ASSETS_PATH_JS
    assert '"@jupyter-widgets": ' in book._ASSETS_PATH_JS
    assert (folder / "embed-amd.js").read_text() == "// the bundle"
