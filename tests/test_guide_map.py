"""Every section of the source guide has a home: the guide map lists each of its headings."""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import pytest

# An instructor's check: a student release has neither solutions/ nor the guide beside it.
pytestmark = [pytest.mark.needs_solutions, pytest.mark.needs_guide]

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT.parent / "shared" / "seed" / "sse-im-guide.zh.md"
GUIDE_MAP = ROOT / "chapters" / "guide-map.md"


def seed_headings() -> list[str]:
    headings, in_code = [], False
    for line in SEED.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and re.match(r"#{1,4} ", line):
            headings.append(line.strip())
    return headings


def mapped_headings() -> list[str]:
    rows = []
    for line in GUIDE_MAP.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells and cells[0].startswith("#"):
            rows.append(cells[0].replace("\\", ""))
    return rows


def test_the_seed_guide_is_beside_the_project():
    assert SEED.exists(), f"expected the guide at {SEED}"
    assert len(seed_headings()) > 80


def test_every_heading_of_the_guide_is_on_the_map():
    mapped = mapped_headings()
    missing = []
    for heading in seed_headings():
        # The guide's copy has a few damaged characters; the map shows them repaired.
        best = max(
            (difflib.SequenceMatcher(None, heading, row).ratio() for row in mapped), default=0
        )
        if best < 0.8:
            missing.append(heading)
    assert not missing, f"guide headings with no row in chapters/guide-map.md: {missing}"


def test_every_row_points_somewhere():
    for line in GUIDE_MAP.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells and cells[0].startswith("#"):
            assert "](" in line, f"no link to a page for: {cells[0]}"
