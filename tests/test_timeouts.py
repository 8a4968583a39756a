"""Slow clients are closed: a stalled or trickled head, an unfinished body, idle keep-alive.

Raw sockets, because a real HTTP client always sends whole requests. The server runs with
deadlines of half a second; every test then checks that a normal request is still served, and
one checks that a long-lived SSE stream is not cut by any of the deadlines.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from my_chat.__main__ import parse_args

# Keep-alive longer than the head deadline, as by default: aiohttp starts its idle timer when
# a connection opens, and a head that is still missing then counts as idle.
DEADLINES = dict(request_head_timeout=0.5, request_body_timeout=0.5, keepalive_timeout=1.0)
GIVE_UP = 10.0  # seconds: without the deadlines the server would wait about an hour


@pytest.fixture
async def slow_server(make_server):
    async with make_server(**DEADLINES) as server:
        yield server


async def connect(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = url.removeprefix("http://").split(":")
    return await asyncio.open_connection(host, int(port))


async def until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection."""
    async with asyncio.timeout(GIVE_UP):
        return await reader.read()


def json_error(answer: bytes) -> tuple[int, dict]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)


async def assert_still_serving(server) -> None:
    async with server.session.get(f"{server.url}/healthz") as response:
        assert response.status == 200


async def test_a_partial_head_gets_408_and_is_closed(slow_server):
    reader, writer = await connect(slow_server.url)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # no blank line: unfinished
    status, body = json_error(await until_closed(reader))
    assert (status, body["error"]) == (408, "head_timeout")
    writer.close()
    await assert_still_serving(slow_server)


async def test_trickled_headers_are_cut_off(slow_server):
    reader, writer = await connect(slow_server.url)
    writer.write(b"GET /healthz HTTP/1.1\r\n")
    # One header line every 0.1 s would take 20 s in all; each line arrives well within the
    # deadline, but the head as a whole does not.
    closed = asyncio.ensure_future(until_closed(reader))
    for n in range(200):
        if closed.done():
            break
        try:
            writer.write(b"X-Slow-%d: 1\r\n" % n)
            await writer.drain()
        except ConnectionError:
            break
        await asyncio.sleep(0.1)
    status, body = json_error(await closed)
    assert (status, body["error"]) == (408, "head_timeout")
    writer.close()
    await assert_still_serving(slow_server)


async def test_an_unfinished_body_gets_408_and_is_closed(slow_server):
    reader, writer = await connect(slow_server.url)
    writer.write(
        b"POST /api/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100\r\n\r\n"
        b'{"username":'
    )
    status, body = json_error(await until_closed(reader))
    assert (status, body["error"]) == (408, "body_timeout")
    writer.close()
    await assert_still_serving(slow_server)


async def test_an_idle_keep_alive_connection_is_closed(slow_server):
    reader, writer = await connect(slow_server.url)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    answer = await until_closed(reader)  # the answer, then nothing: the server closes
    assert answer.startswith(b"HTTP/1.1 200") and b'"ok": true' in answer
    writer.close()
    await assert_still_serving(slow_server)


async def test_a_connection_that_sends_nothing_is_closed_without_an_answer(slow_server):
    reader, writer = await connect(slow_server.url)
    assert await until_closed(reader) == b""
    writer.close()
    await assert_still_serving(slow_server)


async def test_a_stream_outlives_every_deadline(slow_server):
    alice = await slow_server.user("alice")
    stream = await alice.open_stream()
    await asyncio.sleep(2.0)  # four times each deadline
    assert not stream.ended.is_set()
    sent = await alice.send("still streaming")
    assert (await stream.next_json("message"))["id"] == sent["id"]
    stream.close()


async def test_a_request_sent_behind_a_stream_is_never_answered(slow_server):
    """A stream's connection takes no other request: aiohttp's parser for one is let go, and
    what the client sends anyway closes the connection once the stream ends."""
    alice = await slow_server.user("alice")
    reader, writer = await connect(slow_server.url)
    head = f"GET /sse HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {alice.token}\r\n"
    writer.write(head.encode() + b"\r\n")
    async with asyncio.timeout(GIVE_UP):
        opening = await reader.readuntil(b"event: connection_id")
    assert opening.startswith(b"HTTP/1.1 200")
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")  # behind the stream
    await asyncio.sleep(0.2)
    status, _ = await alice.request("POST", "/api/logout")  # ends the stream
    assert status == 204
    rest = await until_closed(reader)
    assert b"session_revoked" in rest and b"HTTP/1.1" not in rest
    writer.close()
    await assert_still_serving(slow_server)


async def test_after_a_stream_ends_its_connection_serves_the_next_request(slow_server):
    """A stream's connection lets aiohttp's parser go while the stream runs; once the stream
    has ended (here, signed out), the same connection takes a request again."""
    alice = await slow_server.user("alice")
    reader, writer = await connect(slow_server.url)
    head = f"GET /sse HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {alice.token}\r\n"
    writer.write(head.encode() + b"\r\n")
    async with asyncio.timeout(GIVE_UP):
        await reader.readuntil(b"event: connection_id")
        status, _ = await alice.request("POST", "/api/logout")
        assert status == 204
        await reader.readuntil(b"\r\n0\r\n\r\n")  # the stream's last chunk: it has ended
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        answer = await reader.readuntil(b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200")
    writer.close()


def test_the_deadlines_are_settings_and_flags():
    defaults = parse_args([])
    assert (
        defaults.request_head_timeout,
        defaults.request_body_timeout,
        defaults.keepalive_timeout,
    ) == (10.0, 30.0, 75.0)
    settings = parse_args(
        ["--head-timeout", "2", "--body-timeout", "3", "--keepalive-timeout", "4"]
    )
    assert (
        settings.request_head_timeout,
        settings.request_body_timeout,
        settings.keepalive_timeout,
    ) == (2.0, 3.0, 4.0)
