"""A stream's status line and headers leave with its first frames: one socket write.

The server runs in this event loop, so every write to a socket (the client's requests and
the server's answers) goes through the loop's transport class, which the tests record.
"""

from __future__ import annotations

import asyncio.selector_events

import pytest

from my_chat.client_manager import GATHER_BYTES

Transport = asyncio.selector_events._SelectorSocketTransport


@pytest.fixture
def socket_writes(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every write to a socket from now on, oldest first (requests and answers alike)."""
    writes: list[bytes] = []
    original = Transport.write

    def recording(self, data) -> None:
        writes.append(bytes(data))
        original(self, data)

    monkeypatch.setattr(Transport, "write", recording)
    return writes


def stream_writes(writes: list[bytes]) -> list[bytes]:
    """The server's writes on the stream: from the one that starts its answer on."""
    starts = [i for i, data in enumerate(writes) if b"text/event-stream" in data]
    assert len(starts) == 1, writes
    return [data for data in writes[starts[0] :] if not data.startswith(b"GET ")]


async def test_the_head_leaves_with_the_opening_frames_and_the_history(server, socket_writes):
    alice = await server.user("alice")
    await alice.send("before the stream")
    socket_writes.clear()

    stream = await alice.open_stream()
    try:
        assert (await stream.next_json("message"))["text"] == "before the stream"
        first = stream_writes(socket_writes)[0]
        assert first.startswith(b"HTTP/1.1 200 OK\r\n"), first
        head, _, body = first.partition(b"\r\n\r\n")
        assert b"Content-Type: text/event-stream" in head
        # The opening frames, who is online and the history: all in the write with the head.
        for part in (b"event: connection_id", b"event: heartbeat", b"event: online"):
            assert part in body, body
        assert b"before the stream" in body

        # Live frames are written as they come, on their own.
        await alice.send("live")
        assert (await stream.next_json("message"))["text"] == "live"
        assert b"live" in stream_writes(socket_writes)[-1]
    finally:
        stream.close()


async def test_a_long_resume_sends_the_head_before_its_first_page(server, socket_writes):
    """Past GATHER_BYTES the handler's frames are written as they come (write_in_turn), not
    gathered until the replay ends: the head must still come first, or the client could not
    read the stream at all."""
    alice = await server.user("alice")
    text = "x" * (server.settings.max_text - 10)
    count = GATHER_BYTES // len(text) + 5
    ids = [(await alice.send(f"{n} {text}"))["id"] for n in range(count)]
    socket_writes.clear()

    stream = await alice.open_stream(last_event_id=0)
    try:
        received = [message["id"] for message in await stream.messages(count)]
        assert received == ids
        writes = stream_writes(socket_writes)
        assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
        assert sum(data.count(b"HTTP/1.1") for data in writes) == 1
        assert sum(data.count(b"event: message") for data in writes) == count
    finally:
        stream.close()
    # The server is whole: a new stream gets the same history, all in its first write.
    socket_writes.clear()
    again = await alice.open_stream(last_event_id=ids[-2])
    try:
        assert (await again.next_json("message"))["id"] == ids[-1]
    finally:
        again.close()
