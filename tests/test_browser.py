"""The chat page in a real browser: headless Chromium against the real server process.

Each test starts ``python -m my_chat`` on a free port with its own data directory, and
drives one page per user, each in its own browser context (its own cookies), the way
separate people would.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import (
    Browser,
    BrowserContext,
    Dialog,
    Locator,
    Page,
    async_playwright,
    expect,
)

from my_chat.launch import ChildServer, chat_command
from tests.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.ports import free_port

# One Chromium for the whole module (each test still gets fresh contexts), so the tests and
# fixtures share the module's event loop.
pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "correct horse battery"
# Long enough for a server restart: the old process drains, the new one starts, and
# EventSource waits the server's `retry:` delay before it tries again.
RECONNECT_TIMEOUT_MS = 20_000
START_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0
# Checked once at import: a missing browser fails the browser tests (see the fixture).
CHROMIUM_PRESENT = CHROMIUM.exists()


class ChatServer(ChildServer):
    """``python -m my_chat`` as a child process, which a test can stop and start again."""

    def __init__(self, data_dir: Path, log_path: Path, *args: str) -> None:
        self.data_dir = data_dir
        port = free_port()
        arguments = [
            "--periodic-interval",
            "0.5",
            "--healthcheck-interval",
            "1",
            # A short `retry:` keeps the restart test quick; the page does not depend on it.
            "--retry-ms",
            "500",
            "--retry-jitter-ms",
            "0",
            # A line per stream opened: the watchdog test counts them.
            "--log-level",
            "debug",
            *args,
        ]
        super().__init__(
            chat_command(port, data_dir, *arguments),
            port=port,
            log_path=log_path,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            cwd=PROJECT_ROOT,
        )

    async def start_async(self, wait_s: float = START_TIMEOUT) -> ChatServer:
        try:
            await super().start_async(wait_s)
        except RuntimeError as error:
            pytest.fail(f"my_chat did not start: {error}")
        return self

    async def stop_async(self, wait_s: float = STOP_TIMEOUT) -> bool:
        """SIGTERM, the way a deployment stops it, then wait for a clean exit."""
        if not await super().stop_async(wait_s):
            pytest.fail(f"my_chat ignored SIGTERM for {wait_s} s:\n{self.log()}")
        return True


def page_text(language: str, key: str) -> str:
    """The chat page's text for ``key`` in ``language``, from its message table."""
    path = PROJECT_ROOT / "my_chat" / "static" / "texts" / f"{language}.json"
    return json.loads(path.read_text(encoding="utf-8"))[key]


def exact_text(text: str) -> re.Pattern[str]:
    return re.compile(f"^{re.escape(text)}$")


@dataclass
class ChatPage:
    """One user's page, with the locators the tests use."""

    page: Page
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def by(self, test_id: str) -> Locator:
        return self.page.get_by_test_id(test_id)

    @property
    def state(self) -> Locator:
        return self.by("connection-state")

    def online_user(self, name: str) -> Locator:
        return self.by("online-list").locator(f'[data-user="{name}"]')

    def room_message(self, text: str) -> Locator:
        return self._message_in("room-messages", text)

    def private_message(self, text: str) -> Locator:
        return self._message_in("private-messages", text)

    def message_item(self, list_id: str, text: str) -> Locator:
        """The whole entry (sender, time, text) of the message with exactly this text."""
        text_element = self.page.get_by_test_id("message-text").filter(has_text=exact_text(text))
        return self.by(list_id).locator("li").filter(has=text_element)

    def _message_in(self, list_id: str, text: str) -> Locator:
        return self.by(list_id).get_by_test_id("message-text").filter(has_text=exact_text(text))

    async def sign_up(self, base_url: str, name: str) -> None:
        await self.page.goto(base_url)
        await self.by("username").fill(name)
        await self.by("password").fill(PASSWORD)
        await self.by("signup").click()
        await expect(self.state).to_have_attribute("data-state", "live")
        await expect(self.online_user(name)).to_be_visible()

    async def send(self, text: str) -> None:
        await self.by("message-input").fill(text)
        await self.by("message-input").press("Enter")
        await expect(self.by("message-input")).to_have_value("")


OpenPage = Callable[..., Awaitable[ChatPage]]


