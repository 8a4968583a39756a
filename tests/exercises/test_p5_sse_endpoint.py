"""Phase 5, step 2: GET /sse. Run: python -m exercises check p5_sse_endpoint"""

from __future__ import annotations

import json

import pytest

from my_chat.sse import EventStreamParser, encode_event
from tests.exercises.p5_client import running


@pytest.fixture
def step(impl):
    return impl.module("p5_sse_endpoint")


@pytest.mark.parametrize(
    ("query", "code"),
    [({}, "missing_user"), ({"user": ""}, "missing_user"), ({"user": "a b"}, "invalid_user")],
)
async def test_a_missing_or_invalid_user_is_a_json_400_then_the_server_keeps_working(
    step, query, code
):
    async with running(step.create_app()) as server:
        status, body = await server.request("GET", "/sse", params=query)
        assert status == 400, body
        assert isinstance(body, dict) and body.get("error") == code
        stream = await server.open_stream({"user": "alice"})
        try:
            assert stream.response.status == 200
        finally:
            stream.close()


async def test_the_answer_has_the_event_stream_headers(step):
    async with running(step.create_app()) as server:
        stream = await server.open_stream({"user": "alice"})
        try:
            headers = stream.response.headers
            assert stream.response.status == 200
            assert headers["Content-Type"].startswith("text/event-stream")
            assert headers["Cache-Control"] == "no-cache"
        finally:
            stream.close()


async def test_the_first_event_is_connection_id_with_a_new_id_and_retry(step):
    async with running(step.create_app()) as server:
        first = await server.open_stream({"user": "alice"})
        second = await server.open_stream({"user": "alice"})
        try:
            ids = []
            for stream in (first, second):
                event = await stream.next()
                assert event.type == "connection_id"
                ids.append(json.loads(event.data)["client_id"])
                assert isinstance(ids[-1], str) and ids[-1]
            assert ids[0] != ids[1]
            assert first.received[0].type == "connection_id"
        finally:
            first.close()
            second.close()


def test_connection_id_frame_is_one_connection_id_event_that_sets_retry(step):
    class Named:
        id = "abc"

    frame = step.connection_id_frame(Named())
    assert isinstance(frame, bytes)
    parser = EventStreamParser()
    events = parser.feed(frame)
    assert [(e.type, json.loads(e.data)) for e in events] == [
        ("connection_id", {"client_id": "abc"})
    ]
    assert parser.retry == step.RETRY_MS


async def test_an_open_stream_is_registered_and_gets_the_managers_frames(step):
    app = step.create_app()
    async with running(app) as server:
        stream = await server.open_stream({"user": "alice"})
        try:
            await stream.next("connection_id")
            assert await server.connections() == 1
            manager = app[step.MANAGER]
            assert manager.online_users() == ["alice"]
            assert manager.broadcast(encode_event("hello", event="note")) == 1
            event = await stream.next("note")
            assert event.data == "hello"
        finally:
            stream.close()


async def test_a_stream_the_client_closes_is_unregistered(step):
    app = step.create_app()
    async with running(app) as server:
        streams = [await server.open_stream({"user": name}) for name in ("alice", "bob")]
        for stream in streams:
            await stream.next("connection_id")
        assert await server.connections() == 2
        streams[0].close()
        assert await server.wait_for_connections(1) == 1
        assert app[step.MANAGER].online_users() == ["bob"]
        streams[1].close()
        assert await server.wait_for_connections(0) == 0
