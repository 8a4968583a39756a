"""Phase 2, step 3: the reconnecting client. Run: python -m exercises check p2_reconnect

The server here sends events 1 to 6, two per connection, then answers 204. It resumes
after the Last-Event-ID it is sent, and records every header it gets.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp import web

from tests.exercises.servers import serving

LONG = 60.0  # a reconnect_delay the tests would time out on


class NumberedStream:
    def __init__(self, retry: int | None = 10, total: int = 6) -> None:
        self.retry = retry
        self.total = total
        self.seen: list[str | None] = []  # the Last-Event-ID of each request
        self.accept: list[str | None] = []
        self.app = web.Application()
        self.app.router.add_get("/sse", self.stream)
        self.app.router.add_get("/broken", self.broken)
        self.app.router.add_get("/html", self.html)
        self.app.router.add_get("/abrupt", self.abrupt)

    async def stream(self, request: web.Request) -> web.StreamResponse:
        last = request.headers.get("Last-Event-ID")
        self.seen.append(last)
        self.accept.append(request.headers.get("Accept"))
        start = int(last or 0)
        if start >= self.total:
            return web.Response(status=204)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        if self.retry is not None and len(self.seen) == 1:
            await response.write(f"retry: {self.retry}\n\n".encode())
        for number in range(start + 1, min(start + 2, self.total) + 1):
            await response.write(f"id: {number}\ndata: event {number}\n\n".encode())
        return response

    async def abrupt(self, request: web.Request) -> web.StreamResponse:
        """Like /sse, but the connection breaks (a reset) in the middle of an event."""
        last = request.headers.get("Last-Event-ID")
        self.seen.append(last)
        start = int(last or 0)
        if start >= self.total:
            return web.Response(status=204)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(f"retry: 10\nid: {start + 1}\ndata: event {start + 1}\n\n".encode())
        await response.write(b"id: 99\ndata: never fini")
        await asyncio.sleep(0.05)
        assert request.transport is not None
        request.transport.abort()
        return response

    async def broken(self, request: web.Request) -> web.Response:
        self.seen.append(request.headers.get("Last-Event-ID"))
        return web.Response(status=500, text="oops")

    async def html(self, request: web.Request) -> web.Response:
        self.seen.append(request.headers.get("Last-Event-ID"))
        return web.Response(text="<p>hi</p>", content_type="text/html")


@pytest.fixture
def reconnect(impl):
    return impl.module("p2_reconnect")


async def follow(reconnect, server, path="/sse", on_event=None, **kwargs):
    received = []

    def collect(event):
        received.append(event)
        return on_event(event) if on_event else None

    kwargs.setdefault("reconnect_delay", LONG)
    async with serving(server.app) as url, aiohttp.ClientSession() as session:
        last = await asyncio.wait_for(reconnect.follow(session, url + path, collect, **kwargs), 10)
    return last, received


async def test_every_event_arrives_once_across_reconnections(reconnect):
    _, received = await follow(reconnect, NumberedStream())
    assert [e.data for e in received] == [f"event {n}" for n in range(1, 7)]


async def test_reconnections_send_the_last_event_id(reconnect):
    server = NumberedStream()
    await follow(reconnect, server)
    assert server.seen == [None, "2", "4", "6"]
    assert server.accept == ["text/event-stream"] * 4


async def test_a_starting_last_event_id_is_sent_on_the_first_request(reconnect):
    server = NumberedStream()
    _, received = await follow(reconnect, server, last_event_id="4")
    assert server.seen[0] == "4"
    assert [e.id for e in received] == ["5", "6"]


async def test_204_stops_and_returns_the_last_event_id(reconnect):
    last, _ = await follow(reconnect, NumberedStream())
    assert last == "6"


async def test_the_servers_retry_replaces_the_reconnect_delay(reconnect):
    # The server sends retry: 10 on the first connection only; waiting LONG would time out.
    _, received = await follow(reconnect, NumberedStream(retry=10), reconnect_delay=LONG)
    assert len(received) == 6


async def test_without_retry_the_reconnect_delay_is_used(reconnect):
    _, received = await follow(reconnect, NumberedStream(retry=None), reconnect_delay=0.05)
    assert len(received) == 6


async def test_a_broken_connection_is_retried_without_losing_events(reconnect):
    server = NumberedStream()
    _, received = await follow(reconnect, server, path="/abrupt")
    assert [e.id for e in received] == ["1", "2", "3", "4", "5", "6"]
    assert server.seen == [None, "1", "2", "3", "4", "5", "6"]


async def test_on_event_returning_true_stops(reconnect):
    server = NumberedStream()
    last, received = await follow(reconnect, server, on_event=lambda e: e.id == "3")
    assert last == "3" and [e.id for e in received] == ["1", "2", "3"]
    assert len(server.seen) == 2


@pytest.mark.parametrize("path", ["/broken", "/html"], ids=["status-500", "not-event-stream"])
async def test_an_answer_that_is_not_an_event_stream_raises_stream_refused(reconnect, path):
    server = NumberedStream()
    with pytest.raises(reconnect.StreamRefused):
        await follow(reconnect, server, path=path, reconnect_delay=0.01)
    assert len(server.seen) == 1, "StreamRefused means: do not reconnect"
