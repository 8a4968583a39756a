"""The Chinese edition against the English one: what is translated, and whether it kept up.

    .venv/bin/python tools/translations.py                 # status of every page
    .venv/bin/python tools/translations.py --check         # the checks; non-zero on a problem
    .venv/bin/python tools/translations.py --stamp NAME    # NAME.zh.md translates NAME.md now

Each English page ``chapters/NAME.md`` has its translation ``chapters/NAME.zh.md`` (the
mkdocs-static-i18n "suffix" structure), or is listed in ``chapters/untranslated.txt``, the one
place where the gap is written down. A translation's first line says which English text it
translates: ``<!-- source: NAME.md sha256:0123456789abcdef -->``, the first 16 hex digits of
the English file's sha256. When the English page changes, the digests differ and the check
fails, naming the page: translate the change, then ``--stamp NAME`` records the new digest.

A translation must also keep the English page's structure, because links and the code depend
on it: the same heading anchors in the same order (as Python-Markdown's toc computes them,
explicit ``{#id}`` included), the same snippet includes, generated-table and notebook-output
markers, and the same fenced code blocks with the same code (a Mermaid diagram's labels may be
translated, so only their number is compared). ``tests/test_translations.py`` runs the checks.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import markdown

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "chapters"
LANGUAGE = "zh"
UNTRANSLATED = "untranslated.txt"
DIGEST_CHARS = 16
SOURCE_LINE = re.compile(
    rf"<!-- source: (?P<name>[\w.-]+\.md) sha256:(?P<digest>[0-9a-f]{{{DIGEST_CHARS}}}) -->"
)
# The Markdown extensions of mkdocs.yml that decide where headings are and what ids they get.
TOC_EXTENSIONS = [
    "toc",
    "attr_list",
    "md_in_html",
    "tables",
    "admonition",
    "pymdownx.details",
    "pymdownx.superfences",
    "pymdownx.tabbed",
]
SNIPPET = re.compile(r"--8<--(?:\s+\"[^\"]*\")?")
GENERATED = re.compile(r"<!-- generated: [\w-]+ -->")
NOTEBOOK_OUTPUT = re.compile(r"<!-- notebook-output: [\w.-]+ [\w-]+ -->")
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


def digest(path: Path) -> str:
    """The first hex digits of the file's sha256, as ``sha256sum`` prints them."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:DIGEST_CHARS]


def translation_of(page: Path) -> Path:
    return page.with_name(f"{page.stem}.{LANGUAGE}.md")


def english_pages(docs: Path = DOCS) -> list[Path]:
    """Every English page: NAME.md without a language suffix."""
    return sorted(
        path
        for path in docs.glob("*.md")
        if not re.fullmatch(r"[a-z]{2}", Path(path.stem).suffix.lstrip("."))
    )


def translated_pages(docs: Path = DOCS) -> list[Path]:
    return sorted(docs.glob(f"*.{LANGUAGE}.md"))


def untranslated(docs: Path = DOCS) -> list[str]:
    """The page names (``NAME.md``) listed as not translated yet, in the file's order."""
    path = docs / UNTRANSLATED
    if not path.is_file():
        return []
    lines = (line.split("#", 1)[0].strip() for line in path.read_text("utf-8").splitlines())
    return [line for line in lines if line]


# --- structure ----------------------------------------------------------------------------


def heading_anchors(text: str) -> list[tuple[int, str]]:
    """(level, id) of every heading, as Python-Markdown's toc extension gives them."""
    md = markdown.Markdown(
        extensions=TOC_EXTENSIONS,
        extension_configs={"pymdownx.tabbed": {"alternate_style": True}},
    )
    md.convert(text)
    found: list[tuple[int, str]] = []

    def walk(tokens: list[dict]) -> None:
        for token in tokens:
            found.append((token["level"], token["id"]))
            walk(token["children"])

    walk(md.toc_tokens)  # type: ignore[attr-defined]
    return found


@dataclass(frozen=True)
class CodeBlock:
    language: str
    code: str


