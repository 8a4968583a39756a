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

The site has two editions (mkdocs-static-i18n, see mkdocs.yml): English at the root and
Chinese under ``zh/``, built in one mkdocs run. First ``tools/notebooks_zh.py`` builds the
Chinese notebooks, ``notebooks/NAME.zh.ipynb`` (same code, Chinese markdown and output); they
are executed and staged like the others, and the ``.zh`` suffix makes each the Chinese page
``zh/notebooks/NAME/``. A notebook without a Chinese edition shows its English one there.
Relative links therefore stay within each edition, and links to chapter sections are checked
in both editions.

Exit status is non-zero when a notebook raises, a cell runs longer than the timeout, a
notebook links to a missing page, or mkdocs reports any warning.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError

sys.path.insert(0, str(Path(__file__).resolve().parent))
import notebooks_zh

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
DOCS_DIR = ROOT / "chapters"
STAGING = DOCS_DIR / "notebooks"
SITE = ROOT / "site"  # site_dir in mkdocs.yml
# Where each edition is published below site/ (the i18n plugin's languages in mkdocs.yml).
EDITIONS = {"en": SITE, "zh": SITE / "zh"}
CELL_TIMEOUT_S = 120
LANES = 2  # notebooks run in two lanes side by side (see execute_all)

# A markdown link: [text](target). Targets with a title or spaces are left alone.
_LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")
# Targets as Jupyter resolves them from notebooks/: a chapter, a sibling notebook, exercises/.
_CHAPTER = re.compile(r"\.\./chapters/(?P<page>[\w.-]+)\.md")
_NOTEBOOK = re.compile(r"(?:\./)?(?P<name>[\w.-]+)\.ipynb")
_EXERCISES = re.compile(r"\.\./exercises(?:/[\w./-]*)?")
EXERCISES_SECTION = "../../#exercises"


class BuildError(Exception):
    """A notebook that fails, or links to a page the site does not have."""


def rewrite_links(
    source: str,
    notebook: str,
    notebook_names: set[str],
    problems: list[str],
    chapter_anchors: list[tuple[str, str, str]],
) -> str:
    """Turn a markdown cell's Jupyter-relative links into links between site pages.

    A staged notebook ``chapters/notebooks/NAME.ipynb`` is published at ``notebooks/NAME/``,
    so a chapter ``chapters/PAGE.md`` is ``../../PAGE/`` from it and a sibling notebook
    ``../OTHER/``. Links that lead nowhere on the site are appended to ``problems``, and
    links to a section of a chapter to ``chapter_anchors`` as (notebook, page, anchor), to
    be checked against the built pages.
    """

    def rewrite(match: re.Match[str]) -> str:
        target = match["target"]
        if target.startswith("#") or re.match(r"[a-z][a-z0-9+.-]*:", target):
            return match[0]  # an anchor on this page, or an absolute URL (https:, mailto:)
        path, _, anchor = target.partition("#")
        anchor = f"#{anchor}" if anchor else ""
        if chapter := _CHAPTER.fullmatch(path):
            page = chapter["page"]
            if not (DOCS_DIR / f"{page}.md").is_file():
                problems.append(f"{notebook}: links to missing chapter {path}")
            elif anchor:
                chapter_anchors.append((notebook, page, anchor[1:]))
            return f"]({'../../' if page == 'index' else f'../../{page}/'}{anchor})"
        if sibling := _NOTEBOOK.fullmatch(path):
            if sibling["name"] not in notebook_names:
                problems.append(f"{notebook}: links to missing notebook {path}")
            return f"](../{sibling['name']}/{anchor})"
        if _EXERCISES.fullmatch(path):
            return f"]({EXERCISES_SECTION})"
        problems.append(f"{notebook}: links to {target}, which has no page on the site")
        return match[0]

    return _LINK.sub(rewrite, source)


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


def _run_lane(lane: list[tuple[Path, nbformat.NotebookNode]]) -> list[nbformat.NotebookNode]:
    for path, notebook in lane:
        execute(path, notebook)
    return [notebook for _, notebook in lane]


