"""Phase 4, step 2: broadcast and send-to-users. Run: python -m exercises check p4_broadcast

Every connection is a real TCP connection on loopback; the tests read what each client got.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

import pytest

from tests.exercises.stream_pairs import stream_pairs


@pytest.fixture
def broadcast(impl):
    return impl.module("p4_broadcast")


@asynccontextmanager
async def connected(impl, broadcast, users):
    registry = impl.module("p4_registry").Registry()
    async with stream_pairs(len(users)) as pairs:
        clients = {}
        for number, (user, (writer, reader)) in enumerate(zip(users, pairs, strict=True)):
            connection = broadcast.SocketConnection(f"c{number}", user, writer)
            registry.register(connection)
            clients[connection.id] = (connection, reader)
        yield registry, clients


async def received(reader, seconds=0.2) -> bytes:
    data = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), seconds):
            data += chunk
    except TimeoutError:
        pass
    return data


async def test_broadcast_reaches_every_connection(impl, broadcast):
    async with connected(impl, broadcast, ["ann", "ann", "bob"]) as (registry, clients):
        assert broadcast.broadcast(registry, b"data: hi\n\n") == 3
        for _, reader in clients.values():
            assert await received(reader) == b"data: hi\n\n"


async def test_send_to_users_reaches_every_device_of_the_named_users(impl, broadcast):
    async with connected(impl, broadcast, ["ann", "ann", "bob", "cy"]) as (registry, clients):
        assert broadcast.send_to_users(registry, ["ann", "cy"], b"x") == 3
        got = {cid: await received(reader) for cid, (_, reader) in clients.items()}
    assert got == {"c0": b"x", "c1": b"x", "c2": b"", "c3": b"x"}


async def test_a_user_without_connection_is_skipped(impl, broadcast):
    async with connected(impl, broadcast, ["ann"]) as (registry, clients):
        assert broadcast.send_to_users(registry, ["ghost", "ann"], b"y") == 1
        assert await received(clients["c0"][1]) == b"y"


async def test_a_user_named_twice_gets_the_frame_once(impl, broadcast):
    async with connected(impl, broadcast, ["ann", "bob"]) as (registry, clients):
        assert broadcast.send_to_users(registry, ["ann", "ann", "bob"], b"z") == 2
        assert await received(clients["c0"][1]) == b"z"


async def test_a_closed_connection_is_skipped_and_not_counted(impl, broadcast):
    async with connected(impl, broadcast, ["ann", "bob", "cy"]) as (registry, clients):
        clients["c1"][0].close()
        assert broadcast.broadcast(registry, b"b") == 2
        assert broadcast.send_to_users(registry, ["bob", "cy"], b"s") == 1
        assert await received(clients["c0"][1]) == b"b"
        assert await received(clients["c2"][1]) == b"bs"
