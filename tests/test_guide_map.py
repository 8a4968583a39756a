"""Every section of the source guide has a home: the guide map lists each of its headings."""

from __future__ import annotations

import difflib
import re
from collections import Counter
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


# --- the mapped place teaches the topic ---------------------------------------------------

TERMS = ROOT / "tests" / "guide_map_terms.toml"
_HEADING = re.compile(r"^(?P<hashes>#{1,6}) (?P<title>.*?)(?:\s*\{#(?P<id>[\w-]+)[^}]*\})?\s*$")
_SNIPPET = re.compile(r'^\s*--8<-- "(?P<path>[^":]+)(?::(?P<section>[\w-]+))?"\s*$')


def map_rows() -> list[tuple[str, str]]:
    """(key, first link) per row: the guide heading, or the English text of a sub-row."""
    rows = []
    for line in GUIDE_MAP.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) < 3:
            continue
        if cells[0].startswith("#") or (cells[0] == "" and cells[1][:1].isdigit()):
            links = re.findall(r"\]\(([^)\s]+)\)", line)
            rows.append((cells[0].replace("\\", "") or cells[1], links[0] if links else ""))
    counts = Counter(key for key, _ in rows)
    return [(f"{key} @ {link}" if counts[key] > 1 else key, link) for key, link in rows]


def _slug(title: str) -> str:
    text = re.sub(r"[`*_]", "", title).strip().lower()
    return re.sub(r"[\s]+", "-", re.sub(r"[^\w\s-]", "", text))


def _snippet(path: str, section: str | None) -> str:
    source = ROOT / path
    if not source.is_file():
        return ""
    text = source.read_text(encoding="utf-8")
    if section is None:
        return text
    inside = re.search(
        rf"--8<-- \[start:{re.escape(section)}\](.*?)--8<-- \[end:{re.escape(section)}\]",
        text,
        re.S,
    )
    return inside[1] if inside else ""


def section_text(link: str) -> str:
    """The markdown a link leads to (one section, or the whole page), snippets included."""
    page, _, anchor = link.partition("#")
    path = GUIDE_MAP if not page else ROOT / "chapters" / page
    lines = path.read_text(encoding="utf-8").splitlines()
    start, level, in_code = 0 if not anchor else None, 0, False
    end = len(lines)
    for number, line in enumerate(lines):
        if line.lstrip().startswith("```"):
            in_code = not in_code
        heading = None if in_code else _HEADING.match(line)
        if heading is None:
            continue
        this_level = len(heading["hashes"])
        if start is None and anchor in (heading["id"], _slug(heading["title"])):
            start, level = number, this_level
        elif start is not None and anchor and number > start and this_level <= level:
            end = number
            break
    if start is None:
        return ""
    parts = []
    for line in lines[start:end]:
        included = _SNIPPET.match(line)
        parts.append(_snippet(included["path"], included["section"]) if included else line)
    return "\n".join(parts)


def missing_terms(rows, terms) -> list[str]:
    problems = []
    for key, link in rows:
        wanted = terms.get(key)
        if not wanted:
            problems.append(f"{key}: no key terms in {TERMS.name}")
            continue
        text = section_text(link).lower()
        if not text:
            problems.append(f"{key}: {link} leads to no section")
            continue
        absent = [term for term in wanted if term.lower() not in text]
        if absent:
            problems.append(f"{key}: {link} does not mention {absent}")
    return problems


def load_terms() -> dict[str, list[str]]:
    import tomllib

    return tomllib.loads(TERMS.read_text(encoding="utf-8"))


def test_every_mapped_place_teaches_its_topic():
    """Each heading's place has the topic's key terms: a link to the wrong section fails."""
    rows = map_rows()
    assert len(rows) >= len(seed_headings())
    problems = missing_terms(rows, load_terms())
    assert not problems, "\n".join(problems)


def test_a_row_pointing_at_the_wrong_section_fails():
    terms = load_terms()
    wrong = [("### 为什么需要心跳？", "02-sse-in-depth.md#message-format")]
    problems = missing_terms(wrong, terms)
    assert problems and "does not mention" in problems[0], problems
