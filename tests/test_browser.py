"""The built book in a real browser (headless Chromium driven by Playwright).

Per chapter: the title, every figure loaded and described (alt text), the across-seeds table with
verdicts, the "Reproduce" box, no error output and no raw non-finite number in a table (``nan`` or ``inf``
anywhere in a cell's text, as a word in any case, e.g. "90.45 ± nan%"; a missing value is written "—" or
"1 seed"); the scorecard lists every chapter, with checks apart. At 1280 px (a laptop) and 390 px (a
phone): no horizontal overflow, every verdict badge inside the viewport, math typeset offline, no workshop
wording; at 1280 px every figure shown at ≥ 60 % of its natural width (tick labels stay legible).
Screenshots of each chapter's first screen at both widths go to ``_build/screenshots/`` for a person to
look at. Skipped, with the reason, where no Chromium is installed (``make`` installs Debian's
where it can).
"""

import os
import re
import shutil
from pathlib import Path

import nbformat
import pytest

from optdyn import runner

REPO = Path(__file__).resolve().parents[1]
SHOTS = REPO / "_build" / "screenshots"
CHROMIUM = os.environ.get("OPTDYN_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VERDICTS = {"replicated", "not replicated", "inconclusive"}
VERDICT_CELLS = """
[...document.querySelectorAll('main table')].flatMap(table => {
  const heads = [...table.querySelectorAll('th')].map(th => th.innerText.trim());
  const column = heads.indexOf('verdict');
  if (column < 0) return [];
  return [...table.querySelectorAll('tbody tr:not(.optdyn-reason)')]
    .map(row => row.children[column]?.innerText.trim());
})
"""

#: A raw non-finite number as Python or JavaScript prints it, anywhere in a cell: "nan", "± NaN%", "-inf",
#: "Infinity"; words that merely contain the letters ("info", "finance") do not count.
NON_FINITE = re.compile(r"\b(?:nan|inf|infinity)\b", re.IGNORECASE)


def raw_values(cells: list[str]) -> list[str]:
    """The table cells that show a raw non-finite number, or that are a bare ``None``/``<NA>``."""
    return [c for c in cells if NON_FINITE.search(c) or c in ("None", "<NA>")]


#: Words from our workshop that a reader must never meet.
WORKSHOP = re.compile(r"\bthe brief\b|\bin the issue\b|\bthe pilot\b", re.IGNORECASE)
WIDTHS = (1280, 390)
#: Per verdict cell: does it lie inside the viewport horizontally?
VERDICTS_VISIBLE = """
[...document.querySelectorAll('main .optdyn-verdict')].map(b => {
  const r = b.getBoundingClientRect();
  return {text: b.innerText.trim(), inside: r.left >= 0 && r.right <= window.innerWidth + 1};
})
"""
TYPESET = "() => (window.MathJax?.startup?.promise || Promise.resolve()).then(() => true)"


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium: apt-get install chromium (make does, as root)"),
]


def _title(name: str) -> str:
    nb = nbformat.read(runner.chapters(REPO)[name], as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "markdown")
    return first.source.splitlines()[0].lstrip("# ").strip()


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def html(quick_book) -> Path:
    root, status = quick_book
    assert status == 0, "the quick build failed"
    return root / "_build" / "html"


def _open(browser, path: Path, width: int = 1280):
    page = browser.new_page(viewport={"width": width, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(path.as_uri(), wait_until="load")
    return page, errors


@pytest.mark.parametrize("name", sorted(runner.chapters(REPO)))
def test_chapter_page(browser, html, name):
    page, errors = _open(browser, html / "book" / "_executed" / f"{name}.html")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))
    main = page.locator("main")
    assert _title(name) in main.locator("h1").first.inner_text()
    images = page.evaluate(
        "[...document.querySelectorAll('main img')].map(i => "
        "({src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0, alt: i.alt}))"
    )
    assert len(images) >= 3, f"{name}: only {len(images)} figures"
    assert [i["src"] for i in images if not i["ok"]] == [], "figures that did not load"
    undescribed = [i["src"] for i in images if not i["alt"] or i["alt"].endswith(".png")]
    assert undescribed == [], "figures without alt text"
    headers = page.evaluate("[...document.querySelectorAll('main table th')].map(th => th.innerText.trim())")
    assert "verdict" in headers, f"{name}: no claims table"
    verdicts = page.evaluate(VERDICT_CELLS)
    assert verdicts and set(verdicts) <= VERDICTS, f"{name}: verdicts {set(verdicts)}"
    text = main.inner_text()
    assert f"optdyn run {name} --profile quick --seed 0" in text, "no Reproduce box"
    assert "Traceback (most recent call last)" not in text and page.locator(".output.error").count() == 0
    cells = page.evaluate("[...document.querySelectorAll('main td')].map(td => td.innerText.trim())")
    assert raw_values(cells) == [], f"{name}: a raw nan/inf/None in a table"
    assert page.locator("main .math").count() > 0, f"{name}: no math"
    assert errors == [], f"{name}: JavaScript errors {errors}"
    page.close()