@pytest_asyncio.fixture(loop_scope="module")
async def chat_server(tmp_path: Path) -> AsyncIterator[ChatServer]:
    chat_server = ChatServer(tmp_path / "data", tmp_path / "server.log")
    try:
        await chat_server.start_async()
        yield chat_server
    finally:
        await chat_server.stop_async()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM_PRESENT:
        # Fail, never skip: a CI run without a browser must not pass silently.
        pytest.fail(f"Chromium not found at {CHROMIUM}; install it: apt-get install chromium")
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest_asyncio.fixture(loop_scope="module")
async def open_page(browser: Browser) -> AsyncIterator[OpenPage]:
    """Opens a page in a fresh browser context: its own cookies and sessionStorage.

    The browser's language is ``locale`` (what ``navigator.languages`` reports to the page).
    """
    contexts: list[BrowserContext] = []

    async def open_one(locale: str = "en-US") -> ChatPage:
        context = await browser.new_context(locale=locale)
        contexts.append(context)
        page = await context.new_page()
        chat_page = ChatPage(page)
        page.on("pageerror", lambda error: chat_page.errors.append(str(error)))

        async def on_dialog(dialog: Dialog) -> None:
            chat_page.dialogs.append(dialog.message)
            await dialog.dismiss()

        page.on("dialog", on_dialog)
        return chat_page

    try:
        yield open_one
    finally:
        for context in contexts:
            await context.close()


async def api_token(client: httpx.AsyncClient, name: str) -> str:
    """Signs a user up through the API, as a script or another service would."""
    response = await client.post("/api/signup", json={"username": name, "password": PASSWORD})
    assert response.status_code == 201, response.text
    return response.json()["token"]


def assert_no_script_errors(*pages: ChatPage) -> None:
    for chat_page in pages:
        assert chat_page.errors == [], chat_page.errors


async def test_two_users_chat_in_the_room(chat_server: ChatServer, open_page: OpenPage) -> None:
    alice, bob = await open_page(), await open_page()
    await alice.sign_up(chat_server.url, "alice")
    await bob.sign_up(chat_server.url, "bob")

    await expect(alice.online_user("bob")).to_be_visible()
    await expect(bob.online_user("alice")).to_be_visible()

    await alice.send("hello from alice")
    await expect(bob.room_message("hello from alice")).to_have_count(1)
    await bob.send("hi alice, bob here")
    await expect(alice.room_message("hi alice, bob here")).to_have_count(1)
    sender = bob.message_item("room-messages", "hello from alice")
    await expect(sender).to_have_attribute("data-from", "alice")

    heartbeat = alice.by("heartbeat")
    await expect(heartbeat).to_have_attribute("data-type", "periodic")
    await expect(heartbeat).to_have_text(re.compile(r"♥ \w+ \d\d:\d\d:\d\d"))
    seen = await heartbeat.get_attribute("data-count")
    await expect(heartbeat).not_to_have_attribute("data-count", seen or "")

    assert_no_script_errors(alice, bob)


async def test_private_message_reaches_only_the_two_people(
    chat_server: ChatServer, open_page: OpenPage
) -> None:
    alice, bob, carol = await open_page(), await open_page(), await open_page()
    for chat_page, name in ((alice, "alice"), (bob, "bob"), (carol, "carol")):
        await chat_page.sign_up(chat_server.url, name)

    await alice.online_user("bob").get_by_role("button").click()
    await expect(alice.by("recipient")).to_have_attribute("data-to", "bob")
    await alice.send("a secret for bob")

    received = bob.message_item("private-messages", "a secret for bob")
    await expect(received).to_have_count(1)
    await expect(received).to_contain_text("from alice")
    sent = alice.message_item("private-messages", "a secret for bob")
    await expect(sent).to_have_count(1)
    await expect(sent).to_contain_text("to bob")
    await expect(bob.room_message("a secret for bob")).to_have_count(0)

    await alice.by("recipient-clear").click()
    await expect(alice.by("recipient")).to_have_attribute("data-to", "")
    await alice.send("back in the room")
    # Carol gets the later public message, so she would have had the earlier private one.
    await expect(carol.room_message("back in the room")).to_have_count(1)
    await expect(bob.room_message("back in the room")).to_have_count(1)
    assert "a secret for bob" not in await carol.page.locator("body").inner_text()
    await expect(carol.by("private-messages").locator("li")).to_have_count(0)

    assert_no_script_errors(alice, bob, carol)


