"""The exercise machinery on a small workbook of its own: generator, checker, release.

Each test builds a toy repository in tmp_path (two solution modules, their tests, the real
checker, conftest and tools copied in) and runs the real commands in it as subprocesses.
The inner pytest runs load no plugins from the environment, which keeps them fast; the toy
tests need none.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_tool(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_tool_{name}", ROOT / "tools" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


make_exercises = load_tool("make_exercises")
student_release = load_tool("student_release")
check_stubs_fail = load_tool("check_stubs_fail")


def load_checker() -> ModuleType:
    path = ROOT / "exercises" / "_checker.py"
    spec = importlib.util.spec_from_file_location("_exercises_checker", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


ALPHA = '''\
"""Write ``double(x)``, which returns twice its argument.

A second paragraph for the learner.
"""

from __future__ import annotations

import math


def double(x: int) -> int:
    """Twice ``x``."""
    ### BEGIN SOLUTION: return twice x
    return 2 * x
    ### END SOLUTION


class Box:
    def area(self, side: float) -> float:
        if side < 0:
            raise ValueError("negative side")
        ### BEGIN SOLUTION
        return math.pow(side, 2)
        ### END SOLUTION
'''

BETA = '''\
"""Greet people, politely and loudly."""

from .alpha import double


def greet(name: str) -> str:
    ### BEGIN SOLUTION: say hello to name
    return f"hello, {name}"
    ### END SOLUTION


def shout(name: str) -> str:
    ### BEGIN SOLUTION: greet, in capitals, with two exclamation marks
    return greet(name).upper() + "!" * double(1)
    ### END SOLUTION
'''

TEST_ALPHA = """\
def test_double(impl):
    assert impl.module("alpha").double(3) == 6


def test_area(impl):
    assert impl.module("alpha").Box().area(2) == 4
"""

TEST_BETA = """\
def test_greet(impl):
    assert impl.module("beta").greet("ann") == "hello, ann"


def test_shout(impl):
    assert impl.module("beta").shout("ann") == "HELLO, ANN!!"
"""

ALPHA_HINTS = """\
Multiply.

---

`return 2 * x`
"""


def build_workbook(root: Path) -> Path:
    """A toy repository: solutions, generated stubs, tests, the real checker and tools."""
    (root / "solutions").mkdir(parents=True)
    (root / "solutions" / "__init__.py").write_text('"""Answers."""\n')
    (root / "solutions" / "alpha.py").write_text(ALPHA)
    (root / "solutions" / "beta.py").write_text(BETA)
    (root / "tools").mkdir()
    for tool in ("make_exercises.py", "check_stubs_fail.py", "student_release.py"):
        shutil.copy(ROOT / "tools" / tool, root / "tools" / tool)
    (root / "exercises" / "hints").mkdir(parents=True)
    for name in ("__main__.py", "_checker.py", "_loopwatch.py"):
        shutil.copy(ROOT / "exercises" / name, root / "exercises" / name)
    for name in ("README.md", "messages.toml"):
        shutil.copy(ROOT / "exercises" / "hints" / name, root / "exercises" / "hints" / name)
    (root / "exercises" / "hints" / "ORDER").write_text("# toy order\nalpha\nbeta\n")
    (root / "exercises" / "hints" / "alpha.md").write_text(ALPHA_HINTS)
    tests = root / "tests" / "exercises"
    tests.mkdir(parents=True)
    shutil.copy(ROOT / "tests" / "exercises" / "conftest.py", tests / "conftest.py")
    (tests / "test_alpha.py").write_text(TEST_ALPHA)
    (tests / "test_beta.py").write_text(TEST_BETA)
    (root / "pytest.ini").write_text("[pytest]\n")
    make_exercises.write_stubs(
        make_exercises.generated_files(root / "solutions"), root / "exercises"
    )
    return root


@pytest.fixture
def workbook(tmp_path: Path) -> Path:
    return build_workbook(tmp_path / "repo")


def quiet_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "EXERCISES_"))}
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    # The checker follows the locale: these tests read its English, whatever the machine's.
    for variable in ("LC_ALL", "LC_MESSAGES", "LANGUAGE"):
        env.pop(variable, None)
    env["LANG"] = "C.UTF-8"
    env.update(extra)
    return env


def run(
    args: list[str], cwd: Path, stdin: str = "", **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        env=quiet_env(**env),
        timeout=60,
        check=False,
    )


def exercises(cwd: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return run(["-m", "exercises", *args], cwd, stdin)


# the generator


def test_regions_become_todo_and_raise_at_their_indentation() -> None:
    stub = make_exercises.make_stub(ALPHA, "alpha")
    assert "return 2 * x" not in stub and "math.pow" not in stub
    assert "### " not in stub
    assert (
        '    """Twice ``x``."""\n'
        "    # TODO: return twice x\n"
        '    raise NotImplementedError("TODO: double() in exercises/alpha.py")\n'
    ) in stub
    assert (
        '            raise ValueError("negative side")\n'
        f"        # TODO: {make_exercises.DEFAULT_TODO}\n"
        '        raise NotImplementedError("TODO: area() in exercises/alpha.py")\n'
    ) in stub
    compile(stub, "alpha.py", "exec")


def test_stub_opens_with_the_task_statement_then_the_header() -> None:
    stub = make_exercises.make_stub(ALPHA, "alpha")
    docstring_end = ALPHA.index('"""\n', 3) + 4
    assert stub.startswith(ALPHA[:docstring_end])
    rest = stub[docstring_end:]
    assert rest.startswith(
        "\n# Generated from solutions/alpha.py by tools/make_exercises.py —\n"
        "# edit this file, it is yours.\n\nfrom __future__ import annotations\n"
    )


