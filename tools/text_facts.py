"""Facts about my_chat for the published text, read from the code itself.

The chapters never hand-copy a table that the code decides. They hold a marker, such as
``<!-- generated: settings -->``, and the mkdocs hook (``tools/mkdocs_hooks.py``) replaces it
with the table made here at build time:

* ``settings``: every field of ``my_chat.config.Settings``, its default, its command-line
  flag and that flag's help (or, for a setting without a flag, the comment above it in
  ``config.py``);
* ``events``: every name in ``my_chat.events.RESERVED_EVENTS``, with its payload's JSON
  fields, read from the payload's dataclass;
* ``errors``: every error code the server can answer with, found by reading the source
  (each ``raise BadRequest("code", "message")`` and the like), with its status;
* ``limits``: the module constants the text names (the push API's limits, for instance);
* ``reserved-events``: the server's own event names, inline, as a list.

Words a reader sees (column headings, what an event is for, what a limit means) come from
``tools/facts.en.toml``, one file per language (``facts.zh.toml`` for the Chinese pages, with
the same keys; the mkdocs hook picks the file by the page's language); numbers and names
come from the code. The settings' and flags' descriptions are the code's own English (flag
help, comments in ``config.py``); a words file in another language translates them under
``[code_text]``, each entry with the English it translates. A text file that describes an
event the code does not have, or misses one it has, is an error, so the two cannot drift
apart.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib
import io
import os
import re
import tokenize
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
WORDS = ROOT / "tools" / "facts.en.toml"
DEFAULT_LANGUAGE = "en"
MARKER = re.compile(r"(?<!`)<!-- generated: (?P<name>[\w-]+) -->(?!`)")  # not in `code`
SOURCE_DIRS = ("my_chat", "solutions")


class FactsError(Exception):
    """The words file and the code disagree, or a marker names no table."""


def words_file(language: str = DEFAULT_LANGUAGE) -> Path:
    """``tools/facts.LANGUAGE.toml``; a language without its own file fails loudly."""
    path = WORDS.with_name(f"facts.{language}.toml")
    if not path.is_file():
        raise FactsError(f"no words file for the language {language!r}: {path.name}")
    return path


def words(path: Path | None = None, *, language: str = DEFAULT_LANGUAGE) -> dict[str, Any]:
    path = path if path is not None else words_file(language)
    return tomllib.loads(path.read_text(encoding="utf-8"))


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(headings: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headings) + " |", "|" + "---|" * len(headings)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def format_value(value: object, *, byte_size: bool = False) -> str:
    """A default as a reader writes it: ``262,144 (256 KiB)``, ``3000``, ``30.0``, ``none``."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int):
        text = f"{value:,}" if value >= 10_000 else str(value)  # 8080, 3000, 100,000
        if byte_size and value >= 1024 and value % 1024 == 0:
            text += f" ({value // 1024:,} KiB)"
        return text
    if isinstance(value, Path):
        return f"{value}/"
    return str(value)


# --- the command line ---------------------------------------------------------------------


class _Captured(Exception):
    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.parser = parser


def cli_parser() -> argparse.ArgumentParser:
    """The parser ``python -m my_chat`` builds, caught before it parses anything.

    ``parse_args`` builds its parser and uses it in one go; stopping it at the parse is the
    way to read the real flags without a second copy of them.
    """
    from my_chat import __main__ as entry

    def capture(self: argparse.ArgumentParser, *_: Any, **__: Any) -> None:
        raise _Captured(self)

    # Defaults as documented, not as this machine's environment would change them.
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MY_CHAT_")}
    with (
        mock.patch.object(argparse.ArgumentParser, "parse_args", capture),
        mock.patch.dict(os.environ, clean, clear=True),
    ):
        try:
            entry.parse_args([])
        except _Captured as captured:
            return captured.parser
    raise FactsError("my_chat.__main__.parse_args built no parser")


