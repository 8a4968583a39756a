"""Phase 3, step 7: spotting a blocking call. Run: python -m exercises check p3_blocking

A ticker task counts how often the loop gets to run it while the function under test works.
"""

from __future__ import annotations

import asyncio
import hashlib
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from tests.exercises.servers import serving


@pytest.fixture
def blocking(impl):
    return impl.module("p3_blocking")


@asynccontextmanager
async def ticker():
    ticks = []

    async def tick():
        while True:
            await asyncio.sleep(0.005)
            ticks.append(1)

    task = asyncio.create_task(tick())
    await asyncio.sleep(0)
    try:
        yield ticks
    finally:
        task.cancel()


async def test_pause_lets_other_tasks_run(blocking):
    async with ticker() as ticks:
        await asyncio.wait_for(blocking.pause(0.2), 5)
        assert len(ticks) >= 1, "nothing else ran during pause(): the loop was blocked"


async def test_pause_takes_its_time(blocking):
    loop = asyncio.get_running_loop()
    start = loop.time()
    await blocking.pause(0.1)
    assert loop.time() - start >= 0.09


async def test_fetch_text_returns_the_body_while_the_loop_runs(blocking):
    async def hello(request):
        return web.Response(text="hello from the same loop")

    app = web.Application()
    app.router.add_get("/", hello)
    async with serving(app) as url:
        body = await asyncio.wait_for(blocking.fetch_text(url + "/"), 10)
    assert body == "hello from the same loop"


async def test_hash_password_gives_the_same_hash_while_the_loop_runs(blocking):
    salt = b"0123456789abcdef"
    async with ticker() as ticks:
        digest = await asyncio.wait_for(blocking.hash_password("secret", salt), 10)
        assert len(ticks) >= 1, "nothing else ran while hashing: the loop was blocked"
    assert digest == hashlib.scrypt(b"secret", salt=salt, n=2**14, r=8, p=1)
