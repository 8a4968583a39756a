"""Generate the exercise stubs in exercises/ from the answers in solutions/.

solutions/ is the source of truth. In a solution module, each answer region sits between
two marker lines, indented like the code around them::

    def make_heartbeat(kind: str) -> HeartbeatData:
        ### BEGIN SOLUTION: build the HeartbeatData for this kind
        ...
        ### END SOLUTION

In the stub, a region becomes a ``# TODO:`` comment (the text after ``BEGIN SOLUTION:``, or a
default) and ``raise NotImplementedError(...)`` at the region's indentation. Everything else
is copied verbatim. Rules, each checked (a broken solution file is an error, never a
half-written stub):

* The module starts with a docstring whose first paragraph is the task statement. The stub
  keeps the whole docstring, so write it for the learner.
* Regions sit inside a function body (a ``raise`` at module or class level would make the
  stub fail to import). They do not nest, every BEGIN has its END at the same indentation.
* Solution modules import each other relatively (``from .tokens import ...``), never through
  the ``solutions`` package, which a student release does not have.

A folder of web assets beside the modules (``solutions/NAME_static/``: ``.html``, ``.css``,
``.js``) is copied into ``exercises/`` the same way. In a ``.js`` file the markers are
comments, ``// ### BEGIN SOLUTION: todo text`` and ``// ### END SOLUTION``, and a region
becomes ``// TODO:`` lines and a ``throw new Error(...)``; other assets are copied verbatim.

``exercises/__main__.py``, ``exercises/_checker.py``, ``exercises/_loopwatch.py``,
``exercises/hints/`` and ``exercises/.pristine/`` belong to the learner's checker and are
never written.

Usage::

    python tools/make_exercises.py              # write exercises/
    python tools/make_exercises.py --check      # exit 1 with a diff when exercises/ is stale
    python tools/make_exercises.py --out DIR    # write a fresh copy of the stubs into DIR
"""

from __future__ import annotations

import argparse
import ast
import difflib
import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

BEGIN_MARKER = "### BEGIN SOLUTION"
END_MARKER = "### END SOLUTION"
BEGIN_RE = re.compile(r"^(?P<indent>[ \t]*)### BEGIN SOLUTION(?::[ \t]*(?P<todo>.*?))?[ \t]*$")
END_RE = re.compile(r"^(?P<indent>[ \t]*)### END SOLUTION[ \t]*$")

JS_BEGIN_RE = re.compile(
    r"^(?P<indent>[ \t]*)// ### BEGIN SOLUTION(?::[ \t]*(?P<todo>.*?))?[ \t]*$"
)
JS_END_RE = re.compile(r"^(?P<indent>[ \t]*)// ### END SOLUTION[ \t]*$")
JS_FUNCTION_RE = re.compile(r"^\s*(?:async\s+)?function\s+(?P<name>\w+)\s*\(")
ASSET_SUFFIXES = (".html", ".css", ".js")

DEFAULT_TODO = "write your code here"
LINE_LENGTH = 100
HEADER = "# Generated from {origin} by tools/make_exercises.py —\n# edit this file, it is yours."
INIT_SOURCE = '"""Your exercises: edit these modules, then run ``python -m exercises``."""\n'

# Files and folders in exercises/ that the generator never writes, removes or compares.
PROTECTED_NAMES = frozenset(
    {"__main__.py", "_checker.py", "_loopwatch.py", "hints", ".pristine", "__pycache__"}
)


class StubError(Exception):
    """A solution file that cannot become a stub; the message names the file and line."""


@dataclass(frozen=True)
class Region:
    begin: int  # 1-based line number of the BEGIN marker
    end: int  # 1-based line number of the END marker
    indent: str
    todo: str