#: Per figure of a chapter (the images in cell outputs): natural and displayed width, in CSS pixels.
FIGURE_WIDTHS = """
[...document.querySelectorAll('main .cell_output img')].map(i => ({
  src: i.getAttribute('src'), natural: i.naturalWidth, shown: i.getBoundingClientRect().width
}))
"""


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", sorted(runner.chapters(REPO)))
def test_chapter_reads_at_laptop_and_phone_width(browser, html, name, width):
    """No horizontal overflow, every verdict badge inside the viewport, the math typeset with no network
    (MathJax ships with the book), no workshop wording; a screenshot of the first screen at each width."""
    page, _ = _open(browser, html / "book" / "_executed" / f"{name}.html", width)
    page.evaluate(TYPESET)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}-{width}.png"))
    overflow = page.evaluate("document.scrollingElement.scrollWidth")
    assert overflow <= width, f"{name} at {width} px: the page is {overflow} px wide"
    badges = page.evaluate(VERDICTS_VISIBLE)
    assert badges and all(b["inside"] for b in badges), f"{name} at {width} px: verdicts outside the viewport"
    assert page.locator("main mjx-container").count() > 0, f"{name}: math not typeset"
    text = page.locator("main").inner_text()
    assert "\\(" not in text and "$$" not in text, f"{name}: raw TeX left in the text"
    local = page.evaluate(
        "[...document.scripts].filter(s => (s.src || '').includes('mathjax')).map(s => s.src)"
    )
    assert local and all(src.startswith("file:") for src in local), (
        f"{name}: MathJax from the network {local}"
    )
    assert not WORKSHOP.search(text), f"{name}: workshop wording {WORKSHOP.findall(text)}"
    if width == 1280:  # tick labels stay legible: no figure shrunk below 60 % of its natural width
        figures = page.evaluate(FIGURE_WIDTHS)
        small = [
            (f["src"], round(f["shown"]), f["natural"]) for f in figures if f["shown"] < 0.6 * f["natural"]
        ]
        assert figures and small == [], f"{name}: figures shown below 60 % of their width: {small}"
    page.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_scorecard_lists_every_chapter(browser, html, width):
    page, _ = _open(browser, html / "book" / "_executed" / "scorecard.html", width)
    page.screenshot(path=str(SHOTS / f"scorecard-{width}.png"), full_page=False)
    text = page.locator("main").inner_text()
    missing = [name for name in runner.chapters(REPO) if _title(name) not in text]
    assert missing == [], f"chapters missing from the scorecard: {missing}"
    assert "Checks of our own code" in text, "checks are not listed apart"
    overflow = page.evaluate("document.scrollingElement.scrollWidth")
    assert overflow <= width, f"scorecard at {width} px: the page is {overflow} px wide"
    page.close()


def test_every_page_renders_clean(browser, html):
    """Every page of the book, chapters and generated pages alike: no traceback, no raw nan/inf in a table,
    every image loaded, no JavaScript error."""
    pages = sorted((html / "book").rglob("*.html"))
    assert len(pages) >= len(runner.chapters(REPO)) + 3
    for path in pages:
        page, errors = _open(browser, path)
        where = path.relative_to(html)
        text = page.locator("main").inner_text()
        assert "Traceback (most recent call last)" not in text, f"{where}: a traceback"
        cells = page.evaluate("[...document.querySelectorAll('main td')].map(td => td.innerText.trim())")
        assert raw_values(cells) == [], f"{where}: a raw nan/inf/None in a table"
        broken = page.evaluate(
            "[...document.querySelectorAll('main img')].filter(i => !(i.complete && i.naturalWidth > 0))"
            ".map(i => i.getAttribute('src'))"
        )
        assert broken == [], f"{where}: images that did not load: {broken}"
        assert errors == [], f"{where}: JavaScript errors {errors}"
        page.close()
