"""The rendered-book check (mdlearn.course.browser) on small pages whose defects are known.

The pages are written here with known defects (a code block wider than its box, a missing image,
raw TeX) next to their healthy twins, and the check must find exactly the defects. Tests that
open a browser skip when Playwright or Chromium is absent (see README, "Checking the rendered book").
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import pytest
from PIL import Image

from mdlearn.cli import main
from mdlearn.course.browser import book_pages, browser_unavailable, check_book, format_report, toc_pages
from mdlearn.errors import UsageError

LONG = "y = " + "+".join(["value"] * 40)  # 243 characters: wider than a 300 px box in any monospace font

DEFECTS = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><style>pre {{ width: 300px; overflow: auto; font: 14px monospace; }}</style></head>
<body><article class="bd-article">
<p>Price tags like $5 and $10 are not math, nor is <code>$y$</code> in code. But $x$ is raw math.</p>
<div class="cell_input"><div class="highlight"><pre>x = 1
{LONG}
z = 3</pre></div></div>
<div class="cell_input"><div class="highlight"><pre>fits = True</pre></div></div>
<div class="cell_output"><div class="output"><pre>short output</pre></div></div>
<img src="missing.png" alt="a figure that was never written">
<img src="wide.png" alt="shrunk" style="width: 100px">
<img src="wide.png" alt="natural size">
</article></body></html>
"""

