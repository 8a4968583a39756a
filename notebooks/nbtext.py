"""What the notebooks print and draw, in the reader's language.

A code cell never holds reader-facing text: it asks a message table for it,
``say("delivered", reached=3)``, and prints or plots the answer. The tables are
``notebooks/texts/NOTEBOOK.LANG.toml`` (``en`` is complete; another language may lack a key,
which then falls back to English). ``[labels]`` translates names that are also data, such as
the method names the results are keyed by: ``say.label("short polling")``.

The language is English unless the notebook's first cell called ``use_language("zh")`` (the
Chinese notebooks built by ``tools/notebooks_zh.py`` start with such a cell) or the
environment variable ``NOTEBOOK_LANG`` says otherwise. Chinese also switches matplotlib to a
CJK font (Debian's fonts-noto-cjk), so plot labels do not show as boxes.
"""

from __future__ import annotations

import os
import tomllib
import unicodedata
from pathlib import Path
from typing import Any

TEXTS = Path(__file__).resolve().parent / "texts"
DEFAULT_LANGUAGE = "en"
LANGUAGE_VARIABLE = "NOTEBOOK_LANG"
# Tried in order; the first one matplotlib knows is used for Chinese plots.
CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans SC", "WenQuanYi Zen Hei")

_chosen: str | None = None


def language() -> str:
    """The notebook's language: the one ``use_language`` chose, else $NOTEBOOK_LANG, else en."""
    return _chosen or os.environ.get(LANGUAGE_VARIABLE) or DEFAULT_LANGUAGE


def use_language(code: str) -> None:
    """Print and plot in ``code`` (``en`` or ``zh``) from now on."""
    global _chosen
    _chosen = code
    if code == "zh":
        use_cjk_font()


def use_cjk_font() -> str | None:
    """Put an installed CJK font first in matplotlib's sans-serif list; return its name."""
    import matplotlib
    from matplotlib import font_manager

    installed = {font.name for font in font_manager.fontManager.ttflist}
    if not installed.intersection(CJK_FONTS):
        # matplotlib's font cache may predate the fonts (installed after its first run).
        for path in font_manager.findSystemFonts():
            if "CJK" in Path(path).name:
                font_manager.fontManager.addfont(path)
        installed = {font.name for font in font_manager.fontManager.ttflist}
    for name in CJK_FONTS:
        if name in installed:
            fonts = [name, *matplotlib.rcParams["font.sans-serif"]]
            matplotlib.rcParams["font.family"] = ["sans-serif"]
            matplotlib.rcParams["font.sans-serif"] = fonts
            matplotlib.rcParams["axes.unicode_minus"] = False  # CJK fonts lack U+2212
            return name
    return None


def load_table(notebook: str, code: str) -> dict[str, Any]:
    path = TEXTS / f"{notebook}.{code}.toml"
    return tomllib.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


class Messages:
    """One notebook's message table in one language, with English beneath it."""

    def __init__(self, notebook: str, code: str) -> None:
        self.language = code
        english = load_table(notebook, DEFAULT_LANGUAGE)
        if not english:
            raise FileNotFoundError(f"no message table {TEXTS / notebook}.en.toml")
        chosen = load_table(notebook, code) if code != DEFAULT_LANGUAGE else {}
        self.labels = {**english.pop("labels", {}), **chosen.pop("labels", {})}
        self.texts = {**english, **chosen}

    def __call__(self, key: str, **values: Any) -> str:
        return self.texts[key].format(**values)

    def label(self, name: str) -> str:
        return self.labels.get(name, name)

    @staticmethod
    def pad(text: str, columns: int) -> str:
        """``text`` left-aligned in ``columns`` terminal columns (a CJK character takes two)."""
        return text + " " * max(0, columns - display_width(text))


def display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def messages(notebook: str) -> Messages:
    """The message table of ``notebook`` (its file name without .ipynb), in the language."""
    if language() == "zh":
        use_cjk_font()
    return Messages(notebook, language())
