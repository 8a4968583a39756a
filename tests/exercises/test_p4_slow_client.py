"""Phase 4, step 3: closing a slow client. Run: python -m exercises check p4_slow_client

The stalled client is a real TCP connection that never reads, with small kernel buffers.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.exercises.stream_pairs import stream_pairs

FRAME = b"data: " + b"x" * 16_000 + b"\n\n"
LIMIT = 64_000


@pytest.fixture
def slow(impl):
    return impl.module("p4_slow_client")


async def drain_into(reader, sink: bytearray) -> None:
    while chunk := await reader.read(65536):
        sink.extend(chunk)


async def test_a_stalled_client_is_closed_and_unregistered_once(impl, slow):
    registry = impl.module("p4_registry").Registry()
    calls = []

    def on_slow(connection):
        calls.append(connection.id)
        registry.unregister(connection)

    async with stream_pairs(1, small_buffers=True) as [(writer, _never_read)]:
        stalled = slow.BoundedConnection("s", "sam", writer, max_buffer=LIMIT, on_slow=on_slow)
        registry.register(stalled)
        answers = []
        for _ in range(1000):
            answers.append(stalled.send(FRAME))
            if not answers[-1]:
                break
            await asyncio.sleep(0)
        assert answers[-1] is False, "1000 frames to a client that never reads, never closed"
        assert stalled.too_slow is True
        assert stalled.closed and writer.transport.is_closing()
        assert calls == ["s"]
        assert registry.connections_of("sam") == []
        # Closed: refused quietly, and on_slow is not called again.
        assert stalled.send(FRAME) is False
        assert calls == ["s"]


async def test_an_open_connection_under_the_limit_accepts_frames(impl, slow):
    async with stream_pairs(1) as [(writer, reader)]:
        connection = slow.BoundedConnection("f", "fay", writer, max_buffer=LIMIT, on_slow=print)
        assert connection.send(b"data: hi\n\n") is True
        assert await asyncio.wait_for(reader.readexactly(10), 5) == b"data: hi\n\n"
        assert connection.too_slow is False


async def test_a_closed_connection_writes_nothing_and_does_not_raise(impl, slow):
    async with stream_pairs(1) as [(writer, _reader)]:
        connection = slow.BoundedConnection("c", "cy", writer, max_buffer=LIMIT, on_slow=print)
        connection.close()
        assert connection.send(b"data: late\n\n") is False
        assert connection.too_slow is False


async def test_a_fast_client_keeps_getting_every_frame(impl, slow):
    closed = []
    async with stream_pairs(2, small_buffers=True) as [(fast_w, fast_r), (stalled_w, _)]:
        fast = slow.BoundedConnection("f", "fay", fast_w, max_buffer=LIMIT, on_slow=closed.append)
        stalled = slow.BoundedConnection(
            "s", "sam", stalled_w, max_buffer=LIMIT, on_slow=closed.append
        )
        fast_w.transport.set_write_buffer_limits(high=0)  # drain() waits until all is sent
        got = bytearray()
        reading = asyncio.create_task(drain_into(fast_r, got))
        sent = 0
        for _ in range(300):
            assert fast.send(FRAME), "the fast client was closed"
            sent += 1
            stalled.send(FRAME)
            await fast_w.drain()
        assert closed == [stalled]
        for _ in range(500):
            if len(got) >= sent * len(FRAME):
                break
            await asyncio.sleep(0.01)
        reading.cancel()
        assert bytes(got) == FRAME * sent
