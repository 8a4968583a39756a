"""Real sessions: logout, "log out everywhere" and a password change end tokens and streams.

Each check covers the three places a token is used: ``GET /api/me`` (any request), opening
``GET /sse``, and a stream that is already open when the session ends (it gets an ``error``
event with a stable code, then the server ends it). The last test does the same across two
processes that share Redis.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import jwt
import pytest

from my_chat.events import Frame
from my_chat.sessions import ExpiryWatch
from tests.chat_client import PASSWORD, ChatClient, Stream, client_session
from tests.conftest import fast_settings
from tests.redis_server import RedisServer, redis_server_path

NEW_PASSWORD = "a brand-new password"


async def status_of(client: ChatClient, path: str = "/api/me") -> tuple[int, dict]:
    return await client.request("GET", path)


async def assert_refused(client: ChatClient, code: str = "session_revoked") -> None:
    """The token is refused on a request and when it opens a stream."""
    for path in ("/api/me", "/sse"):
        status, body = await client.request("GET", path)
        assert (status, body["error"]) == (401, code), (path, body)


async def assert_ended(stream: Stream, code: str = "session_revoked") -> None:
    """The stream got the session-end event, and then the server ended it."""
    error = await stream.next_json("error")
    assert error["error"] == code and error["message"]
    await asyncio.wait_for(stream.ended.wait(), 5)


async def test_logout_ends_that_token_only(server):
    phone = await server.user("alice")
    laptop = await server.client().login("alice")
    phone_stream, laptop_stream = await phone.open_stream(), await laptop.open_stream()

    status, _ = await phone.request("POST", "/api/logout")
    assert status == 204
    await assert_refused(phone)
    await assert_ended(phone_stream)

    # The other device is still signed in, and its stream still delivers.
    assert await status_of(laptop) == (200, {"username": "alice"})
    sent = await laptop.send("still here")
    assert (await laptop_stream.next_json("message"))["id"] == sent["id"]
    assert not laptop_stream.ended.is_set()
    # Logging out again, or without a token, is harmless.
    assert (await phone.request("POST", "/api/logout"))[0] == 204
    assert (await server.client().request("POST", "/api/logout"))[0] == 204
    laptop_stream.close()


async def test_logout_all_ends_every_session_of_that_user(server):
    phone = await server.user("alice")
    laptop = await server.client().login("alice")
    bob = await server.user("bob")
    streams = [await phone.open_stream(), await laptop.open_stream(), await phone.open_stream()]
    bob_stream = await bob.open_stream()

    status, _ = await laptop.request("POST", "/api/logout-all")
    assert status == 204
    for client in (phone, laptop):
        await assert_refused(client)
    for stream in streams:
        await assert_ended(stream)

    # Bob is untouched; alice signs in again and everything works.
    assert await status_of(bob) == (200, {"username": "bob"})
    again = await server.client().login("alice")
    assert await status_of(again) == (200, {"username": "alice"})
    stream = await again.open_stream()
    sent = await again.send("back")
    assert (await bob_stream.next_json("message"))["id"] == sent["id"]
    assert (await stream.next_json("message"))["id"] == sent["id"]
    status, body = await server.client().request("POST", "/api/logout-all")
    assert (status, body["error"]) == (401, "not_signed_in")
    stream.close()
    bob_stream.close()


async def test_changing_the_password_ends_the_other_sessions(server):
    alice = await server.user("alice")
    other_device = await server.client().login("alice")
    other_stream = await other_device.open_stream()

    # Failures first: each leaves everything as it was.
    for body, expected in [
        (
            {"old_password": "not the password", "new_password": NEW_PASSWORD},
            (403, "wrong_password"),
        ),
        ({"old_password": PASSWORD, "new_password": "short"}, (400, "invalid_password")),
        ({"old_password": PASSWORD}, (400, "invalid_field")),
    ]:
        status, reply = await alice.request("POST", "/api/password", json=body)
        assert (status, reply["error"]) == expected, reply
    assert await status_of(other_device) == (200, {"username": "alice"})

    status, reply = await alice.request(
        "POST", "/api/password", json={"old_password": PASSWORD, "new_password": NEW_PASSWORD}
    )
    assert status == 200 and reply["username"] == "alice"
    # The caller got a fresh token; every earlier one, its own included, is refused.
    fresh = ChatClient(server.url, server.session)
    fresh.token = reply["token"]
    assert await status_of(fresh) == (200, {"username": "alice"})
    await assert_refused(alice)
    await assert_refused(other_device)
    await assert_ended(other_stream)

    status, reply = await server.client().request(
        "POST", "/api/login", json={"username": "alice", "password": PASSWORD}
    )
    assert (status, reply["error"]) == (401, "wrong_credentials")
    assert (await server.client().login("alice", NEW_PASSWORD)).token


async def test_a_stream_ends_when_its_token_expires(make_server):
    async with make_server(token_ttl=1.0) as server:
        alice = await server.user("alice")
        stream = await alice.open_stream()
        await assert_ended(stream, "session_expired")
        status, body = await status_of(alice)
        assert (status, body["error"]) == (401, "invalid_token")


class RecordingConnection:
    """Stands in for a stream: records the frames it was sent and whether it was closed."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.closed = False

    def send(self, frame: Frame) -> bool:
        self.frames.append(frame.payload)
        return True

    def close(self) -> None:
        self.closed = True


