"""The learner's checker behind ``python -m exercises``: list, next, check, watch, task, hint,
run, reset, solution.

It runs the exercise tests in tests/exercises/ against the modules in exercises/ with pytest
in a subprocess, reads the JUnit XML report, and keeps results and hint counts in
``.exercises-progress.json`` at the repository root. Results are cached by a hash of the
exercise file, the modules it imports from exercises/, its test file and the test conftest,
so listing again is fast until something changes.

Everything it says lives in exercises/hints/ (README.md, messages.toml, ORDER, NAME.md), and
in Chinese beside it (README.zh.md, messages.zh.toml, NAME.zh.md, NAME.task.zh.md): Chinese
with ``--lang zh``, else when LC_ALL, LC_MESSAGES or LANG (the first one set) starts with
``zh``.
The tests run with ``exercises/_loopwatch.py`` loaded: a time limit per test, and the line
that blocks the event loop, when one does.
The repository root is the folder above this package, or ``EXERCISES_ROOT`` when set.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import hashlib
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import tomllib
import unicodedata
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
SECTION_BREAK = re.compile(r"^---[ \t]*$", re.MULTILINE)
PHASE_HEADER = re.compile(r"^\[phase\s+(?P<number>[^\]]+)\]\s*(?P<title>.*)$")
PHASE_5 = "5"
LANGUAGES = ("en", "zh")
LOCALE_VARIABLES = ("LC_ALL", "LC_MESSAGES", "LANG")  # POSIX precedence: the first set wins


def choose_language(option: str | None = None, environ: dict[str, str] | None = None) -> str:
    """``zh`` or ``en``: the ``--lang`` option, else the locale, else English."""
    if option:
        return "zh" if option.strip().lower().startswith("zh") else "en"
    environ = dict(os.environ) if environ is None else environ
    for variable in LOCALE_VARIABLES:
        value = environ.get(variable, "")
        if value:
            return "zh" if value.lower().startswith("zh") else "en"
    return "en"


def load_messages(hints: Path, language: str) -> dict[str, str]:
    """The checker's sentences: English, overlaid with the language's own where it has one."""
    messages: dict[str, str] = tomllib.loads((hints / "messages.toml").read_text(encoding="utf-8"))
    translated = hints / f"messages.{language}.toml"
    if language != "en" and translated.exists():
        messages.update(tomllib.loads(translated.read_text(encoding="utf-8")))
    return messages


def repo_root() -> Path:
    configured = os.environ.get("EXERCISES_ROOT")
    return Path(configured).resolve() if configured else Path(__file__).resolve().parent.parent


class UsageError(Exception):
    pass


@dataclass
class Outcome:
    """What one exercise's tests did."""

    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    not_started: bool = False
    first_failure: dict[str, str] = field(default_factory=dict)
    skip_reason: str = ""
    loop_blocked: str = ""  # file:line where the event loop was seen blocked
    time_limit: str = ""  # seconds, when a test ran over its time limit

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.errors + self.skipped

    @property
    def done(self) -> bool:
        return self.passed > 0 and self.failed == 0 and self.errors == 0


@dataclass
class Phase:
    number: str  # "" for exercises listed before any phase header
    title: str
    names: list[str] = field(default_factory=list)


