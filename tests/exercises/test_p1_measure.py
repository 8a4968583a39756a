"""Phase 1, step 3: measuring the three techniques. Run: python -m exercises check p1_measure

The server here is made to be predictable: on /poll it publishes the next message after
every third request, and on /long-poll shortly after a request starts to wait.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from aiohttp import web

from tests.exercises.servers import serving

COUNT = 5


class CountingServer:
    def __init__(self) -> None:
        self.messages: list[dict] = []
        self.changed = asyncio.Condition()
        self.requests: list[float] = []  # when each request arrived
        self.app = web.Application()
        self.app.router.add_get("/poll", self.poll)
        self.app.router.add_get("/long-poll", self.long_poll)

    async def publish(self) -> None:
        async with self.changed:
            number = len(self.messages) + 1
            self.messages.append({"id": number, "text": f"m{number}", "sent": time.time()})
            self.changed.notify_all()

    async def poll(self, request: web.Request) -> web.Response:
        self.requests.append(time.monotonic())
        after = int(request.query.get("after", "0"))
        if len(self.requests) % 3 == 0:
            await self.publish()
        return web.json_response(self.messages[after:])

    async def long_poll(self, request: web.Request) -> web.Response:
        self.requests.append(time.monotonic())
        after = int(request.query.get("after", "0"))
        if not self.messages[after:]:
            asyncio.get_running_loop().call_later(0.05, asyncio.ensure_future, self.publish())
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(lambda: self.messages[after:]), 10)
        return web.json_response(self.messages[after:])


@pytest.fixture
def measure(impl):
    return impl.module("p1_measure")


@pytest.fixture
async def counting_server():
    counting = CountingServer()
    async with serving(counting.app) as url:
        counting.url = url
        yield counting


async def short(measure, counting_server, interval=0.01):
    async with aiohttp.ClientSession() as session:
        return await asyncio.wait_for(
            measure.watch_short_poll(session, counting_server.url, count=COUNT, interval=interval),
            20,
        )


async def long(measure, counting_server):
    async with aiohttp.ClientSession() as session:
        return await asyncio.wait_for(
            measure.watch_long_poll(session, counting_server.url, count=COUNT), 20
        )


async def test_short_polling_receives_every_message_once_in_order(measure, counting_server):
    result = await short(measure, counting_server)
    assert result.received == list(range(1, COUNT + 1))


async def test_short_polling_counts_every_request_it_makes(measure, counting_server):
    result = await short(measure, counting_server)
    assert result.requests == len(counting_server.requests)
    assert result.requests >= 3 * COUNT, "the counting_server publishes once every third poll"


async def test_short_polling_sleeps_interval_after_an_empty_answer(measure, counting_server):
    await short(measure, counting_server, interval=0.1)
    gaps = [
        b - a for a, b in zip(counting_server.requests, counting_server.requests[1:], strict=False)
    ]
    # After each publishing poll the next one may come at once; the others wait.
    waited = [gap for gap in gaps if gap >= 0.08]
    assert len(waited) >= len(gaps) // 2, f"requests came {gaps} seconds apart"


async def test_long_polling_receives_every_message_once_in_order(measure, counting_server):
    result = await long(measure, counting_server)
    assert result.received == list(range(1, COUNT + 1))


async def test_long_polling_needs_one_request_per_message_here(measure, counting_server):
    result = await long(measure, counting_server)
    assert result.requests == len(counting_server.requests) == COUNT


@pytest.mark.parametrize("technique", ["short", "long"])
async def test_each_message_has_its_delay_from_sent_to_arrival(measure, counting_server, technique):
    result = await (
        short(measure, counting_server) if technique == "short" else long(measure, counting_server)
    )
    assert len(result.delays) == len(result.received) == COUNT
    assert all(0 <= delay < 10 for delay in result.delays), result.delays
