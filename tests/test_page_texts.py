"""The chat page's message tables (my_chat/static/texts/*.json) against each other and the code.

The page shows every text from a table, one per language, and maps the server's error codes
(the ``error`` field of JSON errors and of the stream's ``error`` events) to text under the key
``error.CODE``. The codes are found by reading the server's source, not from a hand-kept list,
so a new code without a text in both languages fails here.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from my_chat import errors
from my_chat.parts import PART_NAMES

ROOT = Path(__file__).resolve().parents[1]
TEXTS = ROOT / "my_chat" / "static" / "texts"
LANGUAGES = ("en", "zh")
# The server, and the solutions whose code it runs once a learner's exercise is done.
SOURCE_DIRS = ("my_chat", "solutions")
# Calls whose argument at this position is an error code sent to clients.
CODE_ARGUMENT = {"error_response": 1, "end_streams": 1, "session_end_frame": 0}
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def table(language: str) -> dict[str, str]:
    return json.loads((TEXTS / f"{language}.json").read_text(encoding="utf-8"))


def _api_error_classes() -> set[str]:
    return {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, errors.ApiError)
    }


def _string_constants(trees: list[ast.Module]) -> dict[str, str]:
    """Module-level ``NAME = "text"`` assignments, such as ``SESSION_REVOKED``."""
    found: dict[str, str] = {}
    for tree in trees:
        for node in tree.body:
            if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(
                node.value, ast.Constant
            ):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name) and isinstance(node.value.value, str):
                        found[target.id] = node.value.value
    return found


def _functions(tree: ast.Module) -> dict[ast.AST, ast.FunctionDef | ast.AsyncFunctionDef]:
    """Each node of ``tree`` mapped to the function it is in."""
    owner: dict[ast.AST, ast.FunctionDef | ast.AsyncFunctionDef] = {}
    for function in ast.walk(tree):
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            for node in ast.walk(function):
                owner[node] = function
    return owner


def _argument_values(tree: ast.Module, function: ast.FunctionDef | ast.AsyncFunctionDef, name: str):
    """The string literals passed for parameter ``name`` in the module's calls to ``function``."""
    position = [arg.arg for arg in function.args.args].index(name)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == function.name:
            if len(node.args) > position and isinstance(node.args[position], ast.Constant):
                yield node.args[position].value


def _codes_of(node: ast.AST, tree: ast.Module, owner, constants: dict[str, str]) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.Name) and node.id in constants:
        return [constants[node.id]]
    if isinstance(node, ast.JoinedStr):
        # f"invalid_{name}" in _int_query(request, name, ...): one code per literal name passed.
        parts = node.values
        fixed = [p for p in parts if isinstance(p, ast.Constant)]
        names = [p.value for p in parts if isinstance(p, ast.FormattedValue)]
        assert len(names) == 1 and isinstance(names[0], ast.Name), ast.unparse(node)
        values = list(_argument_values(tree, owner[node], names[0].id))
        assert values, f"no literal values for {ast.unparse(node)}"
        template = "".join(p.value if p in fixed else "{}" for p in parts)
        return [template.format(value) for value in values]
    return []


def server_error_codes() -> set[str]:
    """Every error code the server can send, read from its source."""
    classes = _api_error_classes()
    paths = [path for folder in SOURCE_DIRS for path in sorted((ROOT / folder).glob("*.py"))]
    trees = [ast.parse(path.read_text(encoding="utf-8")) for path in paths]
    constants = _string_constants(trees)
    codes: set[str] = set(errors._HTTP_CODES.values())
    for tree in trees:
        owner = _functions(tree)
        api_error_subclasses = {
            node
            for node in ast.walk(tree)
            if isinstance(node, ast.ClassDef)
            and any(getattr(base, "id", None) in classes for base in node.bases)
        }
        in_subclass = {n for c in api_error_subclasses for n in ast.walk(c)}
        for node in ast.walk(tree):
            found: list[ast.AST] = []
            if isinstance(node, ast.Call):
                func = node.func
                name = getattr(func, "id", None) or getattr(func, "attr", None)
                if isinstance(func, ast.Name) and name in classes and node.args:
                    found.append(node.args[0])  # raise BadRequest("code", ...)
                elif name == "__init__" and node in in_subclass and node.args:
                    found.append(node.args[0])  # super().__init__("code", ...) in a subclass
                elif name in CODE_ARGUMENT and len(node.args) > CODE_ARGUMENT[name]:
                    found.append(node.args[CODE_ARGUMENT[name]])
                elif name == "get" and ast.unparse(func) == "_HTTP_CODES.get":
                    found.append(node.args[1])  # the code of an HTTP error not in the table
                for i, argument in enumerate(node.args):
                    # loop.call_later(delay, end_streams, [connection], SESSION_EXPIRED)
                    position = CODE_ARGUMENT.get(getattr(argument, "id", None), -1)
                    if position >= 0 and len(node.args) > i + 1 + position:
                        found.append(node.args[i + 1 + position])
            elif isinstance(node, ast.Dict):  # a hand-made {"error": "code", ...} body
                for key, value in zip(node.keys, node.values, strict=True):
                    if isinstance(key, ast.Constant) and key.value == "error":
                        found.append(value)
            for argument in found:
                codes.update(_codes_of(argument, tree, owner, constants))
    return codes


# Some codes are raised by the exercises' model answers (solutions/), which a student
# release leaves out: there the learner has not written them yet.
@pytest.mark.needs_solutions
def test_the_collector_finds_codes_of_every_kind() -> None:
    codes = server_error_codes()
    # One of each way a code is written: a literal, a constant, an f-string, a subclass,
    # a hand-made body, aiohttp's own errors and the fallback for the rest.
    expected = {"username_taken", "session_revoked", "session_expired", "invalid_limit"}
    expected |= {"invalid_before", "body_timeout", "head_timeout", "not_found", "http_error"}
    expected |= {"internal", "unknown_recipient"}
    assert expected <= codes, expected - codes


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_server_error_code_has_a_text(language: str) -> None:
    keys = table(language)
    missing = sorted(code for code in server_error_codes() if f"error.{code}" not in keys)
    assert not missing, f"texts/{language}.json has no error.CODE text for: {missing}"


def test_the_tables_have_the_same_keys_and_placeholders() -> None:
    english, chinese = table("en"), table("zh")
    assert sorted(english) == sorted(chinese), set(english) ^ set(chinese)
    for key, text in english.items():
        assert text.strip() and chinese[key].strip(), f"{key} is empty"
        assert set(PLACEHOLDER.findall(text)) == set(PLACEHOLDER.findall(chinese[key])), key


def test_every_key_the_page_uses_is_in_the_tables() -> None:
    keys = set(table("en"))
    page = (ROOT / "my_chat" / "static" / "index.html").read_text(encoding="utf-8")
    script = (ROOT / "my_chat" / "static" / "app.js").read_text(encoding="utf-8")
    used = set(re.findall(r'data-i18n(?:-[a-z-]+)?="([^"]+)"', page))
    used |= set(re.findall(r'\bt(?:Parts)?\("([^"]+)"', script))
    used |= {f"connection.{state}" for state in re.findall(r'setConnection\("([^"]+)"', script)}
    # The banner's exercise texts, for every part the server lists in /api/status.
    for name in PART_NAMES:
        used |= {f"exercise.{name}.title", f"exercise.{name}.effect"}
    assert used - keys == set(), f"keys the page uses but no table has: {sorted(used - keys)}"