async def test_the_expiry_watch_ends_only_the_open_streams_whose_token_expired():
    """One heap for every stream: a closed stream is forgotten (and cleared out in bulk), an
    open one ends with session_expired at its expiry, a later one is left alone."""
    watch = ExpiryWatch()
    now = time.time()
    soon = [RecordingConnection() for _ in range(150)]
    later = [RecordingConnection() for _ in range(150)]
    for connection in soon:
        watch.watch(connection, now + 0.3)
    for connection in later:
        watch.watch(connection, now + 3600)
    for connection in soon[:100] + later[:60]:  # closed before their expiry
        watch.forget(connection)
    assert len(watch) == 140
    assert len(watch._heap) < 300  # the forgotten ones were cleared out once they were many
    await asyncio.sleep(0.6)
    assert all(c.closed and b"session_expired" in c.frames[0] for c in soon[100:])
    assert not any(c.frames or c.closed for c in soon[:100] + later)
    assert len(watch) == 90
    watch.close()


async def test_revocations_survive_a_restart(make_server):
    async with make_server() as server:
        alice = await server.user("alice")
        everywhere = await server.user("carol")
        kept = await server.user("bob")
        assert (await alice.request("POST", "/api/logout"))[0] == 204
        assert (await everywhere.request("POST", "/api/logout-all"))[0] == 204
        bob_token = kept.token
    async with make_server() as server:
        for token in (alice.token, everywhere.token):
            client = server.client()
            client.token = token
            await assert_refused(client)
        client = server.client()
        client.token = bob_token
        assert await status_of(client) == (200, {"username": "bob"})


async def test_a_token_made_by_another_service_can_be_revoked(server):
    """A token signed with the key but without ``jti`` (another service made it) still works,
    and logout and logout-all end it too."""
    await server.user("alice")
    now = int(time.time())
    claims = {"sub": "alice", "iat": now, "exp": now + 600, "iss": "my_chat", "aud": "my_chat"}
    secret = fast_settings(Path()).jwt_secret
    first, second = server.client(), server.client()
    first.token = jwt.encode(claims, secret, algorithm="HS256")
    second.token = jwt.encode({**claims, "iat": now - 1}, secret, algorithm="HS256")
    assert await status_of(first) == (200, {"username": "alice"})
    assert (await first.request("POST", "/api/logout"))[0] == 204
    await assert_refused(first)
    assert await status_of(second) == (200, {"username": "alice"})
    assert (await second.request("POST", "/api/logout-all"))[0] == 204
    await assert_refused(second)