COLLAPSED = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><style>pre {{ width: 300px; overflow: auto; }}</style></head>
<body><details class="hide above-input"><summary>Show code</summary>
<div class="cell_input"><pre>{LONG}</pre></div></details></body></html>
"""

HEALTHY = """<!DOCTYPE html>
<html><head><meta charset="utf-8"></head><body><article class="bd-article">
<p>Nothing wrong here.</p><div class="cell_output"><pre>42</pre></div><img src="wide.png" alt="ok">
</article></body></html>
"""


@pytest.fixture(scope="module")
def browser() -> None:
    reason = browser_unavailable()
    if reason:
        pytest.skip(f"no browser for the rendered-book check: {reason}")


def _write_site(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (400, 100), (200, 30, 30)).save(root / "wide.png")
    (root / "defects.html").write_text(DEFECTS)
    (root / "healthy.html").write_text(HEALTHY)
    (root / "collapsed.html").write_text(COLLAPSED)
    (root / "index.html").write_text(HEALTHY)
    return root


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    return _write_site(tmp_path_factory.mktemp("site"))


@pytest.fixture(scope="module")
def report(browser, site):
    return check_book(site, ["defects.html", "healthy.html", "absent.html", "collapsed.html"], timeout_s=10)


def test_finds_exactly_the_scrolling_code_block(report):
    page = report.pages[0]
    assert (page.code_inputs, page.code_outputs) == (2, 1)
    assert len(page.scrolling) == 1
    block = page.scrolling[0]
    assert (block.kind, block.index, block.hidden) == ("input", 0, False)
    assert block.scroll_width > block.client_width > 0
    assert block.first_line == "x = 1"
    assert (block.long_line_number, block.long_line_chars) == (2, len(LONG))
    assert 0 < block.fits_chars < len(LONG)


def test_finds_the_missing_image_and_measures_the_shrunk_one(report):
    by_alt = {im.alt: im for im in report.pages[0].images}
    assert [im.src for im in report.pages[0].missing_images] == ["missing.png"]
    shrunk, natural = by_alt["shrunk"], by_alt["natural size"]
    assert shrunk.loaded and (shrunk.natural_width, shrunk.natural_height) == (400, 100)
    assert shrunk.rendered_width == pytest.approx(100) and shrunk.scale == pytest.approx(0.25)
    assert natural.rendered_width == pytest.approx(400) and not natural.narrow
    assert report.pages[0].narrow_images == [shrunk]


def test_finds_only_the_raw_dollar_math(report):
    math = report.pages[0].math
    assert math.mathjax == "absent" and math.elements == 0 and math.errors == []
    assert len(math.untypeset) == 1 and "$x$" in math.untypeset[0], math.untypeset


def test_healthy_page_passes_and_a_page_missing_from_the_build_fails(report):
    defects, healthy, absent, _ = report.pages
    assert not defects.ok and healthy.ok and not report.ok
    assert healthy.scrolling == [] and healthy.missing_images == [] and healthy.math.untypeset == []
    assert not absent.found and not absent.ok
    text = format_report(report)
    assert "defects.html" in text and "missing.png" in text and "line 2 has" in text
    assert "1 of 4 pages pass" in text


def test_collapsed_code_is_opened_and_measured(report):
    page = report.pages[3]
    assert [(b.kind, b.hidden, b.long_line_number) for b in page.scrolling] == [("input", True, 1)]
    assert "(collapsed)" in format_report(report)


def _mathjax_script() -> Path | None:
    try:
        dist = metadata.distribution("sphinx-mathjax-offline")
    except metadata.PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file("sphinx-mathjax-offline/static/mathjax/tex-chtml.js")))
    return path if path.is_file() else None


def test_math_typeset_by_mathjax_passes_and_math_without_mathjax_fails(browser, tmp_path):
    script = _mathjax_script()
    if script is None:
        pytest.skip("sphinx-mathjax-offline's MathJax is not installed")
    body = '<p>Euler: <span class="math notranslate nohighlight">\\(e^{i\\pi} + 1 = 0\\)</span></p>'
    (tmp_path / "typeset.html").write_text(
        f'<html><head><script>window.MathJax = {{"options": {{"processHtmlClass": "math"}}}}</script>'
        f'<script defer src="{script.as_uri()}"></script></head><body>{body}</body></html>')
    (tmp_path / "broken.html").write_text(  # MathJax configured, but its script never arrives
        '<html><head><script>window.MathJax = {}</script>'
        f'<script defer src="https://cdn.invalid/tex-chtml.js"></script></head><body>{body}</body></html>')
    typeset, broken = check_book(tmp_path, ["typeset.html", "broken.html"], timeout_s=3).pages
    assert typeset.math.mathjax == "typeset" and typeset.math.elements == typeset.math.typeset == 1
    assert typeset.math.containers == 1 and typeset.math.untypeset == [] and typeset.ok
    assert broken.math.mathjax == "not loaded" and broken.math.typeset == 0 and not broken.ok
    assert len(broken.math.untypeset) == 1 and "e^{i\\pi}" in broken.math.untypeset[0]
    assert broken.external_requests == ["https://cdn.invalid/tex-chtml.js"]


def test_command_prints_the_table_writes_json_and_exits_1_on_defects(browser, tmp_path, capsys):
    site = _write_site(tmp_path / "html")
    toc = tmp_path / "_toc.yml"
    toc.write_text("format: jb-book\nroot: index\nchapters:\n  - file: defects\n  - file: healthy.ipynb\n")
    out = tmp_path / "report.json"
    assert main(["book", "check", "--html", str(site), "--toc", str(toc), "--json", str(out)]) == 1
    printed = capsys.readouterr().out
    assert "defects.html" in printed and "FAIL" in printed
    data = json.loads(out.read_text())
    assert [p["page"] for p in data["pages"]] == ["index.html", "defects.html", "healthy.html"]
    assert [p["ok"] for p in data["pages"]] == [True, False, True] and data["ok"] is False
    toc.write_text("format: jb-book\nroot: index\nchapters:\n  - file: healthy\n")
    assert main(["book", "check", "--html", str(site), "--toc", str(toc)]) == 0


def test_command_refuses_a_folder_without_a_build(tmp_path, capsys):
    assert main(["book", "check", "--html", str(tmp_path)]) == 2
    assert "no built book" in capsys.readouterr().err


def test_toc_pages_follow_the_table_of_contents(tmp_path):
    toc = tmp_path / "_toc.yml"
    toc.write_text("format: jb-book\nroot: book/intro\nparts:\n  - caption: A\n    chapters:\n"
                   "      - file: chapters/01_a\n        sections:\n          - file: chapters/01b.md\n"
                   "      - url: https://example.org\n  - caption: B\n    chapters:\n      - file: book/bib\n")
    assert toc_pages(toc) == ["book/intro.html", "chapters/01_a.html", "chapters/01b.html", "book/bib.html"]
    toc.write_text("format: jb-book\n")
    with pytest.raises(UsageError, match="no `root`"):
        toc_pages(toc)


def test_book_pages_without_a_toc_take_every_page_but_the_index_pages(tmp_path):
    html = tmp_path / "a" / "html"
    for rel in ["index.html", "genindex.html", "search.html", "chapters/one.html", "_static/x.html"]:
        (html / rel).parent.mkdir(parents=True, exist_ok=True)
        (html / rel).write_text("<html></html>")
    assert book_pages(html) == ["chapters/one.html", "index.html"]
    (tmp_path / "_toc.yml").write_text("root: index\n")  # the build's own project lists its pages
    assert book_pages(html) == ["index.html"]


def test_missing_chromium_or_playwright_is_one_line_that_says_how_to_install(tmp_path, monkeypatch):
    import sys

    from mdlearn.course.browser import find_chromium
    from mdlearn.errors import MdlearnError

    monkeypatch.delenv("MDLEARN_CHROMIUM", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no browser on PATH
    with pytest.raises(MdlearnError, match="apt-get install chromium") as e:
        find_chromium()
    assert "\n" not in str(e.value) and browser_unavailable() is not None
    monkeypatch.setitem(sys.modules, "playwright.sync_api", None)  # import fails like an absent package
    with pytest.raises(MdlearnError, match="pip install playwright"):
        check_book(tmp_path, ["index.html"])


WIDGET_VIEW = '<script type="application/vnd.jupyter.widget-view+json">{"model_id": "m1", "version_major": 2}</script>'

WIDGETS = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"></head><body><article class="bd-article">
<div class="cell_output"><div class="output">{WIDGET_VIEW}</div></div>
<div class="cell_output"><div class="output" id="drawn">{WIDGET_VIEW}</div></div>
<script>  // a stand-in for the widget manager: it renders the second view only
  const box = document.createElement('div');
  box.className = 'widget-subarea';
  box.innerHTML = '<div style="height: 40px; width: 200px; background: #ccc">slider</div>';
  document.getElementById('drawn').prepend(box);
</script>
</article></body></html>
"""


