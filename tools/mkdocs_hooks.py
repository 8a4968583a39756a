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

And one for the API page: ``chapters/api.md`` holds a marker that is replaced by a reference
of every operation, rendered from ``my_chat/openapi.json``, so the page cannot drift from the
document the server serves and Schemathesis checks.
"""

from __future__ import annotations

import html
import json
from html.parser import HTMLParser
from pathlib import Path
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


OPENAPI_DOCUMENT = Path(__file__).resolve().parent.parent / "my_chat" / "openapi.json"
OPENAPI_MARKER = "<!-- openapi-reference -->"
_HTTP_METHODS = ("get", "post", "put", "patch", "delete")
_SCHEME_NAMES = {
    "bearerToken": "token",
    "sessionCookie": "cookie",
    "serviceKey": "service key",
}


def _who_may_call(security: list[dict[str, list[str]]]) -> str:
    names = [" + ".join(_SCHEME_NAMES[n] for n in req) for req in security if req]
    if not names:
        return "anyone"
    # An empty requirement beside others: the credentials are optional.
    return ("optional: " if len(names) < len(security) else "") + " or ".join(names)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render_openapi_reference(document: dict[str, Any]) -> str:
    """Markdown: one table per tag (operation, who may call, answers, summary) and the links."""
    operations: dict[str, list[str]] = {tag["name"]: [] for tag in document.get("tags", [])}
    edges: list[str] = []
    for path, item in document["paths"].items():
        for method in _HTTP_METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            answers = ", ".join(f"`{status}`" for status in sorted(operation["responses"], key=str))
            row = (
                f"| `{method.upper()} {path}` | {_who_may_call(operation.get('security', []))} "
                f"| {answers} | {_cell(operation.get('summary', ''))} |"
            )
            operations.setdefault(operation["tags"][0], []).append(row)
            for response in operation["responses"].values():
                for name, link in response.get("links", {}).items():
                    edges.append(
                        f"    {operation['operationId']} -->|{name}| {link['operationId']}"
                    )
    lines = [
        f"Rendered from `my_chat/openapi.json` (OpenAPI {document['openapi']}), which the "
        "server also serves at `GET /api/openapi.json`. Who may call: *token* is "
        "`Authorization: Bearer <token>`, *cookie* the page's `my_chat_session` cookie, "
        "*service key* `Authorization: Bearer <service key>`. Every error answer has the "
        'body `{"error": "<code>", "message": "<text>"}`.',
        "",
    ]
    tags = {tag["name"]: tag.get("description", "") for tag in document.get("tags", [])}
    for tag, rows in operations.items():
        if not rows:
            continue
        lines += [f"**{tag}**: {tags.get(tag, '')}", ""]
        lines += ["| operation | who may call | answers | what it does |", "|---|---|---|---|"]
        lines += [*rows, ""]
    if edges:
        lines += [
            "The document's links, which Schemathesis' stateful phase follows from one "
            "answer to the next request:",
            "",
            "```mermaid",
            "flowchart LR",
            *edges,
            "```",
            "",
        ]
    return "\n".join(lines)


def on_page_markdown(markdown: str, page: Page, **_: Any) -> str:
    if OPENAPI_MARKER not in markdown:
        return markdown
    document = json.loads(OPENAPI_DOCUMENT.read_text(encoding="utf-8"))
    return markdown.replace(OPENAPI_MARKER, render_openapi_reference(document))