def code_blocks(text: str) -> list[CodeBlock]:
    """Every fenced code block, its code dedented by the fence's own indentation."""
    blocks: list[CodeBlock] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        index += 1
        if opening is None:
            continue
        indent, fence = opening["indent"], opening["fence"]
        language = opening["info"].strip().split(" ")[0].lstrip(".{")
        body: list[str] = []
        while index < len(lines):
            line = lines[index]
            index += 1
            stripped = line.strip()
            if stripped.startswith(fence) and set(stripped) == {fence[0]}:
                break
            body.append(line[len(indent) :] if line.startswith(indent) else line.lstrip())
        blocks.append(CodeBlock(language, "\n".join(body)))
    return blocks


def markers(text: str) -> list[str]:
    """Snippet includes, generated tables and notebook outputs, in the page's order."""
    found = [
        (match.start(), match[0])
        for pattern in (SNIPPET, GENERATED, NOTEBOOK_OUTPUT)
        for match in pattern.finditer(text)
    ]
    return [marker for _, marker in sorted(found)]


def _differences(what: str, english: list, chinese: list) -> list[str]:
    if english == chinese:
        return []
    for position, (en, zh) in enumerate(zip(english, chinese, strict=False), 1):
        if en != zh:
            return [f"{what} #{position} differs: English {en!r}, Chinese {zh!r}"]
    longer = "English" if len(english) > len(chinese) else "Chinese"
    extra = (english if longer == "English" else chinese)[min(len(english), len(chinese))]
    return [
        f"{what}: English has {len(english)}, Chinese {len(chinese)}; "
        f"the first one only the {longer} page has: {extra!r}"
    ]


def structure_problems(english: str, chinese: str) -> list[str]:
    """How the translation's structure differs from the English page's, in words."""
    problems = [
        f"{problem}: give the Chinese heading the English level and anchor, e.g. "
        "`## 4.3 客户端管理器 {#module-2}`"
        for problem in _differences(
            "heading (level, anchor)", heading_anchors(english), heading_anchors(chinese)
        )
    ]
    problems += _differences("marker", markers(english), markers(chinese))
    en_blocks, zh_blocks = code_blocks(english), code_blocks(chinese)
    problems += _differences(
        "Mermaid diagram count",
        [b.language for b in en_blocks if b.language == "mermaid"],
        [b.language for b in zh_blocks if b.language == "mermaid"],
    )
    en_code = [b for b in en_blocks if b.language != "mermaid"]
    zh_code = [b for b in zh_blocks if b.language != "mermaid"]
    problems += _differences(
        "code block",
        en_code,
        [
            en if en is not None and restores_the_guide(en, zh) else zh
            for en, zh in zip([*en_code, *[None] * len(zh_code)], zh_code, strict=False)
        ],
    )
    return problems


# --- code quoted from the guide -----------------------------------------------------------

# Where a page quotes the guide's own code, the English edition shows its comments and
# strings in English and the Chinese edition the guide's original Chinese. Such a block may
# differ from the English only line for line, and only in its comments and string literals:
# the code itself is the same in both editions.
_COMMENT = re.compile(r"\s*(//|#|<!--).*$")
_STRING = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'")


def _code_of(line: str) -> str:
    """A line without its comment and with every string literal emptied."""
    return _COMMENT.sub("", _STRING.sub('""', line)).rstrip()


def restores_the_guide(english: CodeBlock, chinese: CodeBlock) -> bool:
    """Whether ``chinese`` is ``english`` with other comments and strings, line for line."""
    en_lines, zh_lines = english.code.splitlines(), chinese.code.splitlines()
    if english.language != chinese.language or len(en_lines) != len(zh_lines):
        return False
    return all(_code_of(en) == _code_of(zh) for en, zh in zip(en_lines, zh_lines, strict=True))


# --- the source line ----------------------------------------------------------------------


def stamp_command(name: str) -> str:
    return f"python tools/translations.py --stamp {name}"


