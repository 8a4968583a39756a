"""Check that the exercise tests fail on untouched stubs (like nbgrader's validate --invert).

    python tools/check_stubs_fail.py [--also-solutions]

generates a fresh copy of the stubs into a temporary folder (tools/make_exercises.py --out;
in a student release, which has no solutions/, it copies exercises/.pristine/ instead),
runs ``pytest tests/exercises --impl=<that folder>``, and reads its JUnit XML report. It
passes only if

* every test failed or errored: a test that passes (or is skipped) on a stub checks nothing
  the learner writes;
* no test file failed to import (a collection error is a broken test, not a failing stub);
* every exercise module has at least one test.

Otherwise it lists the offending tests and exits 1. Tests that fail for another reason than a
stub's NotImplementedError are counted in the summary, since a test can fail on a stub for
a good reason (the server answering 501, say).

That the same tests pass on solutions/ is what plain ``pytest tests/exercises`` checks
(--impl defaults to solutions); ``--also-solutions`` runs that here too.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path("tests") / "exercises"
PRISTINE = ROOT / "exercises" / ".pristine"


@dataclass(frozen=True)
class Case:
    exercise: str
    test: str
    outcome: str  # passed, failed, error, skipped, collection error
    reached_todo: bool


def read_report(report: Path) -> list[Case]:
    cases = []
    for element in ET.parse(report).getroot().iter("testcase"):
        location = element.get("file") or element.get("name", "").replace(".", "/")
        module = Path(location).stem
        test = "::".join(
            part
            for part in (element.get("file", ""), _class_part(element, module), element.get("name"))
            if part
        )
        failure, error = element.find("failure"), element.find("error")
        problem = failure if failure is not None else error
        if element.find("skipped") is not None:
            outcome = "skipped"
        elif failure is not None:
            outcome = "failed"
        elif error is not None:
            collection = error.get("message", "") == "collection failure"
            outcome = "collection error" if collection else "error"
        else:
            outcome = "passed"
        text = "" if problem is None else problem.get("message", "") + (problem.text or "")
        cases.append(
            Case(module.removeprefix("test_"), test, outcome, "NotImplementedError" in text)
        )
    return cases


def _class_part(element: ET.Element, module: str) -> str:
    classname = element.get("classname", "")
    return classname.split(f"{module}.", 1)[1] if f"{module}." in classname else ""


def run_pytest(impl: str, report: Path) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "pytest",
        str(TESTS),
        f"--impl={impl}",
        "-p",
        "no:cacheprovider",
        "-q",
        "--continue-on-collection-errors",
        f"--junitxml={report}",
        "-o",
        "junit_family=xunit1",
    ]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)


def last_line(output: str) -> str:
    lines = [line for line in output.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def check_stubs(workdir: Path) -> list[str]:
    """The problems found on fresh stubs; prints a summary."""
    stubs = workdir / "stubs"
    if (ROOT / "solutions").is_dir():
        generated = subprocess.run(
            [sys.executable, str(ROOT / "tools" / "make_exercises.py"), "--out", str(stubs)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if generated.returncode != 0:
            return ["make_exercises.py --out failed:\n" + generated.stdout + generated.stderr]
    elif PRISTINE.is_dir():
        # A student release: its untouched stubs are kept in exercises/.pristine/.
        shutil.copytree(PRISTINE, stubs)
    else:
        return [f"neither solutions/ nor {PRISTINE.relative_to(ROOT)}/ to take stubs from"]
    exercises = sorted(path.stem for path in stubs.glob("*.py") if path.name != "__init__.py")

    report = workdir / "stubs.xml"
    finished = run_pytest(str(stubs), report)
    if finished.returncode not in (0, 1) or not report.exists():
        return [
            f"pytest on the stubs ended with status {finished.returncode}:\n"
            + "\n".join(finished.stdout.splitlines()[-30:])
            + finished.stderr
        ]
    cases = read_report(report)
    print(f"on fresh stubs: {last_line(finished.stdout)}")

    problems = [
        f"{case.test}: {case.outcome} on an untouched stub"
        for case in cases
        if case.outcome in ("passed", "skipped", "collection error")
    ]
    per_exercise = Counter(case.exercise for case in cases)
    problems += [
        f"{name}: no test in {TESTS}/test_{name}.py"
        for name in exercises
        if per_exercise[name] == 0
    ]
    for name in sorted(set(per_exercise) - set(exercises)):
        print(f"note: {TESTS}/test_{name}.py has no exercise module {name}.py")
    for name in exercises:
        own = [case for case in cases if case.exercise == name]
        todo = sum(case.reached_todo for case in own)
        tests = f"{len(own)} test" + ("" if len(own) == 1 else "s")
        print(f"  {name}: {tests}, {todo} reached a TODO, {len(own) - todo} failed otherwise")
    return problems


def check_solutions(workdir: Path) -> list[str]:
    report = workdir / "solutions.xml"
    finished = run_pytest("solutions", report)
    print(f"on solutions: {last_line(finished.stdout)}")
    if finished.returncode != 0 or not report.exists():
        return [f"pytest on solutions ended with status {finished.returncode}"] + [
            f"{case.test}: {case.outcome} on the solutions"
            for case in (read_report(report) if report.exists() else [])
            if case.outcome != "passed"
        ]
    return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Check that every exercise test fails on fresh, untouched stubs. "
        "That they pass on the solutions is checked by plain `pytest tests/exercises`, "
        "or here with --also-solutions.",
        epilog="Exit status: 0 all good, 1 offending tests (listed) or pytest could not run.",
    )
    parser.add_argument(
        "--also-solutions",
        action="store_true",
        help="also run the tests on solutions/ and require every one to pass",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="stubs-fail-") as temporary:
        workdir = Path(temporary)
        problems = check_stubs(workdir)
        if args.also_solutions:
            problems += check_solutions(workdir)
    if problems:
        print(f"\n{len(problems)} problem(s):", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    print("ok: every exercise test fails on the stubs")
    if args.also_solutions:
        print("ok: every exercise test passes on the solutions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
