"""Phase 5, step 6: the page, in headless Chromium. Run: python -m exercises check p5_page

The page is your exercises/p5_page_static/page.js, served by your server (step 5 with the
page added) on a free loopback port; the other users talk to it over plain HTTP.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright, expect

from my_chat.events import Message, message_frame
from tests.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.exercises.p5_client import Server, running
from tests.ports import free_port

# One Chromium for the module, so the browser, the server and the tests share one loop.
pytestmark = pytest.mark.asyncio(loop_scope="module")

SECRET = "a secret for the phase-5 page tests, long enough"
# Long enough for a restart: the server stops, starts, and EventSource waits `retry:`.
WAIT_MS = 10_000


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}; install it: apt-get install chromium")
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
def step(impl):
    return impl.module("p5_page")


@pytest.fixture
def serve_page(step, tmp_path: Path):
    """``async with serve_page() as server``: the page's server; again for a restart."""
    port = free_port()

    @asynccontextmanager
    async def serving() -> AsyncIterator[Server]:
        app = step.create_app(database=tmp_path / "chat.sqlite3", secret=SECRET, history=0)
        async with running(app, port=port) as server:
            yield server

    return serving


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context()
    try:
        yield await context.new_page()
    finally:
        await context.close()


async def sign_in(page: Page, server: Server, name: str = "alice") -> None:
    await page.goto(server.url + "/")
    await page.fill("#username", name)
    await page.click("#login button")


async def send_as(server: Server, name: str, text: str) -> dict:
    status, body = await server.request("POST", "/api/login", json={"username": name})
    assert status == 200, body
    headers = {"Authorization": f"Bearer {body['token']}"}
    status, sent = await server.request(
        "POST", "/api/messages", headers=headers, json={"text": text}
    )
    assert status == 201, sent
    return sent


async def shown_ids(page: Page) -> list[int]:
    return [
        int(i)
        for i in await page.locator("#messages li").evaluate_all(
            "items => items.map(item => item.dataset.id)"
        )
    ]


async def test_get_slash_is_the_page_and_static_serves_its_script(serve_page):
    async with serve_page() as server:
        status, html = await server.request("GET", "/")
        assert status == 200 and "/static/page.js" in html
        status, script = await server.request("GET", "/static/page.js")
        assert status == 200 and "function streamUrl" in script


async def test_once_signed_in_the_state_is_live(serve_page, page):
    async with serve_page() as server:
        await sign_in(page, server)
        await expect(page.locator("#state")).to_have_text("live", timeout=WAIT_MS)
        assert await server.request("GET", "/api/online") == (200, {"users": ["alice"]})


async def test_a_message_is_shown_once_even_if_it_arrives_twice_and_its_id_kept(
    serve_page, page, impl
):
    async with serve_page() as server:
        await sign_in(page, server)
        await expect(page.locator("#state")).to_have_text("live", timeout=WAIT_MS)
        first = await send_as(server, "bob", "hello alice")
        await expect(page.locator(f'#messages li[data-id="{first["id"]}"]')).to_have_count(1)
        # The same message again, as an overlapping replay would send it.
        again = Message(
            id=first["id"],
            sender=first["from"],
            to=first["to"],
            text=first["text"],
            timestamp=first["timestamp"],
        )
        manager = server.app[impl.module("p5_app").MANAGER]
        assert manager.broadcast(message_frame(again)) == 1
        second = await send_as(server, "bob", "are you there?")
        await expect(page.locator(f'#messages li[data-id="{second["id"]}"]')).to_have_count(1)
        assert await shown_ids(page) == [first["id"], second["id"]]
        stored = await page.evaluate("sessionStorage.getItem('p5.lastId')")
        assert stored == str(second["id"])


async def test_the_state_is_reconnecting_while_the_server_is_away_then_live_again(serve_page, page):
    async with serve_page() as server:
        await sign_in(page, server)
        await expect(page.locator("#state")).to_have_text("live", timeout=WAIT_MS)
    await expect(page.locator("#state")).to_have_text("reconnecting", timeout=WAIT_MS)
    async with serve_page() as server:
        await expect(page.locator("#state")).to_have_text("live", timeout=WAIT_MS)
        sent = await send_as(server, "bob", "welcome back")
        await expect(page.locator(f'#messages li[data-id="{sent["id"]}"]')).to_have_count(1)


async def test_the_state_is_offline_when_the_server_refuses_the_stream(serve_page, page):
    async with serve_page() as server:
        await sign_in(page, server)
        await expect(page.locator("#state")).to_have_text("live", timeout=WAIT_MS)
        # A token the server does not accept: the stream answers 401 and EventSource stops.
        await page.evaluate("sessionStorage.setItem('p5.token', 'not-a-token')")
        await page.reload()
        await expect(page.locator("#state")).to_have_text("offline", timeout=WAIT_MS)


async def test_after_a_reload_the_page_gets_exactly_the_messages_it_missed(serve_page, page):
    async with serve_page() as server:
        await sign_in(page, server)
        await expect(page.locator("#state")).to_have_text("live", timeout=WAIT_MS)
        seen = await send_as(server, "bob", "before the reload")
        await expect(page.locator(f'#messages li[data-id="{seen["id"]}"]')).to_have_count(1)
        await page.goto("about:blank")  # the same tab: its sessionStorage stays
        missed = [await send_as(server, "bob", f"while away {n}") for n in range(2)]
        await page.goto(server.url + "/")
        await expect(page.locator("#state")).to_have_text("live", timeout=WAIT_MS)
        last = missed[-1]["id"]
        await expect(page.locator(f'#messages li[data-id="{last}"]')).to_have_count(1)
        assert await shown_ids(page) == [m["id"] for m in missed]
        texts = await page.locator("#messages li").all_text_contents()
        assert [t.removeprefix("bob") for t in texts] == [m["text"] for m in missed]
        assert json.loads(await page.evaluate("sessionStorage.getItem('p5.lastId')")) == last
