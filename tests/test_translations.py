"""The Chinese edition keeps step with the English one (tools/translations.py holds the checks).

For every English page ``chapters/NAME.md``: its translation ``NAME.zh.md`` exists, or the page
is listed in ``chapters/untranslated.txt`` (and not both); the translation names the English
text it translates by its sha256, which must be the English file's current one; and it keeps
the English page's headings (anchors), snippet includes, generated-table and notebook-output
markers, and code. Each check is also run once against a planted error, to see it fail.
"""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import text_facts  # noqa: E402
import translations  # noqa: E402

ENGLISH_PAGES = translations.english_pages()
TRANSLATED = [page for page in ENGLISH_PAGES if translations.translation_of(page).is_file()]


def test_every_english_page_is_translated_or_listed_as_untranslated():
    problems = translations.coverage_problems()
    assert not problems, "\n".join(problems)


def test_the_start_page_and_the_glossary_are_always_translated():
    """The pages a Chinese reader starts from: they never fall back to English."""
    listed = translations.untranslated()
    assert "index.md" not in listed and "glossary.md" not in listed


@pytest.mark.parametrize("page", TRANSLATED, ids=lambda page: page.name)
def test_the_translation_translates_the_current_english_page(page: Path):
    problems = translations.source_problems(page)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("page", TRANSLATED, ids=lambda page: page.name)
def test_the_translation_keeps_the_english_structure(page: Path):
    problems = translations.structure_problems(
        page.read_text(encoding="utf-8"),
        translations.translation_of(page).read_text(encoding="utf-8"),
    )
    assert not problems, f"{translations.translation_of(page).name}:\n" + "\n".join(problems)


def _keys(table: dict, prefix: str = "") -> set[str]:
    keys = set()
    for key, value in table.items():
        keys.add(prefix + key)
        if isinstance(value, dict):
            keys |= _keys(value, f"{prefix}{key}.")
    return keys


def test_the_chinese_words_file_has_the_same_keys_as_the_english_one():
    english = tomllib.loads((ROOT / "tools" / "facts.en.toml").read_text(encoding="utf-8"))
    chinese = tomllib.loads((ROOT / "tools" / "facts.zh.toml").read_text(encoding="utf-8"))
    chinese.pop("code_text")  # translations of the code's own English (next test)
    chinese.pop("openapi_text")  # translations of the OpenAPI document's English (below)
    assert _keys(english) == _keys(chinese), (
        f"only in facts.en.toml: {sorted(_keys(english) - _keys(chinese))}; "
        f"only in facts.zh.toml: {sorted(_keys(chinese) - _keys(english))}"
    )
    # Lists are words a reader reads (headings, a row), except names: same length, same names.
    for section in ("settings", "cli", "events", "errors", "limits"):
        assert len(english[section]["headings"]) == len(chinese[section]["headings"]), section
    assert english["units"] == chinese["units"]


def test_every_description_the_code_gives_has_a_current_chinese_translation():
    """Flag help and config.py comments are English in the code; facts.zh.toml translates them."""
    translated = text_facts.words(language="zh")["code_text"]
    problems = []
    for name, english in text_facts.code_texts().items():
        entry = translated.get(name)
        if entry is None:
            problems.append(f"{name}: add [code_text] {name} = {{ en = {english!r}, text = ... }}")
        elif entry["en"] != english:
            problems.append(
                f"{name}: the code now says {english!r}, the translation translates "
                f"{entry['en']!r}: update both en and text"
            )
    problems += [
        f"{name}: no such setting or flag"
        for name in translated.keys() - set(text_facts.code_texts())
    ]
    assert not problems, "in tools/facts.zh.toml:\n" + "\n".join(problems)


def test_every_summary_of_the_openapi_document_has_a_current_chinese_translation():
    """Operation summaries and tag descriptions are English in my_chat/openapi.json."""
    import mkdocs_hooks

    document = json.loads(mkdocs_hooks.OPENAPI_DOCUMENT.read_text(encoding="utf-8"))
    translated = text_facts.words(language="zh")["openapi_text"]
    problems = []
    for key, english in mkdocs_hooks.openapi_texts(document).items():
        entry = translated.get(key)
        if entry is None:
            problems.append(
                f"{key}: add [openapi_text] {key!r} = {{ en = {english!r}, text = ... }}"
            )
        elif entry["en"] != english:
            problems.append(
                f"{key}: the document now says {english!r}, the translation translates "
                f"{entry['en']!r}: update both en and text"
            )
    problems += [
        f"{key}: no such operation or tag"
        for key in translated.keys() - set(mkdocs_hooks.openapi_texts(document))
    ]
    assert not problems, "in tools/facts.zh.toml:\n" + "\n".join(problems)