def cli_options() -> dict[str, argparse.Action]:
    """The flags by destination (the ``Settings`` field each one sets)."""
    return {
        action.dest: action
        for action in cli_parser()._actions
        if action.option_strings and action.dest != "help"
    }


def _help(action: argparse.Action) -> str:
    text = action.help or ""
    return re.sub(r"\s*\(%\(default\)s\)", "", text).strip()


def in_language(text: dict[str, Any], name: str, english: str) -> str:
    """The code's own English words for setting ``name``, as the words file translates them.

    A translation (``[code_text]`` of ``facts.zh.toml``) records the English it translates;
    when the code's words have changed since, the English shows until the translation is
    updated (``tests/test_translations.py`` names it).
    """
    entry = text.get("code_text", {}).get(name)
    if entry is None or entry["en"] != english:
        return english
    return entry["text"]


# --- settings -----------------------------------------------------------------------------


def settings_comments(path: Path = ROOT / "my_chat" / "config.py") -> dict[str, str]:
    """The comment block right above each ``Settings`` field, by field name."""
    comments: dict[str, str] = {}
    pending: list[str] = []
    source = path.read_text(encoding="utf-8")
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            pending.append(token.string.lstrip("#").strip())
        elif token.type == tokenize.NAME and token.start[1] == 4:
            if pending:
                comments[token.string] = " ".join(pending)
            pending = []
        elif token.type == tokenize.NL and not token.line.strip():
            pending = []  # a blank line ends a comment's reach
    return comments


def settings_rows(text: dict[str, Any]) -> list[list[str]]:
    from my_chat.config import Settings

    defaults = Settings()
    options = cli_options()
    comments = settings_comments()
    byte_sizes = set(text["units"]["byte_sizes"])
    secret = set(text["settings"]["from_environment"])
    rows = []
    for field in dataclasses.fields(Settings):
        action = options.get(field.name)
        flag = f"`{action.option_strings[0]}`" if action else text["settings"]["no_flag"]
        if field.name in secret:
            described = text["settings"]["from_environment"][field.name]
        else:
            from_code = (_help(action) if action else "") or comments.get(field.name, "")
            described = (
                in_language(text, field.name, from_code)
                if from_code
                else text["settings"]["described"].get(field.name, "")
            )
        default = format_value(getattr(defaults, field.name), byte_size=field.name in byte_sizes)
        rows.append([f"`{field.name}`", flag, default, described])
    return rows


def code_texts() -> dict[str, str]:
    """Setting or flag name -> the English words the code gives it, as the tables show them."""
    from my_chat.config import Settings

    texts = {a.dest: _help(a) for a in cli_options().values() if _help(a)}
    comments = settings_comments()
    described_in_words = set(words()["settings"]["from_environment"])
    for field in dataclasses.fields(Settings):
        if field.name in described_in_words:
            continue
        if field.name not in texts and comments.get(field.name):
            texts[field.name] = comments[field.name]
    return texts


def settings_table(text: dict[str, Any]) -> str:
    return _table(text["settings"]["headings"], settings_rows(text))


def cli_table(text: dict[str, Any]) -> str:
    rows = []
    for action in cli_parser()._actions:
        if not action.option_strings or action.dest == "help":
            continue
        default = action.default
        if isinstance(action, argparse._StoreTrueAction):
            default = False
        rows.append(
            [
                ", ".join(f"`{o}`" for o in action.option_strings),
                format_value(default),
                in_language(text, action.dest, _help(action)),
            ]
        )
    return _table(text["cli"]["headings"], rows)


# --- events -------------------------------------------------------------------------------


def payload_class(event: str) -> type:
    """``connection_id`` is ``ConnectionIdData``; ``message`` is ``Message``."""
    events = importlib.import_module("my_chat.events")
    base = "".join(part.capitalize() for part in event.split("_"))
    for name in (f"{base}Data", base):
        if isinstance(getattr(events, name, None), type):
            return getattr(events, name)
    raise FactsError(f"my_chat/events.py has no payload class for the event {event!r}")