def find_regions(lines: list[str], origin: str) -> list[Region]:
    regions: list[Region] = []
    open_begin: tuple[int, re.Match[str]] | None = None
    for number, line in enumerate(lines, start=1):
        begin = BEGIN_RE.match(line)
        end = END_RE.match(line)
        if begin is None and end is None:
            if BEGIN_MARKER in line or END_MARKER in line:
                raise StubError(
                    f"{origin}:{number}: malformed marker (expected '{BEGIN_MARKER}', "
                    f"'{BEGIN_MARKER}: todo text' or '{END_MARKER}' alone on the line)"
                )
            continue
        if begin is not None:
            if open_begin is not None:
                raise StubError(
                    f"{origin}:{number}: nested {BEGIN_MARKER} (the one on line "
                    f"{open_begin[0]} has no {END_MARKER} yet)"
                )
            open_begin = (number, begin)
            continue
        assert end is not None
        if open_begin is None:
            raise StubError(f"{origin}:{number}: {END_MARKER} without {BEGIN_MARKER}")
        begin_number, begin_match = open_begin
        if end.group("indent") != begin_match.group("indent"):
            raise StubError(
                f"{origin}:{number}: {END_MARKER} is indented differently from the "
                f"{BEGIN_MARKER} on line {begin_number}"
            )
        todo = (begin_match.group("todo") or "").strip() or DEFAULT_TODO
        regions.append(Region(begin_number, number, begin_match.group("indent"), todo))
        open_begin = None
    if open_begin is not None:
        raise StubError(f"{origin}:{open_begin[0]}: {BEGIN_MARKER} without {END_MARKER}")
    return regions


def task_docstring_end(tree: ast.Module, origin: str) -> int:
    """The last line of the module docstring, after checking it states a task."""
    docstring = ast.get_docstring(tree)
    if not docstring or not docstring.strip():
        raise StubError(
            f"{origin}:1: a solution module starts with a docstring whose first paragraph "
            "is the task statement"
        )
    first = tree.body[0]
    assert first.end_lineno is not None
    return first.end_lineno


def raise_scopes(tree: ast.Module, lines: set[int]) -> dict[int, ast.AST]:
    """For each ``raise`` on one of ``lines``: the innermost function, class or module."""
    found: dict[int, ast.AST] = {}
    scopes = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)

    def visit(node: ast.AST, scope: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Raise) and child.lineno in lines:
                found[child.lineno] = scope
            visit(child, child if isinstance(child, scopes) else scope)

    visit(tree, tree)
    return found


def check_imports(tree: ast.Module, origin: str) -> None:
    for node in ast.walk(tree):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        for module in modules:
            if module == "solutions" or module.startswith("solutions."):
                raise StubError(
                    f"{origin}:{node.lineno}: import '{module}' through the package; use a "
                    "relative import (from .name import ...) so the stub imports its sibling"
                )


def todo_lines(indent: str, todo: str) -> list[str]:
    width = max(LINE_LENGTH - len(indent.expandtabs()), 40)
    wrapped = textwrap.wrap(
        todo,
        width=width,
        initial_indent="# TODO: ",
        subsequent_indent="#       ",
        break_long_words=False,
        break_on_hyphens=False,
    )
    return [indent + line for line in wrapped]