async def test_pages_survive_a_server_restart(chat_server: ChatServer, open_page: OpenPage) -> None:
    alice, bob = await open_page(), await open_page()
    await alice.sign_up(chat_server.url, "alice")
    await bob.sign_up(chat_server.url, "bob")
    async with httpx.AsyncClient(base_url=chat_server.url) as client:
        carol_token = await api_token(client, "carol")

    await alice.send("before restart, alice")
    await bob.send("before restart, bob")
    for chat_page in (alice, bob):
        await expect(chat_page.room_message("before restart, bob")).to_have_count(1)

    await chat_server.stop_async()
    for chat_page in (alice, bob):
        await expect(chat_page.state).not_to_have_attribute("data-state", "live")
    await chat_server.start_async()

    # An API client may post before the pages are back: they get it live or by replay.
    async with httpx.AsyncClient(base_url=chat_server.url) as client:
        response = await client.post(
            "/api/messages",
            json={"text": "carol, right after the restart"},
            headers={"Authorization": f"Bearer {carol_token}"},
        )
        assert response.status_code == 201, response.text

    for chat_page in (alice, bob):
        await expect(chat_page.state).to_have_attribute(
            "data-state", "live", timeout=RECONNECT_TIMEOUT_MS
        )
    await alice.send("after restart, alice")
    await bob.send("after restart, bob")

    texts = [
        "before restart, alice",
        "before restart, bob",
        "carol, right after the restart",
        "after restart, alice",
        "after restart, bob",
    ]
    for chat_page in (alice, bob):
        for text in texts:
            await expect(chat_page.room_message(text)).to_have_count(1)

    # A reload resumes from the id kept in sessionStorage: the old messages are repainted
    # and the new ones arrive, each once.
    await bob.page.reload()
    await expect(bob.state).to_have_attribute("data-state", "live")
    await alice.send("after bob's reload")
    for text in [*texts, "after bob's reload"]:
        await expect(bob.room_message(text)).to_have_count(1)
    ids = (
        await bob.by("room-messages")
        .locator("li[data-id]")
        .evaluate_all("items => items.map(item => Number(item.dataset.id))")
    )
    assert ids == sorted(ids)

    assert_no_script_errors(alice, bob)


async def test_markup_in_a_message_is_shown_as_text(
    chat_server: ChatServer, open_page: OpenPage
) -> None:
    alice, bob = await open_page(), await open_page()
    await alice.sign_up(chat_server.url, "alice")
    await bob.sign_up(chat_server.url, "bob")

    payload = "<img src=x onerror=alert(1)>"
    await alice.send(payload)
    for chat_page in (alice, bob):
        shown = chat_page.room_message(payload)
        await expect(shown).to_have_count(1)
        assert await shown.text_content() == payload
        await expect(chat_page.by("room-messages").locator("img")).to_have_count(0)
        assert chat_page.dialogs == []

    assert_no_script_errors(alice, bob)


