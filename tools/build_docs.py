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
The links a notebook uses to work in Jupyter are therefore rewritten here to the site's page
URLs: ``../chapters/02-sse-in-depth.md#anchor`` to that chapter, ``03_something.ipynb`` to
that notebook's page, and ``../exercises/`` to the exercises section of the start page. A link
to a chapter or notebook that does not exist, or any other link out of ``notebooks/`` (such as
``../my_chat/sse.py``, which has no page), fails the build, as a broken link in a chapter does
under ``--strict`` (with ``--no-strict`` it is only reported).

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

# Markdown link targets, as Jupyter resolves them from notebooks/:
# ../chapters/02-sse-in-depth.md or ../chapters/02-sse-in-depth.md#the-wire-format
_CHAPTER_LINK = re.compile(r"\]\(\.\./chapters/(?P<page>[\w.-]+)\.md(?P<anchor>#[^)\s]*)?\)")
# a sibling notebook: (03_asyncio.ipynb) or (./03_asyncio.ipynb#section)
_NOTEBOOK_LINK = re.compile(r"\]\((?:\./)?(?P<name>[\w.-]+)\.ipynb(?P<anchor>#[^)\s]*)?\)")
# the exercises folder, or a file in it: (../exercises/) or (../exercises/heartbeat.py)
_EXERCISES_LINK = re.compile(r"\]\(\.\./exercises/?[\w./-]*\)")
# anything else that leaves notebooks/: no page on the site corresponds to it
_OTHER_RELATIVE_LINK = re.compile(r"\]\((?P<target>\.\./[^)\s]*)\)")
EXERCISES_SECTION = "../../#exercises"


class BuildError(Exception):
    """A notebook that fails, or links to a page the site does not have."""


def rewrite_links(source: str, notebook: str, notebook_names: set[str], problems: list[str]) -> str:
    """Turn a markdown cell's Jupyter-relative links into links between site pages.

    A staged notebook ``chapters/notebooks/NAME.ipynb`` is published at ``notebooks/NAME/``,
    so a chapter ``chapters/PAGE.md`` is ``../../PAGE/`` from it and a sibling notebook
    ``../OTHER/``. Links that lead nowhere on the site are appended to ``problems``.
    """

    def chapter(match: re.Match[str]) -> str:
        page = match["page"]
        if not (DOCS_DIR / f"{page}.md").is_file():
            problems.append(f"{notebook}: links to missing chapter ../chapters/{page}.md")
        target = "../../" if page == "index" else f"../../{page}/"
        return f"]({target}{match['anchor'] or ''})"

    def sibling(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in notebook_names:
            problems.append(f"{notebook}: links to missing notebook {name}.ipynb")
        return f"](../{name}/{match['anchor'] or ''})"

    def other(match: re.Match[str]) -> str:
        problems.append(f"{notebook}: links to {match['target']}, which has no page on the site")
        return match[0]

    source = _CHAPTER_LINK.sub(chapter, source)
    source = _NOTEBOOK_LINK.sub(sibling, source)
    source = _EXERCISES_LINK.sub(f"]({EXERCISES_SECTION})", source)
    return _OTHER_RELATIVE_LINK.sub(other, source)


def execute(path: Path, notebook: nbformat.NotebookNode) -> None:
    """Run ``notebook`` (read from ``path``) in place, in a fresh kernel, cwd notebooks/."""
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
        message = f"{path.name}: a cell ran longer than {CELL_TIMEOUT_S} s"
        raise BuildError(f"{message}\n{error}") from None
    except CellExecutionError as error:
        raise BuildError(f"{path.name} failed:\n{error}") from None
    print(f"  executed {path.name} in {time.monotonic() - started:.1f} s", flush=True)


def stage_notebooks(*, run: bool, strict: bool) -> list[Path]:
    """Write every notebook, executed or not, to the staging folder; return the copies."""
    if STAGING.exists():
        shutil.rmtree(STAGING)
    STAGING.mkdir(parents=True)
    (STAGING / ".gitignore").write_text("# Built by tools/build_docs.py; never committed.\n*\n")
    sources = sorted(NOTEBOOKS.glob("*.ipynb")) if NOTEBOOKS.is_dir() else []
    names = {path.stem for path in sources}
    staged = []
    problems: list[str] = []
    for path in sources:
        notebook = nbformat.read(path, as_version=4)
        # Links first: a broken one fails fast, before minutes of execution.
        for cell in notebook.cells:
            if cell.cell_type == "markdown":
                cell.source = rewrite_links(cell.source, path.name, names, problems)
        if problems and strict:
            raise BuildError("\n".join(problems))
        if run:
            execute(path, notebook)
        target = STAGING / path.name
        nbformat.write(notebook, target)
        staged.append(target)
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
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
        staged = stage_notebooks(run=not args.no_execute, strict=not args.no_strict)
    except BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"  {len(staged)} notebook(s) in {STAGING.relative_to(ROOT)}/", flush=True)
    return run_mkdocs(serve=args.serve, strict=not args.no_strict)


if __name__ == "__main__":
    sys.exit(main())