def payload_fields(cls: type) -> list[str]:
    """The JSON keys of a payload: the dataclass's fields, or what ``to_payload`` writes."""
    names = [f.name for f in dataclasses.fields(cls)]
    if hasattr(cls, "to_payload"):
        return list(cls(**dict.fromkeys(names)).to_payload())
    return names


def reserved_events() -> list[str]:
    events = importlib.import_module("my_chat.events")
    # In the order events.py declares them, which is the order a stream meets them.
    declared = [
        value
        for name, value in vars(events).items()
        if name.isupper() and isinstance(value, str) and value in events.RESERVED_EVENTS
    ]
    return list(dict.fromkeys(declared))


def events_table(text: dict[str, Any]) -> str:
    described = text["events"]["when"]
    names = reserved_events()
    unknown = sorted(set(described) - set(names))
    missing = [name for name in names if name not in described]
    if unknown or missing:
        raise FactsError(
            f"{WORDS.name} and my_chat/events.py disagree: described but not in the code "
            f"{unknown}, in the code but not described {missing}"
        )
    rows = []
    for name in names:
        fields = ", ".join(f'"{f}"' for f in payload_fields(payload_class(name)))
        rows.append([f"`{name}`", f"`{{{fields}}}`", described[name]])
    rows.append(list(text["events"]["other_row"]))
    return _table(text["events"]["headings"], rows)


def reserved_events_inline(_: dict[str, Any]) -> str:
    return ", ".join(f"`{name}`" for name in reserved_events())


# --- errors -------------------------------------------------------------------------------


def _error_classes() -> dict[str, int]:
    errors = importlib.import_module("my_chat.errors")
    return {
        name: cls.status
        for name, cls in vars(errors).items()
        if isinstance(cls, type) and issubclass(cls, errors.ApiError)
    }


def _literal(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):  # f"invalid_{name}": show the placeholder
        return "".join(
            part.value if isinstance(part, ast.Constant) else "{" + ast.unparse(part.value) + "}"
            for part in node.values
        )
    return None


def _class_status(node: ast.ClassDef, classes: dict[str, int]) -> int | None:
    """The status of an ``ApiError`` subclass: its own ``status = N``, else its base's."""
    bases = [classes[b.id] for b in node.bases if isinstance(b, ast.Name) and b.id in classes]
    if not bases:
        return None
    for statement in node.body:
        if (
            isinstance(statement, ast.Assign)
            and [getattr(t, "id", None) for t in statement.targets] == ["status"]
            and isinstance(statement.value, ast.Constant)
        ):
            return statement.value.value
    return bases[0]


def _raised_errors(
    tree: ast.AST, classes: dict[str, int]
) -> list[tuple[int, str, str | None, int]]:
    """(status, code, message, line) of each error ``tree`` raises with a literal code:
    ``Class("code", "message")``, ``error_response(500, "code", "message")``, and an error
    class that names its own code, ``super().__init__("code", "message")``.

    ``classes`` (name -> status) learns the subclasses raised like their base."""
    raised = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            status = _class_status(node, classes)
            if status is None:
                continue
            if not any(isinstance(f, ast.FunctionDef) and f.name == "__init__" for f in node.body):
                classes.setdefault(node.name, status)  # raised as Class("code", "message")
            for call in ast.walk(node):
                if (
                    isinstance(call, ast.Call)
                    and isinstance(call.func, ast.Attribute)
                    and call.func.attr == "__init__"
                    and len(call.args) >= 2
                    and (code := _literal(call.args[0])) is not None
                ):
                    raised.append((status, code, _literal(call.args[1]), call.lineno))
            continue
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
            continue
        args = node.args
        if node.func.id == "error_response":  # error_response(500, "code", "message")
            if len(args) < 3 or not isinstance(args[0], ast.Constant):
                continue
            status, args = args[0].value, args[1:]
        elif node.func.id in classes and len(args) >= 2:
            status = classes[node.func.id]
        else:
            continue
        code = _literal(args[0])
        if code is None:
            continue
        for keyword in node.keywords:
            if keyword.arg == "status" and isinstance(keyword.value, ast.Constant):
                status = keyword.value.value
        raised.append((status, code, _literal(args[1]), node.lineno))
    return raised


