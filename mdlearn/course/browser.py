"""Checking the rendered book in a real browser (``mdlearn book check``; the book's layout is Chapter 1).

A built page can be valid HTML and still read badly: a code line too long for the column makes
its block scroll sideways, a figure that failed to load shows as a broken icon, a figure wider
than the column is shrunk until its labels are unreadable, and math whose MathJax failed to load
stays raw TeX. None of this shows in the HTML source; it shows in the layout. :func:`check_book`
therefore opens every page of the table of contents in headless Chromium (driven by Playwright,
one browser for all pages) at a laptop's viewport, waits for MathJax to finish typesetting, and
measures the page in the DOM:

* **code blocks**: every ``pre`` of the article whose ``scrollWidth`` exceeds its ``clientWidth``,
  code inputs (cell sources and code in the prose) apart from cell outputs, with the block's first
  line and the first line too wide for the column. Collapsed blocks (``hide-input`` cells) are
  opened first and measured at the width a reader sees once they expand them.
* **images**: every ``img`` of the article, whether it loaded (``naturalWidth > 0``), and its
  rendered size; one displayed at less than ``min_scale`` of its natural width is *narrow*: its
  text shrinks by the same factor, and below the default 0.75 the 10-point labels of a 100-dpi
  matplotlib figure (about 14 px) drop under 10 px. Narrow images are reported, not failed.
* **figures against the executed notebook**: the figures a page shows in its cell outputs (image
  files the book wrote from the notebook's outputs) are counted against the outputs of the
  notebook it was built from (``_build/jupyter_execute``, :func:`notebook_figures`): every output
  the book renders as an image must show on the page, and no figure may have reached the notebook
  as its text alone (``<Figure size 640x480 with 1 Axes>``, what a kernel without an inline
  backend saves). A page can be free of broken images and still lack figures; this catches it.
* **math**: every Sphinx math element (``.math``) must hold a MathJax container, MathJax must not
  report a TeX error, and no raw ``$...$``, ``$$...$$``, ``\\(``, ``\\[`` or ``\\begin{`` may be
  left in the text outside code.
* **interactive views**: every saved ipywidgets view (``script[type=application/vnd.jupyter.widget-
  view+json]``) must have been rendered by the widget manager into a visible box, and every
  plotly point cloud of :mod:`mdlearn.course.interactive` must show either its live plot or its
  static fallback with the note; a blank box fails.
* **local resources**: every file the page asks for (scripts, styles, fonts, images) must exist;
  a failed local request fails the page.

Requests to anything but local files are refused (the book must work offline), listed and fail
the page. With ``screenshots``, a full-page screenshot of every page is kept for a person to look
at (taken after the measurement, so collapsed cells show opened).
Chromium is the system's own (Debian/Ubuntu: ``apt-get install chromium``), never a browser that
Playwright downloads; :func:`find_chromium` says where it was found, and ``$MDLEARN_CHROMIUM``
overrides the search.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import MdlearnError, UsageError

__all__ = ["CodeBlock", "ImageInfo", "MathInfo", "ViewInfo", "PageReport", "BookReport", "find_chromium",
           "browser_unavailable", "install_chromium", "toc_pages", "book_pages", "check_book", "format_report",
           "NotebookFigures", "notebook_figures"]

#: executables tried, in order, when ``$MDLEARN_CHROMIUM`` is not set
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_INSTALL = ("install Chromium (Debian/Ubuntu: `sudo apt-get install chromium`) "
                    "or set MDLEARN_CHROMIUM to a Chromium or Chrome executable")
PLAYWRIGHT_INSTALL = ("install it with `.venv/bin/pip install playwright` (it drives the system "
                      "Chromium: `playwright install` is not needed)")
#: pages of a build that are not chapters (used when no ``_toc.yml`` lists the pages)
NON_CHAPTER_PAGES = ("genindex.html", "search.html", "py-modindex.html")


@dataclass(frozen=True)
class CodeBlock:
    """One ``pre`` that scrolls sideways at the checked viewport.

    ``kind`` is ``"input"`` (a cell's source or code in the prose) or ``"output"`` (a cell's
    output). Widths are CSS pixels. ``long_line`` is the first line wider than the block's content
    box (1-based ``long_line_number``, its length ``long_line_chars`` in characters);
    ``fits_chars`` is about how many characters of the block's font fit in one line.
    ``hidden`` says the block was collapsed (a ``hide-input`` cell) and was opened to measure it.
    """

    kind: Literal["input", "output"]
    index: int
    client_width: int
    scroll_width: int
    first_line: str
    long_line: str
    long_line_number: int
    long_line_chars: int
    fits_chars: int
    hidden: bool


@dataclass(frozen=True)
class ImageInfo:
    """One ``img`` of a page's article: whether it loaded, its natural and rendered size (CSS px).

    ``scale`` is rendered width / natural width (0 when not loaded or not displayed); ``narrow``
    says it is displayed at less than the check's ``min_scale``; ``in_output`` that it is a
    figure of a cell's output (an image file the book wrote from the notebook).
    """

    src: str
    alt: str
    loaded: bool
    #: shown in a cell's output from an image file the book wrote (not a data: or blob: URL of an
    #: HTML output or a widget)
    in_output: bool
    natural_width: int
    natural_height: int
    rendered_width: float
    rendered_height: float
    scale: float
    narrow: bool


@dataclass(frozen=True)
class MathInfo:
    """The math of one page after MathJax finished (or gave up).

    ``mathjax`` is ``"typeset"`` (MathJax ran to the end), ``"timeout"``, ``"failed"`` (its
    start-up failed), ``"not loaded"``
    (configured, but its script never started: a CDN offline, say) or ``"absent"`` (the page does
    not load MathJax). ``elements`` counts Sphinx math elements, ``typeset`` those holding
    MathJax output, ``containers`` the MathJax output containers of the whole article; ``untypeset`` quotes raw TeX left in the page, ``errors`` the TeX errors
    MathJax reported.
    """

    mathjax: str
    elements: int
    typeset: int
    containers: int
    untypeset: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ViewInfo:
    """One interactive view of a page: ``kind`` is ``"widget"`` (an ipywidgets view) or
    ``"plotly"`` (a point cloud of :mod:`mdlearn.course.interactive`). ``rendered`` says a
    non-blank box shows (``width`` x ``height`` CSS px); ``mode`` says what shows (``"widget"``,
    ``"live"`` plot, ``"static"`` fallback, or ``"blank"``)."""

    kind: Literal["widget", "plotly"]
    index: int
    rendered: bool
    mode: str
    width: float
    height: float


@dataclass
class PageReport:
    """What :func:`check_book` measured on one page (``page`` is relative to the HTML folder)."""

    page: str
    found: bool
    code_inputs: int = 0
    code_outputs: int = 0
    scrolling: list[CodeBlock] = field(default_factory=list)
    images: list[ImageInfo] = field(default_factory=list)
    math: MathInfo | None = None
    views: list[ViewInfo] = field(default_factory=list)
    #: image outputs of the executed notebook the page was built from (None: no notebook found)
    notebook_figures: int | None = None
    #: the notebook's code cells (first line) whose figure was saved as text only
    lost_figures: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)
    missing_resources: list[str] = field(default_factory=list)
    screenshot: str = ""
    error: str = ""

    def scrolling_of(self, kind: Literal["input", "output"]) -> list[CodeBlock]:
        """The scrolling code blocks of one kind."""
        return [b for b in self.scrolling if b.kind == kind]

    @property
    def missing_images(self) -> list[ImageInfo]:
        """Images that did not load."""
        return [i for i in self.images if not i.loaded]

    @property
    def narrow_images(self) -> list[ImageInfo]:
        """Loaded images displayed at less than ``min_scale`` of their natural width."""
        return [i for i in self.images if i.narrow]

    @property
    def output_figures(self) -> int:
        """Figures of cell outputs that loaded on the page."""
        return sum(1 for i in self.images if i.in_output and i.loaded)

    @property
    def figures_ok(self) -> bool:
        """The page shows exactly the notebook's image outputs, and none was saved as text only."""
        return not self.lost_figures and (self.notebook_figures is None
                                          or self.output_figures == self.notebook_figures)

    @property
    def blank_views(self) -> list[ViewInfo]:
        """Interactive views that show nothing."""
        return [v for v in self.views if not v.rendered]

    @property
    def ok(self) -> bool:
        """No scrolling code block, no missing image or local file, all math typeset, no blank
        interactive view, no request off the local files, every figure of the executed notebook
        shown (narrow images are only reported)."""
        math_ok = self.math is not None and not self.math.untypeset and not self.math.errors
        return (self.found and not self.error and not self.scrolling and not self.missing_images
                and self.figures_ok and math_ok and not self.blank_views and not self.missing_resources
                and not self.external_requests)


