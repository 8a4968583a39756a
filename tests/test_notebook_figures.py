"""A chapter's figures from a lab: the marker becomes what the executed notebook printed."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import notebook_figures  # noqa: E402

NOTEBOOK = "04_gateway_module_by_module.ipynb"
CELL = "cell-46-tasks"
MARKER = f"<!-- notebook-output: {NOTEBOOK} {CELL} -->"


def staged_copy(folder: Path, text: str | None) -> Path:
    """The notebook as the build stages it, with ``text`` as the cell's printed output."""
    notebook = nbformat.read(ROOT / "notebooks" / NOTEBOOK, as_version=4)
    for cell in notebook.cells:
        if cell.get("id") == CELL and text is not None:
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
    nbformat.write(notebook, folder / NOTEBOOK)
    return folder


def test_the_marker_shows_what_the_cell_printed_and_links_to_it(tmp_path: Path):
    staging = staged_copy(tmp_path, "2 streams open; the server runs 7 tasks:\n")
    page = notebook_figures.render(f"Before.\n\n{MARKER}\n\nAfter.", staging=staging)
    assert "```text\n2 streams open; the server runs 7 tasks:\n```" in page
    assert f'href="../notebooks/{NOTEBOOK[:-6]}/#cell-id={CELL}"' in page
    assert "<!-- notebook-output" not in page


def test_a_build_without_execution_says_where_the_figures_are(tmp_path: Path):
    page = notebook_figures.render(MARKER, staging=staged_copy(tmp_path, None))
    assert page.startswith("!!! note")
    assert f"#cell-id={CELL}" in page


def test_a_marker_naming_a_missing_cell_fails(tmp_path: Path):
    with pytest.raises(notebook_figures.FigureError, match="no-such-cell"):
        notebook_figures.render(
            f"<!-- notebook-output: {NOTEBOOK} no-such-cell -->", staging=tmp_path
        )


def test_every_marker_in_the_chapters_names_a_real_cell():
    for path in sorted((ROOT / "chapters").glob("*.md")):
        for match in notebook_figures.MARKER.finditer(path.read_text(encoding="utf-8")):
            notebook = nbformat.read(ROOT / "notebooks" / match["notebook"], as_version=4)
            ids = {cell.get("id") for cell in notebook.cells if cell.cell_type == "code"}
            assert match["cell"] in ids, f"{path.name}: {match[0]}"


def test_ansi_colours_are_removed():
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print()")
    cell.id = "c1"
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="\x1b[31mred\x1b[0m\n")]
    notebook.cells.append(cell)
    assert notebook_figures.cell_text(notebook, "c1") == "red"
    assert re.fullmatch(r"red", notebook_figures.cell_text(notebook, "c1"))


def test_a_chinese_page_shows_what_the_chinese_notebook_printed(tmp_path: Path):
    staging = staged_copy(tmp_path, "2 streams open; the server runs 7 tasks:\n")
    chinese = nbformat.read(staging / NOTEBOOK, as_version=4)
    for cell in chinese.cells:
        if cell.get("id") == CELL:
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="2 个事件流\n")]
    nbformat.write(chinese, staging / NOTEBOOK.replace(".ipynb", ".zh.ipynb"))
    assert "2 个事件流" in notebook_figures.render(MARKER, staging=staging, language="zh")
    assert "2 个事件流" not in notebook_figures.render(MARKER, staging=staging, language="en")