def source_problems(page: Path) -> list[str]:
    """The translation's first line against the English file as it is now."""
    translation = translation_of(page)
    first = translation.read_text(encoding="utf-8").split("\n", 1)[0].strip()
    source = SOURCE_LINE.fullmatch(first)
    name = page.stem
    if source is None:
        return [
            f"{translation.name} does not start with its source line "
            f"'<!-- source: {page.name} sha256:{'X' * DIGEST_CHARS} -->': "
            f"add it with `{stamp_command(name)}`"
        ]
    if source["name"] != page.name:
        return [f"{translation.name}'s source line names {source['name']}, not {page.name}"]
    current = digest(page)
    if source["digest"] != current:
        return [
            f"the English page chapters/{page.name} changed since chapters/{translation.name} "
            f"was translated (sha256 {source['digest']}, now {current}): update the Chinese page "
            f"to match (`git log -p -- chapters/{page.name}` shows the English changes), then "
            f"refresh its source line with `{stamp_command(name)}`"
        ]
    return []


def stamp(name: str, docs: Path = DOCS) -> Path:
    """Record that NAME.zh.md translates NAME.md as it is now (first line, added or replaced)."""
    page = docs / f"{name.removesuffix('.md')}.md"
    translation = translation_of(page)
    if not page.is_file() or not translation.is_file():
        raise FileNotFoundError(f"need both {page.name} and {translation.name} in {docs}")
    line = f"<!-- source: {page.name} sha256:{digest(page)} -->"
    text = translation.read_text(encoding="utf-8")
    first, _, rest = text.partition("\n")
    body = rest if SOURCE_LINE.fullmatch(first.strip()) else text
    translation.write_text(f"{line}\n{body}", encoding="utf-8")
    return translation


# --- the whole edition --------------------------------------------------------------------


def coverage_problems(docs: Path = DOCS) -> list[str]:
    """Pages without translation and not listed, listed but translated, or orphans."""
    problems = []
    listed = untranslated(docs)
    pages = {path.name for path in english_pages(docs)}
    for name in sorted(pages):
        has_translation = translation_of(docs / name).is_file()
        if not has_translation and name not in listed:
            problems.append(
                f"chapters/{name} has no Chinese page: translate it to chapters/"
                f"{Path(name).stem}.{LANGUAGE}.md, or list it in chapters/{UNTRANSLATED}"
            )
        if has_translation and name in listed:
            problems.append(
                f"chapters/{name} is translated now: remove it from chapters/{UNTRANSLATED}"
            )
    for name in listed:
        if name not in pages:
            problems.append(f"chapters/{UNTRANSLATED} lists {name}, which is not an English page")
    if len(set(listed)) != len(listed):
        problems.append(f"chapters/{UNTRANSLATED} lists a page twice")
    for translation in translated_pages(docs):
        english = translation.name.removesuffix(f".{LANGUAGE}.md") + ".md"
        if english not in pages:
            problems.append(
                f"chapters/{translation.name} translates {english}, which does not exist"
            )
    return problems


def page_problems(page: Path) -> list[str]:
    """Everything wrong with one English page's translation (none if it has none)."""
    translation = translation_of(page)
    if not translation.is_file():
        return []
    problems = source_problems(page)
    problems += structure_problems(
        page.read_text(encoding="utf-8"), translation.read_text(encoding="utf-8")
    )
    return [f"{translation.name}: {problem}" for problem in problems]


def all_problems(docs: Path = DOCS) -> list[str]:
    problems = coverage_problems(docs)
    for page in english_pages(docs):
        problems += page_problems(page)
    return problems


def status(docs: Path = DOCS) -> list[str]:
    listed = set(untranslated(docs))
    lines = []
    for page in english_pages(docs):
        translation = translation_of(page)
        if not translation.is_file():
            state = "untranslated" + ("" if page.name in listed else " (NOT LISTED)")
        elif source_problems(page):
            state = "stale: the English page changed"
        elif page_problems(page):
            state = "translated, structure differs"
        else:
            state = "translated, up to date"
        lines.append(f"{page.name:40} {state}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--stamp", metavar="NAME", help="record NAME.md's digest in NAME.zh.md")
    action.add_argument("--check", action="store_true", help="run the checks")
    args = parser.parse_args(argv)
    if args.stamp:
        print(f"stamped {stamp(args.stamp).relative_to(ROOT)}")
        return 0
    if args.check:
        problems = all_problems()
        print("\n".join(problems) if problems else "the Chinese edition is in step")
        return 1 if problems else 0
    print("\n".join(status()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
