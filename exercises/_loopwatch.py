"""A pytest plugin the checker loads (``-p exercises._loopwatch``): a time limit per test,
and a watch on the event loop that names the line blocking it.

A watcher thread looks at the main thread's stack every few milliseconds. When the stack
shows the event loop running a callback (asyncio's ``Handle._run``) with a frame of the
learner's code in it, for ``EXERCISES_BLOCKED_AFTER`` seconds (1 by default) without a
break, the loop is blocked there: nothing else can run. The watcher records the learner's
innermost line as the test's ``loop_blocked`` property (the checker reads it from the JUnit
report) and raises ``EventLoopBlocked`` in the main thread, which ends the blocking call, so
a ``time.sleep`` in a ``while True`` costs a second, not the whole run.

A test that runs longer than ``EXERCISES_TEST_TIMEOUT`` seconds (8 by default) is stopped
the same way with ``TestTimeLimit`` and gets the ``time_limit`` property.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from types import FrameType

import pytest

from ._checker import choose_language, load_messages

SAMPLE_EVERY = 0.01
QUIET_SAMPLES_TO_RESET = 3  # samples outside a blocking callback before the count restarts


class EventLoopBlocked(Exception):
    """Raised in the main thread when the event loop has been blocked too long."""


class TestTimeLimit(Exception):
    """Raised in the main thread when a test runs over its time limit."""

    __test__ = False  # not a test class, whatever its name says


def _seconds(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


class LoopWatch:
    def __init__(self, learner_dir: Path, limit: float, blocked_after: float) -> None:
        self.learner_dir = str(learner_dir.resolve()) + os.sep
        self.limit = limit
        self.blocked_after = blocked_after
        self.main_id = threading.main_thread().ident
        self.lock = threading.Lock()
        self.item: pytest.Item | None = None
        self.started = 0.0
        self.blocked_lines: Counter[str] = Counter()
        self.blocked_for = 0.0
        self.blocked_since = 0.0
        self.quiet = 0
        self.pending: type[Exception] | None = None
        self.raised_at = 0.0
        self.properties: list[tuple[str, str]] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.watch, name="loopwatch", daemon=True)

    # in the main thread

    def start_test(self, item: pytest.Item) -> None:
        with self.lock:
            self.item = item
            self.started = time.monotonic()
            self.blocked_lines.clear()
            self.blocked_for = 0.0
            self.blocked_since = 0.0
            self.quiet = 0
            self.raised_at = 0.0
            self.properties = []

    def end_test(self) -> list[tuple[str, str]]:
        with self.lock:
            self.item = None
            return self.properties

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        with self.lock:
            error, self.pending = self.pending, None
        if error is EventLoopBlocked:
            where = dict(self.properties).get("loop_blocked", "?")
            raise EventLoopBlocked(
                _say("loopwatch_blocked", seconds=f"{self.blocked_after:g}", where=where)
            )
        if error is TestTimeLimit:
            raise TestTimeLimit(_say("loopwatch_time_limit", seconds=f"{self.limit:g}"))

    # in the watcher thread

    def learner_line(self, frame: FrameType | None) -> tuple[bool, str]:
        """Whether the loop runs a callback, and the learner's innermost line in it."""
        line, in_callback = "", False
        while frame is not None:
            code = frame.f_code
            filename = code.co_filename
            if not line and filename.startswith(self.learner_dir):
                relative = filename[len(self.learner_dir) :]
                if not relative.startswith("_"):
                    line = f"exercises/{relative.replace(os.sep, '/')}:{frame.f_lineno}"
            if code.co_name == "_run" and filename.endswith(f"asyncio{os.sep}events.py"):
                in_callback = True
                break
            frame = frame.f_back
        return in_callback, line

    def watch(self) -> None:
        while not self.stopped.wait(SAMPLE_EVERY):
            frame = sys._current_frames().get(self.main_id)
            in_callback, line = self.learner_line(frame)
            del frame
            with self.lock:
                if self.item is None or self.pending is not None:
                    continue
                now = time.monotonic()
                if in_callback and line:
                    self.quiet = 0
                    self.blocked_since = self.blocked_since or now
                    self.blocked_for = now - self.blocked_since
                    self.blocked_lines[line] += 1
                else:
                    self.quiet += 1
                    if self.quiet >= QUIET_SAMPLES_TO_RESET:
                        self.blocked_since = 0.0
                        self.blocked_for = 0.0
                        self.blocked_lines.clear()
                if self.blocked_for >= self.blocked_after and now - self.raised_at > 1:
                    where = self.blocked_lines.most_common(1)[0][0]
                    if ("loop_blocked", where) not in self.properties:
                        self.properties.append(("loop_blocked", where))
                    self.interrupt(EventLoopBlocked, now)
                elif now - self.started > self.limit and now - self.raised_at > 2:
                    if ("time_limit", f"{self.limit:g}") not in self.properties:
                        self.properties.append(("time_limit", f"{self.limit:g}"))
                    self.interrupt(TestTimeLimit, now)

    def interrupt(self, error: type[Exception], now: float) -> None:
        self.pending = error
        self.raised_at = now
        self.blocked_for = 0.0
        self.blocked_since = 0.0
        self.blocked_lines.clear()
        assert self.main_id is not None
        signal.pthread_kill(self.main_id, signal.SIGUSR1)


def _say(key: str, **values: str) -> str:
    """A sentence from exercises/hints/messages*.toml, in the language the checker chose."""
    messages = load_messages(Path(__file__).resolve().parent / "hints", _language())
    return messages.get(key, key).strip("\n").format(**values)


def _language() -> str:
    chosen = os.environ.get("EXERCISES_LANG", "")  # set by the checker
    return choose_language(chosen) if chosen else choose_language()


_watch: LoopWatch | None = None
_previous_handler = None


def pytest_configure(config: pytest.Config) -> None:
    global _watch, _previous_handler
    if not hasattr(signal, "pthread_kill") or threading.current_thread() is not (
        threading.main_thread()
    ):
        return  # not on this platform: no watch, the tests still run
    learner_dir = Path(os.environ.get("EXERCISES_LEARNER_DIR", Path.cwd() / "exercises"))
    _watch = LoopWatch(
        learner_dir,
        limit=_seconds("EXERCISES_TEST_TIMEOUT", 8.0),
        blocked_after=_seconds("EXERCISES_BLOCKED_AFTER", 1.0),
    )
    _previous_handler = signal.signal(signal.SIGUSR1, _watch.on_signal)
    _watch.thread.start()


def pytest_unconfigure(config: pytest.Config) -> None:
    global _watch
    if _watch is not None:
        _watch.stopped.set()
        signal.signal(signal.SIGUSR1, _previous_handler or signal.SIG_DFL)
        _watch = None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    if _watch is not None:
        _watch.start_test(item)
    try:
        return (yield)
    finally:
        if _watch is not None:
            _watch.end_test()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    if _watch is not None:
        with _watch.lock:
            for prop in _watch.properties:
                if prop not in item.user_properties:
                    item.user_properties.append(prop)
    return (yield)