async def test_too_long_a_message_shows_the_servers_error(
    chat_server: ChatServer, open_page: OpenPage
) -> None:
    too_long = "x" * 2001
    async with httpx.AsyncClient(base_url=chat_server.url) as client:
        token = await api_token(client, "probe")
        response = await client.post(
            "/api/messages",
            json={"text": too_long},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 413, response.text
    server_message = response.json()["message"]

    alice = await open_page()
    await alice.sign_up(chat_server.url, "alice")
    await alice.by("message-input").fill(too_long)
    await alice.by("message-input").press("Enter")

    # The page shows its own text for the server's stable error code, not the server's English.
    status_line = alice.by("status-line")
    await expect(status_line).to_have_attribute("data-error", response.json()["error"])
    await expect(status_line).to_have_text(page_text("en", f"error.{response.json()['error']}"))
    assert server_message
    await expect(status_line).to_have_attribute("data-kind", "error")
    # The text stays in the box, so the writer can shorten it.
    await expect(alice.by("message-input")).to_have_value(too_long)
    await expect(alice.room_message(too_long)).to_have_count(0)

    assert_no_script_errors(alice)


async def test_sign_out_then_sign_in_again(chat_server: ChatServer, open_page: OpenPage) -> None:
    alice = await open_page()
    await alice.sign_up(chat_server.url, "alice")
    await alice.send("before signing out")

    await alice.by("logout").click()
    await expect(alice.state).to_have_attribute("data-state", "signed-out")
    await expect(alice.by("login")).to_be_visible()
    await expect(alice.by("room-messages")).to_be_hidden()
    # The cookie is gone too: a reload does not sign the page back in.
    await alice.page.reload()
    await expect(alice.by("login")).to_be_visible()
    await expect(alice.state).to_have_attribute("data-state", "signed-out")

    await alice.by("username").fill("alice")
    await alice.by("password").fill(PASSWORD)
    await alice.by("password").press("Enter")  # Enter in the form signs in
    await expect(alice.state).to_have_attribute("data-state", "live")
    await expect(alice.room_message("before signing out")).to_have_count(1)

    assert_no_script_errors(alice)


async def test_pushed_notice_is_shown(chat_server: ChatServer, open_page: OpenPage) -> None:
    alice = await open_page()
    await alice.sign_up(chat_server.url, "alice")

    service_key = (chat_server.data_dir / "service_key").read_text().strip()
    async with httpx.AsyncClient(base_url=chat_server.url) as client:
        response = await client.post(
            "/api/push",
            json={"user_ids": ["alice"], "event": "notice", "data": {"text": "deploy at 22:00"}},
            headers={"Authorization": f"Bearer {service_key}"},
        )
    assert response.status_code == 202, response.text

    notice = alice.by("room-messages").locator("li.system")
    await expect(notice).to_have_text("notice: deploy at 22:00")

    assert_no_script_errors(alice)


async def test_a_page_whose_session_ended_goes_back_to_sign_in(
    chat_server: ChatServer, open_page: OpenPage
) -> None:
    alice = await open_page()
    await alice.sign_up(chat_server.url, "alice")

    # Without its cookie the page's next connection is refused with 401, so EventSource
    # gives up; the page asks /api/me, hears 401 again, and shows the sign-in form.
    await alice.page.context.clear_cookies()
    await chat_server.stop_async()
    await chat_server.start_async()

    await expect(alice.state).to_have_attribute(
        "data-state", "signed-out", timeout=RECONNECT_TIMEOUT_MS
    )
    await expect(alice.by("login")).to_be_visible()
    await expect(alice.by("status-line")).to_contain_text("sign in again")

    assert_no_script_errors(alice)


async def test_a_page_far_behind_reloads_its_history(tmp_path: Path, open_page: OpenPage) -> None:
    """A resume further back than the server replays: the page is told (``recovered``) and
    loads the history through the paged API, so no gap is left on screen."""
    server = ChatServer(
        tmp_path / "far", tmp_path / "far.log", "--replay-max", "3", "--history", "2"
    )
    await server.start_async()
    try:
        alice = await open_page()
        await alice.sign_up(server.url, "alice")
        async with httpx.AsyncClient(base_url=server.url) as client:
            bob = {"Authorization": f"Bearer {await api_token(client, 'bob')}"}

            async def bob_says(text: str) -> None:
                response = await client.post("/api/messages", json={"text": text}, headers=bob)
                assert response.status_code == 201, response.text

            await bob_says("before the gap")
            await expect(alice.room_message("before the gap")).to_have_count(1)
            await alice.page.goto("about:blank")  # alice is away...
            for n in range(8):
                await bob_says(f"missed {n}")
        await alice.page.go_back()  # ... and comes back, resuming from "before the gap"

        await expect(alice.by("room-messages").locator("li.system")).to_contain_text("away")
        for text in ["before the gap", *(f"missed {n}" for n in range(8))]:
            await expect(alice.room_message(text)).to_have_count(1)
        await expect(alice.state).to_have_attribute("data-state", "live")
        assert_no_script_errors(alice)
    finally:
        await server.stop_async()


async def test_a_silent_stream_is_replaced_by_the_watchdog(
    chat_server: ChatServer, open_page: OpenPage
) -> None:
    """A stream that goes quiet (the server frozen, its socket still open) is reopened.

    SIGSTOP freezes the server: the page's connection stays open, but nothing arrives, as
    behind a proxy that dropped it silently. The page's clock is fake, so "over a minute of
    silence" takes no real minute. Without the watchdog, EventSource would keep waiting on
    the old stream after SIGCONT, and the server would see no new connection.
    """
    alice = await open_page()
    await alice.page.clock.install()
    await alice.sign_up(chat_server.url, "alice")
    connects = re.compile(r"\bconnect client=\w+ user=alice")
    before = len(connects.findall(chat_server.log()))
    assert before >= 1

    assert chat_server.process is not None
    chat_server.process.send_signal(signal.SIGSTOP)
    try:
        await alice.page.clock.fast_forward(30_000)
        await expect(alice.state).to_have_attribute("data-state", "live")  # not yet
        await alice.page.clock.fast_forward(45_000)
        await expect(alice.by("status-line")).to_contain_text("No heartbeat")
        await expect(alice.state).not_to_have_attribute("data-state", "live")
    finally:
        chat_server.process.send_signal(signal.SIGCONT)

    await expect(alice.state).to_have_attribute("data-state", "live", timeout=RECONNECT_TIMEOUT_MS)
    await expect(alice.online_user("alice")).to_be_visible()
    for _ in range(50):
        if len(connects.findall(chat_server.log())) > before:
            break
        await asyncio.sleep(0.1)
    assert len(connects.findall(chat_server.log())) == before + 1, chat_server.log()
    assert_no_script_errors(alice)


async def labels_of(chat_page: ChatPage) -> dict[str, str]:
    """What each element marked with data-i18n shows, by message key."""
    return await chat_page.page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll("[data-i18n]")]
            .map((element) => [element.dataset.i18n, element.textContent]))"""
    )


async def sign_up_refused(chat_page: ChatPage, base_url: str, name: str) -> Locator:
    await chat_page.page.goto(base_url)
    await chat_page.by("username").fill(name)
    await chat_page.by("password").fill(PASSWORD)
    await chat_page.by("signup").click()
    status_line = chat_page.by("status-line")
    await expect(status_line).to_have_attribute("data-error", "username_taken")
    return status_line


async def test_the_page_speaks_chinese_to_a_chinese_browser(
    chat_server: ChatServer, open_page: OpenPage
) -> None:
    async with httpx.AsyncClient(base_url=chat_server.url) as client:
        await api_token(client, "alice")

    page = await open_page(locale="zh-CN")
    status_line = await sign_up_refused(page, chat_server.url, "alice")
    await expect(status_line).to_have_text(page_text("zh", "error.username_taken"))
    await expect(page.page.locator("html")).to_have_attribute("lang", "zh-CN")
    labels = await labels_of(page)
    assert labels, "no element carries data-i18n"
    assert labels == {key: page_text("zh", key) for key in labels}
    await expect(page.by("login")).to_have_text("登录")
    await expect(page.by("username")).to_have_attribute(
        "placeholder", page_text("zh", "auth.name_placeholder")
    )

    await page.sign_up(chat_server.url, "bob")
    await expect(page.state).to_have_text(page_text("zh", "connection.live"))
    await expect(page.by("send")).to_have_text("发送")
    await expect(page.by("message-input")).to_have_attribute(
        "placeholder", page_text("zh", "composer.placeholder_room")
    )
    await page.send("你好")
    await expect(page.room_message("你好")).to_have_count(1)
    await page.by("logout").click()
    await expect(page.by("status-line")).to_have_text(page_text("zh", "status.signed_out"))
    await expect(page.state).to_have_text(page_text("zh", "connection.signed-out"))

    assert_no_script_errors(page)


@pytest.mark.parametrize("locale", ["en-US", "fr-FR"])
async def test_the_page_speaks_english_to_other_browsers(
    chat_server: ChatServer, open_page: OpenPage, locale: str
) -> None:
    async with httpx.AsyncClient(base_url=chat_server.url) as client:
        await api_token(client, "alice")

    page = await open_page(locale=locale)
    status_line = await sign_up_refused(page, chat_server.url, "alice")
    await expect(status_line).to_have_text(page_text("en", "error.username_taken"))
    await expect(page.page.locator("html")).to_have_attribute("lang", "en")
    labels = await labels_of(page)
    assert labels == {key: page_text("en", key) for key in labels}
    await expect(page.by("login")).to_have_text("Sign in")

    # ?lang= overrides the browser's language.
    await page.page.goto(f"{chat_server.url}/?lang=zh")
    await expect(page.by("login")).to_have_text(page_text("zh", "auth.login"))
    await expect(page.page.locator("html")).to_have_attribute("lang", "zh-CN")

    assert_no_script_errors(page)


async def test_the_exercise_banner_speaks_chinese(tmp_path: Path, open_page: OpenPage) -> None:
    """On the learner's code (stubs not done), the banner says so in the browser's language,
    with the command to run kept as code."""
    server = ChatServer(tmp_path / "ex", tmp_path / "ex.log", "--exercises")
    await server.start_async()
    try:
        page = await open_page(locale="zh-CN")
        await page.page.goto(server.url)
        item = page.by("banner").locator('li[data-exercise="heartbeat"]')
        await expect(item).to_contain_text(page_text("zh", "exercise.heartbeat.title"))
        await expect(item).to_contain_text(page_text("zh", "exercise.heartbeat.effect"))
        await expect(item.locator("code")).to_have_text("python -m exercises check heartbeat")
        await expect(page.by("banner").locator("strong").first).to_contain_text("练习")
        assert_no_script_errors(page)
    finally:
        await server.stop_async()