class Workbook:
    """Paths, texts and progress of one copy of the workbook."""

    def __init__(self, root: Path, language: str = "en") -> None:
        self.root = root
        self.language = language
        self.exercises = root / "exercises"
        self.hints = self.exercises / "hints"
        self.pristine = self.exercises / ".pristine"
        self.solutions = root / "solutions"
        self.tests = root / "tests" / "exercises"
        self.progress_file = root / ".exercises-progress.json"
        self.english = load_messages(self.hints, "en")
        self.messages = load_messages(self.hints, language)
        self.progress = self._load_progress()

    # texts

    def say(self, key: str, **values: Any) -> str:
        return self.messages.get(key, key).strip("\n").format(**values)

    def translated(self, stem: str) -> Path | None:
        """exercises/hints/STEM.LANG.md in the chosen language, when not English and present."""
        if self.language == "en":
            return None
        path = self.hints / f"{stem}.{self.language}.md"
        return path if path.exists() else None

    def intro(self) -> str:
        readme = self.translated("README") or self.hints / "README.md"
        if not readme.exists():
            return ""
        return SECTION_BREAK.split(readme.read_text(encoding="utf-8"))[0].strip()

    def hint_sections(self, name: str) -> list[str]:
        path = self.translated(name) or self.hints / f"{name}.md"
        if not path.exists():
            return []
        sections = SECTION_BREAK.split(path.read_text(encoding="utf-8"))
        return [section.strip() for section in sections if section.strip()]

    def hints_untranslated(self, name: str) -> bool:
        """Whether the hints fall back to English although another language was asked for."""
        english = self.hints / f"{name}.md"
        return self.language != "en" and english.exists() and self.translated(name) is None

    def task(self, name: str) -> tuple[str, bool]:
        """The task statement, and whether it fell back to English (its stub's docstring)."""
        translated = self.translated(f"{name}.task")
        if translated is not None:
            return translated.read_text(encoding="utf-8").strip(), False
        return self.docstring(name), self.language != "en"

    def phase_title(self, phase: Phase) -> str:
        """The phase's title from ORDER, translated by the key phase_title_N when the English
        messages.toml has the very same title under that key (so the translation is of it)."""
        key = f"phase_title_{phase.number}"
        if self.language == "en" or self.english.get(key, "").strip() != phase.title:
            return phase.title
        return self.messages.get(key, phase.title).strip()

    # exercises

    def phases(self) -> list[Phase]:
        """The exercises by phase, as ORDER lists them; unlisted stubs come last."""
        phases = [Phase("", "")]
        listed: set[str] = set()
        order_file = self.hints / "ORDER"
        if order_file.exists():
            for line in order_file.read_text(encoding="utf-8").splitlines():
                header = PHASE_HEADER.match(line.strip())
                if header:
                    phases.append(Phase(header["number"].strip(), header["title"].strip()))
                    continue
                name = line.split("#", 1)[0].strip()
                if name and name not in listed:
                    listed.add(name)
                    phases[-1].names.append(name)
        # Stubs the ORDER file does not know yet still show up, at the end.
        unlisted = [
            path.stem
            for path in sorted(self.exercises.glob("*.py"))
            if not path.name.startswith("_") and path.stem not in listed
        ]
        if len(phases) == 1:
            phases[0].names.extend(unlisted)
        elif unlisted:
            phases.append(Phase("", "", unlisted))
        return [phase for phase in phases if phase.names]

    def order(self) -> list[str]:
        return [name for phase in self.phases() for name in phase.names]

    def phase_of(self, name: str) -> Phase | None:
        return next((phase for phase in self.phases() if name in phase.names), None)

    def require(self, name: str) -> str:
        names = self.order()
        if name not in names:
            raise UsageError(self.say("unknown_exercise", name=name, names=", ".join(names)))
        return name

    def stub(self, name: str) -> Path:
        return self.exercises / f"{name}.py"

    def test_file(self, name: str) -> Path:
        return self.tests / f"test_{name}.py"

    def docstring(self, name: str) -> str:
        """The exercise's task statement in English: its stub's module docstring."""
        try:
            tree = ast.parse(self.stub(name).read_text(encoding="utf-8"))
        except (OSError, SyntaxError, ValueError):
            return ""
        return (ast.get_docstring(tree) or "").strip()

    def title(self, name: str) -> str:
        """The first line of the exercise's task statement, in the chosen language."""
        translated = self.translated(f"{name}.task")
        text = translated.read_text(encoding="utf-8") if translated else self.docstring(name)
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return lines[0].lstrip("#").strip() if lines else ""

    def dependencies(self, name: str) -> list[str]:
        """Exercise modules that ``name`` imports, directly or not, itself included."""
        seen: list[str] = []
        pending = [name]
        while pending:
            current = pending.pop()
            if current in seen or not self.stub(current).exists():
                continue
            seen.append(current)
            try:
                tree = ast.parse(self.stub(current).read_text(encoding="utf-8"))
            except (SyntaxError, ValueError):
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom):
                    module = node.module or ""
                    if node.level == 1:
                        pending.extend([module] if module else [a.name for a in node.names])
                    elif node.level == 0 and module.startswith("exercises."):
                        pending.append(module.split(".")[1])
        return sorted(seen)

    def fingerprint(self, name: str) -> str:
        digest = hashlib.sha256()
        files = [self.stub(dep) for dep in self.dependencies(name)]
        files += [self.test_file(name), self.tests / "conftest.py"]
        for path in files:
            digest.update(str(path.relative_to(self.root)).encode())
            digest.update(path.read_bytes() if path.exists() else b"<missing>")
        return digest.hexdigest()

    # progress

    def _load_progress(self) -> dict[str, Any]:
        try:
            progress = json.loads(self.progress_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            progress = {}
        if not isinstance(progress, dict):
            progress = {}
        progress.setdefault("results", {})
        progress.setdefault("hints_shown", {})
        return progress

    def save_progress(self) -> None:
        text = json.dumps(self.progress, indent=2, sort_keys=True) + "\n"
        temporary = self.progress_file.with_name(self.progress_file.name + ".tmp")
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(self.progress_file)

    def cached(self, name: str) -> Outcome | None:
        entry = self.progress["results"].get(name)
        if not entry or entry.get("hash") != self.fingerprint(name):
            return None
        try:
            return Outcome(**entry["outcome"])
        except TypeError:  # written by another version of this checker
            return None

    def remember(self, name: str, fingerprint: str, outcome: Outcome) -> None:
        self.progress["results"][name] = {"hash": fingerprint, "outcome": asdict(outcome)}

    # running the tests

    def run_tests(self, names: list[str]) -> dict[str, Outcome]:
        """Run the tests of ``names`` in one pytest process; cache and return the outcomes."""
        runnable = [name for name in names if self.test_file(name).exists()]
        outcomes = {name: Outcome() for name in names}
        if not runnable:
            return outcomes
        # Taken before the run, so an edit made while the tests run is not marked as tested.
        fingerprints = {name: self.fingerprint(name) for name in runnable}
        with tempfile.TemporaryDirectory(prefix="exercises-") as temporary:
            report = Path(temporary) / "report.xml"
            command = [
                sys.executable,
                "-m",
                "pytest",
                *(str(self.test_file(name).relative_to(self.root)) for name in runnable),
                "--impl=exercises",
                "-q",
                "--tb=short",
                "-p",
                "no:cacheprovider",
                "--continue-on-collection-errors",
                "-p",
                "exercises._loopwatch",
                f"--junitxml={report}",
                "-o",
                "junit_family=xunit1",
            ]
            env = {
                **os.environ,
                "EXERCISES_LEARNER_DIR": str(self.exercises),
                "EXERCISES_LANG": self.language,  # _loopwatch speaks it too
            }
            finished = subprocess.run(
                command, cwd=self.root, capture_output=True, text=True, check=False, env=env
            )
            if finished.returncode not in (0, 1, 5) or not report.exists():
                raise PytestDidNotRun(finished.returncode, finished.stdout + finished.stderr)
            parse_report(report, outcomes)
        for name in runnable:
            self.remember(name, fingerprints[name], outcomes[name])
        self.save_progress()
        return outcomes

    def outcomes(self, names: list[str], rerun: bool = False) -> dict[str, Outcome]:
        results: dict[str, Outcome] = {}
        stale = []
        for name in names:
            cached = None if rerun else self.cached(name)
            if cached is None:
                stale.append(name)
            else:
                results[name] = cached
        if stale:
            results.update(self.run_tests(stale))
        return results


class PytestDidNotRun(Exception):
    def __init__(self, code: int, output: str) -> None:
        super().__init__(code)
        self.code = code
        self.output = output


def exercise_of(case: ET.Element) -> str:
    """The exercise a JUnit test case belongs to, from its test file name."""
    location = case.get("file") or case.get("name", "").replace(".", "/")
    stem = Path(location.split("::")[0]).stem
    return stem.removeprefix("test_")


def parse_report(report: Path, outcomes: dict[str, Outcome]) -> None:
    only_todos = dict.fromkeys(outcomes, True)  # every failure so far reached a TODO
    for case in ET.parse(report).getroot().iter("testcase"):
        name = exercise_of(case)
        if name not in outcomes:
            continue
        outcome = outcomes[name]
        for prop in case.iter("property"):
            if prop.get("name") == "loop_blocked" and not outcome.loop_blocked:
                outcome.loop_blocked = prop.get("value", "")
            elif prop.get("name") == "time_limit" and not outcome.time_limit:
                outcome.time_limit = prop.get("value", "")
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        skipped = case.find("skipped")
        if skipped is not None:
            outcome.skipped += 1
            outcome.skip_reason = outcome.skip_reason or skipped.get("message", "").strip()
        elif problem is None:
            outcome.passed += 1
        else:
            if problem.tag == "failure":
                outcome.failed += 1
            else:
                outcome.errors += 1
            only_todos[name] = only_todos[name] and reaches_todo(problem)
            if not outcome.first_failure:
                outcome.first_failure = describe_failure(case, problem, name)
    for name, outcome in outcomes.items():
        failures = outcome.failed + outcome.errors
        outcome.not_started = outcome.passed == 0 and failures > 0 and only_todos[name]


def reaches_todo(problem: ET.Element) -> bool:
    return "NotImplementedError" in (problem.get("message", "") + (problem.text or ""))


def describe_failure(case: ET.Element, problem: ET.Element, name: str) -> dict[str, str]:
    classname = case.get("classname", "")
    module = f"test_{name}"
    cls = classname.split(f"{module}.", 1)[1] if f"{module}." in classname else ""
    test_file = f"tests/exercises/{module}.py"
    test = "::".join(part for part in (test_file, cls, case.get("name", "")) if part)
    text = problem.text or ""
    # The innermost place in the learner's code, which may be another exercise's module.
    places = re.findall(r"(?<![\w./\\-])(exercises[/\\]\w+\.py:\d+)", text)
    message = problem.get("message", "").strip()
    if not message:
        message = text.strip().splitlines()[-1] if text.strip() else ""
    lines = message.splitlines()
    if len(lines) > 15:
        message = "\n".join([*lines[:15], "..."])
    return {
        "test": test,
        "message": message,
        "where": places[-1] if places else "",
        "todo": "yes" if reaches_todo(problem) else "no",
    }


# commands


def command_list(book: Workbook, args: argparse.Namespace) -> int:
    intro = book.intro()
    if intro:
        print(intro + "\n")
    names = book.order()
    outcomes = book.outcomes([n for n in names if book.stub(n).exists()], rerun=args.rerun)
    width = max((len(name) for name in names), default=0)
    next_name = None
    number = 0
    for phase in book.phases():
        if phase.number or phase.title:
            done = sum(1 for name in phase.names if name in outcomes and outcomes[name].done)
            print(
                book.say(
                    "phase_header",
                    number=phase.number,
                    title=book.phase_title(phase),
                    done=done,
                    count=len(phase.names),
                    bar=progress_bar(done, len(phase.names)),
                )
            )
        for name in phase.names:
            number += 1
            if not book.stub(name).exists():
                label = book.say("label_missing")
            elif not book.test_file(name).exists():
                label = book.say("label_no_tests")
            elif outcomes[name].done:
                label = book.say("label_done")
            else:
                label = book.say("label_todo")
                next_name = next_name or name
            padding = max(0, LABEL_WIDTH - display_width(label))
            label = " " * (padding // 2) + label + " " * (padding - padding // 2)
            print(f"  {number}. [{label}] {name:<{width}}  {book.title(name)}")
        print()
    done_count = sum(1 for name in names if name in outcomes and outcomes[name].done)
    print(book.say("progress", done=done_count, count=len(names)))
    if next_name:
        print(book.say("next_step", name=next_name))
    elif all(name in outcomes and outcomes[name].done for name in names):
        print(book.say("all_done"))
    return EXIT_OK


LABEL_WIDTH = 8


def display_width(text: str) -> int:
    """Columns the text takes in a terminal: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def progress_bar(done: int, count: int, width: int = 10) -> str:
    filled = round(width * done / count) if count else 0
    return "#" * filled + "." * (width - filled)


def runnable(book: Workbook, names: list[str]) -> list[str]:
    return [n for n in names if book.stub(n).exists() and book.test_file(n).exists()]


def current_exercise(book: Workbook) -> str | None:
    """The first exercise, in order, whose tests do not all pass yet."""
    for name in runnable(book, book.order()):
        # One at a time, in order: a fresh workbook stops at the first, without running all.
        outcome = book.cached(name) or book.run_tests([name])[name]
        if not outcome.done:
            return name
    return None


def command_next(book: Workbook, args: argparse.Namespace) -> int:
    name = current_exercise(book)
    if name is None:
        print(book.say("all_done"))
        return EXIT_OK
    phase = book.phase_of(name)
    print(
        book.say(
            "next_is",
            name=name,
            title=book.title(name),
            phase=(
                book.say("phase_named", number=phase.number, title=book.phase_title(phase))
                if phase and phase.number
                else "-"
            ),
        )
    )
    print(book.say("next_step", name=name))
    return EXIT_OK


def next_unfinished(book: Workbook, after: str) -> str | None:
    names = book.order()
    later = names[names.index(after) + 1 :] + names[: names.index(after)]
    for name in later:
        if not book.stub(name).exists() or not book.test_file(name).exists():
            continue
        cached = book.cached(name)
        if cached is None or not cached.done:
            return name
    return None


def command_check(book: Workbook, args: argparse.Namespace) -> int:
    if args.name is None:
        args.name = current_exercise(book)
        if args.name is None:
            print(book.say("all_done"))
            return EXIT_OK
    name = book.require(args.name)
    test_file = book.test_file(name).relative_to(book.root)
    if not book.test_file(name).exists():
        print(book.say("no_tests", name=name, test_file=test_file))
        return EXIT_FAILED
    outcome = book.outcomes([name], rerun=True)[name]
    if outcome.total == 0:
        print(book.say("no_tests", name=name, test_file=test_file))
        return EXIT_FAILED
    if outcome.skipped == outcome.total:
        print(book.say("all_skipped", name=name, skipped=outcome.skipped))
        print(_indent(outcome.skip_reason))
        return EXIT_FAILED
    if outcome.done:
        if outcome.skipped:
            print(book.say("passed_with_skips", name=name, **_counts(outcome)))
        else:
            print(book.say("passed", name=name, **_counts(outcome)))
        following = next_unfinished(book, name)
        print(book.say("next_step", name=following) if following else book.say("all_done"))
        return EXIT_OK
    # Every failure at a TODO means "not started" only while the file is untouched; once
    # edited, the learner is under way and wants to see which TODO comes next.
    unknown_original = outcome.not_started and original_stub(book, name) is None
    if untouched(book, name) or unknown_original:
        print(book.say("not_started", name=name))
        print(book.say("task_title", name=name, title=book.title(name)))
        return EXIT_FAILED
    failure = outcome.first_failure
    print(book.say("failing", name=name, **_counts(outcome)))
    print(book.say("task_title", name=name, title=book.title(name)))
    if outcome.loop_blocked:
        print(book.say("loop_blocked", where=outcome.loop_blocked))
    elif outcome.time_limit:
        print(book.say("time_limit", seconds=outcome.time_limit))
    print(book.say("first_failure", test=failure.get("test", "?")))
    if failure.get("todo") == "yes":
        print(book.say("todo_reached", message=_last_line(failure.get("message", ""))))
    elif failure.get("message"):
        print(_indent(failure["message"]))
    if failure.get("where"):
        print(book.say("where", where=failure["where"]))
    print(book.say("full_output", test_file=test_file))
    return EXIT_FAILED


def _counts(outcome: Outcome) -> dict[str, int]:
    return {
        "passed": outcome.passed,
        "total": outcome.total - outcome.skipped,
        "skipped": outcome.skipped,
    }


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def command_hint(book: Workbook, args: argparse.Namespace) -> int:
    name = book.require(args.name)
    sections = book.hint_sections(name)
    if sections and book.hints_untranslated(name):
        print(book.say("hint_untranslated", name=name))
    if not sections:
        print(book.say("no_hints", name=name))
        return EXIT_OK
    shown = min(int(book.progress["hints_shown"].get(name, 0)), len(sections))
    if args.all:
        if shown == 0:
            print(book.say("no_hints_seen", name=name))
        for number in range(1, shown + 1):
            print(book.say("hint_header", number=number, count=len(sections), name=name))
            print(sections[number - 1] + "\n")
        return EXIT_OK
    if shown >= len(sections):
        print(book.say("no_more_hints", name=name, count=len(sections)))
        return EXIT_OK
    print(book.say("hint_header", number=shown + 1, count=len(sections), name=name))
    print()
    print(sections[shown])
    book.progress["hints_shown"][name] = shown + 1
    book.save_progress()
    if shown + 1 < len(sections):
        print()
        print(book.say("hint_more", name=name))
    return EXIT_OK


def original_stub(book: Workbook, name: str) -> tuple[str, str] | None:
    """The generated stub for ``name`` and where it came from, or None."""
    solution = book.solutions / f"{name}.py"
    generator = book.root / "tools" / "make_exercises.py"
    if solution.exists() and generator.exists():
        spec = importlib.util.spec_from_file_location("_make_exercises", generator)
        assert spec is not None and spec.loader is not None
        make_exercises = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = make_exercises  # dataclasses look their module up there
        spec.loader.exec_module(make_exercises)
        text = make_exercises.make_stub(
            solution.read_text(encoding="utf-8"), name, f"solutions/{name}.py"
        )
        return text, f"solutions/{name}.py"
    pristine = book.pristine / f"{name}.py"
    if pristine.exists():
        return pristine.read_text(encoding="utf-8"), f"exercises/.pristine/{name}.py"
    with contextlib.suppress(OSError):
        shown = subprocess.run(
            ["git", "show", f"HEAD:exercises/{name}.py"],
            cwd=book.root,
            capture_output=True,
            text=True,
            check=False,
        )
        if shown.returncode == 0:
            return shown.stdout, "git HEAD"
    return None


def untouched(book: Workbook, name: str) -> bool:
    """Whether exercises/NAME.py is still exactly its original stub."""
    try:
        original = original_stub(book, name)
        return original is not None and book.stub(name).read_text(encoding="utf-8") == original[0]
    except Exception:  # a broken solution or stub only means we cannot tell
        return False


def command_reset(book: Workbook, args: argparse.Namespace) -> int:
    name = book.require(args.name)
    original = original_stub(book, name)
    if original is None:
        print(book.say("reset_no_source", name=name), file=sys.stderr)
        return EXIT_FAILED
    text, origin = original
    stub = book.stub(name)
    if stub.exists() and stub.read_text(encoding="utf-8") == text:
        print(book.say("reset_unchanged", name=name))
        return EXIT_OK
    if not args.yes:
        try:
            answer = input(book.say("reset_confirm", name=name))
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            print(book.say("reset_declined"))
            return EXIT_FAILED
    stub.write_text(text, encoding="utf-8")
    book.progress["results"].pop(name, None)
    book.save_progress()
    print(book.say("reset_done", name=name, origin=origin))
    return EXIT_OK


def command_solution(book: Workbook, args: argparse.Namespace) -> int:
    name = book.require(args.name)
    solution = book.solutions / f"{name}.py"
    if not solution.exists():
        print(book.say("solution_missing"))
        return EXIT_FAILED
    if not args.force:
        runnable = book.test_file(name).exists() and book.stub(name).exists()
        if not runnable or not book.outcomes([name])[name].done:
            print(book.say("solution_locked", name=name))
            return EXIT_FAILED
    print(solution.read_text(encoding="utf-8"), end="")
    return EXIT_OK


def watched_files(book: Workbook, name: str) -> set[Path]:
    return {book.stub(dep).resolve() for dep in book.dependencies(name)}


def wait_for_change(book: Workbook, name: str) -> bool:
    """Block until one of the exercise's files is saved; False when watching must stop."""
    from watchfiles import watch  # only this command needs it

    files = watched_files(book, name)
    for changes in watch(book.exercises, debounce=300, raise_interrupt=False):
        if any(Path(path).resolve() in files for _, path in changes):
            return True
    return False


def command_watch(book: Workbook, args: argparse.Namespace) -> int:
    try:
        import watchfiles
    except ImportError:
        print(book.say("watch_needs_watchfiles"), file=sys.stderr)
        return EXIT_FAILED
    name = book.require(args.name) if args.name else current_exercise(book)
    try:
        while name is not None:
            print(book.say("watch_checking", name=name, time=time.strftime("%H:%M:%S")))
            try:
                passed = command_check(book, argparse.Namespace(name=name)) == EXIT_OK
            except PytestDidNotRun as error:  # a syntax error, say: fix it and save again
                print(book.say("tests_broken", code=error.code))
                print("\n".join(error.output.strip().splitlines()[-15:]))
                passed = False
            sys.stdout.flush()
            if passed:
                name = next_unfinished(book, name)
                if name is not None:
                    print(book.say("watch_next", name=name))
                continue
            print(book.say("watch_waiting", name=name))
            sys.stdout.flush()
            if not wait_for_change(book, name):
                return EXIT_OK
    except KeyboardInterrupt:
        return EXIT_OK
    print(book.say("all_done"))
    return EXIT_OK


def phase5_steps(book: Workbook) -> list[str]:
    phase = next((p for p in book.phases() if p.number == PHASE_5), None)
    names = phase.names if phase else []
    return [name for name in names if name.startswith("p5_") and book.stub(name).exists()]


def command_run(book: Workbook, args: argparse.Namespace) -> int:
    port = args.port or int(os.environ.get("PORT", "8080"))
    name = args.name
    if name is None:
        steps = phase5_steps(book)
        outcomes = book.outcomes(runnable(book, steps))
        unfinished = [step for step in steps if not (step in outcomes and outcomes[step].done)]
        name = unfinished[0] if unfinished else None
    else:
        book.require(name)
    if name is None or not name.startswith("p5_"):
        # Past the build steps: the real server, running the learner's four extensions.
        print(book.say("run_my_chat", port=port))
        sys.stdout.flush()
        command = [sys.executable, "-m", "my_chat", "--exercises", "--port", str(port)]
        try:
            return subprocess.run(command, cwd=book.root, check=False).returncode
        except KeyboardInterrupt:
            return EXIT_OK
    from aiohttp import web

    if str(book.root) not in sys.path:
        sys.path.insert(0, str(book.root))
    module = importlib.import_module(f"exercises.{name}")
    print(book.say("run_step", name=name, port=port))
    sys.stdout.flush()
    web.run_app(module.create_app(), host="127.0.0.1", port=port, print=None)
    return EXIT_OK


def build_parser(book: Workbook) -> argparse.ArgumentParser:
    """The command line, its help texts in the workbook's language (keys help_*)."""
    say = book.say
    # --lang is accepted before or after the command; SUPPRESS keeps a later default from
    # hiding an earlier value.
    language = argparse.ArgumentParser(add_help=False)
    language.add_argument(
        "--lang", choices=LANGUAGES, default=argparse.SUPPRESS, help=say("help_lang")
    )
    parser = argparse.ArgumentParser(
        prog="python -m exercises",
        description=say("help_description"),
        epilog=say("help_epilog"),
        parents=[language],
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=say(f"help_{name}"), parents=[language])

    listing = command("list")
    listing.add_argument("--rerun", action="store_true", help=say("help_rerun"))
    command("next")
    check = command("check")
    check.add_argument("name", metavar="NAME", nargs="?")
    watch = command("watch")
    watch.add_argument("name", metavar="NAME", nargs="?")
    run = command("run")
    run.add_argument("name", metavar="NAME", nargs="?", help=say("help_run_name"))
    run.add_argument("--port", type=int, default=None, help=say("help_port"))
    task = command("task")
    task.add_argument("name", metavar="NAME")
    hint = command("hint")
    hint.add_argument("name", metavar="NAME")
    hint.add_argument("--all", action="store_true", help=say("help_hint_all"))
    reset = command("reset")
    reset.add_argument("name", metavar="NAME")
    reset.add_argument("--yes", action="store_true", help=say("help_yes"))
    solution = command("solution")
    solution.add_argument("name", metavar="NAME")
    solution.add_argument("--force", action="store_true", help=say("help_force"))
    return parser


def command_task(book: Workbook, args: argparse.Namespace) -> int:
    name = book.require(args.name)
    text, fell_back = book.task(name)
    if fell_back:
        print(book.say("task_untranslated", name=name))
    if not text:
        print(book.say("task_missing", name=name))
        return EXIT_FAILED
    print(book.say("task_header", name=name))
    print()
    print(text)
    return EXIT_OK


COMMANDS = {
    "list": command_list,
    "next": command_next,
    "check": command_check,
    "watch": command_watch,
    "run": command_run,
    "task": command_task,
    "hint": command_hint,
    "reset": command_reset,
    "solution": command_solution,
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # The language comes first: it decides how the command line itself is explained.
    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("--lang", default=None)
    option = early.parse_known_args(argv)[0].lang
    book = Workbook(repo_root(), choose_language(option))
    args = build_parser(book).parse_args(argv)
    if args.command is None:
        args = build_parser(book).parse_args(["list", *argv])
    try:
        return COMMANDS[args.command](book, args)
    except UsageError as error:
        print(error, file=sys.stderr)
        return EXIT_USAGE
    except PytestDidNotRun as error:
        print(book.say("tests_broken", code=error.code), file=sys.stderr)
        print("\n".join(error.output.strip().splitlines()[-30:]), file=sys.stderr)
        return EXIT_FAILED
