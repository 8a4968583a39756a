"""Phase 5, step 5: the four classics plug in. Run: python -m exercises check p5_plug_classics

These tests run your server on your own heartbeat, tokens, message_store and private
modules: do those four exercises first.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tests.exercises.p5_client import EventStream, Server, json_events, running

SECRET = "a secret for the phase-5 tests, long enough for HS256"


@pytest.fixture
def step(impl):
    return impl.module("p5_plug_classics")


@pytest.fixture
def serve_step(step, tmp_path: Path):
    """``async with serve_step(**settings) as server``: the step on a temporary database."""

    @asynccontextmanager
    async def serving(**settings) -> AsyncIterator[Server]:
        settings = {"database": tmp_path / "chat.sqlite3", "secret": SECRET, **settings}
        async with running(step.create_app(**settings)) as server:
            yield server

    return serving


async def login(server: Server, name: str) -> dict[str, str]:
    status, body = await server.request("POST", "/api/login", json={"username": name})
    assert status == 200, body
    return {"Authorization": f"Bearer {body['token']}"}


async def send(server: Server, auth: dict[str, str], text: str, to: str | None = None) -> dict:
    body = {"text": text} if to is None else {"text": text, "to": to}
    status, sent = await server.request("POST", "/api/messages", headers=auth, json=body)
    assert status == 201, sent
    return sent


async def live(server: Server, auth: dict[str, str], **headers: str) -> EventStream:
    """A stream that has received its online list (so it is registered)."""
    stream = await server.open_stream(headers={**auth, **headers})
    assert stream.response.status == 200, await stream.response.text()
    await stream.next("online")
    return stream


async def test_login_answers_a_token_that_your_verify_token_accepts(step, serve_step, impl):
    async with serve_step() as server:
        status, body = await server.request("POST", "/api/login", json={"username": "alice"})
        assert status == 200, body
        assert body["username"] == "alice"
        assert impl.module("tokens").verify_token(body["token"], secret=SECRET) == "alice"
        status, body = await server.request("POST", "/api/login", json={"username": "a b"})
        assert (status, body["error"]) == (400, "invalid_user")
        assert (await server.request("POST", "/api/login", json={"username": "bob"}))[0] == 200


async def test_without_a_valid_token_a_stream_or_a_post_is_a_401(serve_step):
    async with serve_step() as server:
        cases = [({}, "missing_token"), ({"Authorization": "Bearer nonsense"}, "invalid_token")]
        for headers, code in cases:
            status, body = await server.request("GET", "/sse", headers=headers)
            assert (status, body["error"]) == (401, code)
            status, body = await server.request(
                "POST", "/api/messages", headers=headers, json={"text": "hi"}
            )
            assert (status, body["error"]) == (401, code)
        status, body = await server.request("GET", "/sse", params={"user": "alice"})
        assert status == 401, "?user= counts for nothing any more"
        auth = await login(server, "alice")
        assert (await send(server, auth, "after the 401s"))["from"] == "alice"


async def test_the_token_names_the_user_in_the_header_or_the_query(serve_step):
    async with serve_step() as server:
        auth = await login(server, "alice")
        token = auth["Authorization"].removeprefix("Bearer ")
        stream = await server.open_stream(params={"token": token, "user": "mallory"})
        try:
            await stream.next("online")
            assert await server.request("GET", "/api/online") == (200, {"users": ["alice"]})
            sent = await send(server, auth, "hi")
            assert sent["from"] == "alice"
            assert await stream.next_json("message") == sent
        finally:
            stream.close()


async def test_the_second_event_is_the_initial_heartbeat_of_this_connection(serve_step):
    async with serve_step() as server:
        stream = await server.open_stream(headers=await login(server, "alice"))
        try:
            first = await stream.next()
            second = await stream.next()
            assert first.type == "connection_id"
            assert second.type == "heartbeat"
            beat = json.loads(second.data)
            assert beat["type"] == "initial"
            assert beat["client_id"] == json.loads(first.data)["client_id"]
            assert beat["user_id"] == "alice"
        finally:
            stream.close()


async def test_the_heartbeat_loops_run_while_the_server_runs(serve_step):
    async with serve_step(periodic=0.05, healthcheck=0.05) as server:
        stream = await live(server, await login(server, "alice"))
        try:
            kinds = set()
            while not {"periodic", "healthcheck"} <= kinds:  # stream.next gives up after 5 s
                kinds.add((await stream.next_json("heartbeat"))["type"])
        finally:
            stream.close()


async def test_messages_and_their_ids_survive_a_restart(serve_step):
    async with serve_step() as server:
        auth = await login(server, "alice")
        first = await send(server, auth, "one")
        second = await send(server, auth, "two")
    async with serve_step() as server:
        auth = await login(server, "alice")
        third = await send(server, auth, "three")
        assert first["id"] < second["id"] < third["id"]
        stream = await live(server, auth)
        try:
            assert [await stream.next_json("message") for _ in range(3)] == [first, second, third]
            assert len(await json_events(stream, "message")) == 3
        finally:
            stream.close()


async def test_with_last_event_id_a_stream_gets_exactly_what_it_missed_then_live(serve_step):
    async with serve_step(history=1) as server:
        auth = await login(server, "alice")
        sent = [await send(server, auth, f"m{n}") for n in range(4)]
        by_header = await live(server, auth, **{"Last-Event-ID": str(sent[0]["id"])})
        token = auth["Authorization"].removeprefix("Bearer ")
        by_query = await server.open_stream(
            params={"token": token, "last_event_id": str(sent[1]["id"])}
        )
        try:
            await by_query.next("online")
            later = await send(server, auth, "live")
            assert [await by_header.next_json("message") for _ in range(4)] == [*sent[1:], later]
            assert [await by_query.next_json("message") for _ in range(3)] == [*sent[2:], later]
            assert await json_events(by_header, "message") == [*sent[1:], later]  # no duplicate
        finally:
            by_header.close()
            by_query.close()


async def test_without_last_event_id_a_stream_gets_the_latest_history(serve_step):
    async with serve_step(history=2) as server:
        auth = await login(server, "alice")
        sent = [await send(server, auth, f"m{n}") for n in range(3)]
        stream = await live(server, auth)
        try:
            assert [await stream.next_json("message") for _ in range(2)] == sent[1:]
            assert await json_events(stream, "message") == sent[1:]  # and nothing older
        finally:
            stream.close()


async def test_a_private_message_reaches_only_its_two_users_live_and_on_replay(serve_step):
    async with serve_step() as server:
        alice, bob, carol = [await login(server, name) for name in ("alice", "bob", "carol")]
        streams = [await live(server, auth) for auth in (alice, bob, carol)]
        try:
            secret = await send(server, alice, "for bob only", to="bob")
            room = await send(server, alice, "for everyone")
            assert secret["to"] == "bob"
            assert [await streams[0].next_json("message") for _ in range(2)] == [secret, room]
            assert [await streams[1].next_json("message") for _ in range(2)] == [secret, room]
            assert await streams[2].next_json("message") == room
            carol_again = await live(server, carol, **{"Last-Event-ID": "0"})
            bob_again = await live(server, bob, **{"Last-Event-ID": "0"})
            assert await carol_again.next_json("message") == room
            assert [await bob_again.next_json("message") for _ in range(2)] == [secret, room]
            assert await json_events(carol_again, "message") == [room]
            streams += [carol_again, bob_again]
        finally:
            for stream in streams:
                stream.close()


@pytest.mark.parametrize(
    ("to", "status", "code"),
    [
        ("alice", 400, "self_message"),
        ("nobody", 404, "unknown_recipient"),
        ("", 400, "invalid_recipient"),
    ],
)
async def test_a_private_message_to_yourself_or_a_stranger_is_refused_then_all_is_well(
    serve_step, to, status, code
):
    async with serve_step() as server:
        alice = await login(server, "alice")
        await login(server, "bob")
        got, body = await server.request(
            "POST", "/api/messages", headers=alice, json={"text": "hi", "to": to}
        )
        assert (got, body["error"]) == (status, code), body
        assert (await send(server, alice, "hi bob", to="bob"))["to"] == "bob"