def python_string(text: str) -> str:
    """A double-quoted literal, the quote style ruff format keeps."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def raise_line(indent: str, function: str, name: str) -> str:
    messages = (f"TODO: {function}() in exercises/{name}.py", f"TODO: {function}()", "TODO")
    for message in messages:
        line = f"{indent}raise NotImplementedError({python_string(message)})"
        if len(line.expandtabs()) <= LINE_LENGTH:
            return line
    return line


def make_stub(source: str, name: str, origin: str | None = None) -> str:
    """The stub text for one solution module, checked to compile and import."""
    origin = origin or f"solutions/{name}.py"
    try:
        tree = ast.parse(source, filename=origin)
    except SyntaxError as error:
        raise StubError(
            f"{origin}:{error.lineno}: the solution does not parse: {error.msg}"
        ) from error
    docstring_end = task_docstring_end(tree, origin)
    check_imports(tree, origin)
    lines = source.splitlines()
    regions = find_regions(lines, origin)
    if any(region.begin <= docstring_end for region in regions):
        raise StubError(f"{origin}: a region starts inside the module docstring")

    # The header goes right after the docstring, so the stub opens with the task statement.
    out = [*lines[:docstring_end], "", *HEADER.format(origin=origin).splitlines()]
    position = docstring_end  # index into lines of the next line to copy
    raises: dict[int, Region] = {}  # 1-based stub line of each inserted raise -> its region
    for region in regions:
        out.extend(lines[position : region.begin - 1])
        out.extend(todo_lines(region.indent, region.todo))
        out.append(raise_line(region.indent, "", name))
        raises[len(out)] = region
        position = region.end
    out.extend(lines[position:])
    stub = "\n".join(out) + "\n"

    try:
        stub_tree = ast.parse(stub, filename=f"exercises/{name}.py")
    except SyntaxError as error:
        raise StubError(
            f"{origin}: the generated stub does not compile (stub line {error.lineno}: "
            f"{error.msg}); check the regions' indentation"
        ) from error
    scopes = raise_scopes(stub_tree, set(raises))
    for line_number, region in raises.items():
        scope = scopes.get(line_number)
        if not isinstance(scope, ast.FunctionDef | ast.AsyncFunctionDef):
            where = "a class body" if isinstance(scope, ast.ClassDef) else "module level"
            raise StubError(
                f"{origin}:{region.begin}: a region at {where} would make the stub fail to "
                "import; put it inside a function body"
            )
        out[line_number - 1] = raise_line(region.indent, scope.name, name)
    stub = "\n".join(out) + "\n"
    compile(stub, f"exercises/{name}.py", "exec")  # the final text, once more, to be sure
    return stub


def make_asset_stub(text: str, relative: str) -> str:
    """The learner's copy of a web asset: ``.js`` regions become a TODO and a throw."""
    origin = f"solutions/{relative}"
    if not relative.endswith(".js"):
        if BEGIN_MARKER in text or END_MARKER in text:
            raise StubError(f"{origin}: solution markers work in .js files only")
        return text
    out: list[str] = []
    begin: tuple[int, re.Match[str]] | None = None
    function = ""  # the JavaScript function the next region is in, for its error message
    for number, line in enumerate(text.splitlines(), start=1):
        declared = JS_FUNCTION_RE.match(line)
        function = declared.group("name") if declared else function
        opened, closed = JS_BEGIN_RE.match(line), JS_END_RE.match(line)
        if opened is None and closed is None:
            if BEGIN_MARKER in line or END_MARKER in line:
                raise StubError(f"{origin}:{number}: malformed marker")
            if begin is None:
                out.append(line)
        elif opened is not None:
            if begin is not None:
                raise StubError(f"{origin}:{number}: nested {BEGIN_MARKER}")
            begin = (number, opened)
        else:
            assert closed is not None
            if begin is None or closed.group("indent") != begin[1].group("indent"):
                raise StubError(f"{origin}:{number}: {END_MARKER} without a matching BEGIN")
            indent = begin[1].group("indent")
            todo = (begin[1].group("todo") or "").strip() or DEFAULT_TODO
            out.extend(line.replace("#", "//", 1) for line in todo_lines(indent, todo))
            where = f"{function}() in exercises/{relative}" if function else f"exercises/{relative}"
            out.append(f'{indent}throw new Error("TODO: {where}");')
            begin = None
    if begin is not None:
        raise StubError(f"{origin}:{begin[0]}: {BEGIN_MARKER} without {END_MARKER}")
    return "\n".join(out) + "\n"


def asset_files(solutions_dir: Path) -> dict[str, str]:
    """``FOLDER/FILE`` -> stub text, for the web assets in solutions' subfolders."""
    files = {}
    for path in sorted(solutions_dir.glob("*/*")):
        folder = path.parent.name
        if folder.startswith((".", "_")) or not path.is_file():
            continue
        if path.suffix in ASSET_SUFFIXES:
            relative = f"{folder}/{path.name}"
            files[relative] = make_asset_stub(path.read_text(encoding="utf-8"), relative)
    return files


