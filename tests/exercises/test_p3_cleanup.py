"""Phase 3, step 4: clean-up in finally. Run: python -m exercises check p3_cleanup

Each test connects a real TCP client to a server whose handler runs serve_member.
"""

from __future__ import annotations

import asyncio
import socket
from contextlib import asynccontextmanager

import pytest


@pytest.fixture
def cleanup(impl):
    return impl.module("p3_cleanup")


@asynccontextmanager
async def member(cleanup, room, name="ann"):
    handlers: asyncio.Queue[asyncio.Task] = asyncio.Queue()

    async def on_connect(reader, writer):
        task = asyncio.current_task()
        await handlers.put(task)
        await cleanup.serve_member(room, name, writer)

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        handler = await asyncio.wait_for(handlers.get(), 5)
        for _ in range(100):
            if name in room.members:
                break
            await asyncio.sleep(0.01)
        yield handler, reader, writer
    finally:
        writer.close()
        server.close()


async def test_lines_said_in_the_room_arrive_in_order(cleanup):
    room = cleanup.Room()
    async with member(cleanup, room) as (_, reader, _writer):
        assert "ann" in room.members, "serve_member did not join the room"
        for text in ("one", "two", "three"):
            room.say(text)
        lines = [await asyncio.wait_for(reader.readline(), 5) for _ in range(3)]
    assert lines == [b"one\n", b"two\n", b"three\n"]


async def test_cancelled_it_leaves_closes_and_the_cancel_goes_on(cleanup):
    room = cleanup.Room()
    async with member(cleanup, room) as (handler, reader, _writer):
        served = asyncio.ensure_future(cleanup.serve_member(room, "bob", _FakeWriter()))
        await asyncio.sleep(0.05)
        assert "bob" in room.members
        served.cancel()
        with pytest.raises(asyncio.CancelledError):
            await served
        assert "bob" not in room.members
        assert served.cancelled(), "the CancelledError was swallowed"
        # And over the real socket: the client sees the connection end.
        handler.cancel()
        assert await asyncio.wait_for(reader.read(), 5) == b""
        assert "ann" not in room.members


async def test_a_gone_client_leaves_the_room_and_returns_normally(cleanup):
    room = cleanup.Room()
    async with member(cleanup, room) as (handler, _reader, writer):
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        writer.transport.abort()  # a reset, as when a browser tab is killed
        for number in range(200):
            if "ann" not in room.members:
                break
            room.say(f"line {number}" * 100)
            await asyncio.sleep(0.01)
        assert "ann" not in room.members, "serve_member kept writing to a gone client"
        await asyncio.wait_for(asyncio.gather(handler, return_exceptions=True), 5)
        assert not handler.cancelled() and handler.exception() is None


async def test_any_other_error_leaves_closes_and_is_raised(cleanup):
    room = cleanup.Room()
    writer = _FakeWriter(fail_with=ValueError("a bug"))
    served = asyncio.ensure_future(cleanup.serve_member(room, "cy", writer))
    await asyncio.sleep(0.02)
    room.say("boom")
    with pytest.raises(ValueError, match="a bug"):
        await asyncio.wait_for(served, 5)
    assert "cy" not in room.members
    assert writer.closed


class _FakeWriter:
    """Only for the two tests that need a writer that fails on purpose, or no socket."""

    def __init__(self, fail_with: Exception | None = None) -> None:
        self.fail_with = fail_with
        self.closed = False

    def write(self, data: bytes) -> None:
        if self.fail_with:
            raise self.fail_with

    async def drain(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True
