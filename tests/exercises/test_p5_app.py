"""Phase 5, step 1: an empty aiohttp app. Run: python -m exercises check p5_app"""

from __future__ import annotations

import pytest
from aiohttp import web

from my_chat.client_manager import Client, ClientManager
from tests.exercises.p5_client import running


@pytest.fixture
def step(impl):
    return impl.module("p5_app")


def test_create_app_holds_a_client_manager_under_manager(step):
    app = step.create_app()
    assert isinstance(app, web.Application)
    assert isinstance(app[step.MANAGER], ClientManager)


async def test_healthz_answers_ok_and_zero_connections(step):
    async with running(step.create_app()) as server:
        status, body = await server.request("GET", "/healthz")
        assert status == 200
        assert body == {"ok": True, "connections": 0}


async def test_healthz_counts_the_managers_connections(step):
    app = step.create_app()
    async with running(app) as server:
        # A connection without a socket, registered the way step 2's stream registers one.
        app[step.MANAGER].register(Client("c1", "alice", None))
        assert (await server.request("GET", "/healthz"))[1]["connections"] == 1


async def test_an_unknown_path_is_a_json_404_and_the_server_keeps_answering(step):
    async with running(step.create_app()) as server:
        status, body = await server.request("GET", "/nowhere")
        assert status == 404
        assert isinstance(body, dict) and body.get("error") == "not_found"
        assert (await server.request("GET", "/healthz"))[0] == 200


async def test_stopping_the_server_ends_every_open_stream(step):
    app = step.create_app()
    async with running(app):
        connection = Client("c1", "alice", None)
        app[step.MANAGER].register(connection)
        assert not connection.closed.done()
    assert connection.closed.done(), "close_streams should run when the server stops"
