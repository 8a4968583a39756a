"""The built site in headless Chromium: every page renders, with no raw Mermaid or errors.

Run after ``make docs-build`` (``make test`` does). A missing site fails, it never skips.
"""

from __future__ import annotations

import contextlib
import html
import re
from pathlib import Path

import pytest
from aiohttp import web
from playwright.async_api import TimeoutError as PlaywrightTimeout
from playwright.async_api import async_playwright

from my_chat.serve import serve
from tests.chromium import CHROMIUM, CHROMIUM_ARGS

pytestmark = [pytest.mark.browser, pytest.mark.needs_solutions]

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "site"
# Material swaps each <pre class="mermaid"> for a <div class="mermaid"> and draws the diagram
# into that div's closed shadow root: rendered means a div with no source text left in it.
RENDERED = "el => el.tagName === 'DIV' && el.textContent.trim() === ''"
ERROR_TEXTS = (
    "Traceback (most recent call last)",
    "Syntax error in text",
    '--8<-- "',  # an include that was not processed
    "CellExecutionError",
    "Error rendering",
)


def site_pages() -> list[str]:
    pages = sorted(
        str(p.relative_to(SITE).parent).replace("\\", "/")
        for p in SITE.rglob("index.html")
        if "assets" not in p.parts and "javascripts" not in p.parts
    )
    return ["" if page == "." else page + "/" for page in pages]


def static_site() -> web.Application:
    app = web.Application()

    async def index(request: web.Request) -> web.StreamResponse:
        path = SITE / request.match_info["path"]
        if path.is_dir():
            path = path / "index.html"
        if not path.resolve().is_relative_to(SITE.resolve()) or not path.exists():
            raise web.HTTPNotFound()
        return web.FileResponse(path)

    app.router.add_get("/{path:.*}", index)
    return app


async def test_every_page_renders_cleanly():
    assert (SITE / "index.html").exists(), "build the site first: make docs-build"
    pages = site_pages()
    assert len(pages) >= 12, pages
    problems: list[str] = []
    notebook_pages = 0
    mermaid_diagrams = 0
    async with serve(static_site()) as url, async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await browser.new_page()
        failed_requests: list[str] = []
        # A request cut short because the test moved on to the next page is not a problem.
        page.on(
            "requestfailed",
            lambda r: None if "ERR_ABORTED" in (r.failure or "") else failed_requests.append(r.url),
        )
        page.on("response", lambda r: failed_requests.append(r.url) if r.status >= 400 else None)
        page.on("pageerror", lambda e: problems.append(f"script error: {e}"))
        for path in pages:
            failed_requests.clear()
            response = await page.goto(f"{url}/{path}", wait_until="networkidle")
            where = f"/{path}"
            if response is None or response.status != 200:
                problems.append(f"{where}: status {response and response.status}")
                continue
            # Mermaid renders asynchronously; give it the time it needs.
            with contextlib.suppress(PlaywrightTimeout):
                await page.wait_for_function(
                    f"() => [...document.querySelectorAll('.mermaid')].every({RENDERED})",
                    timeout=15_000,
                )
            report = await page.evaluate(
                """() => ({
                    text: document.body.innerText,
                    brokenImages: [...document.images]
                        .filter(img => img.complete && img.naturalWidth === 0)
                        .map(img => img.src),
                    rawMermaid: [...document.querySelectorAll('.mermaid')]
                        .filter(el => !(%s)(el)).length,
                    diagrams: [...document.querySelectorAll('.mermaid')]
                        .filter(%s).length,
                    notebookImages: document.querySelectorAll(
                        '.jp-RenderedImage img, .jp-OutputArea-output img').length,
                    isNotebook: !!document.querySelector('.jp-Notebook, .jupyter-wrapper'),
                    stderr: document.querySelectorAll(
                        '[data-mime-type="application/vnd.jupyter.stderr"]').length,
                })""".replace("%s", RENDERED)
            )
            for image in report["brokenImages"]:
                problems.append(f"{where}: broken image {image}")
            if report["rawMermaid"]:
                problems.append(f"{where}: {report['rawMermaid']} Mermaid block(s) not rendered")
            for text in ERROR_TEXTS:
                if text in report["text"]:
                    problems.append(f"{where}: shows {text!r}")
            for failed in failed_requests:
                if failed.startswith(url):
                    problems.append(f"{where}: failed to load {failed}")
            mermaid_diagrams += report["diagrams"]
            if report["isNotebook"]:
                notebook_pages += 1
                if not report["notebookImages"]:
                    problems.append(f"{where}: a notebook page without any figure")
        await browser.close()
    assert not problems, "\n".join(problems)
    assert notebook_pages >= 5, f"only {notebook_pages} notebook pages rendered"
    assert mermaid_diagrams >= 5, f"only {mermaid_diagrams} Mermaid diagrams rendered"


def test_the_navigation_shows_the_labels_of_mkdocs_yml():
    """A notebook's page is named by its nav label, not by the notebook's first heading."""
    nav = re.findall(
        r"^\s*- \"?(?P<label>[^\n:\"]+)\"?: (notebooks/\w+)\.ipynb$",
        (ROOT / "mkdocs.yml").read_text(encoding="utf-8"),
        re.M,
    )
    assert len(nav) >= 5
    for label, page in nav:
        built = (SITE / page / "index.html").read_text(encoding="utf-8")
        title = re.search(r"<title>(.*?)</title>", built, re.S)
        assert title and html.unescape(title[1]).startswith(label), (page, title and title[1])


def test_no_generated_marker_is_left_in_the_site():
    for path in SITE.rglob("index.html"):
        text = path.read_text(encoding="utf-8")
        assert "<!-- generated:" not in text and "<!-- notebook-output:" not in text, path
