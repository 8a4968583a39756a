"""Phase 3, step 2: select with asyncio.wait. Run: python -m exercises check p3_select"""

from __future__ import annotations

import asyncio

import pytest


@pytest.fixture
def select(impl):
    return impl.module("p3_select")


def running_tasks(before: set) -> list:
    return [t for t in asyncio.all_tasks() - before if not t.done()]


async def call(select, inbox, stop, timeout):
    return await asyncio.wait_for(select.next_event(inbox, stop, timeout), 10)


async def test_a_waiting_message_is_returned(select):
    inbox, stop = asyncio.Queue(), asyncio.Event()
    inbox.put_nowait("hello")
    assert await call(select, inbox, stop, 5) == ("message", "hello")


async def test_a_message_that_arrives_later_is_returned(select):
    inbox, stop = asyncio.Queue(), asyncio.Event()
    asyncio.get_running_loop().call_later(0.05, inbox.put_nowait, "late")
    assert await call(select, inbox, stop, 5) == ("message", "late")


async def test_stop_is_returned_when_set(select):
    inbox, stop = asyncio.Queue(), asyncio.Event()
    asyncio.get_running_loop().call_later(0.05, stop.set)
    assert await call(select, inbox, stop, 5) == ("stop", None)


async def test_stop_already_set_with_an_empty_inbox(select):
    inbox, stop = asyncio.Queue(), asyncio.Event()
    stop.set()
    assert await call(select, inbox, stop, 5) == ("stop", None)


async def test_a_waiting_message_wins_over_stop_and_is_not_lost(select):
    inbox, stop = asyncio.Queue(), asyncio.Event()
    inbox.put_nowait("first")
    inbox.put_nowait("second")
    stop.set()
    assert await call(select, inbox, stop, 5) == ("message", "first")
    assert await call(select, inbox, stop, 5) == ("message", "second")
    assert await call(select, inbox, stop, 5) == ("stop", None)


async def test_nothing_within_the_timeout(select):
    inbox, stop = asyncio.Queue(), asyncio.Event()
    assert await call(select, inbox, stop, 0.05) == ("timeout", None)
    inbox.put_nowait("after")  # no cancelled get() took it
    assert await call(select, inbox, stop, 0.05) == ("message", "after")


@pytest.mark.parametrize("outcome", ["message", "stop", "timeout"])
async def test_no_task_is_left_running(select, outcome):
    inbox, stop = asyncio.Queue(), asyncio.Event()
    loop = asyncio.get_running_loop()
    if outcome == "message":
        loop.call_later(0.02, inbox.put_nowait, 1)
    elif outcome == "stop":
        loop.call_later(0.02, stop.set)
    before = asyncio.all_tasks()
    result = await call(select, inbox, stop, 0.1)
    assert result[0] == outcome
    assert running_tasks(before) == [], "tasks started by next_event still run"
