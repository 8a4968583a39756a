"""Phase 1, step 2: long polling. Run: python -m exercises check p1_long_poll"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.exercises.servers import serving


@pytest.fixture
async def base_url(impl):
    async with serving(impl.module("p1_long_poll").create_app()) as url:
        yield url


async def say(session: aiohttp.ClientSession, url: str, text: str) -> None:
    async with session.post(f"{url}/messages", json={"text": text}) as response:
        assert response.status == 201


async def get_json(session: aiohttp.ClientSession, url: str) -> list:
    async with session.get(url) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def test_messages_already_there_come_back_at_once(base_url):
    async with aiohttp.ClientSession() as session:
        await say(session, base_url, "one")
        await say(session, base_url, "two")
        got = await asyncio.wait_for(
            get_json(session, f"{base_url}/long-poll?after=1&timeout=30"), 5
        )
    assert [m["text"] for m in got] == ["two"]


async def test_the_request_waits_for_the_next_message(base_url):
    async with aiohttp.ClientSession() as session:
        waiting = asyncio.create_task(get_json(session, f"{base_url}/long-poll?after=0&timeout=30"))
        await asyncio.sleep(0.3)
        assert not waiting.done(), "the long poll answered before there was anything new"
        await say(session, base_url, "news")
        got = await asyncio.wait_for(waiting, 5)
    assert [m["text"] for m in got] == ["news"]


async def test_every_waiting_client_gets_the_message(base_url):
    async with aiohttp.ClientSession() as session:
        waiting = [
            asyncio.create_task(get_json(session, f"{base_url}/long-poll?after=0&timeout=30"))
            for _ in range(3)
        ]
        await asyncio.sleep(0.3)
        await say(session, base_url, "for all")
        answers = await asyncio.wait_for(asyncio.gather(*waiting), 5)
    assert [[m["text"] for m in got] for got in answers] == [["for all"]] * 3


async def test_nothing_new_within_the_timeout_is_an_empty_list(base_url):
    async with aiohttp.ClientSession() as session:
        got = await asyncio.wait_for(
            get_json(session, f"{base_url}/long-poll?after=0&timeout=0.2"), 5
        )
        assert got == []
        await say(session, base_url, "after the timeout")  # the server is still whole
        assert len(await get_json(session, f"{base_url}/poll")) == 1


@pytest.mark.parametrize(
    "query",
    ["timeout=0", "timeout=-1", "timeout=61", "timeout=soon", "timeout=nan", "after=-2"],
)
async def test_a_bad_timeout_or_after_is_a_400(base_url, query):
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base_url}/long-poll?{query}") as response:
            assert response.status == 400
