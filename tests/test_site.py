"""The built site in headless Chromium: every page renders, with no raw Mermaid or errors.

Run after ``make docs-build`` (``make test`` does). A missing site fails, it never skips.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from playwright.async_api import Browser, Error, Page, Request, Response, async_playwright
from playwright.async_api import TimeoutError as PlaywrightTimeout

from my_chat.serve import serve
from tests.chromium import CHROMIUM, CHROMIUM_ARGS

pytestmark = [pytest.mark.browser, pytest.mark.needs_solutions]

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "site"
LANES = 3  # pages open at once (in_lanes): on two cores, more only wait longer each
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


async def in_lanes(
    browser: Browser, paths: list[str], check: Callable[[Page, str], Awaitable[None]]
) -> None:
    """``check(page, path)`` for every path, LANES pages at a time, each lane in a browser
    context of its own. One page after another, the forty-odd pages of both editions took a
    minute and a half, much of it Chromium waiting on one core for the page's scripts."""
    remaining = iter(paths)  # shared: each lane takes the next path when it is free

    async def lane() -> None:
        context = await browser.new_context()
        try:
            page = await context.new_page()
            for path in remaining:
                await check(page, path)
        finally:
            await context.close()

    await asyncio.gather(*(lane() for _ in range(LANES)))


async def test_every_page_renders_cleanly():
    assert (SITE / "index.html").exists(), "build the site first: make docs-build"
    pages = site_pages()
    assert len(pages) >= 12, pages
    problems: list[str] = []
    notebook_pages = 0
    mermaid_diagrams = 0

    async def check(page: Page, path: str) -> None:
        where = f"/{path}"
        failed_requests: list[str] = []

        def on_request_failed(request: Request) -> None:
            # A request cut short because the page was left for the next one is no problem.
            if "ERR_ABORTED" not in (request.failure or ""):
                failed_requests.append(request.url)

        def on_response(response: Response) -> None:
            if response.status >= 400:
                failed_requests.append(response.url)

        def on_page_error(error: Error) -> None:
            problems.append(f"{where}: script error: {error}")

        handlers = {
            "requestfailed": on_request_failed,
            "response": on_response,
            "pageerror": on_page_error,
        }
        for event, handler in handlers.items():
            page.on(event, handler)
        try:
            await check_page(page, path, where, failed_requests)
        finally:
            for event, handler in handlers.items():
                page.remove_listener(event, handler)

    async def check_page(page: Page, path: str, where: str, failed_requests: list[str]) -> None:
        nonlocal notebook_pages, mermaid_diagrams
        response = await page.goto(f"{url}/{path}", wait_until="networkidle")
        if response is None or response.status != 200:
            problems.append(f"{where}: status {response and response.status}")
            return
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

    async with serve(static_site()) as url, async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        await in_lanes(browser, pages, check)
        await browser.close()
    assert not problems, "\n".join(sorted(problems))
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


# --- the Chinese edition (site/zh/, mkdocs-static-i18n) -----------------------------------

ZH = SITE / "zh"
CJK_FONT = "Noto Sans CJK SC"  # Debian's fonts-noto-cjk, installed by .ci/run
# Pages to open: the translated start page and glossary, a chapter that may still fall back
# to English, and a Chinese notebook page (built by tools/notebooks_zh.py).
ZH_PAGES = ["", "glossary/", "04-gateway-module-by-module/", "notebooks/01_im_basics/"]
# Renders each character alone in the page's own font. With no font that has the glyph,
# Chromium draws the same empty box (.notdef) for all of them: identical pixels mean tofu.
GLYPHS = """async (chars) => {
    const style = getComputedStyle(document.querySelector('.md-content'));
    const font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
    const canvas = new OffscreenCanvas(40, 40), context = canvas.getContext('2d');
    const draw = (ch) => {
        context.clearRect(0, 0, 40, 40);
        context.font = font;
        context.fillText(ch, 4, 30);
        return Array.from(context.getImageData(0, 0, 40, 40).data).join(',');
    };
    const missing = draw('\\u{10FFFD}');  // a code point no font draws
    const drawn = chars.map(draw);
    return {
        font,
        tofu: chars.filter((ch, i) => drawn[i] === missing),
        distinct: new Set(drawn).size,
        width: (() => { context.font = font; return context.measureText(chars.join('')).width; })(),
        em: parseFloat(style.fontSize),
    };
}"""


def nav_translations() -> tuple[list[str], dict[str, str]]:
    """The English nav labels of mkdocs.yml, and the zh language's nav_translations."""
    text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    nav_block = text[text.index("\nnav:\n") :]
    labels = re.findall(r"^\s*- \"?([^\n\"]+?)\"?:(?: \S+\.(?:md|ipynb))?$", nav_block, re.M)
    block = text[text.index("nav_translations:") : text.index("\nnav:\n")]
    pairs = re.findall(r"^ {12}(?:\"([^\"\n]+)\"|([^\"\n:]+)): (.+)$", block, re.M)
    return labels, {quoted or plain: label for quoted, plain, label in pairs}


