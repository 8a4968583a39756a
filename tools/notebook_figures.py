"""A lab's measured figures, shown in a chapter as the executed notebook printed them.

A chapter writes ``<!-- notebook-output: 02_sse_in_depth.ipynb cell-14 -->`` where it would
otherwise paste a transcript. At build time, ``render`` replaces the marker with the text that
cell printed in the executed copy ``tools/build_docs.py`` staged in ``chapters/notebooks/``,
and a link to the cell on the notebook's page. The figures are therefore always those of
the build's own run, and the chapter says so. The surrounding words come from
``tools/facts.LANGUAGE.toml`` (``[notebook_output]``), in the page's language.

A build with ``--no-execute`` stages notebooks without outputs; the marker then becomes a
note saying where the figures are, and the build still passes. A marker naming a notebook
or a cell that does not exist fails the build.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import text_facts

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
STAGING = ROOT / "chapters" / "notebooks"
# A marker inside `code` is an example of one, and stays as it is.
MARKER = re.compile(
    r"(?<!`)<!-- notebook-output: (?P<notebook>[\w.-]+\.ipynb) (?P<cell>[\w-]+) -->(?!`)"
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class FigureError(Exception):
    """A marker that names a notebook or cell that does not exist."""


def cell_text(notebook: nbformat.NotebookNode, cell_id: str) -> str | None:
    """What the cell printed (stdout and plain-text results), or None if it has no outputs."""
    for cell in notebook.cells:
        if cell.get("id") != cell_id:
            continue
        parts = []
        for output in cell.get("outputs", []):
            if output.output_type == "stream" and output.name == "stdout":
                parts.append(output.text)
            elif output.output_type in ("execute_result", "display_data"):
                plain = output.get("data", {}).get("text/plain")
                if plain and "image/png" not in output.get("data", {}):
                    parts.append(plain + "\n")
        text = _ANSI.sub("", "".join(parts)).rstrip("\n")
        return text or None
    raise FigureError(f"no cell {cell_id!r}")


def _page_url(notebook: str) -> str:
    # A chapter is published at /PAGE/, a notebook at /notebooks/NAME/.
    return f"../notebooks/{notebook.removesuffix('.ipynb')}/"


def render(
    markdown: str,
    *,
    origin: str = "",
    staging: Path = STAGING,
    language: str = text_facts.DEFAULT_LANGUAGE,
) -> str:
    if MARKER.search(markdown) is None:
        return markdown
    words = text_facts.words(language=language)["notebook_output"]

    def replace(match: re.Match[str]) -> str:
        notebook, cell_id = match["notebook"], match["cell"]
        if not (NOTEBOOKS / notebook).is_file():
            raise FigureError(f"{origin}: no notebook {notebook}")
        link = f'<a href="{_page_url(notebook)}#cell-id={cell_id}">{words["link"]}</a>'
        staged = staging / notebook
        # A Chinese page shows what the Chinese notebook printed, where there is one.
        localized = staging / notebook.replace(".ipynb", f".{language}.ipynb")
        if language != text_facts.DEFAULT_LANGUAGE and localized.is_file():
            staged = localized
        source = staged if staged.is_file() else NOTEBOOKS / notebook
        try:
            text = cell_text(nbformat.read(source, as_version=4), cell_id)
        except FigureError as error:
            raise FigureError(f"{origin}: {notebook}: {error}") from None
        if text is None:
            link = link.replace(f">{words['link']}<", f">{words['missing_link']}<")
            block = f'!!! note "{words["missing_title"]}"\n    {words["missing"]} {link}.\n'
        else:
            fence = "````" if "```" in text else "```"
            block = f"{fence}text\n{text}\n{fence}\n\n<small>{words['caption']} {link}</small>\n"
        return text_facts.indented_like(markdown, match, block)

    return MARKER.sub(replace, markdown)