def generated_files(solutions_dir: Path) -> dict[str, str]:
    """File name in exercises/ -> content, for every solution module."""
    if not solutions_dir.is_dir():
        raise StubError(f"{solutions_dir}: no such folder")
    files = {"__init__.py": INIT_SOURCE}
    for path in sorted(solutions_dir.glob("*.py")):
        if path.name == "__init__.py":
            continue
        if path.name in PROTECTED_NAMES:
            raise StubError(f"{path}: this name is reserved for the checker in exercises/")
        origin = f"solutions/{path.name}"
        files[path.name] = make_stub(path.read_text(encoding="utf-8"), path.stem, origin)
    files.update(asset_files(solutions_dir))
    return files


def is_generated(path: Path) -> bool:
    try:
        head = path.read_text(encoding="utf-8")[:4000]
    except (OSError, UnicodeDecodeError):
        return False
    return "by tools/make_exercises.py" in head


def stale_stubs(files: dict[str, str], out_dir: Path) -> list[Path]:
    """Generated stubs in out_dir whose solution is gone."""
    if not out_dir.is_dir():
        return []
    return [
        path
        for path in sorted(out_dir.glob("*.py"))
        if path.name not in files and path.name not in PROTECTED_NAMES and is_generated(path)
    ]


def write_stubs(files: dict[str, str], out_dir: Path) -> list[str]:
    out_dir.mkdir(parents=True, exist_ok=True)
    changes = []
    for name, content in files.items():
        target = out_dir / name
        if target.exists() and target.read_text(encoding="utf-8") == content:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
        changes.append(f"wrote {target}")
    for path in stale_stubs(files, out_dir):
        path.unlink()
        changes.append(f"removed {path} (its solution is gone)")
    return changes


def drift(files: dict[str, str], out_dir: Path, max_diff_lines: int = 30) -> list[str]:
    """Readable descriptions of every difference between out_dir and the generated stubs."""
    problems = []
    for name, content in files.items():
        target = out_dir / name
        if not target.exists():
            problems.append(f"{target}: missing")
            continue
        current = target.read_text(encoding="utf-8")
        if current == content:
            continue
        diff = list(
            difflib.unified_diff(
                current.splitlines(),
                content.splitlines(),
                fromfile=f"{target} (on disk)",
                tofile=f"{target} (generated)",
                lineterm="",
            )
        )
        shown = diff[:max_diff_lines]
        if len(diff) > max_diff_lines:
            shown.append(f"... {len(diff) - max_diff_lines} more diff lines")
        problems.append(f"{target}: differs from what its solution generates\n" + "\n".join(shown))
    for path in stale_stubs(files, out_dir):
        problems.append(f"{path}: stale, its solution is gone")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Generate exercises/ (stubs) from solutions/ (answers).",
        epilog="Exit status: 0 ok, 1 out of sync (--check) or a broken solution file.",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 with a diff summary when the stubs are out of sync",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for the stubs (default: exercises/ beside solutions/)",
    )
    parser.add_argument(
        "--solutions",
        type=Path,
        default=ROOT / "solutions",
        help="folder of solution modules (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    out_dir: Path = args.out if args.out is not None else args.solutions.parent / "exercises"

    try:
        files = generated_files(args.solutions)
    except StubError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1

    if args.check:
        problems = drift(files, out_dir)
        if problems:
            print("\n\n".join(problems))
            print(
                f"\n{len(problems)} stub file(s) out of sync with {args.solutions}; "
                "run: python tools/make_exercises.py",
                file=sys.stderr,
            )
            return 1
        print(f"{out_dir}: {len(files) - 1} stub(s) in sync with {args.solutions}")
        return 0

    changes = write_stubs(files, out_dir)
    for change in changes:
        print(change)
    print(f"{out_dir}: {len(files) - 1} stub(s), {len(changes)} change(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
