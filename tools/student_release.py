"""Make a student release of the workbook: the repository without the solutions.

    python tools/student_release.py DEST

copies the git-tracked files (every file, skipping .venv, site, var and caches, when the
repository is not a git repository) into DEST, which must not exist or be empty, except:

* solutions/;
* the tools that only work with solutions/: tools/make_exercises.py, this script, and
  their tests, tests/test_exercise_tooling.py. (tools/check_stubs_fail.py stays: in the
  release it checks that every exercise test fails on the pristine stubs.)

The exercise stubs are written freshly generated from solutions/ (the command refuses to run
while exercises/ is out of sync: run tools/make_exercises.py first), and a pristine copy of
each goes to exercises/.pristine/, from which ``python -m exercises reset NAME`` restores
it. Nothing else is written. The exercise tests stay: without solutions/ they test
exercises/ by default.

Afterwards it prints, as notes, lines in the release that still mention the solutions or
the dropped tools, such as a Makefile target or a chapter that includes a solution file.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent

DROPPED_FILES = frozenset(
    {
        "tools/make_exercises.py",
        "tools/student_release.py",
        "tests/test_exercise_tooling.py",
        "tests/test_exercises_zh.py",  # builds on test_exercise_tooling.py
        ".exercises-progress.json",
    }
)
DROPPED_FOLDERS = ("solutions/", "exercises/.pristine/")
# Without git: folders never copied, wherever they are.
SKIPPED_NAMES = frozenset(
    {
        ".git",
        ".venv",
        "venv",
        "site",
        "var",
        "build",
        "dist",
        "__pycache__",
        ".pytest_cache",
        ".ruff_cache",
        ".hypothesis",
        ".ipynb_checkpoints",
        ".mypy_cache",
    }
)
MENTIONS = ("solutions/", "solutions.", "make_exercises", "student_release")
# Folders whose mentions are explanations for authors, not dependencies.
MENTIONS_IGNORED_IN = ("exercises/",)


class ReleaseError(Exception):
    pass


def load_generator(root: Path) -> ModuleType:
    path = root / "tools" / "make_exercises.py"
    spec = importlib.util.spec_from_file_location("_make_exercises", path)
    if spec is None or spec.loader is None or not path.exists():
        raise ReleaseError(f"{path}: missing")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def tracked_files(root: Path) -> tuple[list[str], list[str]]:
    """Files to consider (relative POSIX paths) and untracked files left out (git only)."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached"],
            cwd=root,
            capture_output=True,
            check=True,
        )
        others = subprocess.run(
            ["git", "ls-files", "-z", "--others", "--exclude-standard"],
            cwd=root,
            capture_output=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return walked_files(root), []
    files = [name for name in listed.stdout.decode().split("\0") if name]
    untracked = [name for name in others.stdout.decode().split("\0") if name]
    if not files:
        raise ReleaseError(f"{root}: git tracks no files here yet; add them first")
    return files, untracked


def walked_files(root: Path) -> list[str]:
    found = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = sorted(
            name
            for name in subfolders
            if name not in SKIPPED_NAMES and not name.endswith(".egg-info")
        )
        for name in sorted(names):
            if name.endswith((".pyc", ".tmp")):
                continue
            found.append((Path(folder) / name).relative_to(root).as_posix())
    return found


def is_dropped(path: str) -> bool:
    return path in DROPPED_FILES or path.startswith(DROPPED_FOLDERS)


def mentions(dest: Path, files: list[str]) -> list[str]:
    """Lines in the release that still refer to what it leaves out."""
    notes = []
    for path in files:
        if path.startswith(MENTIONS_IGNORED_IN):
            continue
        try:
            text = (dest / path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if path.endswith(".py"):
            notes.extend(f"{path}:{line}: imports solutions" for line in solution_imports(text))
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            if any(mention in line for mention in MENTIONS):
                notes.append(f"{path}:{number}: {line.strip()[:100]}")
    return notes


def solution_imports(source: str) -> list[int]:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    lines = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        if any(name == "solutions" or name.startswith("solutions.") for name in names):
            lines.append(node.lineno)
    return lines


def release(root: Path, dest: Path) -> tuple[list[str], list[str], list[str]]:
    """Write the release; return the copied files, the pristine stubs and untracked files."""
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ReleaseError(f"{dest}: exists and is not an empty folder")
    if not (root / "solutions").is_dir():
        raise ReleaseError(f"{root}: no solutions/ here; is this already a student release?")
    generator = load_generator(root)
    try:
        stubs: dict[str, str] = generator.generated_files(root / "solutions")
    except generator.StubError as error:
        raise ReleaseError(str(error)) from error
    problems = generator.drift(stubs, root / "exercises")
    if problems:
        raise ReleaseError(
            "exercises/ is out of sync with solutions/; run: python tools/make_exercises.py\n"
            + "\n".join(problem.splitlines()[0] for problem in problems)
        )

    files, untracked = tracked_files(root)
    dest_inside_root = dest.resolve().is_relative_to(root.resolve())
    copied = []
    for path in files:
        source = root / path
        if is_dropped(path) or not source.is_file():
            continue
        if dest_inside_root and source.resolve().is_relative_to(dest.resolve()):
            continue
        target = dest / PurePosixPath(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        copied.append(path)

    pristine = []
    for name, text in stubs.items():
        (dest / "exercises" / name).parent.mkdir(parents=True, exist_ok=True)
        (dest / "exercises" / name).write_text(text, encoding="utf-8")
        if name == "__init__.py":
            continue
        target = dest / "exercises" / ".pristine" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        pristine.append(f"exercises/.pristine/{name}")
    left_out = [path for path in untracked if not is_dropped(path)]
    return copied, pristine, left_out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Copy the workbook without its solutions into DEST (see the module "
        "docstring of tools/student_release.py for what is left out).",
        epilog="Exit status: 0 written, 1 refused (DEST not empty, stubs out of sync, ...).",
    )
    parser.add_argument("dest", type=Path, metavar="DEST", help="a new or empty folder")
    parser.add_argument(
        "--root", type=Path, default=ROOT, help="the repository to release (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    root = args.root.resolve()
    try:
        copied, pristine, left_out = release(root, args.dest)
    except ReleaseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{args.dest}: {len(copied)} files copied, {len(pristine)} pristine stubs written")
    if left_out:
        print(f"note: {len(left_out)} untracked file(s) not copied, such as:", file=sys.stderr)
        for path in left_out[:10]:
            print(f"  {path}", file=sys.stderr)
    notes = mentions(args.dest, copied)
    if notes:
        print("note: these lines still refer to what the release leaves out:", file=sys.stderr)
        for note in notes:
            print(f"  {note}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
