"""Phase 3, step 3: back-pressure. Run: python -m exercises check p3_backpressure"""

from __future__ import annotations

import asyncio

import pytest


@pytest.fixture
def backpressure(impl):
    return impl.module("p3_backpressure")


class Source:
    def __init__(self, count: int) -> None:
        self.count = count
        self.taken = 0

    def __aiter__(self):
        return self

    async def __anext__(self) -> int:
        await asyncio.sleep(0)
        if self.taken >= self.count:
            raise StopAsyncIteration
        self.taken += 1
        return self.taken


async def test_every_item_reaches_the_sink_once_in_order(backpressure):
    got = []

    async def sink(item):
        got.append(item)

    count = await asyncio.wait_for(backpressure.pump(Source(50), sink, maxsize=4), 10)
    assert got == list(range(1, 51))
    assert count == 50


async def test_an_empty_source_sinks_nothing(backpressure):
    async def sink(item):
        raise AssertionError("nothing to sink")

    assert await asyncio.wait_for(backpressure.pump(Source(0), sink, maxsize=2), 10) == 0


async def test_the_reader_stays_at_most_maxsize_plus_two_ahead(backpressure):
    source = Source(200)
    ahead = []

    async def slow_sink(item):
        ahead.append(source.taken - item)
        for _ in range(20):  # a slow consumer: many turns of the loop per item
            await asyncio.sleep(0)

    await asyncio.wait_for(backpressure.pump(source, slow_sink, maxsize=3), 20)
    assert max(ahead) <= 3 + 2, f"the reader ran {max(ahead)} items ahead of the sink"


async def test_an_error_in_the_sink_is_raised_and_stops_the_reader(backpressure):
    source = Source(10_000)
    before = asyncio.all_tasks()

    async def failing_sink(item):
        if item == 5:
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        await asyncio.wait_for(backpressure.pump(source, failing_sink, maxsize=2), 10)
    await asyncio.sleep(0.05)
    left = [t for t in asyncio.all_tasks() - before if not t.done()]
    assert left == [], "the reader task still runs"
    assert source.taken < 100, "the source was read on after the sink failed"