def execute_all(
    notebooks: dict[Path, nbformat.NotebookNode],
) -> dict[Path, nbformat.NotebookNode]:
    """Run every notebook, in two lanes side by side, each lane a process of its own.

    A notebook spends most of its time waiting on the servers it starts and on sleeps, so two
    share the machine's cores well: with both editions of every notebook, one at a time took
    about two minutes. The two editions of a notebook run the same code and may use the same
    files (notebook 5 builds the guide's Go), so they share a lane and never run at once; the
    lanes are balanced by notebook size.
    """
    editions: dict[str, list[Path]] = {}
    for path in notebooks:
        editions.setdefault(path.name.split(".")[0], []).append(path)
    lanes: list[list[Path]] = [[] for _ in range(LANES)]
    sizes = [0] * LANES
    for group in sorted(editions.values(), key=lambda g: -sum(p.stat().st_size for p in g)):
        emptiest = sizes.index(min(sizes))
        lanes[emptiest] += group
        sizes[emptiest] += sum(p.stat().st_size for p in group)
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=LANES, mp_context=context) as pool:
        running = [
            (lane, pool.submit(_run_lane, [(path, notebooks[path]) for path in lane]))
            for lane in lanes
            if lane
        ]
        executed = {
            path: notebook
            for lane, future in running
            for path, notebook in zip(lane, future.result(), strict=True)
        }
    return {path: executed[path] for path in notebooks}


def stage_notebooks(*, run: bool, strict: bool) -> list[tuple[str, str, str]]:
    """Write every notebook, executed or not, to the staging folder.

    Returns the (notebook, page, anchor) links into chapters, to check after the build.
    """
    if STAGING.exists():
        shutil.rmtree(STAGING)
    STAGING.mkdir(parents=True)
    (STAGING / ".gitignore").write_text("# Built by tools/build_docs.py; never committed.\n*\n")
    # The Chinese notebooks (NAME.zh.ipynb) are built beside the English ones first; the
    # suffix makes mkdocs-static-i18n publish each as the Chinese page of NAME.
    try:
        notebooks_zh.build_all()
    except ValueError as error:  # a translation of an English cell that has changed since
        raise BuildError(str(error)) from None
    sources = sorted(NOTEBOOKS.glob("*.ipynb")) if NOTEBOOKS.is_dir() else []
    names = {path.stem for path in sources}
    problems: list[str] = []
    chapter_anchors: list[tuple[str, str, str]] = []
    notebooks = {}
    # Links first, for every notebook: a broken one fails fast, before minutes of execution.
    for path in sources:
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            if cell.cell_type == "markdown":
                cell.source = rewrite_links(
                    cell.source, path.name, names, problems, chapter_anchors
                )
        notebooks[path] = notebook
    problems = list(dict.fromkeys(problems))  # one report per broken link target
    if problems and strict:
        raise BuildError("\n".join(problems))
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    if run:
        notebooks = execute_all(notebooks)
    for path, notebook in notebooks.items():
        nbformat.write(notebook, STAGING / path.name)
    print(f"  {len(notebooks)} notebook(s) in {STAGING.relative_to(ROOT)}/", flush=True)
    return chapter_anchors


def missing_anchors(chapter_anchors: list[tuple[str, str, str]]) -> list[str]:
    """The notebooks' links to chapter sections that the built chapter pages lack."""
    missing = []
    for language, site in EDITIONS.items():
        for notebook, page, anchor in chapter_anchors:
            built = site / ("index.html" if page == "index" else f"{page}/index.html")
            if not built.is_file() or f'id="{anchor}"' not in built.read_text(encoding="utf-8"):
                missing.append(
                    f"{notebook}: links to #{anchor} in {page}.md, which has no such section"
                    f" on the {language} site"
                )
    return missing


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
    # Material 9.x prints a notice about MkDocs 2.0 on every run; it is not about this site.
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.call(command, cwd=ROOT, env=env)


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

    strict = not args.no_strict
    print(f"Staging notebooks from {NOTEBOOKS.relative_to(ROOT)}/", flush=True)
    try:
        chapter_anchors = stage_notebooks(run=not args.no_execute, strict=strict)
    except BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    status = run_mkdocs(serve=args.serve, strict=strict)
    if status != 0 or args.serve:
        return status
    problems = missing_anchors(chapter_anchors)
    for problem in problems:
        print(f"{'error' if strict else 'warning'}: {problem}", file=sys.stderr)
    return 1 if problems and strict else 0


if __name__ == "__main__":
    sys.exit(main())