async def test_sessions_without_the_jwt_exercise_can_be_ended_too(make_server):
    """In exercise mode with the JWT exercise not done, in-memory sessions end the same way."""
    async with make_server(exercises=True) as server:
        assert not server.context.parts.done("tokens")
        alice = await server.user("alice")
        other = await server.client().login("alice")
        stream = await other.open_stream()
        assert (await alice.request("POST", "/api/logout"))[0] == 204
        await assert_refused(alice)
        assert await status_of(other) == (200, {"username": "alice"})
        assert (await other.request("POST", "/api/logout-all"))[0] == 204
        await assert_refused(other)
        await assert_ended(stream)


@pytest.mark.redis
async def test_revocations_cross_processes_in_redis_mode(server_process, tmp_path):
    if redis_server_path() is None:
        pytest.fail("redis-server is not installed: apt-get install redis-server")
    with RedisServer(tmp_path / "redis") as redis:
        env = {"MY_CHAT_JWT_SECRET": "jwt-secret-shared-by-every-process-0123456789"}
        a, b = await asyncio.gather(
            *(
                asyncio.to_thread(
                    server_process, "--redis", redis.url, data_dir=tmp_path / name, env=env
                )
                for name in ("a", "b")
            )
        )
        async with client_session() as session:
            on_a = await ChatClient(a.url, session).signup("alice")
            second = await ChatClient(a.url, session).login("alice")
            # The same tokens, used on B.
            on_b, second_on_b = ChatClient(b.url, session), ChatClient(b.url, session)
            on_b.token, second_on_b.token = on_a.token, second.token
            stream_on_b = await on_b.open_stream()
            second_stream_on_b = await second_on_b.open_stream()

            assert (await on_a.request("POST", "/api/logout"))[0] == 204
            await assert_ended(stream_on_b)
            await assert_refused(on_b)
            assert await status_of(second_on_b) == (200, {"username": "alice"})

            assert (await second.request("POST", "/api/logout-all"))[0] == 204
            await assert_ended(second_stream_on_b)
            await assert_refused(second_on_b)

            # A process that starts later knows both revocations from Redis.
            c = await asyncio.to_thread(
                server_process, "--redis", redis.url, data_dir=tmp_path / "c", env=env
            )
            for token in (on_a.token, second.token):
                late = ChatClient(c.url, session)
                late.token = token
                await assert_refused(late)
            fresh = await ChatClient(c.url, session).login("alice")
            fresh_on_b = ChatClient(b.url, session)
            fresh_on_b.token = fresh.token
            assert await status_of(fresh_on_b) == (200, {"username": "alice"})


@pytest.mark.browser
async def test_the_page_signs_out_when_its_session_is_revoked(make_server):
    """The page's stream gets ``session_revoked``: it shows the sign-in form and says why,
    instead of reconnecting."""
    from playwright.async_api import async_playwright, expect

    from tests.chromium import CHROMIUM, CHROMIUM_ARGS

    if not CHROMIUM.exists():
        pytest.fail(f"the browser tests need Chromium at {CHROMIUM}")
    async with make_server() as server, async_playwright() as playwright:
        api = await server.user("alice")
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            page = await (await browser.new_context()).new_page()
            await page.goto(server.url)
            await page.get_by_test_id("username").fill("alice")
            await page.get_by_test_id("password").fill(PASSWORD)
            await page.get_by_test_id("login").click()
            await expect(page.get_by_test_id("connection-state")).to_have_attribute(
                "data-state", "live"
            )
            assert (await api.request("POST", "/api/logout-all"))[0] == 204
            await expect(page.get_by_test_id("connection-state")).to_have_attribute(
                "data-state", "signed-out"
            )
            await expect(page.locator("#auth-view")).to_be_visible()
            await expect(page.get_by_test_id("status-line")).to_contain_text(
                "signed out (on this or another device)"
            )
        finally:
            await browser.close()
