"""The Chinese notebooks: one source of code, translated markdown, Chinese message tables.

tools/notebooks_zh.py builds notebooks/NAME.zh.ipynb from notebooks/NAME.ipynb and
notebooks/zh/NAME.toml; notebooks/nbtext.py gives code cells their printed text from
notebooks/texts/NAME.LANG.toml. These checks need no kernel: they build in memory.
"""

from __future__ import annotations

import re
import string
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import notebooks_zh  # noqa: E402

ENGLISH = notebooks_zh.english_notebooks()
TRANSLATED = [p for p in ENGLISH if notebooks_zh.translation_path(p.stem).is_file()]
TEXTS = ROOT / "notebooks" / "texts"


def built(path: Path) -> tuple[nbformat.NotebookNode, nbformat.NotebookNode]:
    english = nbformat.read(path, as_version=4)
    return english, notebooks_zh.build(english, notebooks_zh.load_translation(path.stem))


def test_notebook_1_is_translated() -> None:
    assert ROOT / "notebooks" / "01_im_basics.ipynb" in TRANSLATED


@pytest.mark.parametrize("path", TRANSLATED, ids=lambda p: p.stem)
def test_code_cells_are_the_english_ones(path: Path) -> None:
    english, chinese = built(path)
    english_code = [(c.id, c.source) for c in english.cells if c.cell_type == "code"]
    chinese_code = [
        (c.id, c.source)
        for c in chinese.cells
        if c.cell_type == "code" and c.id != notebooks_zh.LANGUAGE_CELL_ID
    ]
    assert chinese_code == english_code
    languages = [c for c in chinese.cells if c.get("id") == notebooks_zh.LANGUAGE_CELL_ID]
    assert len(languages) == 1 and 'use_language("zh")' in languages[0].source
    # It runs before any other code, so everything the notebook prints is in Chinese.
    first_code = next(c for c in chinese.cells if c.cell_type == "code")
    assert first_code.id == notebooks_zh.LANGUAGE_CELL_ID


@pytest.mark.parametrize("path", TRANSLATED, ids=lambda p: p.stem)
def test_translations_name_markdown_cells_and_are_current(path: Path) -> None:
    english = nbformat.read(path, as_version=4)
    assert notebooks_zh.problems(english, notebooks_zh.load_translation(path.stem)) == []


@pytest.mark.parametrize("path", TRANSLATED, ids=lambda p: p.stem)
def test_translated_markdown_is_chinese_and_keeps_the_structure(path: Path) -> None:
    english, chinese = built(path)
    translation = notebooks_zh.load_translation(path.stem)
    cells = [c for c in chinese.cells if c.get("id") != notebooks_zh.LANGUAGE_CELL_ID]
    for before, after in zip(english.cells, cells, strict=True):
        assert before.id == after.id
        if before.cell_type != "markdown" or before.id not in translation:
            assert after.source == before.source
            continue
        assert any("\u4e00" <= char <= "\u9fff" for char in after.source), before.id
        heading_levels = [
            [line.split(" ")[0] for line in cell.source.splitlines() if line.startswith("#")]
            for cell in (before, after)
        ]
        assert heading_levels[0] == heading_levels[1], f"{before.id}: headings differ"
        # Same links to chapters and notebooks: the site build rewrites and checks them.
        links = [sorted(p.split(")")[0] for p in c.source.split("](")[1:]) for c in (before, after)]
        assert links[0] == links[1], f"{before.id}: links differ"


def test_the_untranslated_list_is_exact() -> None:
    assert notebooks_zh.untranslated() == notebooks_zh.listed_untranslated(), (
        "update notebooks/zh/untranslated.txt"
    )


def test_a_changed_english_cell_is_reported() -> None:
    english, _ = built(ROOT / "notebooks" / "01_im_basics.ipynb")
    translation = notebooks_zh.load_translation("01_im_basics")
    english.cells[0].source += "\nA new sentence."
    translation["no-such-cell"] = {"source": "sha256:0", "zh": "多余"}
    found = notebooks_zh.problems(english, translation)
    assert any(p.startswith(f"{english.cells[0].id}: the English cell changed") for p in found)
    assert any(p.startswith("no-such-cell: no markdown cell") for p in found)


def fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


@pytest.mark.parametrize("table", sorted(TEXTS.glob("*.en.toml")), ids=lambda p: p.name)
def test_message_tables_have_both_languages_with_the_same_fields(table: Path) -> None:
    english = tomllib.loads(table.read_text(encoding="utf-8"))
    chinese_path = table.with_name(table.name.replace(".en.toml", ".zh.toml"))
    chinese = tomllib.loads(chinese_path.read_text(encoding="utf-8"))
    assert set(chinese) == set(english)
    assert set(chinese["labels"]) == set(english["labels"])
    for key, text in english.items():
        if key != "labels":
            assert fields(chinese[key]) == fields(text), key


@pytest.mark.parametrize("table", sorted(TEXTS.glob("*.en.toml")), ids=lambda p: p.name)
def test_every_message_is_used_and_every_used_key_exists(table: Path) -> None:
    name = table.name.removesuffix(".en.toml")
    notebook = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    code = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
    keys = set(tomllib.loads(table.read_text(encoding="utf-8"))) - {"labels"}
    used = set(re.findall(r'\bsay\(\s*"(\w+)"', code))
    assert used == keys


def test_nbtext_speaks_chinese_with_a_cjk_font(monkeypatch: pytest.MonkeyPatch) -> None:
    sys.path.insert(0, str(ROOT / "notebooks"))
    import matplotlib
    import nbtext

    monkeypatch.setattr(nbtext, "_chosen", None)
    monkeypatch.delenv(nbtext.LANGUAGE_VARIABLE, raising=False)
    assert nbtext.messages("01_im_basics")("last_one", online=[]) == "and the last one: []"
    with matplotlib.rc_context():
        nbtext.use_language("zh")
        say = nbtext.messages("01_im_basics")
        assert say("last_one", online=[]) == "关闭最后一台之后：[]"
        assert say.label("short polling") == "短轮询"
        assert matplotlib.rcParams["font.sans-serif"][0] in nbtext.CJK_FONTS
    monkeypatch.setattr(nbtext, "_chosen", None)
