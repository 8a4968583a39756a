"""Presence churn: a quick reconnection does not flap, and churn costs the churner, not the room.

Each test needs to know that a presence frame did *not* come. It never waits a fixed time for
that: another user leaves for real after the event in question, and once the watcher hears
that later ``offline``, every frame about the earlier event has been sent (same grace period,
started earlier; batches go out in order).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.chat_client import ChatClient, Stream, client_session
from tests.conftest import SERVICE_KEY
from tests.redis_server import RedisServer, redis_server_path

GRACE = 2.0
WINDOW = 0.05
# How long a page takes to come back: longer than a batch window, well inside the grace.
RECONNECT_DELAY = 0.3
CHURN = 40


def presence_of(stream: Stream, user: str) -> list[bool]:
    return [
        json.loads(e.data)["online"]
        for e in stream.received
        if e.type == "presence" and json.loads(e.data)["user"] == user
    ]


async def until_presence(stream: Stream, user: str, online: bool, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not presence_of(stream, user) or presence_of(stream, user)[-1] is not online:
            await stream.next("presence", timeout)


async def close(stream: Stream) -> None:
    stream.close()
    await asyncio.gather(stream.reader, return_exceptions=True)


async def test_a_reconnection_within_the_grace_period_announces_nothing(make_server):
    async with make_server(presence_grace=GRACE, presence_window=WINDOW) as server:
        alice, bob, carol = [await server.user(n) for n in ("alice", "bob", "carol")]
        watcher = await bob.open_stream()
        first = await alice.open_stream()
        carol_stream = await carol.open_stream()
        await until_presence(watcher, "alice", True)
        await until_presence(watcher, "carol", True)

        await close(first)  # a network blip: the page comes back after its retry delay
        await asyncio.sleep(RECONNECT_DELAY)
        again = await alice.open_stream()
        # While she was away she was still on the list a new stream starts from.
        late = await carol.open_stream()
        assert "alice" in (await late.next_json("online"))["users"]
        await close(late)
        _status, body = await bob.request("GET", "/api/online")
        assert body["users"] == ["alice", "bob", "carol"]

        # carol leaves for real, after alice's blip; her offline comes after the grace period.
        await close(carol_stream)
        await until_presence(watcher, "carol", False)
        assert presence_of(watcher, "alice") == [True]
        assert presence_of(watcher, "carol") == [True, False]
        await close(again)
        await close(watcher)


async def test_a_churn_loop_costs_the_room_two_frames(make_server):
    async with make_server(presence_grace=GRACE, presence_window=WINDOW) as server:
        mallory, bob, dave = [await server.user(n) for n in ("mallory", "bob", "dave")]
        watcher = await bob.open_stream()
        dave_stream = await dave.open_stream()
        await until_presence(watcher, "dave", True)
        frames_before = len(watcher.received)

        for _ in range(CHURN):
            await close(await mallory.open_stream())

        await close(dave_stream)  # the barrier: dave leaves after the churn stopped
        await until_presence(watcher, "dave", False)
        assert presence_of(watcher, "mallory") == [True, False]
        # Nothing else reached the watcher: the churn cost the room one online, one offline.
        extra = [e.type for e in watcher.received[frames_before:]]
        assert extra == ["presence"] * 3, extra
        await close(watcher)


async def test_without_a_grace_period_leaving_is_announced_in_the_next_batch(make_server):
    async with make_server(presence_grace=0.0, presence_window=WINDOW) as server:
        alice, bob = await server.user("alice"), await server.user("bob")
        watcher = await bob.open_stream()
        stream = await alice.open_stream()
        await until_presence(watcher, "alice", True)
        await close(stream)
        await until_presence(watcher, "alice", False)
        assert presence_of(watcher, "alice") == [True, False]
        await close(watcher)


@pytest.mark.redis
async def test_across_processes_a_reconnection_elsewhere_announces_nothing(
    server_process, tmp_path: Path
):
    if redis_server_path() is None:
        pytest.fail("redis-server is not installed: apt-get install redis-server")
    with RedisServer(tmp_path / "redis") as redis:
        env = {"MY_CHAT_JWT_SECRET": "jwt-secret-shared-by-every-process-0123456789"}
        args = ("--redis", redis.url, "--presence-grace", str(GRACE))
        args += ("--presence-window", str(WINDOW), "--signup-per-minute", "0")
        a, b = await asyncio.gather(
            *(
                asyncio.to_thread(server_process, *args, data_dir=tmp_path / name, env=env)
                for name in ("a", "b")
            )
        )
        async with client_session() as session:
            bob = await ChatClient(a.url, session).signup("bob")
            users = {}
            for name in ("alice", "carol", "mallory"):
                users[name] = await ChatClient(a.url, session).signup(name)
            on_b = {}
            for name, client in users.items():
                on_b[name] = ChatClient(b.url, session)
                on_b[name].token = client.token
            watcher = await bob.open_stream()  # on A
            alice_stream = await on_b["alice"].open_stream()
            carol_stream = await on_b["carol"].open_stream()
            await until_presence(watcher, "alice", True)
            await until_presence(watcher, "carol", True)

            # alice's connection to B drops; her page comes back through A.
            await close(alice_stream)
            await asyncio.sleep(RECONNECT_DELAY)
            alice_again = await users["alice"].open_stream()
            # mallory churns, alternating between the two processes.
            for n in range(CHURN // 2):
                client = users["mallory"] if n % 2 else on_b["mallory"]
                await close(await client.open_stream())

            await close(carol_stream)  # the barrier
            await until_presence(watcher, "carol", False)
            await until_presence(watcher, "mallory", False)
            assert presence_of(watcher, "alice") == [True]
            assert presence_of(watcher, "mallory") == [True, False]
            # No stream the clients closed is still registered anywhere: on A only bob's
            # and alice's, on B none.
            service = {"Authorization": f"Bearer {SERVICE_KEY}"}
            for process, expected in ((a, 2), (b, 0)):
                async with session.get(f"{process.url}/api/stats", headers=service) as reply:
                    assert (await reply.json())["connections"] == expected, process.url
            await close(alice_again)
            await close(watcher)
