"""Build the published reading: execute the notebooks, then run mkdocs.

    .venv/bin/python tools/build_docs.py             # execute notebooks, mkdocs build --strict
    .venv/bin/python tools/build_docs.py --serve     # same, then mkdocs serve on 127.0.0.1:8000
    .venv/bin/python tools/build_docs.py --no-execute  # stage notebooks as stored (no outputs)

The notebooks live in ``notebooks/`` and are stored without outputs. Each one is run top to
bottom in a fresh ``python3`` kernel (this interpreter's, so run the script with the venv's
Python), with ``notebooks/`` as the working directory, and the executed copy is written to
``chapters/notebooks/``, the staging folder mkdocs-jupyter renders (``execute: false``).
The staging folder is rebuilt from scratch every time and git-ignores itself.

Notebook pages are HTML made by nbconvert, so mkdocs never checks the links inside them.
The links a notebook uses to work in Jupyter (``../chapters/02-sse-in-depth.md#anchor``,
``03_something.ipynb``) are therefore rewritten here to the site's page URLs, and a link to
a chapter or notebook that does not exist fails the build, as a broken link in a chapter
does under ``--strict``.

Exit status is non-zero when a notebook raises, a cell runs longer than the timeout, a
notebook links to a missing page, or mkdocs reports any warning.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
DOCS_DIR = ROOT / "chapters"
STAGING = DOCS_DIR / "notebooks"
CELL_TIMEOUT_S = 120

# A markdown link target to a chapter, written relative to notebooks/ as Jupyter sees it:
# ../chapters/02-sse-in-depth.md or ../chapters/02-sse-in-depth.md#the-wire-format
_CHAPTER_LINK = re.compile(r"\]\(\.\./chapters/(?P<page>[\w.-]+)\.md(?P<anchor>#[^)\s]*)?\)")
# A link to a sibling notebook: (03_asyncio.ipynb) or (./03_asyncio.ipynb#section)
_NOTEBOOK_LINK = re.compile(r"\]\((?:\./)?(?P<name>[\w.-]+)\.ipynb(?P<anchor>#[^)\s]*)?\)")


class BuildError(Exception):
    """A notebook that fails, or links to a page the site does not have."""


def rewrite_links(source: str, notebook: str, notebook_names: set[str]) -> str:
    """Turn a markdown cell's Jupyter-relative links into links between site pages.

    A staged notebook ``chapters/notebooks/NAME.ipynb`` is published at ``notebooks/NAME/``,
    so a chapter ``chapters/PAGE.md`` is ``../../PAGE/`` from it and a sibling notebook
    ``../OTHER/``.
    """

    def chapter(match: re.Match[str]) -> str:
        page = match["page"]
        if not (DOCS_DIR / f"{page}.md").is_file():
            raise BuildError(f"{notebook}: links to missing chapter ../chapters/{page}.md")
        target = "../../" if page == "index" else f"../../{page}/"
        return f"]({target}{match['anchor'] or ''})"

    def sibling(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in notebook_names:
            raise BuildError(f"{notebook}: links to missing notebook {name}.ipynb")
        return f"](../{name}/{match['anchor'] or ''})"

    return _NOTEBOOK_LINK.sub(sibling, _CHAPTER_LINK.sub(chapter, source))


def execute(path: Path) -> nbformat.NotebookNode:
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    started = time.monotonic()
    try:
        client.execute()
    except CellTimeoutError as error:
        raise BuildError(f"{path.name}: a cell ran longer than {CELL_TIMEOUT_S} s\n{error}") from None
    except CellExecutionError as error:
        raise BuildError(f"{path.name} failed:\n{error}") from None
    print(f"  executed {path.name} in {time.monotonic() - started:.1f} s", flush=True)
    return notebook


def stage_notebooks(*, run: bool) -> list[Path]:
    """Write every notebook, executed or not, to the staging folder; return the copies."""
    if STAGING.exists():
        shutil.rmtree(STAGING)
    STAGING.mkdir(parents=True)
    (STAGING / ".gitignore").write_text("# Built by tools/build_docs.py; never committed.\n*\n")
    sources = sorted(NOTEBOOKS.glob("*.ipynb")) if NOTEBOOKS.is_dir() else []
    names = {path.stem for path in sources}
    staged = []
    for path in sources:
        notebook = execute(path) if run else nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            if cell.cell_type == "markdown":
                cell.source = rewrite_links(cell.source, path.name, names)
        target = STAGING / path.name
        nbformat.write(notebook, target)
        staged.append(target)
    return staged


def run_mkdocs(*, serve: bool, strict: bool) -> int:
    command = [sys.executable, "-m", "mkdocs", "serve" if serve else "build"]
    command.append("--strict" if strict else "--no-strict")
    if serve:
        command += ["--dev-addr", "127.0.0.1:8000"]
        # Snippets include these folders: reload the pages when their code changes.
        for folder in ("my_chat", "solutions", "exercises"):
            if (ROOT / folder).is_dir():
                command += ["--watch", folder]
    # From the repository root: snippet paths (my_chat/sse.py) are relative to it.
    return subprocess.call(command, cwd=ROOT)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", action="store_true", help="serve the site with live reload")
    parser.add_argument(
        "--no-execute",
        action="store_true",
        help="stage the notebooks as stored, without outputs (a quick preview)",
    )
    parser.add_argument(
        "--no-strict",
        action="store_true",
        help="let mkdocs warnings pass (for previews while pages are still missing)",
    )
    args = parser.parse_args(argv)

    print(f"Staging notebooks from {NOTEBOOKS.relative_to(ROOT)}/", flush=True)
    try:
        staged = stage_notebooks(run=not args.no_execute)
    except BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"  {len(staged)} notebook(s) in {STAGING.relative_to(ROOT)}/", flush=True)
    return run_mkdocs(serve=args.serve, strict=not args.no_strict)


if __name__ == "__main__":
    sys.exit(main())