@dataclass
class BookReport:
    """The report of :func:`check_book`: one :class:`PageReport` per page, in table-of-contents order."""

    html_dir: str
    viewport: tuple[int, int]
    min_scale: float
    browser: str
    pages: list[PageReport]

    @property
    def ok(self) -> bool:
        """Every page passed (see :attr:`PageReport.ok`)."""
        return all(p.ok for p in self.pages)

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready data, with each page's ``ok`` and the book's ``ok``."""
        d = asdict(self)
        for page, pd in zip(self.pages, d["pages"]):
            pd["ok"] = page.ok
        d["ok"] = self.ok
        return d


def find_chromium() -> str:
    """The Chromium executable to drive: ``$MDLEARN_CHROMIUM``, else the first of
    :data:`CHROMIUM_NAMES` on ``PATH``. Raises :class:`~mdlearn.errors.MdlearnError` saying how
    to install one."""
    env = os.environ.get("MDLEARN_CHROMIUM")
    if env:
        if not (Path(env).is_file() and os.access(env, os.X_OK)):
            raise MdlearnError(f"MDLEARN_CHROMIUM={env}: not an executable file")
        return env
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    raise MdlearnError(f"the book check needs Chromium and found none on PATH: {CHROMIUM_INSTALL}")


def _require_playwright() -> None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        raise MdlearnError(f"the book check needs the Python package playwright: {PLAYWRIGHT_INSTALL}") from None


def browser_unavailable() -> str | None:
    """Why :func:`check_book` cannot run here (Playwright or Chromium missing), or ``None``."""
    try:
        _require_playwright()
        find_chromium()
    except MdlearnError as e:
        return str(e)
    return None


def install_chromium(timeout_s: float = 600.0) -> str | None:
    """Install Debian's ``chromium`` with apt when no Chromium is found; ``None`` when one is ready.

    Runs ``apt-get update`` and ``apt-get install -y chromium`` (about 25 s), as root or through
    ``sudo -n``. Returns why the check still cannot run (no apt-get, no root, apt failed, no
    Playwright), so a caller can skip with that reason. The test suite's rendered-book test calls
    it; nothing else installs system packages.
    """
    import subprocess

    reason = browser_unavailable()
    if reason is None or "playwright" in reason.lower():
        return reason
    apt = shutil.which("apt-get")
    if apt is None:
        return f"{reason}; apt-get is not available to install it"
    prefix: list[str] = []
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        sudo = shutil.which("sudo")
        if sudo is None:
            return f"{reason}; installing it needs root (no sudo)"
        prefix = [sudo, "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in ([apt, "-qq", "update"], [apt, "-qq", "install", "-y", "chromium"]):
        try:
            done = subprocess.run(prefix + cmd, capture_output=True, text=True, env=env, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return f"{reason}; `{' '.join(cmd[1:])}` took longer than {timeout_s:.0f} s"
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
            return f"{reason}; `apt-get {' '.join(cmd[1:])}` failed: {last}"
    return browser_unavailable()


def toc_pages(toc: str | os.PathLike) -> list[str]:
    """The pages a Jupyter Book ``_toc.yml`` lists (``root`` first), as HTML paths relative to the build.

    ``file`` entries anywhere in the tree count (parts, chapters, sections); ``url`` and ``glob``
    entries are not pages of the build and are left out. ``chapters/01_x`` becomes
    ``chapters/01_x.html``.
    """
    import yaml

    path = Path(toc)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise UsageError(f"{path}: cannot read the table of contents ({e})") from None
    files: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key in ("root", "file"):
                if isinstance(node.get(key), str):
                    files.append(node[key])
            for value in node.values():
                if isinstance(value, (dict, list)):
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(data)
    if not files:
        raise UsageError(f"{path}: no `root` or `file` entries")
    pages = []
    for f in files:
        p = Path(f)
        p = p.with_suffix("") if p.suffix in (".ipynb", ".md", ".rst") else p
        if str(p) + ".html" not in pages:
            pages.append(str(p) + ".html")
    return pages


def book_pages(html_dir: str | os.PathLike, toc: str | os.PathLike | None = None) -> list[str]:
    """The pages of a build to check, relative to ``html_dir``.

    With ``toc``, the pages it lists. Otherwise the ``_toc.yml`` of the project the build belongs
    to (``html_dir/../../_toc.yml``, the Jupyter Book layout ``PROJECT/_build/html``) when there is
    one, else every ``.html`` page of ``html_dir`` except the index, search and ``_static`` pages.
    """
    html = Path(html_dir)
    if toc is None and (html.parent.parent / "_toc.yml").is_file():
        toc = html.parent.parent / "_toc.yml"
    if toc is not None:
        return toc_pages(toc)
    pages = sorted(str(p.relative_to(html)) for p in html.rglob("*.html")
                   if not p.relative_to(html).parts[0].startswith("_") and p.name not in NON_CHAPTER_PAGES)
    if not pages:
        raise UsageError(f"{html}: no .html pages to check")
    return pages


# Runs in the page once it has loaded: waits for MathJax and the images, then measures. Returns
# plain data that check_book turns into the dataclasses above.
_MEASURE_JS = r"""
async ({mathTimeoutMs, imageTimeoutMs, viewTimeoutMs}) => {
  const region = document.querySelector('article.bd-article') || document.querySelector('[role=main]')
      || document.body;
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  // 'done', 'failed' (the promise rejected) or 'timeout'
  const within = (p, ms) => Promise.race([p.then(() => 'done', () => 'failed'), sleep(ms).then(() => 'timeout')]);
  const clip = (s, n) => s.length > n ? s.slice(0, n - 1) + '…' : s;

  // 1. MathJax: wait for its first typesetting pass (version 3: startup.promise; version 2: the Hub queue)
  let mathjax = 'absent';
  if (window.MathJax) {
    const t0 = Date.now();
    while (!(MathJax.startup && MathJax.startup.promise) && !(MathJax.Hub && MathJax.Hub.Queue)
           && Date.now() - t0 < mathTimeoutMs) await sleep(50);
    const left = Math.max(0, mathTimeoutMs - (Date.now() - t0));
    if (MathJax.startup && MathJax.startup.promise) {
      const r = await within(MathJax.startup.promise, left);
      mathjax = r === 'done' ? 'typeset' : r;
    } else if (MathJax.Hub && MathJax.Hub.Queue) {
      const r = await within(new Promise(r => MathJax.Hub.Queue(r)), left);
      mathjax = r === 'done' ? 'typeset' : r;
    } else {
      mathjax = 'not loaded';
    }
  }

  // 1b. interactive views: wait until the widget manager rendered every saved widget view and
  // every plotly cloud chose its live plot or its static fallback (or the time is up)
  const widgetScripts = Array.from(region.querySelectorAll(
      'script[type="application/vnd.jupyter.widget-view+json"]'));
  const clouds = Array.from(region.querySelectorAll('.mdlearn-cloud'));
  const boxOf = el => { const r = el.getBoundingClientRect(); return [r.width, r.height]; };
  const widgetView = s => {
    const host = s.parentElement;
    const area = host && host.querySelector('.widget-subarea, .jupyter-widgets');
    if (!area) return {rendered: false, mode: 'blank', width: 0, height: 0};
    const [w, h] = boxOf(area);
    return {rendered: w > 0 && h > 8 && area.querySelector('*') !== null, mode: 'widget', width: w, height: h};
  };
  const cloudView = c => {
    const live = c.querySelector('.mdlearn-live'), stat = c.querySelector('.mdlearn-static');
    const shown = el => el && getComputedStyle(el).display !== 'none';
    if (shown(live) && live.querySelector('.main-svg, canvas')) {
      const [w, h] = boxOf(live);
      return {rendered: w > 0 && h > 0, mode: 'live', width: w, height: h};
    }
    const img = stat && stat.querySelector('img');
    const note = stat && stat.querySelector('.mdlearn-note');
    if (shown(stat) && img && img.complete && img.naturalWidth > 0 && note && note.textContent.trim()) {
      const [w, h] = boxOf(img);
      return {rendered: w > 0 && h > 0, mode: 'static', width: w, height: h};
    }
    return {rendered: false, mode: 'blank', width: 0, height: 0};
  };
  const measureViews = () => [
      ...widgetScripts.map((s, i) => ({kind: 'widget', index: i, ...widgetView(s)})),
      ...clouds.map((c, i) => ({kind: 'plotly', index: i, ...cloudView(c)}))];
  const t1 = Date.now();
  let views = measureViews();
  while (views.some(v => !v.rendered) && Date.now() - t1 < viewTimeoutMs) {
    await sleep(100);
    views = measureViews();
  }

  // 2. open collapsed blocks (hide-input cells) so that their code is laid out like the rest
  const hidden = new Set();
  for (const d of region.querySelectorAll('details:not([open])')) {
    d.querySelectorAll('pre').forEach(p => hidden.add(p));
    d.open = true;
  }

  // 3. images: let every one finish loading or fail
  const imgs = Array.from(region.querySelectorAll('img'));
  await Promise.all(imgs.map(img => {
    if (img.complete) return Promise.resolve();
    img.loading = 'eager';
    return within(new Promise(r => { img.addEventListener('load', r); img.addEventListener('error', r); }),
                  imageTimeoutMs);
  }));
  if (document.fonts && document.fonts.ready) await within(document.fonts.ready, 2000);

  // 4. code blocks
  const pres = Array.from(region.querySelectorAll('pre'));
  const blocks = {input: 0, output: 0};
  const scrolling = [];
  for (const pre of pres) {
    const kind = pre.closest('.cell_output, .output') ? 'output' : 'input';
    const index = blocks[kind]++;
    if (!(pre.scrollWidth > pre.clientWidth)) continue;
    const style = getComputedStyle(pre);
    const content = pre.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    const probe = document.createElement('span');
    probe.style.cssText = 'position:absolute;visibility:hidden;white-space:pre;left:0;top:0';
    pre.appendChild(probe);
    probe.textContent = '0'.repeat(100);
    const charWidth = probe.getBoundingClientRect().width / 100;
    const lines = pre.textContent.replace(/\n$/, '').split('\n');
    let longNo = 0;
    for (let i = 0; i < lines.length && !longNo; i++) {
      probe.textContent = lines[i];
      if (probe.getBoundingClientRect().width > content + 0.5) longNo = i + 1;
    }
    probe.remove();
    const long = longNo ? lines[longNo - 1] : '';
    scrolling.push({kind, index, client_width: pre.clientWidth, scroll_width: pre.scrollWidth,
                    first_line: clip(lines[0] || '', 120), long_line: clip(long, 160),
                    long_line_number: longNo, long_line_chars: long.length,
                    fits_chars: charWidth > 0 ? Math.floor(content / charWidth) : 0,
                    hidden: hidden.has(pre)});
  }

  // 5. images, measured
  const images = imgs.map(img => {
    const r = img.getBoundingClientRect();
    const src = img.getAttribute('src') || '';
    return {src: clip(src, 160), alt: clip(img.getAttribute('alt') || '', 120),
            loaded: img.complete && img.naturalWidth > 0,
            in_output: !!img.closest('.cell_output, .output') && !/^(data|blob):/.test(src),
            natural_width: img.naturalWidth, natural_height: img.naturalHeight,
            rendered_width: r.width, rendered_height: r.height};
  });

  // 6. math: every Sphinx math element holds MathJax output; no raw TeX left in the text
  const mathEls = Array.from(region.querySelectorAll('.math'));
  const hasOutput = el => el.querySelector('mjx-container, .MathJax, .MathJax_Display, .MathJax_Preview');
  const squash = s => clip(s.replace(/\s+/g, ' ').trim(), 120);
  const untypeset = mathEls.filter(el => !hasOutput(el)).map(el => 'math element: ' + squash(el.textContent));
  const skip = 'script, style, pre, code, kbd, samp, textarea, mjx-container, .math, .tex2jax_ignore, .mathjax_ignore';
  const patterns = [/\$\$[\s\S]+?\$\$/, /\$(?!\s)[^$\n]*?[^\s\\$]\$(?!\d)/, /\\\(|\\\[|\\begin\{/];
  const walker = document.createTreeWalker(region, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!node.parentElement || node.parentElement.closest(skip)) continue;
    const text = node.textContent;
    for (const re of patterns) {
      const m = re.exec(text);
      if (m) {
        const a = Math.max(0, m.index - 30), b = Math.min(text.length, m.index + m[0].length + 30);
        untypeset.push('in <' + node.parentElement.tagName.toLowerCase() + '>: ' + squash(text.slice(a, b)));
        break;
      }
    }
  }
  const errors = Array.from(region.querySelectorAll('mjx-merror')).map(
      e => squash(e.getAttribute('data-mjx-error') || e.textContent));
  const containers = region.querySelectorAll('mjx-container').length  // MathJax 3 (class MathJax too)
      || region.querySelectorAll('.MathJax, .MathJax_Display').length;  // MathJax 2
  return {code_inputs: blocks.input, code_outputs: blocks.output, scrolling, images, views,
          math: {mathjax, elements: mathEls.length, typeset: mathEls.filter(hasOutput).length, containers,
                 untypeset, errors}};
}
"""


IMAGE_TYPES = ("image/svg+xml", "image/png", "image/gif", "image/jpeg")
_FIGURE_TEXT = re.compile(r"^<Figure size [0-9.]+x[0-9.]+ with [0-9]+ Axes>$")


@dataclass(frozen=True)
class NotebookFigures:
    """The figures of an executed notebook: ``images`` outputs the book renders as an image (the
    best type it can show is one, as myst-nb chooses), and ``lost``: the first line of each code
    cell with a matplotlib figure saved only as its text."""

    images: int
    lost: list[str]


def notebook_figures(path: str | os.PathLike) -> NotebookFigures:
    """Count the figures of the executed notebook ``path`` as the book will render them.

    Which output type of a display shows is myst-nb's choice (its HTML render priority, asked
    of myst-nb itself, so the count follows the builder). Raises
    :class:`~mdlearn.errors.MdlearnError` for a file that is not a notebook."""
    import nbformat
    from myst_nb.core.render import base_render_priority

    priority = base_render_priority()["html"]
    try:
        nb = nbformat.read(str(path), as_version=4)
    except Exception as e:  # nbformat raises JSON, validation and OS errors alike
        raise MdlearnError(f"{path}: not a readable notebook ({type(e).__name__})") from None
    images, lost = 0, []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            data = out.get("data") or {}
            shown = min((t for t in data if priority.get(t) is not None), key=priority.__getitem__, default=None)
            if shown in IMAGE_TYPES:
                images += 1
            if not any(t in data for t in IMAGE_TYPES) and _FIGURE_TEXT.match(str(data.get("text/plain", "")).strip()):
                lost.append(next((ln for ln in cell.source.splitlines() if ln.strip()), "")[:100])
    return NotebookFigures(images, lost)


def check_book(html_dir: str | os.PathLike, pages: list[str] | None = None, *,
               toc: str | os.PathLike | None = None, viewport: tuple[int, int] = (1280, 900),
               min_scale: float = 0.75, timeout_s: float = 30.0,
               screenshots: str | os.PathLike | None = None,
               notebooks: str | os.PathLike | None = None) -> BookReport:
    """Open every page of a built book in headless Chromium and measure code, images, math,
    interactive views and local files.

    ``html_dir`` is the build (``_build/html``); ``pages`` the pages to check, relative to it
    (default: :func:`book_pages` with ``toc``). ``viewport`` is (width, height) in CSS pixels;
    an image displayed below ``min_scale`` of its natural width counts as narrow. ``timeout_s``
    bounds each page's load, MathJax and the rendering of its interactive views. One browser
    opens all pages; requests that leave the local files are refused and listed per page, local
    files that fail to load are listed. With ``screenshots`` (a folder, created), a full-page
    PNG of every page is written there, named after the page (``chapters__01_x.png``).
    ``notebooks`` is the folder of the executed notebooks the pages were built from (default:
    ``jupyter_execute`` beside ``html_dir``, where Jupyter Book writes them); a page whose
    notebook is there has its figures counted against it (:func:`notebook_figures`).

    Raises :class:`~mdlearn.errors.MdlearnError` when Playwright or Chromium is missing (the
    message says how to install them) and :class:`~mdlearn.errors.UsageError` for a folder that
    holds no build. A page the table of contents lists but the build lacks is reported, not raised.
    """
    html = Path(html_dir).resolve()
    if not html.is_dir():
        raise UsageError(f"{html_dir}: no such folder (build the book first: `mdlearn book build`)")
    if not 0 < min_scale <= 1:
        raise UsageError(f"min_scale must be in (0, 1], got {min_scale}")
    if pages is None:
        pages = book_pages(html, toc)
    executed = Path(notebooks) if notebooks is not None else html.parent / "jupyter_execute"
    _require_playwright()
    chromium = find_chromium()
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    reports: list[PageReport] = []
    with sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(executable_path=chromium, headless=True,
                                         # WebGL through SwiftShader (software) draws the 3D views
                                         args=["--no-sandbox", "--use-angle=swiftshader",
                                               "--enable-unsafe-swiftshader", "--no-first-run",
                                               "--disable-background-networking", "--disable-component-update",
                                               "--disable-sync"])
        except PlaywrightError as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise MdlearnError(f"{chromium}: Chromium did not start ({first})") from None
        try:
            context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
            external: list[str] = []

            def route(r):
                url = r.request.url
                if url.startswith(("file:", "data:", "blob:", "about:")):
                    r.continue_()
                else:
                    external.append(url)
                    r.abort()

            context.route("**/*", route)
            page = context.new_page()
            failed: list[str] = []

            def request_failed(request):
                url = request.url
                if url.startswith("file:") and url not in external:
                    failed.append(url)

            page.on("requestfailed", request_failed)
            shots = Path(screenshots) if screenshots is not None else None
            if shots is not None:
                shots.mkdir(parents=True, exist_ok=True)
            for rel in pages:
                path = html / rel
                if not path.is_file():
                    reports.append(PageReport(page=rel, found=False, error="page not in the build"))
                    continue
                external.clear()
                failed.clear()
                report = PageReport(page=rel, found=True)
                try:
                    page.goto(path.as_uri(), wait_until="load", timeout=timeout_s * 1000)
                    data = page.evaluate(_MEASURE_JS, {"mathTimeoutMs": timeout_s * 1000,
                                                       "imageTimeoutMs": timeout_s * 1000,
                                                       "viewTimeoutMs": timeout_s * 1000})
                    if shots is not None:
                        shot = shots / (rel.replace("/", "__").removesuffix(".html") + ".png")
                        page.screenshot(path=str(shot), full_page=True)
                        report.screenshot = str(shot)
                except PlaywrightError as e:
                    report.error = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                    reports.append(report)
                    continue
                report.code_inputs = data["code_inputs"]
                report.code_outputs = data["code_outputs"]
                report.scrolling = [CodeBlock(**b) for b in data["scrolling"]]
                for im in data["images"]:
                    shown = im["loaded"] and im["rendered_width"] > 0
                    scale = im["rendered_width"] / im["natural_width"] if shown else 0.0
                    report.images.append(ImageInfo(**im, scale=round(scale, 3),
                                                   narrow=shown and scale < min_scale))
                report.math = MathInfo(**data["math"])
                report.views = [ViewInfo(**v) for v in data["views"]]
                nb = executed / (rel.removesuffix(".html") + ".ipynb")
                if nb.is_file():
                    figures = notebook_figures(nb)
                    report.notebook_figures, report.lost_figures = figures.images, figures.lost
                report.external_requests = sorted(set(external))
                report.missing_resources = sorted({_local_path(u, html) for u in failed})
                reports.append(report)
            version = browser.version
        finally:
            browser.close()
    return BookReport(html_dir=str(html), viewport=viewport, min_scale=min_scale,
                      browser=f"Chromium {version} ({chromium})", pages=reports)


def _local_path(url: str, html: Path) -> str:
    """A failed ``file:`` URL as a path relative to the build when inside it."""
    from urllib.parse import unquote, urlparse

    path = Path(unquote(urlparse(url).path))
    try:
        return str(path.relative_to(html))
    except ValueError:
        return str(path)


def format_report(report: BookReport, details: bool = True) -> str:
    """A readable table of a :class:`BookReport`: one row per page, then what failed (with ``details``)."""
    head = ("page", "code scrolls", "output scrolls", "images loaded", "figures", "narrow", "math typeset",
            "views shown", "status")
    rows = []
    for p in report.pages:
        if not p.found or p.error:
            rows.append((p.page, "-", "-", "-", "-", "-", "-", "-", p.error or "missing"))
            continue
        m = p.math
        assert m is not None
        math = f"{m.typeset}/{m.elements}"
        if m.untypeset or m.errors:
            math += f", {len(m.untypeset)} raw, {len(m.errors)} errors"
        n_img = len(p.images)
        rows.append((p.page, f"{len(p.scrolling_of('input'))}/{p.code_inputs}",
                     f"{len(p.scrolling_of('output'))}/{p.code_outputs}",
                     f"{n_img - len(p.missing_images)}/{n_img}",
                     "-" if p.notebook_figures is None else f"{p.output_figures}/{p.notebook_figures}",
                     str(len(p.narrow_images)), math,
                     f"{len(p.views) - len(p.blank_views)}/{len(p.views)}", "ok" if p.ok else "FAIL"))
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    fmt = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
    lines = [f"{report.browser}, viewport {report.viewport[0]}x{report.viewport[1]}, {report.html_dir}",
             fmt(head), fmt(tuple("-" * w for w in widths)), *map(fmt, rows)]
    if details:
        for p in report.pages:
            for b in p.scrolling:
                where = f"{p.page}: {b.kind} #{b.index + 1}" + (" (collapsed)" if b.hidden else "")
                lines.append(f"{where} scrolls by {b.scroll_width - b.client_width} px "
                             f"({b.client_width} px wide, ~{b.fits_chars} characters fit): {b.first_line!r}")
                if b.long_line_number:
                    lines.append(f"    line {b.long_line_number} has {b.long_line_chars} characters: {b.long_line!r}")
            for im in p.images:
                if not im.loaded:
                    lines.append(f"{p.page}: image not loaded: {im.src}")
                elif im.narrow:
                    lines.append(f"{p.page}: image shown at {im.rendered_width:.0f} px of its "
                                 f"{im.natural_width} px ({im.scale:.0%}): {im.src}")
            if p.notebook_figures is not None and p.output_figures != p.notebook_figures:
                lines.append(f"{p.page}: shows {p.output_figures} output figures, its executed notebook "
                             f"has {p.notebook_figures} image outputs")
            lines += [f"{p.page}: a figure reached the notebook as text only, in the cell {c!r}"
                      for c in p.lost_figures]
            if p.math is not None:
                if p.math.mathjax not in ("typeset", "absent"):
                    lines.append(f"{p.page}: MathJax {p.math.mathjax}")
                lines += [f"{p.page}: untypeset math {s}" for s in p.math.untypeset]
                lines += [f"{p.page}: MathJax error: {s}" for s in p.math.errors]
            for v in p.views:
                if not v.rendered:
                    lines.append(f"{p.page}: {v.kind} view #{v.index + 1} is blank")
            for path in p.missing_resources:
                lines.append(f"{p.page}: local file not loaded: {path}")
            if p.external_requests:
                lines.append(f"{p.page}: refused {len(p.external_requests)} request(s) off the local files: "
                             + ", ".join(p.external_requests[:3]) + (" ..." if len(p.external_requests) > 3 else ""))
    failed = [p.page for p in report.pages if not p.ok]
    lines.append(f"{len(report.pages) - len(failed)} of {len(report.pages)} pages pass"
                 + (f"; failing: {', '.join(failed)}" if failed else ""))
    return "\n".join(lines)