def test_the_chinese_notebook_page_is_the_chinese_notebook_with_its_figures():
    chinese = (ZH / "notebooks/01_im_basics/index.html").read_text(encoding="utf-8")
    english = (SITE / "notebooks/01_im_basics/index.html").read_text(encoding="utf-8")
    assert "即时通信基础" in chinese and "即时通信基础" not in english
    assert 'use_language("zh")' in chinese  # the one cell the English notebook lacks
    if "every method delivered all" in english:  # an executed build: Chinese output, figures
        assert "每种方式都送达了全部" in chinese
        figure = 'src="data:image/png'  # an <img>, whatever the order of its attributes
        assert chinese.count(figure) == english.count(figure) > 0


def test_every_navigation_label_has_a_chinese_translation():
    labels, translated = nav_translations()
    assert len(labels) >= 20, labels
    missing = [label for label in labels if label not in translated]
    assert not missing, f"add these to nav_translations (zh) in mkdocs.yml: {missing}"
    unknown = sorted(set(translated) - set(labels))
    assert not unknown, f"nav_translations names labels the nav does not have: {unknown}"


def test_the_chinese_site_has_a_page_for_every_english_page():
    assert (ZH / "index.html").exists(), "build the site first: make docs-build"
    english = {page for page in site_pages() if not page.startswith("zh/")}
    chinese = {page.removeprefix("zh/") for page in site_pages() if page.startswith("zh/")}
    assert english - chinese == set(), "pages only the English site has"


async def test_chinese_pages_render_in_chinese_with_cjk_glyphs():
    assert (ZH / "index.html").exists(), "build the site first: make docs-build"
    labels, translated = nav_translations()
    untranslated_labels = {label for label in labels if translated.get(label) != label}
    problems: list[str] = []

    async def check(page: Page, path: str) -> None:
        where = f"/zh/{path}"

        def on_page_error(error: Error) -> None:
            problems.append(f"{where}: script error: {error}")

        page.on("pageerror", on_page_error)
        try:
            await check_page(page, path, where)
        finally:
            page.remove_listener("pageerror", on_page_error)

    async def check_page(page: Page, path: str, where: str) -> None:
        response = await page.goto(f"{url}/zh/{path}", wait_until="networkidle")
        if response is None or response.status != 200:
            problems.append(f"{where}: status {response and response.status}")
            return
        report = await page.evaluate(
            """async (font) => {
                await document.fonts.load(`16px "${font}"`, '连接');
                const text = document.querySelector('.md-content').innerText;
                return {
                    lang: document.documentElement.lang,
                    fontReady: document.fonts.check(`16px "${font}"`, '连接'),
                    han: [...new Set(text.match(/\\p{Script=Han}/gu) || [])].slice(0, 30),
                    nav: [...document.querySelectorAll(
                        '.md-nav--primary .md-nav__link, .md-tabs__link')]
                        .map(el => el.innerText.trim()).filter(Boolean),
                    switcher: [...document.querySelectorAll('.md-header a[hreflang]')]
                        .map(a => [a.hreflang, new URL(a.href).pathname]),
                    html: document.documentElement.outerHTML,
                };
            }""",
            CJK_FONT,
        )
        if report["lang"] != "zh":
            problems.append(f"{where}: <html lang={report['lang']!r}>, not zh")
        if not report["fontReady"]:
            problems.append(f"{where}: the font {CJK_FONT!r} is not available")
        han = report["han"] or ["连", "接"]  # a fallback English page: the nav is Chinese
        glyphs = await page.evaluate(GLYPHS, han)
        if glyphs["tofu"] or glyphs["distinct"] < len(han):
            problems.append(f"{where}: no glyph for {glyphs['tofu']} in {glyphs['font']}")
        if glyphs["width"] < 0.8 * glyphs["em"] * len(han):  # a CJK character is 1 em wide
            problems.append(f"{where}: {han} rendered {glyphs['width']}px wide")
        english_nav = sorted(set(report["nav"]) & untranslated_labels)
        if english_nav:
            problems.append(f"{where}: navigation not translated: {english_nav}")
        if not any("\u4e00" <= ch <= "\u9fff" for label in report["nav"] for ch in label):
            problems.append(f"{where}: no Chinese in the navigation {report['nav'][:5]}")
        switcher = dict(report["switcher"])
        if switcher.get("en") != f"/{path}" or switcher.get("zh") != f"/zh/{path}":
            problems.append(f"{where}: language switcher {report['switcher']}")
        for raw in ("--8<--", "<!-- generated:", "<!-- notebook-output:", "FactsError"):
            if raw in report["html"]:
                problems.append(f"{where}: shows {raw!r}")

    async with serve(static_site()) as url, async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        await in_lanes(browser, ZH_PAGES, check)
        await browser.close()
    assert not problems, "\n".join(sorted(problems))
