"""Phase 3, step 1: tasks and gather. Run: python -m exercises check p3_gather"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp import web

from tests.exercises.servers import serving


class TogetherServer:
    """Answers /item/N only once ``expected`` requests are waiting, larger N sooner."""

    def __init__(self, expected: int) -> None:
        self.arrived = 0
        self.everyone = asyncio.Event()
        self.expected = expected
        self.app = web.Application()
        self.app.router.add_get("/item/{n}", self.item)
        self.app.router.add_get("/fail", self.fail)
        self.app.router.add_get("/never", self.never)

    async def item(self, request: web.Request) -> web.Response:
        self.arrived += 1
        if self.arrived >= self.expected:
            self.everyone.set()
        try:
            await asyncio.wait_for(self.everyone.wait(), 3)
        except TimeoutError:
            return web.Response(status=504, text="the requests did not come together")
        number = int(request.match_info["n"])
        await asyncio.sleep(0.01 * (10 - number))  # so the answers come back out of order
        return web.Response(text=f"item {number}")

    async def fail(self, request: web.Request) -> web.Response:
        await asyncio.sleep(0.05)
        return web.Response(status=500, text="broken")

    async def never(self, request: web.Request) -> web.Response:
        await asyncio.sleep(30)
        return web.Response(text="too late")


@pytest.fixture
def gather(impl):
    return impl.module("p3_gather")


async def test_fetch_text_returns_the_body(gather):
    server = TogetherServer(expected=1)
    async with serving(server.app) as url, aiohttp.ClientSession() as session:
        assert await asyncio.wait_for(gather.fetch_text(session, f"{url}/item/3"), 5) == "item 3"


async def test_fetch_text_raises_for_an_error_status(gather):
    server = TogetherServer(expected=1)
    async with serving(server.app) as url, aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientResponseError):
            await asyncio.wait_for(gather.fetch_text(session, f"{url}/fail"), 5)


async def test_the_requests_run_at_the_same_time(gather):
    server = TogetherServer(expected=5)
    async with serving(server.app) as url, aiohttp.ClientSession() as session:
        bodies = await asyncio.wait_for(
            gather.fetch_all(session, [f"{url}/item/{n}" for n in range(5)]), 10
        )
    assert "the requests did not come together" not in bodies
    assert bodies == [f"item {n}" for n in range(5)]


async def test_the_bodies_come_back_in_the_order_of_the_urls(gather):
    server = TogetherServer(expected=4)
    order = [3, 0, 9, 5]
    async with serving(server.app) as url, aiohttp.ClientSession() as session:
        bodies = await asyncio.wait_for(
            gather.fetch_all(session, [f"{url}/item/{n}" for n in order]), 10
        )
    assert bodies == [f"item {n}" for n in order]


async def test_an_error_raises_and_leaves_no_task_running(gather):
    server = TogetherServer(expected=1)
    before = asyncio.all_tasks()
    async with serving(server.app) as url, aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientResponseError):
            await asyncio.wait_for(
                gather.fetch_all(session, [f"{url}/never", f"{url}/fail", f"{url}/never"]), 10
            )
        left = [
            task
            for task in asyncio.all_tasks() - before
            if not task.done() and "fetch" in repr(task.get_coro())
        ]
        assert left == [], "these tasks still run after fetch_all raised"
