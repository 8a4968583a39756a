"""Phase 1, step 1: short polling. Run: python -m exercises check p1_short_poll"""

from __future__ import annotations

import aiohttp
import pytest

from tests.exercises.servers import serving


@pytest.fixture
async def base_url(impl):
    async with serving(impl.module("p1_short_poll").create_app()) as url:
        yield url


async def post(session: aiohttp.ClientSession, url: str, **kwargs) -> aiohttp.ClientResponse:
    async with session.post(f"{url}/messages", **kwargs) as response:
        await response.read()
        return response


async def test_posting_answers_201_with_the_stored_message(base_url):
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{base_url}/messages", json={"text": "hi"}) as response:
            assert response.status == 201
            first = await response.json()
        async with session.post(f"{base_url}/messages", json={"text": "again"}) as response:
            second = await response.json()
    assert (first["id"], first["text"]) == (1, "hi")
    assert (second["id"], second["text"]) == (2, "again")
    assert isinstance(first["sent"], float)


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1, 2]", b'{"txt": "hi"}', b'{"text": 5}'],
    ids=["not-json", "not-an-object", "no-text", "text-not-a-string"],
)
async def test_a_bad_body_is_a_400_and_the_server_stays_whole(base_url, body):
    async with aiohttp.ClientSession() as session:
        bad = await post(session, base_url, data=body)
        assert bad.status == 400
        good = await post(session, base_url, json={"text": "still fine"})
        assert good.status == 201


async def test_poll_answers_at_once_with_the_messages_after_n(base_url):
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base_url}/poll?after=0") as response:
            assert response.status == 200
            assert await response.json() == []
        for text in ("one", "two", "three"):
            await post(session, base_url, json={"text": text})
        async with session.get(f"{base_url}/poll?after=1") as response:
            newer = await response.json()
        async with session.get(f"{base_url}/poll") as response:
            everything = await response.json()
    assert [m["text"] for m in newer] == ["two", "three"]
    assert [m["id"] for m in everything] == [1, 2, 3]


@pytest.mark.parametrize("after", ["-1", "x", "1.5", ""])
async def test_a_bad_after_is_a_400(base_url, after):
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base_url}/poll", params={"after": after}) as response:
            assert response.status == 400
