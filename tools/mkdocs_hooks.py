"""MkDocs hooks (registered under ``hooks:`` in mkdocs.yml).

For every page, facts from the code and figures from the labs:

* **Generated tables.** A marker such as ``<!-- generated: settings -->`` in a chapter is
  replaced by the table ``tools/text_facts.py`` makes from my_chat's code (settings, events,
  error codes, limits), so the text cannot fall behind the code.
* **A lab's figures.** ``<!-- notebook-output: 02_sse_in_depth.ipynb cell-14 -->`` is
  replaced by what that cell printed when the build executed the notebook
  (``tools/build_docs.py`` stages the executed copies), with a link to the cell. A chapter
  shows the lab's own measurement instead of a pasted, dated transcript.
* **The stubs as generated.** Chapters include the exercise stubs (``exercises/NAME.py``).
  A learner edits those files, so the build includes fresh ones generated from
  ``solutions/`` instead (in ``build/docs-stubs/``, searched before the working copy).

Both editions (mkdocs-static-i18n builds the site once per language):

* **Words in the page's language.** The generated tables and the figure captions take
  their words from ``tools/facts.LANGUAGE.toml`` by the language of the page's own file: a
  ``NAME.zh.md`` page gets Chinese, an English page shown on the Chinese site (no
  translation yet) keeps English, like the text around it.
* **Notebooks stay pages.** mkdocs-static-i18n rebuilds every file as a plain mkdocs
  ``File``, and a plain ``File`` is a page only when it is Markdown, so the notebooks would
  be published as downloads (mkdocs-static-i18n issue #198), and the Chinese build would
  write the (English) notebook pages over the English site's. After it has run, each
  ``.ipynb`` is marked a page again and, in the Chinese build, placed under ``zh/``.
  A Chinese notebook is staged as ``NAME.zh.ipynb`` (``tools/notebooks_zh.py``), so the
  plugin's suffix rule makes it NAME's Chinese page; other notebooks show the English one.

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
document the server serves and Schemathesis checks. Its words are the page's language too:
the document's English summaries are translated in ``facts.zh.toml`` [openapi_text].
"""

from __future__ import annotations

import copy
import html
import json
import os
import shutil
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page
from mkdocs.structure.toc import get_toc

TOOLS = Path(__file__).resolve().parent
sys.path.insert(0, str(TOOLS))  # hooks are loaded by path; make the neighbours importable

import notebook_figures  # noqa: E402
import text_facts  # noqa: E402

try:  # mkdocs restores sys.path after loading this file: import the neighbours now
    import make_exercises
except ModuleNotFoundError:  # a student release has neither it nor solutions/
    make_exercises = None

ROOT = TOOLS.parent
DOCS_STUBS = ROOT / "build" / "docs-stubs"

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


def pristine_stubs() -> dict[str, str]:
    """File name -> the stub as generated: fresh from solutions/, or a release's pristine copy."""
    solutions = ROOT / "solutions"
    if solutions.is_dir() and make_exercises is not None:
        return make_exercises.generated_files(solutions)
    pristine = ROOT / "exercises" / ".pristine"
    return {path.name: path.read_text(encoding="utf-8") for path in pristine.glob("*.py")}


def on_config(config: MkDocsConfig, **_: Any) -> MkDocsConfig:
    """Write the stubs as generated, and let snippets find them before the learner's copies."""
    stubs = pristine_stubs()
    if not stubs:
        return config  # nothing better than the working copy exists
    target = DOCS_STUBS / "exercises"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for name, content in stubs.items():
        path = target / name
        path.parent.mkdir(parents=True, exist_ok=True)  # a stub may be a folder's file
        path.write_text(content, encoding="utf-8")
    snippets = config.mdx_configs.setdefault("pymdownx.snippets", {})
    base_path = list(snippets.get("base_path", ["."]))
    if str(DOCS_STUBS) not in base_path:
        snippets["base_path"] = [str(DOCS_STUBS), *base_path]
    return config


def _always_a_page() -> bool:
    return True


@event_priority(-200)  # after mkdocs-static-i18n's on_files (-100)
def on_files(files: Files, config: MkDocsConfig, **_: Any) -> Files:
    """The notebooks as pages again, in the edition being built."""
    i18n = config.plugins.get("i18n")
    language = getattr(i18n, "current_language", None)
    prefix = "" if language in (None, getattr(i18n, "default_language", None)) else language
    for file in files:
        if not file.src_uri.endswith(".ipynb") or file.is_documentation_page():
            continue
        # mkdocs-jupyter (which ran first) gave it notebooks/NAME/index.html; the i18n plugin
        # kept that, but as an asset, and for a fallback asset at the English place.
        file.is_documentation_page = _always_a_page  # type: ignore[method-assign]
        if prefix and not file.dest_path.startswith(f"{prefix}/"):
            english = copy.copy(file)  # the language switcher's link back to the English page
            file.dest_path = f"{prefix}/{file.dest_path}"
            file.abs_dest_path = os.path.normpath(os.path.join(config.site_dir, file.dest_path))
            file.url = file._get_url(config.use_directory_urls)
            file.alternates = {i18n.default_language: english, language: file}
        elif prefix:
            # A notebook with its own Chinese edition (NAME.zh.ipynb): the i18n plugin put it
            # under zh/ already, but, not taking it for a page, could not find the English
            # page to link back to. It is the same path without the prefix.
            english = copy.copy(file)
            english.dest_path = file.dest_path.removeprefix(f"{prefix}/")
            english.abs_dest_path = os.path.normpath(
                os.path.join(config.site_dir, english.dest_path)
            )
            english.url = english._get_url(config.use_directory_urls)
            file.alternates = {i18n.default_language: english, language: file}
    return files


