from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from my_chat.config import Settings
from my_chat.context import CONTEXT, ServiceContext
from my_chat.serve import serve
from my_chat.server import create_app
from tests.chat_client import ChatClient, ServerProcess, client_session
from tests.ports import free_port

SERVICE_KEY = "service-key-for-tests-0123456789abcdef"


@dataclass
class RunningServer:
    url: str
    app: object
    session: aiohttp.ClientSession
    settings: Settings

    @property
    def context(self) -> ServiceContext:
        return self.app[CONTEXT]

    def client(self) -> ChatClient:
        return ChatClient(self.url, self.session)

    async def user(self, name: str) -> ChatClient:
        return await self.client().signup(name)

    @property
    def service_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {SERVICE_KEY}"}


def fast_settings(data_dir: Path, **overrides) -> Settings:
    values = dict(
        data_dir=data_dir,
        periodic_interval=3600.0,
        healthcheck_interval=3600.0,
        service_key=SERVICE_KEY,
        jwt_secret="jwt-secret-for-tests-0123456789abcdef",
        signup_per_minute=0,
        message_burst=1000,
        message_rate=1000.0,
        # Leaving is announced at once; tests/test_presence.py sets the grace period itself.
        presence_grace=0.0,
    )
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def make_server(tmp_path: Path):
    """``async with make_server(**settings) as server:`` runs my_chat in this event loop."""
    import contextlib

    @contextlib.asynccontextmanager
    async def running(**overrides) -> AsyncIterator[RunningServer]:
        settings = fast_settings(tmp_path / "data", **overrides)
        app = create_app(settings)
        # A port of this worker's own (tests/ports.py), not one the kernel hands out.
        async with serve(app, port=free_port()) as url, client_session() as session:
            yield RunningServer(url, app, session, settings)

    return running


@pytest.fixture
async def server(make_server) -> AsyncIterator[RunningServer]:
    async with make_server() as running:
        yield running


@pytest.fixture
def server_process(tmp_path: Path):
    """Start ``python -m my_chat`` processes; all are stopped after the test."""
    started: list[ServerProcess] = []

    def start(*args: str, data_dir: Path | None = None, port: int | None = None, env=None):
        process = ServerProcess(
            data_dir or tmp_path / "data",
            *args,
            port=port,
            env={"MY_CHAT_SERVICE_KEY": SERVICE_KEY, **(env or {})},
        )
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.stop()


ROOT = Path(__file__).resolve().parent.parent
NEEDS_SOLUTIONS_FIXTURES = {"server", "make_server", "server_process", "chat_server"}
SERVER_MARKERS = ("needs_solutions", "browser", "redis", "slow")
# The longest single tests (40 to 60 s each). They are collected first, so that pytest-xdist
# (make test) hands them out early: started last, one would run alone while the other worker
# has nothing left to do.
LONGEST_FIRST = (
    "tests/test_model.py::test_the_server_behaves_like_the_model",
    "tests/test_schemathesis.py::test_the_server_keeps_every_promise_of_its_openapi_document",
)


def pytest_collection_modifyitems(config, items):
    """Collect the longest tests first; skip what needs the guide where it is left out on
    purpose, and in a student release (no solutions/), what needs the answers to pass.

    The server then runs on the learner's unfinished code, so its own tests cannot pass yet;
    what stays is the wire format, the exercise tooling and the exercise-mode start-up.
    """
    items.sort(key=lambda item: item.nodeid not in LONGEST_FIRST)  # stable: the rest keep order
    if os.environ.get("WORKBOOK_WITHOUT_GUIDE"):
        # Set by the GitHub workflows: the source guide sits beside the repository in the
        # workbook's own CI, and is not part of the repository.
        no_guide = pytest.mark.skip(reason="WORKBOOK_WITHOUT_GUIDE: the guide is not beside")
        for item in items:
            if item.get_closest_marker("needs_guide"):
                item.add_marker(no_guide)
    if (ROOT / "solutions").is_dir():
        return
    skip = pytest.mark.skip(reason="needs solutions/, which a student release leaves out")
    for item in items:
        # The learner's checker passes --impl=exercises: then the exercise tests do run.
        in_exercises = "tests/exercises/" in item.nodeid and not config.getoption("impl", None)
        uses_server = NEEDS_SOLUTIONS_FIXTURES & set(getattr(item, "fixturenames", ()))
        marked = any(item.get_closest_marker(m) for m in SERVER_MARKERS)
        if in_exercises or uses_server or marked:
            item.add_marker(skip)