def test_the_api_reference_is_in_the_language_of_the_page():
    import mkdocs_hooks

    document = json.loads(mkdocs_hooks.OPENAPI_DOCUMENT.read_text(encoding="utf-8"))
    english = mkdocs_hooks.render_openapi_reference(document, "en")
    chinese = mkdocs_hooks.render_openapi_reference(document, "zh")
    assert "| operation | who may call | answers | what it does |" in english
    assert "| 操作 | 谁可以调用 | 回答 | 作用 |" in chinese and "| operation |" not in chinese
    assert "| `POST /api/signup` | 任何人 |" in chinese and "创建账号并登录" in chinese
    assert "Create an account" not in chinese and "Create an account" in english

    # Operations and answers are the same rows in both editions, only the words differ.
    def rows(text: str) -> list[str]:
        return [line.split(" | ")[0] for line in text.splitlines() if line.startswith("| `")]

    assert rows(english) == rows(chinese)
    # A summary the document words anew shows in English until it is translated again.
    document["paths"]["/api/signup"]["post"]["summary"] = "Open an account"
    assert "Open an account" in mkdocs_hooks.render_openapi_reference(document, "zh")


def test_a_changed_code_description_shows_in_english_until_translated(monkeypatch):
    text = text_facts.words(language="zh")
    assert text_facts.in_language(text, "port", "port") == "端口"
    assert text_facts.in_language(text, "port", "the port to listen on") == "the port to listen on"


def test_a_chinese_page_gets_chinese_tables_and_an_english_page_english_ones():
    marker = "<!-- generated: events -->"
    chinese = text_facts.render(marker, language="zh")
    english = text_facts.render(marker, language="en")
    assert chinese.startswith("| 事件 | 数据（JSON） |") and "`connection_id`" in chinese
    assert english.startswith("| Event | Data (JSON) |")
    with pytest.raises(text_facts.FactsError, match="fr"):
        text_facts.render(marker, language="fr")


def test_the_hook_picks_the_words_by_the_language_of_the_pages_own_file():
    import mkdocs_hooks
    from mkdocs.structure.files import File

    page = File("index.md", "chapters", "site", use_directory_urls=True)
    assert mkdocs_hooks.page_language(page) == "en"
    page.locale = "zh"  # what mkdocs-static-i18n sets on NAME.zh.md
    assert mkdocs_hooks.page_language(page) == "zh"


def test_the_hook_keeps_notebooks_pages_and_puts_the_chinese_ones_under_zh():
    """mkdocs-static-i18n leaves a notebook as an asset, at the English site's place."""
    from types import SimpleNamespace

    import mkdocs_hooks
    from mkdocs.structure.files import File, Files

    def notebook() -> File:
        dest = "notebooks/01_im_basics/index.html"  # where mkdocs-jupyter put it
        return File("notebooks/01_im_basics.ipynb", "chapters", "site", True, dest_uri=dest)

    def build(language: str) -> SimpleNamespace:
        i18n = SimpleNamespace(current_language=language, default_language="en")
        return SimpleNamespace(plugins={"i18n": i18n}, site_dir="site", use_directory_urls=True)

    english, chinese = notebook(), notebook()
    assert not english.is_documentation_page()
    mkdocs_hooks.on_files(Files([english]), config=build("en"))
    mkdocs_hooks.on_files(Files([chinese]), config=build("zh"))
    assert english.is_documentation_page() and chinese.is_documentation_page()
    assert english.url == "notebooks/01_im_basics/"
    assert chinese.url == "zh/notebooks/01_im_basics/"
    assert chinese.abs_dest_path == str(Path("site/zh/notebooks/01_im_basics/index.html"))
    # The language switcher on the Chinese notebook page links to the English one.
    assert chinese.alternates["en"].url == "notebooks/01_im_basics/"
    assert chinese.alternates["zh"] is chinese


# --- each check, failing on a planted error ----------------------------------------------

ENGLISH = """# A page

Text.

## 1.2 The client manager

```python
print("hello")
```

--8<-- "my_chat/sse.py:encode"

<!-- generated: events -->

## Questions {#questions}

<!-- notebook-output: 02_sse_in_depth.ipynb cell-14 -->
"""