def test_long_todo_text_wraps_within_the_line_length() -> None:
    long_text = "remember " * 30
    source = ALPHA.replace("return twice x", long_text.strip())
    todo = [line for line in make_exercises.make_stub(source, "alpha").splitlines() if "#" in line]
    assert any(line.lstrip().startswith("#       remember") for line in todo)
    assert all(len(line) <= make_exercises.LINE_LENGTH for line in todo)


@pytest.mark.parametrize(
    ("source", "complaint"),
    [
        ("def f():\n    ### BEGIN SOLUTION\n    return 1\n", "without ### END"),
        ('"""T."""\ndef f():\n    return 1\n    ### END SOLUTION\n', "without ### BEGIN"),
        (
            '"""T."""\ndef f():\n    ### BEGIN SOLUTION\n    ### BEGIN SOLUTION\n'
            "    return 1\n    ### END SOLUTION\n    ### END SOLUTION\n",
            "nested",
        ),
        (
            '"""T."""\ndef f():\n    ### BEGIN SOLUTION\n    return 1\n### END SOLUTION\n',
            "indented differently",
        ),
        ('"""T."""\ndef f():\n    ### BEGIN SOLUTION here\n    return 1\n', "malformed"),
        ('"""T."""\n### BEGIN SOLUTION\nX = 1\n### END SOLUTION\n', "module level"),
        (
            '"""T."""\nclass C:\n    ### BEGIN SOLUTION\n    x = 1\n    ### END SOLUTION\n',
            "class body",
        ),
        ('"""T."""\nfrom solutions.alpha import double\n', "relative import"),
        ("import os\n", "docstring"),
        ('"""T."""\ndef f(:\n', "does not parse"),
    ],
    ids=[
        "unclosed",
        "unopened",
        "nested",
        "indentation",
        "malformed",
        "module-level",
        "class-body",
        "solutions-import",
        "no-docstring",
        "syntax-error",
    ],
)
def test_broken_solutions_are_errors(source: str, complaint: str) -> None:
    if complaint == "without ### END":
        source = '"""T."""\n' + source
    with pytest.raises(make_exercises.StubError, match=complaint):
        make_exercises.make_stub(source, "broken")


def test_stub_is_ruff_clean(tmp_path: Path) -> None:
    ruff = Path(sys.executable).with_name("ruff")
    if not ruff.exists():
        pytest.skip("ruff is not installed beside this interpreter")
    stub = tmp_path / "alpha.py"
    stub.write_text(make_exercises.make_stub(ALPHA, "alpha"))
    settings = ["--line-length", "100", "--no-cache", "--isolated"]
    formatted = subprocess.run(
        [ruff, "format", "--diff", *settings, stub], capture_output=True, text=True, check=False
    )
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr
    linted = subprocess.run(
        [ruff, "check", *settings, "--select", "E,F,W,I,UP", "--ignore", "F401", stub],
        capture_output=True,
        text=True,
        check=False,
    )
    assert linted.returncode == 0, linted.stdout