def page_language(file: File) -> str:
    """The language the page's own text is in: ``zh`` for NAME.zh.md, else English."""
    return getattr(file, "locale", None) or text_facts.DEFAULT_LANGUAGE


def on_page_markdown(markdown: str, page: Page, **_: Any) -> str:
    origin = page.file.src_uri
    language = page_language(page.file)
    markdown = text_facts.render(markdown, origin=origin, language=language)
    markdown = with_openapi_reference(markdown, language)
    return notebook_figures.render(markdown, origin=origin, language=language)


OPENAPI_DOCUMENT = Path(__file__).resolve().parent.parent / "my_chat" / "openapi.json"
OPENAPI_MARKER = "<!-- openapi-reference -->"
_HTTP_METHODS = ("get", "post", "put", "patch", "delete")


def openapi_texts(document: dict[str, Any]) -> dict[str, str]:
    """The document's own English by key: each operation's summary, each tag's description.

    ``facts.zh.toml`` [openapi_text] translates them under the same keys (``operationId``,
    ``tag:NAME``).
    """
    texts = {
        operation["operationId"]: operation.get("summary", "")
        for item in document["paths"].values()
        for method, operation in item.items()
        if method in _HTTP_METHODS
    }
    texts |= {f"tag:{tag['name']}": tag.get("description", "") for tag in document.get("tags", [])}
    return texts


def _in_language(text: dict[str, Any], key: str, english: str) -> str:
    """The translation of the document's ``english`` under ``key``, or the English itself
    when there is none or it translates older words (the document changed since)."""
    entry = text.get("openapi_text", {}).get(key)
    return entry["text"] if entry is not None and entry["en"] == english else english


def _who_may_call(security: list[dict[str, list[str]]], words: dict[str, Any]) -> str:
    names = [" + ".join(words["schemes"][n] for n in req) for req in security if req]
    if not names:
        return words["anyone"]
    who = words["either"].join(names)
    # An empty requirement beside others: the credentials are optional.
    return words["optional"].replace("{who}", who) if len(names) < len(security) else who


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render_openapi_reference(
    document: dict[str, Any], language: str = text_facts.DEFAULT_LANGUAGE
) -> str:
    """Markdown: one table per tag (operation, who may call, answers, summary) and the links,
    in the words of ``tools/facts.LANGUAGE.toml``."""
    text = text_facts.words(language=language)
    words = text["openapi"]
    operations: dict[str, list[str]] = {tag["name"]: [] for tag in document.get("tags", [])}
    edges: list[str] = []
    for path, item in document["paths"].items():
        for method in _HTTP_METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            answers = ", ".join(f"`{status}`" for status in sorted(operation["responses"], key=str))
            summary = _in_language(text, operation["operationId"], operation.get("summary", ""))
            row = (
                f"| `{method.upper()} {path}` "
                f"| {_who_may_call(operation.get('security', []), words)} "
                f"| {answers} | {_cell(summary)} |"
            )
            operations.setdefault(operation["tags"][0], []).append(row)
            for response in operation["responses"].values():
                for name, link in response.get("links", {}).items():
                    edges.append(
                        f"    {operation['operationId']} -->|{name}| {link['operationId']}"
                    )
    lines = [words["intro"].replace("{version}", str(document["openapi"])), ""]
    tags = {tag["name"]: tag.get("description", "") for tag in document.get("tags", [])}
    for tag, rows in operations.items():
        if not rows:
            continue
        lines += [f"**{tag}**: {_in_language(text, f'tag:{tag}', tags.get(tag, ''))}", ""]
        lines += ["| " + " | ".join(words["headings"]) + " |", "|---|---|---|---|"]
        lines += [*rows, ""]
    if edges:
        lines += [
            words["links"],
            "",
            "```mermaid",
            "flowchart LR",
            *edges,
            "```",
            "",
        ]
    return "\n".join(lines)


def with_openapi_reference(markdown: str, language: str = text_facts.DEFAULT_LANGUAGE) -> str:
    if OPENAPI_MARKER not in markdown:
        return markdown
    document = json.loads(OPENAPI_DOCUMENT.read_text(encoding="utf-8"))
    return markdown.replace(OPENAPI_MARKER, render_openapi_reference(document, language))
