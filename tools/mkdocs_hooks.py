"""MkDocs hooks for the notebook pages (registered under ``hooks:`` in mkdocs.yml).

mkdocs-jupyter renders a notebook with nbconvert, and two things in that HTML need fixing:

* **The table of contents.** The plugin builds it from a Markdown rendering of the notebook,
  which drops inline code from headings: "4. `select`, `asyncio.wait` and ..." becomes
  "4. , and ..." with an id that no heading on the page has, so the link goes nowhere.
  Here the TOC is rebuilt from the headings nbconvert actually wrote, ids included.
* **Mermaid diagrams in markdown cells.** nbconvert wraps them in a ``div.jp-Mermaid``
  that stays hidden until its own script has loaded Mermaid from a CDN. The site already
  serves Mermaid itself (Material renders every ``pre.mermaid``), so the wrapper is
  replaced by a visible one that nbconvert's script does not look for: no CDN request, and
  diagrams render offline.
"""

from __future__ import annotations

import html
from html.parser import HTMLParser
from typing import Any

from mkdocs.structure.pages import Page
from mkdocs.structure.toc import get_toc

HIDDEN_MERMAID = '<div class="jp-Mermaid"><pre class="mermaid">'
VISIBLE_MERMAID = '<div class="notebook-mermaid"><pre class="mermaid">'
HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}


class _HeadingCollector(HTMLParser):
    """Collects (level, id, text) of every heading with an id, minus its pilcrow link."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.headings: list[tuple[int, str, str]] = []
        self._current: tuple[int, str] | None = None
        self._text: list[str] = []
        self._in_anchor_link = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag in HEADINGS and attributes.get("id"):
            self._current = (HEADINGS[tag], attributes["id"] or "")
            self._text = []
        elif tag == "a" and "anchor-link" in (attributes.get("class") or "").split():
            self._in_anchor_link = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._in_anchor_link = False
        elif tag in HEADINGS and self._current is not None:
            level, heading_id = self._current
            self.headings.append((level, heading_id, " ".join("".join(self._text).split())))
            self._current = None

    def handle_data(self, data: str) -> None:
        if self._current is not None and not self._in_anchor_link:
            self._text.append(data)


def _toc_tokens(headings: list[tuple[int, str, str]]) -> list[dict[str, Any]]:
    """Nest flat headings the way Python-Markdown's toc extension does."""
    root: list[dict[str, Any]] = []
    stack: list[dict[str, Any]] = []
    for level, heading_id, text in headings:
        token = {"level": level, "id": heading_id, "name": html.escape(text), "children": []}
        while stack and stack[-1]["level"] >= level:
            stack.pop()
        (stack[-1]["children"] if stack else root).append(token)
        stack.append(token)
    return root


def on_page_content(html_content: str, page: Page, **_: Any) -> str:
    if not page.file.src_uri.endswith(".ipynb"):
        return html_content
    collector = _HeadingCollector()
    collector.feed(html_content)
    if collector.headings:
        page.toc = get_toc(_toc_tokens(collector.headings))
    return html_content.replace(HIDDEN_MERMAID, VISIBLE_MERMAID)
