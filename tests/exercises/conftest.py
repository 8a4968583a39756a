"""Choose which implementation the exercise tests run against.

``--impl=solutions`` (the default while solutions/ exists) tests the answers,
``--impl=exercises`` the learner's modules in exercises/ (the default in a student release),
and ``--impl=DIR`` a folder of stub modules, such as a fresh copy from
``tools/make_exercises.py --out DIR``. Tests ask the ``impl`` fixture for a module::

    def test_double(impl):
        alpha = impl.module("alpha")
        assert alpha.double(2) == 4

Pass the test folder along with the option (``pytest tests/exercises --impl=exercises``) so
pytest reads this file before it parses the command line.
"""

from __future__ import annotations

import gc
import hashlib
import importlib
import importlib.util
import sys
import types
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("solutions", "exercises")

# The modules under test import my_chat, and solutions/exercises are imported by name.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def default_impl() -> str:
    return "solutions" if (ROOT / "solutions").is_dir() else "exercises"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--impl",
        default=None,
        help="what the exercise tests import: solutions, exercises or a folder of modules "
        "(default: solutions, or exercises when solutions/ is absent)",
    )


class Implementation:
    """Imports exercise modules from one source: a package name or a folder."""

    def __init__(self, choice: str | None) -> None:
        choice = choice or default_impl()
        self.choice = choice
        if choice in PACKAGES:
            self.package = choice
            self.folder = ROOT / choice
        else:
            self.folder = Path(choice).resolve()
            if not self.folder.is_dir():
                raise pytest.UsageError(f"--impl={choice}: no such folder")
            # A package with a unique name, so a copy never shadows exercises/ or solutions/,
            # and relative imports between the modules keep working.
            digest = hashlib.sha256(str(self.folder).encode()).hexdigest()[:10]
            self.package = f"_impl_{digest}"
            self._register_folder_package()

    def _register_folder_package(self) -> None:
        if self.package in sys.modules:
            return
        init = self.folder / "__init__.py"
        if init.exists():
            spec = importlib.util.spec_from_file_location(
                self.package, init, submodule_search_locations=[str(self.folder)]
            )
            assert spec is not None and spec.loader is not None
            package = importlib.util.module_from_spec(spec)
            sys.modules[self.package] = package
            spec.loader.exec_module(package)
        else:
            package = types.ModuleType(self.package)
            package.__path__ = [str(self.folder)]
            sys.modules[self.package] = package

    def module(self, name: str) -> ModuleType:
        """The module ``name`` (such as ``"heartbeat"``) from the chosen source."""
        if not (self.folder / f"{name}.py").exists():
            raise FileNotFoundError(f"{self.folder / name}.py does not exist")
        return importlib.import_module(f"{self.package}.{name}")

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.py"

    def __repr__(self) -> str:
        return f"Implementation({self.choice!r})"


def pytest_configure(config: pytest.Config) -> None:
    choice = config.getoption("impl", None)
    if choice and choice not in PACKAGES and not Path(choice).is_dir():
        raise pytest.UsageError(f"--impl={choice}: not solutions, exercises or a folder")


def pytest_report_header(config: pytest.Config) -> str:
    return f"exercise tests import from: {config.getoption('impl', None) or default_impl()}"


@pytest.fixture(scope="session")
def impl(pytestconfig: pytest.Config) -> Implementation:
    return Implementation(pytestconfig.getoption("impl", None))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """No garbage collection while a failure is described.

    Describing a failure parses the test's source with ``ast``. On CPython 3.11.7 a
    finalizer that runs during that parse (an un-awaited coroutine left by a stub, a task
    whose error nobody read) breaks it with "AST constructor recursion depth mismatch",
    which pytest reports as an INTERNALERROR instead of the learner's failure.
    """
    handler_errors = _handler_errors()
    if call.when == "call" and call.excinfo is not None and handler_errors:
        # The server's own error explains the failure better than the status the client saw.
        call.excinfo = pytest.ExceptionInfo.from_exception(handler_errors[0])
    if call.excinfo is None or not gc.isenabled():
        return (yield)
    gc.disable()
    try:
        return (yield)
    finally:
        gc.enable()


def _handler_errors() -> list[Exception]:
    """Errors raised by the handlers of servers.serving(), if a test module used it."""
    servers = sys.modules.get("tests.exercises.servers")
    return servers.HANDLER_ERRORS if servers is not None else []


def pytest_runtest_setup(item: pytest.Item) -> None:
    _handler_errors().clear()
