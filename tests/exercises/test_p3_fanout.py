"""Phase 3, step 6: fan-out. Run: python -m exercises check p3_fanout"""

from __future__ import annotations

import asyncio
import inspect

import pytest


@pytest.fixture
def fanout(impl):
    return impl.module("p3_fanout")


async def test_subscribers_get_every_item_in_order(fanout):
    hub = fanout.Hub()
    first, second = hub.subscribe(), hub.subscribe()
    for n in range(5):
        assert hub.publish(n) == 2
    for subscriber in (first, second):
        assert [subscriber.queue.get_nowait() for _ in range(5)] == list(range(5))


async def test_subscribe_gives_a_bounded_queue(fanout):
    subscriber = fanout.Hub().subscribe(maxsize=7)
    assert isinstance(subscriber.queue, asyncio.Queue)
    assert subscriber.queue.maxsize == 7
    assert subscriber.dropped == 0


def test_publish_is_a_plain_function_that_never_waits(fanout):
    assert not inspect.iscoroutinefunction(fanout.Hub.publish)
    hub = fanout.Hub()
    hub.subscribe(maxsize=1)
    assert hub.publish("a") == 1  # no event loop runs here: nothing could be awaited


async def test_a_slow_consumer_does_not_hold_up_the_others(fanout):
    hub = fanout.Hub()
    stuck = hub.subscribe(maxsize=10)  # never reads
    received: dict[int, list[int]] = {0: [], 1: []}

    async def consume(number, subscriber):
        while len(received[number]) < 1000:
            received[number].append(await subscriber.queue.get())

    fast = [hub.subscribe(maxsize=10) for _ in range(2)]
    consumers = [asyncio.create_task(consume(n, s)) for n, s in enumerate(fast)]
    for item in range(1000):
        hub.publish(item)
        await asyncio.sleep(0)  # let the fast consumers run
    await asyncio.wait_for(asyncio.gather(*consumers), 5)
    assert received[0] == received[1] == list(range(1000))
    assert stuck.queue.qsize() == 10
    assert stuck.dropped == 990


async def test_a_full_queue_misses_the_item_and_counts_it(fanout):
    hub = fanout.Hub()
    small, big = hub.subscribe(maxsize=1), hub.subscribe(maxsize=5)
    assert hub.publish("a") == 2
    assert hub.publish("b") == 1
    assert (small.dropped, big.dropped) == (1, 0)
    assert small.queue.get_nowait() == "a"


async def test_unsubscribe_stops_delivery_and_is_harmless_twice(fanout):
    hub = fanout.Hub()
    leaving, staying = hub.subscribe(), hub.subscribe()
    assert len(hub) == 2
    hub.unsubscribe(leaving)
    hub.unsubscribe(leaving)
    assert len(hub) == 1
    assert hub.publish("x") == 1
    assert leaving.queue.empty() and staying.queue.get_nowait() == "x"