def test_write_check_and_drift(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    solutions = tmp_path / "solutions"
    solutions.mkdir()
    (solutions / "__init__.py").write_text('"""Answers."""\n')
    (solutions / "alpha.py").write_text(ALPHA)
    out = tmp_path / "exercises"
    (out / "hints").mkdir(parents=True)
    checker_files = {
        out / "__main__.py": "# the checker\n",
        out / "_checker.py": "# the checker\n",
        out / "hints" / "alpha.md": "a hint\n",
    }
    for path, text in checker_files.items():
        path.write_text(text)
    (out / "notes.py").write_text("# the learner's own module\n")

    assert make_exercises.main(["--solutions", str(solutions)]) == 0
    assert sorted(p.name for p in out.glob("*.py")) == [
        "__init__.py",
        "__main__.py",
        "_checker.py",
        "alpha.py",
        "notes.py",
    ]
    assert (out / "alpha.py").read_text() == make_exercises.make_stub(ALPHA, "alpha")
    assert make_exercises.main(["--solutions", str(solutions), "--check"]) == 0

    (out / "alpha.py").write_text((out / "alpha.py").read_text() + "x = 1\n")
    (solutions / "beta.py").write_text(BETA)
    capsys.readouterr()
    assert make_exercises.main(["--solutions", str(solutions), "--check"]) == 1
    report = capsys.readouterr().out
    assert f"{out / 'alpha.py'}: differs" in report and "-x = 1" in report
    assert f"{out / 'beta.py'}: missing" in report

    (solutions / "beta.py").unlink()
    assert make_exercises.main(["--solutions", str(solutions)]) == 0
    shutil.copy(out / "alpha.py", out / "gamma.py")  # a generated stub whose solution is gone
    assert make_exercises.main(["--solutions", str(solutions), "--check"]) == 1
    assert "gamma.py: stale" in capsys.readouterr().out
    assert make_exercises.main(["--solutions", str(solutions)]) == 0
    assert not (out / "gamma.py").exists()
    assert (out / "notes.py").exists()  # not generated, so not ours to remove
    for path, text in checker_files.items():
        assert path.read_text() == text

    (solutions / "_checker.py").write_text('"""Clash."""\n')
    assert make_exercises.main(["--solutions", str(solutions), "--out", str(tmp_path / "x")]) == 1
    assert "reserved" in capsys.readouterr().err


# the learner's checker


def test_list_reports_progress_and_caches_it(workbook: Path) -> None:
    listed = exercises(workbook)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith("# Exercises")
    assert "For authors" not in listed.stdout
    lines = {
        line.split("]")[1].split()[0]: line for line in listed.stdout.splitlines() if "]" in line
    }
    assert "todo" in lines["alpha"] and "Write ``double(x)``" in lines["alpha"]
    assert "todo" in lines["beta"]
    assert "Next: alpha." in listed.stdout

    shutil.copy(workbook / "solutions" / "alpha.py", workbook / "exercises" / "alpha.py")
    listed = exercises(workbook, "list")
    assert "done" in next(line for line in listed.stdout.splitlines() if "alpha" in line)
    assert "Next: beta." in listed.stdout

    # An unchanged exercise is not run again: a doctored cached result shows through...
    progress_file = workbook / ".exercises-progress.json"
    progress = json.loads(progress_file.read_text())
    progress["results"]["beta"]["outcome"].update(passed=2, failed=0, errors=0)
    progress_file.write_text(json.dumps(progress))
    listed = exercises(workbook, "list")
    assert "done" in next(line for line in listed.stdout.splitlines() if "beta" in line)
    # ...until the file changes.
    beta = workbook / "exercises" / "beta.py"
    beta.write_text(beta.read_text() + "\n# edited\n")
    listed = exercises(workbook, "list")
    assert "todo" in next(line for line in listed.stdout.splitlines() if "beta" in line)


def test_check_explains_each_state(workbook: Path) -> None:
    not_started = exercises(workbook, "check", "beta")
    assert not_started.returncode == 1
    assert "not started: find the TODOs in exercises/beta.py" in not_started.stdout

    beta = workbook / "exercises" / "beta.py"
    stub = beta.read_text()
    half_done = stub.replace(
        'raise NotImplementedError("TODO: greet() in exercises/beta.py")', 'return f"hi, {name}"'
    )
    assert half_done != stub
    beta.write_text(half_done)
    failing = exercises(workbook, "check", "beta")
    assert failing.returncode == 1
    assert "0 of 2 tests pass" in failing.stdout
    assert "First failing test: tests/exercises/test_beta.py::test_greet" in failing.stdout
    assert "hello, ann" in failing.stdout  # the assertion, not a traceback
    assert "Traceback" not in failing.stdout
    assert "Look at" not in failing.stdout  # the learner's code is not on the traceback

    beta.write_text(half_done.replace("hi, {name}", "hello, {name}"))
    todo = exercises(workbook, "check", "beta")
    assert todo.returncode == 1
    assert "1 of 2 tests pass" in todo.stdout
    assert "test_beta.py::test_shout" in todo.stdout
    assert "still reaches a TODO" in todo.stdout and "shout()" in todo.stdout
    assert "exercises/beta.py:" in todo.stdout

    shutil.copy(workbook / "solutions" / "beta.py", beta)
    alpha_todo = exercises(workbook, "check", "beta")  # beta needs alpha's double()
    assert alpha_todo.returncode == 1
    assert "TODO: double() in exercises/alpha.py" in alpha_todo.stdout
    assert "Look at exercises/alpha.py:" in alpha_todo.stdout

    shutil.copy(workbook / "solutions" / "alpha.py", workbook / "exercises" / "alpha.py")
    passing = exercises(workbook, "check", "beta")
    assert passing.returncode == 0, passing.stdout
    assert "beta: all 2 tests pass." in passing.stdout
    assert "Next: alpha." in passing.stdout


def test_hints_come_one_at_a_time(workbook: Path) -> None:
    first = exercises(workbook, "hint", "alpha")
    assert first.returncode == 0
    assert "Hint 1 of 2" in first.stdout and "Multiply." in first.stdout
    assert "return 2 * x" not in first.stdout
    second = exercises(workbook, "hint", "alpha")
    assert "Hint 2 of 2" in second.stdout and "`return 2 * x`" in second.stdout
    assert "Multiply." not in second.stdout
    third = exercises(workbook, "hint", "alpha")
    assert "No more hints for alpha" in third.stdout
    again = exercises(workbook, "hint", "alpha", "--all")
    assert "Multiply." in again.stdout and "`return 2 * x`" in again.stdout
    assert "no hints for beta" in exercises(workbook, "hint", "beta").stdout


def test_reset_asks_then_restores_the_stub(workbook: Path) -> None:
    alpha = workbook / "exercises" / "alpha.py"
    stub = alpha.read_text()
    alpha.write_text("# my attempt\n")
    declined = exercises(workbook, "reset", "alpha", stdin="n\n")
    assert declined.returncode == 1
    assert alpha.read_text() == "# my attempt\n"
    confirmed = exercises(workbook, "reset", "alpha", stdin="y\n")
    assert confirmed.returncode == 0, confirmed.stderr
    assert alpha.read_text() == stub
    alpha.write_text("# another attempt\n")
    assert exercises(workbook, "reset", "alpha", "--yes").returncode == 0
    assert alpha.read_text() == stub
    unchanged = exercises(workbook, "reset", "alpha", "--yes")
    assert unchanged.returncode == 0 and "already" in unchanged.stdout


def test_solution_unlocks_when_the_tests_pass(workbook: Path) -> None:
    locked = exercises(workbook, "solution", "alpha")
    assert locked.returncode == 1
    assert "return 2 * x" not in locked.stdout and "unlocks" in locked.stdout
    forced = exercises(workbook, "solution", "alpha", "--force")
    assert forced.returncode == 0 and forced.stdout == ALPHA
    shutil.copy(workbook / "solutions" / "alpha.py", workbook / "exercises" / "alpha.py")
    unlocked = exercises(workbook, "solution", "alpha")
    assert unlocked.returncode == 0 and unlocked.stdout == ALPHA


def test_usage_errors_exit_2(workbook: Path) -> None:
    unknown = exercises(workbook, "check", "gamma")
    assert unknown.returncode == 2
    assert "alpha, beta" in unknown.stderr
    assert exercises(workbook, "frobnicate").returncode == 2


def test_root_can_come_from_the_environment(workbook: Path) -> None:
    hint = run(["-m", "exercises", "hint", "alpha"], ROOT, EXERCISES_ROOT=str(workbook))
    assert hint.returncode == 0, hint.stderr
    assert "Multiply." in hint.stdout
    assert "alpha" in json.loads((workbook / ".exercises-progress.json").read_text())["hints_shown"]


# phases, next, the loop watch, watch and run

PHASED_ORDER = """\
# toy order
[phase 1] Doubling things
alpha
[phase 5] Building
beta
"""

ASYNC_SOLUTION = '''\
"""Wait a little, the asyncio way."""

import asyncio
import time


async def tick() -> str:
    ### BEGIN SOLUTION: wait 10 ms without blocking the loop
    await asyncio.sleep(0.01)
    return "tock"
    ### END SOLUTION
'''

ASYNC_TEST = """\
import asyncio


def test_tick(impl):
    assert asyncio.run(impl.module("gamma").tick()) == "tock"
"""

HANGING_TEST = """\
import asyncio


def test_waits_forever(impl):
    async def forever():
        await asyncio.Event().wait()

    asyncio.run(forever())
"""


def add_exercise(workbook: Path, name: str, solution: str, test: str) -> None:
    (workbook / "solutions" / f"{name}.py").write_text(solution)
    (workbook / "tests" / "exercises" / f"test_{name}.py").write_text(test)
    make_exercises.write_stubs(
        make_exercises.generated_files(workbook / "solutions"), workbook / "exercises"
    )


def test_list_groups_exercises_by_phase_with_progress(workbook: Path) -> None:
    (workbook / "exercises" / "hints" / "ORDER").write_text(PHASED_ORDER)
    shutil.copy(workbook / "solutions" / "alpha.py", workbook / "exercises" / "alpha.py")
    listed = exercises(workbook, "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    phase_1 = next(i for i, line in enumerate(lines) if line.startswith("Phase 1: Doubling"))
    phase_5 = next(i for i, line in enumerate(lines) if line.startswith("Phase 5: Building"))
    assert "1/1 done" in lines[phase_1] and "0/1 done" in lines[phase_5]
    assert phase_1 < lines.index(next(line for line in lines if "] alpha" in line)) < phase_5
    assert phase_5 < lines.index(next(line for line in lines if "] beta" in line))
    assert "1 of 2 exercises done." in listed.stdout


def test_next_names_the_first_unfinished_exercise(workbook: Path) -> None:
    (workbook / "exercises" / "hints" / "ORDER").write_text(PHASED_ORDER)
    first = exercises(workbook, "next")
    assert first.returncode == 0, first.stderr
    assert "Next exercise: alpha, phase 1 (Doubling things)" in first.stdout
    shutil.copy(workbook / "solutions" / "alpha.py", workbook / "exercises" / "alpha.py")
    assert "Next exercise: beta, phase 5" in exercises(workbook, "next").stdout
    shutil.copy(workbook / "solutions" / "beta.py", workbook / "exercises" / "beta.py")
    assert "Every exercise passes" in exercises(workbook, "next").stdout


def test_check_without_a_name_checks_the_current_exercise(workbook: Path) -> None:
    shutil.copy(workbook / "solutions" / "alpha.py", workbook / "exercises" / "alpha.py")
    checked = exercises(workbook, "check")
    assert checked.returncode == 1
    assert "beta: not started" in checked.stdout


def test_a_blocked_event_loop_is_reported_with_its_line_within_30_s(workbook: Path) -> None:
    add_exercise(workbook, "gamma", ASYNC_SOLUTION, ASYNC_TEST)
    gamma = workbook / "exercises" / "gamma.py"
    planted = gamma.read_text().replace(
        '    raise NotImplementedError("TODO: tick() in exercises/gamma.py")',
        "    while True:\n        time.sleep(0.05)  # the planted bug",
    )
    gamma.write_text(planted)
    line = planted.splitlines().index("        time.sleep(0.05)  # the planted bug") + 1
    started = time.monotonic()
    checked = exercises(workbook, "check", "gamma")
    elapsed = time.monotonic() - started
    assert checked.returncode == 1
    assert f"Your event loop may be blocked at exercises/gamma.py:{line}" in checked.stdout
    assert "time.sleep in an async def" in checked.stdout
    assert elapsed < 30, f"reported after {elapsed:.0f} s"

    gamma.write_text(planted.replace("time.sleep(0.05)  # the planted bug", "return 'tock'"))
    fixed = exercises(workbook, "check", "gamma")
    assert fixed.returncode == 0, fixed.stdout
    assert "blocked" not in fixed.stdout


def test_a_test_over_its_time_limit_is_stopped_and_said(workbook: Path) -> None:
    add_exercise(workbook, "gamma", ASYNC_SOLUTION, HANGING_TEST)
    shutil.copy(workbook / "solutions" / "gamma.py", workbook / "exercises" / "gamma.py")
    started = time.monotonic()
    checked = run(["-m", "exercises", "check", "gamma"], workbook, EXERCISES_TEST_TIMEOUT="2")
    assert checked.returncode == 1
    assert "ran over its time limit of 2 s" in checked.stdout
    assert "blocked" not in checked.stdout  # it waited; it did not block
    assert time.monotonic() - started < 30


def test_watch_rechecks_on_save_and_moves_on_when_it_passes(workbook: Path) -> None:
    watcher = subprocess.Popen(
        [sys.executable, "-m", "exercises", "watch"],
        cwd=workbook,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=quiet_env(PYTHONUNBUFFERED="1"),
    )
    seen: list[str] = []

    def read_until(text: str) -> None:
        deadline = time.monotonic() + 60
        assert watcher.stdout is not None
        while time.monotonic() < deadline:
            line = watcher.stdout.readline()
            if not line:
                break
            seen.append(line)
            if text in line:
                return
        raise AssertionError(f"no {text!r} in the watch output:\n{''.join(seen)}")

    try:
        read_until("Watching exercises/alpha.py")
        time.sleep(0.5)  # let the watcher start before the save
        shutil.copy(workbook / "solutions" / "alpha.py", workbook / "exercises" / "alpha.py")
        read_until("alpha: all 2 tests pass.")
        read_until("Moving on to beta")
        read_until("Watching exercises/beta.py")
    finally:
        watcher.kill()
        watcher.wait()


P5_SOLUTION = '''\
"""A first step of the chat server: a greeting at /."""

from aiohttp import web


async def hello(request: web.Request) -> web.Response:
    ### BEGIN SOLUTION: answer hello
    return web.Response(text="hello from step 1")
    ### END SOLUTION


def create_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/", hello)
    return app
'''

P5_TEST = """\
def test_hello(impl):
    assert impl.module("p5_hello").create_app() is not None
    raise AssertionError("never done, so run serves this step")
"""


def test_run_serves_the_current_phase_5_step(workbook: Path) -> None:
    add_exercise(workbook, "p5_hello", P5_SOLUTION, P5_TEST)
    (workbook / "exercises" / "p5_hello.py").write_text(P5_SOLUTION.replace("### ", "# "))
    (workbook / "exercises" / "hints" / "ORDER").write_text(PHASED_ORDER + "p5_hello\n")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "exercises", "run", "--port", str(port)],
        cwd=workbook,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=quiet_env(),
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as answer:
                    assert answer.read() == b"hello from step 1"
                    break
            except OSError:
                assert server.poll() is None, server.communicate()[0]
                assert time.monotonic() < deadline, "run did not serve p5_hello"
                time.sleep(0.2)
    finally:
        server.terminate()
        output = server.communicate(timeout=10)[0]
    assert f"Serving your p5_hello on http://127.0.0.1:{port}/" in output


def test_the_real_order_lists_every_exercise_once_under_its_phase() -> None:
    checker = load_checker()
    book = checker.Workbook(ROOT)
    phases = book.phases()
    assert [phase.number for phase in phases] == ["1", "2", "3", "4", "5"]
    listed = [name for phase in phases for name in phase.names]
    solutions = sorted(p.stem for p in (ROOT / "solutions").glob("*.py") if p.stem != "__init__")
    assert sorted(listed) == solutions and len(listed) == len(set(listed))
    for phase in phases:
        prefix = f"p{phase.number}_"
        steps = [name for name in phase.names if name[:1] == "p" and name[1:2].isdigit()]
        assert all(name.startswith(prefix) for name in steps), (phase.number, steps)
    # The guide's four extensions, in its order, in phase 5 before the step that plugs them
    # into the learner's server (which imports them, so it cannot pass before they do).
    classics = ["heartbeat", "tokens", "message_store", "private"]
    last_phase = phases[-1].names
    first = last_phase.index(classics[0])
    assert last_phase[first : first + 4] == classics
    assert last_phase.index("p5_plug_classics") > first + 3
    for name in listed:
        assert (ROOT / "tests" / "exercises" / f"test_{name}.py").exists(), name
        assert len(book.hint_sections(name)) >= 2, f"{name} needs a nudge and a last hint"


# reading pytest's JUnit report (xunit1, as both the checker and check_stubs_fail ask for)

JUNIT = """\
<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest">
<testcase classname="tests.exercises.test_alpha" name="test_ok"
  file="tests/exercises/test_alpha.py" line="1" />
<testcase classname="tests.exercises.test_alpha.TestBox" name="test_area"
  file="tests/exercises/test_alpha.py" line="5">
  <failure message="assert 3 == 4">tests/exercises/test_alpha.py:6: in test_area
    assert box.area(2) == 4
E   assert 3 == 4</failure></testcase>
<testcase classname="tests.exercises.test_beta" name="test_greet"
  file="tests/exercises/test_beta.py" line="1">
  <error message="failed on setup with &quot;NotImplementedError: TODO&quot;">\
exercises/beta.py:9: in greet
    raise NotImplementedError("TODO: greet() in exercises/beta.py")
E   NotImplementedError: TODO: greet() in exercises/beta.py</error></testcase>
<testcase classname="tests.exercises.test_gamma" name="test_g"
  file="tests/exercises/test_gamma.py" line="1">
  <skipped type="pytest.skip" message="needs redis-server">skipped</skipped></testcase>
<testcase classname="" name="tests.exercises.test_delta">
  <error message="collection failure">ImportError: no module</error></testcase>
</testsuite></testsuites>
"""


def test_junit_reports_are_read_per_exercise(tmp_path: Path) -> None:
    report = tmp_path / "report.xml"
    report.write_text(JUNIT)
    checker = load_checker()
    outcomes = {name: checker.Outcome() for name in ("alpha", "beta", "gamma", "delta")}
    checker.parse_report(report, outcomes)
    alpha, beta, gamma, delta = (outcomes[n] for n in ("alpha", "beta", "gamma", "delta"))
    assert (alpha.passed, alpha.failed, alpha.done, alpha.not_started) == (1, 1, False, False)
    assert alpha.first_failure["test"] == "tests/exercises/test_alpha.py::TestBox::test_area"
    assert alpha.first_failure["message"] == "assert 3 == 4"
    assert alpha.first_failure["where"] == ""  # no learner code on that traceback
    assert (beta.errors, beta.not_started) == (1, True)
    assert beta.first_failure["where"] == "exercises/beta.py:9"
    assert (gamma.skipped, gamma.skip_reason, gamma.done) == (1, "needs redis-server", False)
    assert (delta.errors, delta.not_started) == (1, False)

    cases = {case.exercise: case for case in check_stubs_fail.read_report(report)}
    assert cases["delta"].outcome == "collection error"
    assert cases["gamma"].outcome == "skipped"
    assert cases["beta"].outcome == "error" and cases["beta"].reached_todo


# checking that the tests fail on stubs


def test_check_stubs_fail_accepts_tests_that_fail_on_stubs(workbook: Path) -> None:
    checked = run(["tools/check_stubs_fail.py", "--also-solutions"], workbook)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "alpha: 2 tests, 2 reached a TODO" in checked.stdout


def test_check_stubs_fail_lists_tests_that_pass_on_stubs(workbook: Path) -> None:
    tests = workbook / "tests" / "exercises"
    (tests / "test_alpha.py").write_text(TEST_ALPHA + "\n\ndef test_nothing(impl):\n    pass\n")
    gamma = ALPHA.replace("Write ``double(x)``", "Untested: ``double(x)``")
    (workbook / "solutions" / "gamma.py").write_text(gamma)
    checked = run(["tools/check_stubs_fail.py"], workbook)
    assert checked.returncode == 1
    assert "tests/exercises/test_alpha.py::test_nothing: passed" in checked.stderr
    assert "gamma: no test" in checked.stderr
    assert "test_double" not in checked.stderr


# the student release


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def test_student_release_leaves_out_the_solutions(workbook: Path, tmp_path: Path) -> None:
    git(workbook, "init", "-q")
    (workbook / "Makefile").write_text("check:\n\tpython tools/make_exercises.py --check\n")
    git(workbook, "add", "-A")
    (workbook / "scratch.txt").write_text("not tracked\n")
    dest = tmp_path / "release"

    made = run(["tools/student_release.py", str(dest)], workbook)
    assert made.returncode == 0, made.stderr
    assert not (dest / "solutions").exists()
    for dropped in ("make_exercises.py", "student_release.py"):
        assert not (dest / "tools" / dropped).exists()
    # The release proves its own stubs fail, from exercises/.pristine/.
    stubs_fail = run(["tools/check_stubs_fail.py"], dest)
    assert stubs_fail.returncode == 0, stubs_fail.stdout + stubs_fail.stderr
    assert "ok: every exercise test fails on the stubs" in stubs_fail.stdout
    assert not (dest / "scratch.txt").exists()
    assert "scratch.txt" in made.stderr  # named as left out
    assert "Makefile:2" in made.stderr  # named as still mentioning a dropped tool
    stub = (workbook / "exercises" / "alpha.py").read_text()
    assert (dest / "exercises" / "alpha.py").read_text() == stub
    assert (dest / "exercises" / ".pristine" / "alpha.py").read_text() == stub
    assert (dest / "tests" / "exercises" / "conftest.py").exists()

    (dest / "exercises" / "alpha.py").write_text("# lost\n")
    reset = exercises(dest, "reset", "alpha", "--yes")
    assert reset.returncode == 0 and ".pristine" in reset.stdout
    assert (dest / "exercises" / "alpha.py").read_text() == stub
    missing = exercises(dest, "solution", "alpha", "--force")
    assert missing.returncode == 1 and "not included" in missing.stdout
    # Without solutions/, the exercise tests import the learner's modules.
    (dest / "exercises" / "alpha.py").write_text(ALPHA)
    assert exercises(dest, "check", "alpha").returncode == 0
    assert exercises(dest, "check", "beta").returncode == 1

    again = run(["tools/student_release.py", str(dest)], workbook)
    assert again.returncode == 1 and "not an empty folder" in again.stderr


def test_student_release_refuses_stale_stubs_and_walks_without_git(
    workbook: Path, tmp_path: Path
) -> None:
    (workbook / "exercises" / "alpha.py").write_text("# edited by hand\n")
    assert student_release.main([str(tmp_path / "stale"), "--root", str(workbook)]) == 1
    assert not (tmp_path / "stale").exists()

    make_exercises.write_stubs(
        make_exercises.generated_files(workbook / "solutions"), workbook / "exercises"
    )
    (workbook / ".venv" / "lib").mkdir(parents=True)
    (workbook / ".venv" / "lib" / "junk.py").write_text("")
    (workbook / "exercises" / "__pycache__").mkdir(exist_ok=True)
    (workbook / "exercises" / "__pycache__" / "x.pyc").write_bytes(b"")
    dest = tmp_path / "walked"
    assert student_release.main([str(dest), "--root", str(workbook)]) == 0
    assert (dest / "exercises" / "_checker.py").exists()
    assert (dest / "exercises" / ".pristine" / "beta.py").exists()
    assert not (dest / ".venv").exists()
    assert not (dest / "exercises" / "__pycache__").exists()
    assert not (dest / "solutions").exists()


PAGE_JS = """\
"use strict";

function greet(name) {
  // ### BEGIN SOLUTION: return the greeting
  return `hello ${name}`;
  // ### END SOLUTION
}
"""


def test_web_assets_beside_the_solutions_become_stubs_too(tmp_path: Path) -> None:
    solutions = tmp_path / "solutions"
    (solutions / "alpha_static").mkdir(parents=True)
    (solutions / "__init__.py").write_text('"""Answers."""\n')
    (solutions / "alpha.py").write_text(ALPHA)
    (solutions / "alpha_static" / "page.js").write_text(PAGE_JS)
    (solutions / "alpha_static" / "index.html").write_text("<p>as is</p>\n")
    out = tmp_path / "exercises"

    assert make_exercises.main(["--solutions", str(solutions), "--out", str(out)]) == 0
    script = (out / "alpha_static" / "page.js").read_text()
    assert "hello" not in script and "BEGIN SOLUTION" not in script
    assert "  // TODO: return the greeting\n" in script
    assert '  throw new Error("TODO: greet() in exercises/alpha_static/page.js");\n' in script
    assert (out / "alpha_static" / "index.html").read_text() == "<p>as is</p>\n"
    assert make_exercises.main(["--solutions", str(solutions), "--out", str(out), "--check"]) == 0
    (out / "alpha_static" / "page.js").write_text(PAGE_JS)
    assert make_exercises.main(["--solutions", str(solutions), "--out", str(out), "--check"]) == 1

    (solutions / "alpha_static" / "page.js").write_text(
        PAGE_JS.replace("  // ### END SOLUTION\n", "")
    )
    with pytest.raises(make_exercises.StubError, match="without"):
        make_exercises.generated_files(solutions)