def error_codes(root: Path = ROOT) -> list[tuple[int, str, str, str]]:
    """(status, code, message, module) for every API error the source raises."""
    classes = _error_classes()
    # (status, code) -> ([(line, message)], modules); messages in the order of the source.
    found: dict[tuple[int, str], tuple[list[tuple[int, str]], set[str]]] = {}
    for folder in SOURCE_DIRS:
        for path in sorted((root / folder).glob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for status, code, message, line in _raised_errors(tree, classes):
                messages, modules = found.setdefault((status, code), ([], set()))
                if message:
                    messages.append((line, message))
                modules.add(f"{folder}/{path.name}")
    errors = importlib.import_module("my_chat.errors")
    for status, code in errors._HTTP_CODES.items():
        found.setdefault((status, code), ([], {"aiohttp"}))
    return sorted(
        (
            status,
            code,
            " / ".join(dict.fromkeys(message for _, message in sorted(messages))),
            ", ".join(sorted(modules)),
        )
        for (status, code), (messages, modules) in found.items()
    )


def errors_table(text: dict[str, Any]) -> str:
    generic = text["errors"]["generic_message"]
    rows = [
        [str(status), f"`{code}`", message or generic, f"`{module}`"]
        for status, code, message, module in error_codes()
    ]
    return _table(text["errors"]["headings"], rows)


# --- limits -------------------------------------------------------------------------------


def constant(dotted: str) -> Any:
    module, _, name = dotted.rpartition(".")
    value = getattr(importlib.import_module(module), name, None)
    if value is None:
        raise FactsError(f"{WORDS.name} names {dotted}, which the code does not have")
    return value


def limits_table(text: dict[str, Any]) -> str:
    byte_sizes = set(text["units"]["byte_sizes"])
    rows = []
    for dotted, meaning in text["limits"]["constants"].items():
        value = constant(dotted)
        if isinstance(value, re.Pattern):
            value = f"`{value.pattern}`"
        else:
            value = format_value(value, byte_size=dotted.rpartition(".")[2] in byte_sizes)
        rows.append([f"`{dotted}`", value, meaning])
    return _table(text["limits"]["headings"], rows)


TABLES: dict[str, Callable[[dict[str, Any]], str]] = {
    "settings": settings_table,
    "cli": cli_table,
    "events": events_table,
    "errors": errors_table,
    "limits": limits_table,
    "reserved-events": reserved_events_inline,
}


def indented_like(markdown: str, match: re.Match[str], block: str) -> str:
    """``block`` indented like the marker's line, so a table works inside a tab or a box."""
    line_start = markdown.rfind("\n", 0, match.start()) + 1
    indent = markdown[line_start : match.start()]
    if not indent or indent.strip():
        return block
    return block.replace("\n", "\n" + indent)


def render(
    markdown: str,
    *,
    text: dict[str, Any] | None = None,
    origin: str = "",
    language: str = DEFAULT_LANGUAGE,
) -> str:
    """``markdown`` with every ``<!-- generated: NAME -->`` marker replaced by its table.

    The words around the names and numbers come from ``text``, or else from the words file
    of ``language``.
    """
    if MARKER.search(markdown) is None:
        return markdown
    text = text if text is not None else words(language=language)

    def replace(match: re.Match[str]) -> str:
        make = TABLES.get(match["name"])
        if make is None:
            raise FactsError(f"{origin}: no generated table called {match['name']!r}")
        return indented_like(markdown, match, make(text))

    return MARKER.sub(replace, markdown)