CHINESE = """# 一页 {#a-page}

正文。

## 1.2 客户端管理器 {#12-the-client-manager}

```python
print("hello")
```

--8<-- "my_chat/sse.py:encode"

<!-- generated: events -->

## 问题 {#questions}

<!-- notebook-output: 02_sse_in_depth.ipynb cell-14 -->
"""


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    (tmp_path / "page.md").write_text(ENGLISH, encoding="utf-8")
    (tmp_path / "page.zh.md").write_text(CHINESE, encoding="utf-8")
    (tmp_path / "other.md").write_text("# Other\n", encoding="utf-8")
    (tmp_path / "untranslated.txt").write_text("# not yet\nother.md\n", encoding="utf-8")
    translations.stamp("page", docs=tmp_path)
    return tmp_path


def test_the_planted_pages_pass(docs: Path):
    assert translations.all_problems(docs) == []


def test_anchors_are_computed_as_the_toc_does_with_explicit_ids_honoured():
    assert translations.heading_anchors(ENGLISH) == [
        (1, "a-page"),
        (2, "12-the-client-manager"),
        (2, "questions"),
    ]
    assert translations.heading_anchors(CHINESE) == translations.heading_anchors(ENGLISH)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("{#12-the-client-manager}", "", "heading"),  # no explicit id: the slug is not English
        ("## 问题 {#questions}", "### 问题 {#questions}", "heading"),  # another level
        ('print("hello")', 'print("hello", end="")', "code block"),  # the code itself
        ('print("hello")', 'print("hello")\nprint()', "code block"),  # a line more
        ('--8<-- "my_chat/sse.py:encode"', "", "marker"),
        ("<!-- generated: events -->", "<!-- generated: settings -->", "marker"),
        ("<!-- notebook-output: 02_sse_in_depth.ipynb cell-14 -->", "", "marker"),
    ],
)
def test_a_changed_structure_fails(docs: Path, old: str, new: str, expected: str):
    chinese = docs / "page.zh.md"
    chinese.write_text(chinese.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
    problems = translations.all_problems(docs)
    assert len(problems) == 1 and expected in problems[0], problems


def test_code_quoted_from_the_guide_may_show_its_own_comments_and_strings(docs: Path):
    """The Chinese edition shows the guide's original Chinese in code it quotes: comments and
    string literals may differ, line for line; the code may not."""
    chinese = docs / "page.zh.md"
    text = chinese.read_text(encoding="utf-8")
    chinese.write_text(
        text.replace('print("hello")', 'print("你好")  # 打个招呼'), encoding="utf-8"
    )
    assert translations.all_problems(docs) == []


def test_a_changed_english_page_fails_naming_the_page_and_the_command(docs: Path):
    english = docs / "page.md"
    english.write_text(english.read_text(encoding="utf-8") + "\nOne more sentence.\n")
    problems = translations.all_problems(docs)
    assert len(problems) == 1
    assert "the English page chapters/page.md changed" in problems[0]
    assert "update the Chinese page" in problems[0]
    assert "python tools/translations.py --stamp page" in problems[0]
    translations.stamp("page", docs=docs)  # after translating the change
    assert translations.all_problems(docs) == []


def test_a_translation_without_its_source_line_fails(docs: Path):
    chinese = docs / "page.zh.md"
    chinese.write_text(chinese.read_text(encoding="utf-8").split("\n", 1)[1], encoding="utf-8")
    problems = translations.all_problems(docs)
    assert len(problems) == 1 and "does not start with its source line" in problems[0]


def test_a_missing_translation_not_listed_fails(docs: Path):
    (docs / "untranslated.txt").write_text("", encoding="utf-8")
    problems = translations.all_problems(docs)
    assert len(problems) == 1 and "chapters/other.md has no Chinese page" in problems[0]


def test_a_listed_page_that_has_a_translation_fails(docs: Path):
    (docs / "untranslated.txt").write_text("other.md\npage.md\n", encoding="utf-8")
    problems = translations.all_problems(docs)
    assert problems == [
        "chapters/page.md is translated now: remove it from chapters/untranslated.txt"
    ]


def test_a_translation_of_no_english_page_fails(docs: Path):
    (docs / "gone.zh.md").write_text("# 没了\n", encoding="utf-8")
    problems = translations.all_problems(docs)
    assert len(problems) == 1 and "gone.md, which does not exist" in problems[0]


def test_stamp_adds_or_replaces_only_the_first_line(docs: Path):
    chinese = docs / "page.zh.md"
    body = chinese.read_text(encoding="utf-8").split("\n", 1)[1]
    assert body == CHINESE
    chinese.write_text(body, encoding="utf-8")
    translations.stamp("page", docs=docs)
    first, rest = chinese.read_text(encoding="utf-8").split("\n", 1)
    assert first == f"<!-- source: page.md sha256:{translations.digest(docs / 'page.md')} -->"
    assert rest == CHINESE
