"""The whole book, rendered and read in a real browser (README, "Checking the rendered book").

Builds the book from the chapters executed at the ``smoke`` preset (``mdlearn book build
--preset smoke``: the same pages, configuration and widget JavaScript as ``make book``, in
``_build/book-smoke``) and opens every page of ``_toc.yml`` in headless Chromium. Every page
must load with no missing local file and no request off the local files, its math typeset, every
figure loaded, no code block scrolling sideways and no blank interactive view. Full-page
screenshots of every page stay in ``_build/book-smoke/screenshots`` for a person to look at,
with the report as ``report.json``.

Chromium is installed with apt when it is missing (about 25 s); the test skips, with the reason,
only when that is impossible (or when npm, which fetches the widget JavaScript once, is missing). It takes a few minutes (most of it executing the chapters; copies
are kept until their chapter or the package changes).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mdlearn.course.book import build_book
from mdlearn.course.browser import check_book, format_report, install_chromium, toc_pages

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "_build" / "book-smoke"


@pytest.fixture(scope="module")
def report():
    reason = install_chromium()
    if reason:
        pytest.skip(f"no browser for the rendered-book check: {reason}")
    if shutil.which("npm") is None and not (REPO / "_build" / "widgets-js").is_dir():
        pytest.skip("the book's widget JavaScript is fetched with npm, which is not installed "
                    "(Debian/Ubuntu: `sudo apt-get install npm`)")
    index = build_book(REPO, preset="smoke", out=OUT)
    shots = OUT / "screenshots"
    result = check_book(index.parent, toc=REPO / "_toc.yml", screenshots=shots)
    (shots / "report.json").write_text(json.dumps(result.to_dict(), indent=1) + "\n")
    (shots / "report.txt").write_text(format_report(result) + "\n")
    return result


@pytest.mark.slow
def test_every_page_passes_the_browser_check(report):
    assert [p.page for p in report.pages] == toc_pages(REPO / "_toc.yml")
    assert report.ok, format_report(report)


@pytest.mark.slow
def test_the_check_saw_what_the_chapters_hold(report):
    """Guard against a check that passes because it measured nothing."""
    chapters = [p for p in report.pages if p.page.startswith("chapters/")]
    assert chapters and all(p.images and p.code_inputs for p in chapters)
    pages = {p.page.split("/")[-1].split("_")[0]: p for p in chapters}
    assert pages["04"].math.typeset >= 20 and pages["04"].math.mathjax == "typeset"
    # the lambda slider (chapter 4), the test-view viewer and the 3D cloud (chapter 7)
    assert [v.kind for v in pages["04"].views] == ["widget"]
    kinds = sorted(v.kind for v in pages["07"].views)
    assert kinds == ["plotly", "widget"], kinds
    assert all(v.rendered and v.height > 100 for p in chapters for v in p.views)
    # every chapter's figures were counted against its executed notebook
    assert all(p.notebook_figures and p.output_figures == p.notebook_figures for p in chapters)


@pytest.mark.slow
def test_every_bundled_widget_module_finds_its_fonts_beside_the_bundle(report):
    """Each module of embed-amd.js takes its public path (where its fonts are) from the URL
    require.js gives its name; one left unmapped asked for fonts under the page's folder,
    depending on which style sheet came first (a flaky missing-font failure)."""
    import re

    from playwright.sync_api import sync_playwright

    from mdlearn.course.book import WIDGETS_FOLDER
    from mdlearn.course.browser import find_chromium

    html = OUT / "_build" / "html"
    bundle = (html / "_static" / WIDGETS_FOLDER / "embed-amd.js").read_text()
    names = sorted(set(re.findall(r'define\("(@jupyter-widgets/[^"]+)"', bundle)))
    assert "@jupyter-widgets/controls" in names and "@jupyter-widgets/base" in names
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=find_chromium(), headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto((html / "chapters" / "07_the_fine_network.html").as_uri())
            urls = page.evaluate("names => names.map(n => require.toUrl(n + '.js'))", names)
        finally:
            browser.close()
    folder = (html / "_static" / WIDGETS_FOLDER).as_uri() + "/"
    assert all(u.startswith(folder) for u in urls), dict(zip(names, urls))


@pytest.mark.slow
def test_every_chapter_page_has_colab_and_binder_buttons(report):
    import yaml

    repo = yaml.safe_load((REPO / "_config.yml").read_text())["repository"]
    slug = repo["url"].removeprefix("https://github.com/")
    for page in report.pages:
        if not page.page.startswith("chapters/"):
            continue
        html = (OUT / "_build" / "html" / page.page).read_text()
        nb = page.page.removesuffix(".html") + ".ipynb"
        assert f"https://colab.research.google.com/github/{slug}/blob/{repo['branch']}/{nb}" in html
        assert f"https://mybinder.org/v2/gh/{slug}/{repo['branch']}?urlpath=lab/tree/{nb}" in html


@pytest.mark.slow
def test_screenshots_are_kept_for_a_person(report):
    for page in report.pages:
        shot = Path(page.screenshot)
        assert shot.is_file() and shot.parent == OUT / "screenshots", page.page
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (OUT / "screenshots" / "report.json").is_file()


@pytest.mark.slow
def test_sliders_flip_panels_on_the_static_page(report):
    """The lambda slider works with no kernel: the link between slider and panels runs in the page."""
    from playwright.sync_api import sync_playwright

    from mdlearn.course.browser import find_chromium

    page_file = OUT / "_build" / "html" / "chapters" / "04_scale_invariant_error.html"
    shown = """() => Array.from(document.querySelectorAll('.widget-subarea img'))
                   .filter(img => img.offsetParent !== null).map(img => img.src)"""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=find_chromium(), headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(page_file.as_uri())
            page.wait_for_selector(".widget-subarea img", state="visible", timeout=30_000)
            before = page.evaluate(shown)
            readout = page.query_selector(".widget-subarea .widget-readout")
            assert readout.text_content().strip() == "0"
            page.query_selector(".widget-subarea .noUi-handle").focus()
            page.keyboard.press("ArrowRight")
            page.wait_for_function("() => document.querySelector('.widget-subarea .widget-readout')"
                                   ".textContent.trim() === '0.1'", timeout=10_000)
            after = page.evaluate(shown)
        finally:
            browser.close()
    assert len(before) == len(after) == 1 and before != after  # another panel shows
