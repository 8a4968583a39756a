"""Phase 4, step 4: replay then live. Run: python -m exercises check p4_replay

The history here is slow on purpose: its query waits on a gate while the test publishes
new messages, as a database query does while the chat goes on.
"""

from __future__ import annotations

import asyncio
import inspect

import pytest


@pytest.fixture
def replay(impl):
    return impl.module("p4_replay")


class SlowHistory:
    def __init__(self, replay, count: int, snapshot: str) -> None:
        self.rows = [replay.Message(n, f"m{n}") for n in range(1, count + 1)]
        self.snapshot = snapshot  # "before": the query sees rows as they were when it began
        self.gate = asyncio.Event()
        self.queried = asyncio.Event()

    async def after(self, message_id: int):
        before = list(self.rows)
        self.queried.set()
        await self.gate.wait()
        rows = before if self.snapshot == "before" else self.rows
        return [row for row in rows if row.id > message_id]


def open_stream(replay, after_id, history, hub):
    stream = replay.replay_then_live(after_id, history, hub)
    if not inspect.isasyncgen(stream):
        if inspect.iscoroutine(stream):
            stream.close()
        pytest.fail("replay_then_live must be an async generator: an async def with a yield")
    return stream


async def publish(replay, hub, history, number: int) -> None:
    message = replay.Message(number, f"m{number}")
    history.rows.append(message)
    hub.publish(message)


async def take(stream, count: int) -> list[int]:
    ids = []
    async for message in stream:
        ids.append(message.id)
        if len(ids) == count:
            break
    return ids


async def run_race(impl, replay, snapshot: str) -> list[int]:
    hub = impl.module("p3_fanout").Hub()
    history = SlowHistory(replay, 5, snapshot)
    stream = open_stream(replay, 2, history, hub)
    taking = asyncio.create_task(take(stream, 6))
    await asyncio.wait_for(history.queried.wait(), 5)
    for number in (6, 7):  # published while the history query runs
        await publish(replay, hub, history, number)
    history.gate.set()
    await asyncio.sleep(0.05)
    await publish(replay, hub, history, 8)  # published after it
    ids = await asyncio.wait_for(taking, 5)
    await stream.aclose()
    return ids


async def test_messages_published_during_the_replay_are_not_lost(impl, replay):
    ids = await run_race(impl, replay, snapshot="before")
    assert ids == [3, 4, 5, 6, 7, 8]


async def test_messages_in_both_history_and_live_come_once(impl, replay):
    ids = await run_race(impl, replay, snapshot="after")
    assert ids == [3, 4, 5, 6, 7, 8]


async def test_history_comes_first_oldest_first(impl, replay):
    hub = impl.module("p3_fanout").Hub()
    history = SlowHistory(replay, 4, "before")
    history.gate.set()
    stream = open_stream(replay, 0, history, hub)
    assert await asyncio.wait_for(take(stream, 4), 5) == [1, 2, 3, 4]
    await stream.aclose()


async def test_it_subscribes_before_reading_the_history(impl, replay):
    hub = impl.module("p3_fanout").Hub()
    history = SlowHistory(replay, 1, "before")
    stream = open_stream(replay, 0, history, hub)
    first = asyncio.create_task(anext(stream))
    await asyncio.wait_for(history.queried.wait(), 5)
    assert len(hub) == 1, "no subscription while the history is read"
    history.gate.set()
    assert (await asyncio.wait_for(first, 5)).id == 1
    await stream.aclose()


async def test_closing_the_stream_unsubscribes(impl, replay):
    hub = impl.module("p3_fanout").Hub()
    history = SlowHistory(replay, 2, "before")
    history.gate.set()
    stream = open_stream(replay, 0, history, hub)
    await asyncio.wait_for(take(stream, 2), 5)
    assert len(hub) == 1
    await stream.aclose()
    assert len(hub) == 0
