"""Phase 5, step 4: presence. Run: python -m exercises check p5_presence"""

from __future__ import annotations

import json

import pytest

from my_chat.sse import EventStreamParser
from tests.exercises.p5_client import json_events, running


@pytest.fixture
def step(impl):
    return impl.module("p5_presence")


async def next_about(stream, user: str) -> dict:
    """The next presence change about ``user`` (a stream also hears about its own user)."""
    while True:
        change = await stream.next_json("presence")
        if change["user"] == user:
            return change


def only_event(frame: bytes):
    assert isinstance(frame, bytes)
    events = EventStreamParser().feed(frame)
    assert len(events) == 1
    return events[0].type, json.loads(events[0].data)


def test_presence_frame_and_online_frame_carry_their_json(step):
    assert only_event(step.presence_frame("alice", True)) == (
        "presence",
        {"user": "alice", "online": True},
    )
    assert only_event(step.presence_frame("bob", False)) == (
        "presence",
        {"user": "bob", "online": False},
    )
    assert only_event(step.online_frame(["alice", "bob"])) == (
        "online",
        {"users": ["alice", "bob"]},
    )


async def test_a_new_stream_gets_the_sorted_online_list_right_after_connection_id(step):
    async with running(step.create_app()) as server:
        carol = await server.open_stream({"user": "carol"})
        await carol.next("connection_id")
        alice = await server.open_stream({"user": "alice"})
        try:
            assert (await alice.next()).type == "connection_id"
            second = await alice.next()
            assert second.type == "online"
            assert json.loads(second.data) == {"users": ["alice", "carol"]}
            assert len(await json_events(alice, "online")) == 1
        finally:
            carol.close()
            alice.close()


async def test_everyone_hears_when_a_users_first_connection_opens_and_last_one_closes(step):
    async with running(step.create_app()) as server:
        bob = await server.open_stream({"user": "bob"})
        await bob.next("online")
        alice_phone = await server.open_stream({"user": "alice"})
        assert await next_about(bob, "alice") == {"user": "alice", "online": True}
        alice_laptop = await server.open_stream({"user": "alice"})
        await alice_laptop.next("online")
        alice_phone.close()
        await server.wait_for_connections(2)
        # A second device, and closing one of two, change nothing.
        changes = [c for c in await json_events(bob, "presence") if c["user"] == "alice"]
        assert changes == [{"user": "alice", "online": True}]
        alice_laptop.close()
        assert await next_about(bob, "alice") == {"user": "alice", "online": False}
        bob.close()


async def test_get_api_online_lists_who_is_online(step):
    async with running(step.create_app()) as server:
        assert await server.request("GET", "/api/online") == (200, {"users": []})
        streams = [await server.open_stream({"user": n}) for n in ("zoe", "alice", "zoe")]
        for stream in streams:
            await stream.next("online")
        assert await server.request("GET", "/api/online") == (200, {"users": ["alice", "zoe"]})
        for stream in streams:
            stream.close()
        await server.wait_for_connections(0)
        assert await server.request("GET", "/api/online") == (200, {"users": []})


async def test_posting_a_message_still_reaches_every_stream(step):
    async with running(step.create_app()) as server:
        bob = await server.open_stream({"user": "bob"})
        try:
            await bob.next("online")
            status, sent = await server.request(
                "POST", "/api/messages", params={"user": "alice"}, json={"text": "hi"}
            )
            assert status == 201, sent
            assert await bob.next_json("message") == sent
        finally:
            bob.close()
