"""Build the Chinese notebooks from the English ones and their translation files.

    .venv/bin/python tools/notebooks_zh.py            # write notebooks/NAME.zh.ipynb
    .venv/bin/python tools/notebooks_zh.py --check    # report problems, build nothing
    .venv/bin/python tools/notebooks_zh.py --hashes NAME  # each markdown cell's source hash

There is one source of code: ``notebooks/NAME.ipynb``. Its Chinese edition takes every cell
from it and only the markdown from ``notebooks/zh/NAME.toml``, a table per cell id::

    [c000]
    source = "sha256:0123456789abcdef"   # the English cell this translates (first 16 hex)
    zh = '''# 即时通信基础 ...'''

A markdown cell without an entry stays English (``notebooks/zh/untranslated.txt`` lists
those, and every notebook without a translation file); an entry whose English cell changed
since (its hash differs) or that names no markdown cell is a problem, and the test fails.
The built notebook gets one extra code cell, before the first code cell, that makes
``nbtext`` print and plot in Chinese (with a CJK font); every other code cell is the English
one, byte for byte (``tests/test_notebooks_zh.py`` checks that).

The output ``notebooks/NAME.zh.ipynb`` sits beside the English notebook, so it runs with the
same working directory and imports (``nbtext``, ``texts/``), and it is git-ignored:
``make test`` builds it before nbmake runs the notebooks, and ``tools/build_docs.py`` builds
it before staging, where the ``.zh`` suffix is what mkdocs-static-i18n needs to publish it
as the Chinese page ``/zh/notebooks/NAME/``.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import sys
import tomllib
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
TRANSLATIONS = NOTEBOOKS / "zh"
UNTRANSLATED = TRANSLATIONS / "untranslated.txt"
LANGUAGE_CELL_ID = "zh-language"
LANGUAGE_CELL = """\
# 中文版：本笔记本由 tools/notebooks_zh.py 从英文版生成，代码与英文版逐字相同，只多了这一格：
# 让代码打印和绘制的文字使用中文（notebooks/texts/ 中的消息表），图表使用 CJK 字体。
import nbtext

nbtext.use_language("zh")"""


def source_hash(source: str) -> str:
    return "sha256:" + hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]


def english_notebooks() -> list[Path]:
    return sorted(p for p in NOTEBOOKS.glob("*.ipynb") if not p.stem.endswith(".zh"))


def translation_path(name: str) -> Path:
    return TRANSLATIONS / f"{name}.toml"


def load_translation(name: str) -> dict[str, dict[str, str]]:
    path = translation_path(name)
    return tomllib.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def output_path(name: str) -> Path:
    return NOTEBOOKS / f"{name}.zh.ipynb"


def build(english: nbformat.NotebookNode, translation: dict[str, dict[str, str]]):
    """The Chinese notebook: English cells, translated markdown, one language cell."""
    chinese = copy.deepcopy(english)
    for cell in chinese.cells:
        entry = translation.get(cell.get("id", ""))
        if cell.cell_type == "markdown" and entry is not None:
            cell.source = entry["zh"].rstrip("\n")
    first_code = next(
        (n for n, cell in enumerate(chinese.cells) if cell.cell_type == "code"), len(chinese.cells)
    )
    language = nbformat.v4.new_code_cell(LANGUAGE_CELL)
    language.id = LANGUAGE_CELL_ID
    chinese.cells.insert(first_code, language)
    return chinese


def problems(english: nbformat.NotebookNode, translation: dict[str, dict[str, str]]) -> list[str]:
    """Entries that name no markdown cell, or translate an English text that has changed."""
    markdown = {c.get("id"): c.source for c in english.cells if c.cell_type == "markdown"}
    found = []
    for cell_id, entry in translation.items():
        if cell_id not in markdown:
            found.append(f"{cell_id}: no markdown cell has this id")
        elif set(entry) != {"source", "zh"}:
            found.append(f"{cell_id}: an entry has exactly the keys source and zh")
        elif entry["source"] != (current := source_hash(markdown[cell_id])):
            found.append(
                f"{cell_id}: the English cell changed ({entry['source']} -> {current});"
                " translate the change, then update source"
            )
    return found


def untranslated() -> list[str]:
    """``NAME`` for a notebook without a translation file, ``NAME:CELL`` for a missing cell."""
    missing = []
    for path in english_notebooks():
        if not translation_path(path.stem).is_file():
            missing.append(path.stem)
            continue
        translation = load_translation(path.stem)
        english = nbformat.read(path, as_version=4)
        missing += [
            f"{path.stem}:{cell.id}"
            for cell in english.cells
            if cell.cell_type == "markdown" and cell.get("id") not in translation
        ]
    return missing


def listed_untranslated() -> list[str]:
    lines = UNTRANSLATED.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def build_all() -> list[Path]:
    """Write notebooks/NAME.zh.ipynb for every notebook that has a translation file."""
    written = []
    for path in english_notebooks():
        if not translation_path(path.stem).is_file():
            continue
        english = nbformat.read(path, as_version=4)
        translation = load_translation(path.stem)
        if found := problems(english, translation):
            raise ValueError(f"notebooks/zh/{path.stem}.toml:\n  " + "\n  ".join(found))
        nbformat.write(build(english, translation), output_path(path.stem))
        written.append(output_path(path.stem))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="report problems, write nothing")
    parser.add_argument("--hashes", metavar="NAME", help="print NAME's markdown cell hashes")
    args = parser.parse_args(argv)
    if args.hashes:
        english = nbformat.read(NOTEBOOKS / f"{args.hashes}.ipynb", as_version=4)
        for cell in english.cells:
            if cell.cell_type == "markdown":
                print(cell.id, source_hash(cell.source))
        return 0
    if args.check:
        found = [
            f"notebooks/zh/{path.stem}.toml: {problem}"
            for path in english_notebooks()
            for problem in problems(nbformat.read(path, as_version=4), load_translation(path.stem))
        ]
        if untranslated() != listed_untranslated():
            found.append(f"{UNTRANSLATED.relative_to(ROOT)} is out of date: {untranslated()}")
        print("\n".join(found) or "Chinese notebooks: ok")
        return 1 if found else 0
    try:
        written = build_all()
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for path in written:
        print(f"  built {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
