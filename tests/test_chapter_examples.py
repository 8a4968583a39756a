"""The Python examples in the chapters run: every ```pycon block is a doctest.

A chapter shows an interactive session as a ``pycon`` fence (inside an admonition or a tab
too). Each block runs here in a fresh namespace, and its printed results must match what the
chapter shows (whitespace may differ, so a long result can be wrapped; ``...`` stands for
any text).
"""

from __future__ import annotations

import doctest
import re
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = ROOT / "chapters"
FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```pycon[^\n]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.M | re.S
)
OPTIONS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS


def pycon_blocks() -> list[tuple[str, int, str]]:
    """(chapter, line, source) for every pycon block in the chapters."""
    blocks = []
    for path in sorted(CHAPTERS.glob("*.md")):
        text = path.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            blocks.append((path.name, line, textwrap.dedent(match["body"])))
    return blocks


def run_block(name: str, line: int, source: str) -> doctest.TestResults:
    parser = doctest.DocTestParser()
    test = parser.get_doctest(source, {}, f"{name}:{line}", name, line)
    runner = doctest.DocTestRunner(optionflags=OPTIONS)
    report: list[str] = []
    runner.run(test, out=report.append)
    if runner.failures:
        pytest.fail("".join(report), pytrace=False)
    return doctest.TestResults(runner.failures, runner.tries)


def test_the_chapters_have_examples():
    assert len(pycon_blocks()) >= 2


@pytest.mark.parametrize(
    ("name", "line", "source"), pycon_blocks(), ids=[f"{n}:{line}" for n, line, _ in pycon_blocks()]
)
def test_example(name: str, line: int, source: str):
    results = run_block(name, line, source)
    assert results.attempted > 0, f"{name}:{line}: a pycon block with no >>> example"


def test_a_wrong_result_fails():
    with pytest.raises(pytest.fail.Exception, match="Expected"):
        run_block("planted.md", 1, ">>> 1 + 1\n3\n")