def _cloud(static_img: str, note: str) -> str:
    return (f'<div class="mdlearn-cloud"><div class="mdlearn-live" style="display:none"></div>'
            f'<div class="mdlearn-static">{static_img}<p class="mdlearn-note">{note}</p></div></div>')


def test_blank_widget_views_and_clouds_fail_and_drawn_ones_pass(browser, tmp_path):
    _write_site(tmp_path)
    (tmp_path / "widgets.html").write_text(WIDGETS)
    (tmp_path / "clouds.html").write_text(
        '<html><body><article class="bd-article">'
        + _cloud('<img src="wide.png" alt="static view">', "no WebGL here: a static view")
        + _cloud("", "") + "</article></body></html>")
    widgets, clouds = check_book(tmp_path, ["widgets.html", "clouds.html"], timeout_s=2).pages
    assert [(v.kind, v.rendered, v.mode) for v in widgets.views] == [
        ("widget", False, "blank"), ("widget", True, "widget")]
    assert widgets.views[1].height == pytest.approx(40) and not widgets.ok
    assert [(v.kind, v.rendered, v.mode) for v in clouds.views] == [
        ("plotly", True, "static"), ("plotly", False, "blank")]
    assert len(clouds.blank_views) == 1 and not clouds.ok
    assert "widget view #1 is blank" in format_report(check_book(tmp_path, ["widgets.html"], timeout_s=1))


def test_missing_local_files_fail_the_page_and_screenshots_are_kept(browser, tmp_path):
    _write_site(tmp_path)
    (tmp_path / "css.html").write_text(
        '<html><head><link rel="stylesheet" href="gone/missing.css"></head>'
        '<body><article class="bd-article"><p>text</p></article></body></html>')
    shots = tmp_path / "shots"
    report = check_book(tmp_path, ["css.html", "healthy.html"], timeout_s=5, screenshots=shots)
    css, healthy = report.pages
    assert css.missing_resources == ["gone/missing.css"] and not css.ok
    assert healthy.missing_resources == [] and healthy.ok
    assert "local file not loaded: gone/missing.css" in format_report(report)
    assert sorted(p.name for p in shots.iterdir()) == ["css.png", "healthy.png"]
    assert Path(healthy.screenshot).read_bytes()[:4] == b"\x89PNG"


def test_install_chromium_says_why_it_cannot(tmp_path, monkeypatch):
    from mdlearn.course.browser import install_chromium

    monkeypatch.delenv("MDLEARN_CHROMIUM", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no browser and no apt-get on PATH
    reason = install_chromium()
    assert reason and "apt-get is not available" in reason and "\n" not in reason


def _notebook(path: Path, outputs: list[list[dict]]) -> None:
    """An executed notebook with one code cell per entry of ``outputs`` (each a list of ``data``)."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    cells = [new_code_cell(f"plot_{i}()\n", execution_count=i + 1,
                           outputs=[new_output("display_data", data=d) for d in outs])
             for i, outs in enumerate(outputs)]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(new_notebook(cells=cells), str(path))


FIGURE = {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure size 640x480 with 1 Axes>"}
LOST = {"text/plain": "<Figure size 825x422.812 with 21 Axes>"}
HTML_WITH_PNG = {"text/html": "<b>table</b>", "image/png": "iVBORw0KGgo=", "text/plain": "table"}


def test_notebook_figures_counts_what_the_book_renders_as_an_image(tmp_path):
    from mdlearn.course.browser import notebook_figures

    _notebook(tmp_path / "nb.ipynb", [[FIGURE], [HTML_WITH_PNG, {"text/plain": "42"}], [LOST], [FIGURE, FIGURE]])
    got = notebook_figures(tmp_path / "nb.ipynb")
    assert got.images == 3 and got.lost == ["plot_2()"]  # the HTML output wins over its PNG
    (tmp_path / "bad.ipynb").write_text("{not json")
    with pytest.raises(Exception, match="bad.ipynb: not a readable notebook"):
        notebook_figures(tmp_path / "bad.ipynb")


def test_page_figures_are_counted_against_the_executed_notebook(browser, tmp_path):
    html = tmp_path / "_build" / "html"
    html.mkdir(parents=True)
    Image.new("RGB", (400, 100), (20, 30, 200)).save(html / "fig.png")
    out_img = '<div class="cell_output"><img src="fig.png" alt="fig.png"></div>'
    prose_img = '<p><img src="fig.png" alt="a figure in the prose"></p>'
    import base64
    import io

    png = io.BytesIO()
    Image.new("RGB", (8, 8), (0, 200, 0)).save(png, format="PNG")
    data_img = ('<div class="cell_output"><img alt="inline" src="data:image/png;base64,'
                + base64.b64encode(png.getvalue()).decode() + '"></div>')  # an HTML output's own image
    page = '<!DOCTYPE html><html><body><article class="bd-article">{}</article></body></html>'
    (html / "all.html").write_text(page.format(out_img * 2 + prose_img + data_img))
    (html / "one_lost.html").write_text(page.format(out_img + prose_img))  # the notebook has 2
    (html / "as_text.html").write_text(page.format(out_img))
    (html / "no_notebook.html").write_text(page.format(prose_img))
    executed = tmp_path / "_build" / "jupyter_execute"
    _notebook(executed / "all.ipynb", [[FIGURE], [FIGURE, HTML_WITH_PNG]])
    _notebook(executed / "one_lost.ipynb", [[FIGURE], [FIGURE]])
    _notebook(executed / "as_text.ipynb", [[FIGURE], [LOST]])
    report = check_book(html, ["all.html", "one_lost.html", "as_text.html", "no_notebook.html"], timeout_s=10)
    pages = {p.page: p for p in report.pages}
    assert (pages["all.html"].output_figures, pages["all.html"].notebook_figures) == (2, 2)
    assert pages["all.html"].ok and pages["no_notebook.html"].ok
    assert pages["no_notebook.html"].notebook_figures is None
    assert (pages["one_lost.html"].output_figures, pages["one_lost.html"].notebook_figures) == (1, 2)
    assert not pages["one_lost.html"].ok
    assert pages["as_text.html"].lost_figures == ["plot_1()"] and not pages["as_text.html"].ok
    text = format_report(report)
    assert "one_lost.html: shows 1 output figures, its executed notebook has 2 image outputs" in text
    assert "as_text.html: a figure reached the notebook as text only, in the cell 'plot_1()'" in text
