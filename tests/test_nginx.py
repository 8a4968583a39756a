"""my_chat behind a real nginx, running the shipped ``deploy/nginx/my_chat.conf``.

Each test starts ``python -m my_chat`` processes and Debian's nginx on free loopback ports
(``tests/nginx_server.py`` renders the shipped file with a few documented substitutions), and
talks HTTPS to nginx with a throwaway self-signed certificate made once per test session.
The checks: events pass through as they are sent, heartbeats outlast nginx's read timeout,
my_chat still closes a stream nobody reads, the rate limits see browsers through a trusted
proxy only, a browser reconnects to the surviving process after ``kill -9`` without losing a
message, and HTTP/2 lifts the browser's six-streams-per-host limit.

Loopback has a whole /8: a client that binds 127.0.0.2 or 127.0.0.3 before it connects is,
to nginx, a browser on another machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import Browser, async_playwright, expect

from my_chat.__main__ import parse_args
from tests.chat_client import ChatClient, ServerProcess, Stream
from tests.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.conftest import SERVICE_KEY
from tests.nginx_server import Certificate, NginxServer, make_certificate, nginx_path
from tests.redis_server import RedisServer, redis_server_path
from tests.test_browser import ChatPage

pytestmark = [pytest.mark.nginx, pytest.mark.needs_solutions]

WAIT = 10.0  # seconds any one awaited thing may take before the test fails
RECONNECT_TIMEOUT_MS = 20_000
JWT_SECRET = "jwt-secret-shared-by-every-process-0123456789"
# Quiet settings: heartbeats off, so that only what a test sends is on the stream.
QUIET = ("--periodic-interval", "3600", "--healthcheck-interval", "3600")
FAST_MESSAGES = ("--message-burst", "1000", "--message-rate", "1000", "--signup-per-minute", "0")


@pytest.fixture(scope="session")
def certificate(tmp_path_factory) -> Certificate:
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def start_nginx(tmp_path: Path, certificate: Certificate):
    """``start_nginx(processes, replace={...})``: nginx in front of them, stopped afterwards."""
    if nginx_path() is None:
        # Fail, never skip: a CI run without nginx must not pass silently.
        pytest.fail(
            "nginx is not installed, and these tests need a real one: apt-get install nginx"
        )
    started: list[NginxServer] = []

    def start(processes: list[ServerProcess], replace: dict[str, str] | None = None):
        server = NginxServer(
            tmp_path / f"nginx-{len(started)}",
            [process.port for process in processes],
            certificate,
            replace=replace,
        )
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@contextlib.asynccontextmanager
async def https_session(
    certificate: Certificate, source: str = "127.0.0.1"
) -> AsyncIterator[aiohttp.ClientSession]:
    """A client session that trusts the test certificate and connects from ``source``."""
    connector = aiohttp.TCPConnector(limit=0, ssl=certificate.ssl_context(), local_addr=(source, 0))
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session


async def stats(process: ServerProcess) -> dict:
    """``/api/stats``, asked of the process itself with the service key."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{process.url}/api/stats", headers={"Authorization": f"Bearer {SERVICE_KEY}"}
        ) as response,
    ):
        assert response.status == 200, await response.text()
        return await response.json()


async def stream_count(process: ServerProcess) -> int:
    """Open streams, as the process counts them."""
    return (await stats(process))["connections"]


async def until(condition, what: str, timeout: float = WAIT) -> None:
    """Wait until ``condition()`` (sync or async) is true; fail naming ``what`` if it is not."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


# ---------------------------------------------------------------- buffering


async def posts_until_first_arrival(
    sender: ChatClient, opening: asyncio.Task[Stream], patience: float, most: int = 60
) -> tuple[int, Stream]:
    """Post messages one by one, each followed by up to ``patience`` seconds of waiting for
    the stream to show any of them; how many were posted by then, and the stream."""
    for posted in range(1, most + 1):
        await sender.send(f"message {posted}: " + "x" * 1800)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(patience):
                stream = await asyncio.shield(opening)
                await stream.next("message")
                return posted, stream
    pytest.fail(f"none of {most} messages came through")


async def start_listening(
    nginx: NginxServer, process: ServerProcess, session: aiohttp.ClientSession
) -> tuple[ChatClient, asyncio.Task[Stream]]:
    """A sender, and a listener's ``GET /sse`` through nginx, open at my_chat."""
    listener = await ChatClient(nginx.url, session).signup("listener")
    sender = await ChatClient(nginx.url, session).signup("sender")
    # A task: through a buffering proxy even the response head waits for the buffer.
    opening = asyncio.create_task(listener.open_stream(wait_connected=False))
    await until(lambda: stream_count(process), "the stream to reach my_chat")
    return sender, opening


async def test_events_pass_through_nginx_as_they_are_sent(server_process, start_nginx, certificate):
    process = server_process(*QUIET, *FAST_MESSAGES, "--history", "0")
    nginx = start_nginx([process])
    async with https_session(certificate) as session:
        sender, opening = await start_listening(nginx, process, session)
        # Each message is on the stream before the next one is even posted.
        for expected in range(1, 6):
            posted, stream = await posts_until_first_arrival(sender, opening, patience=WAIT)
            assert posted == 1
            assert sum(event.type == "message" for event in stream.received) == expected
        stream.close()


async def test_a_proxy_that_buffers_holds_events_back(server_process, start_nginx, certificate):
    """The contrast: the same file with buffering on and my_chat's header ignored."""
    process = server_process(*QUIET, *FAST_MESSAGES, "--history", "0")
    nginx = start_nginx(
        [process],
        replace={
            "proxy_buffering off;": "proxy_buffering on; proxy_ignore_headers X-Accel-Buffering;"
        },
    )
    async with https_session(certificate) as session:
        sender, opening = await start_listening(nginx, process, session)
        posted, stream = await posts_until_first_arrival(sender, opening, patience=0.3)
        # Nothing came, not even the response head, until nginx's buffer filled; then the
        # messages held in it came together.
        assert posted > 3, f"the first message arrived after only {posted} posts"
        await until(
            lambda: sum(event.type == "message" for event in stream.received) > 1,
            "the rest of the buffer to arrive with the first message",
        )
        stream.close()


# ---------------------------------------------------------------- read timeout

# Eight heartbeats per read timeout: a loaded machine may delay a few without failing.
READ_TIMEOUT = 2.0
SHORT_READ_TIMEOUT = {"proxy_read_timeout 75s;": f"proxy_read_timeout {READ_TIMEOUT:g}s;"}


async def test_heartbeats_keep_a_quiet_stream_past_the_read_timeout(
    server_process, start_nginx, certificate
):
    process = server_process(
        "--periodic-interval", "0.25", "--healthcheck-interval", "0.5", "--history", "0"
    )
    nginx = start_nginx([process], replace=SHORT_READ_TIMEOUT)
    async with https_session(certificate) as session:
        alice = await ChatClient(nginx.url, session).signup("alice")
        stream = await alice.open_stream()
        opened = time.monotonic()
        # No message for three read timeouts: only heartbeats keep nginx reading.
        while time.monotonic() - opened < 3 * READ_TIMEOUT:
            await stream.next("heartbeat")
        assert not stream.ended.is_set()
        sent = await alice.send("still here after the quiet")
        assert (await stream.next_json("message"))["id"] == sent["id"]
        assert sum(event.type == "connection_id" for event in stream.received) == 1
        stream.close()
    assert "upstream timed out" not in nginx.error_log()


async def test_without_heartbeats_nginx_cuts_a_quiet_stream(
    server_process, start_nginx, certificate
):
    process = server_process(*QUIET, "--history", "0")
    nginx = start_nginx([process], replace=SHORT_READ_TIMEOUT)
    async with https_session(certificate) as session:
        alice = await ChatClient(nginx.url, session).signup("alice")
        stream = await alice.open_stream()
        async with asyncio.timeout(WAIT):
            await stream.ended.wait()
    assert "upstream timed out" in nginx.error_log()


# ---------------------------------------------------------------- slow clients


def stuck_stream(nginx: NginxServer, certificate: Certificate, token: str) -> ssl.SSLSocket:
    """``GET /sse`` through nginx on a socket that reads the response head and then nothing."""
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window, kept small
    raw.settimeout(WAIT)
    raw.connect(("127.0.0.1", nginx.https_port))
    stuck = certificate.ssl_context().wrap_socket(raw, server_hostname="127.0.0.1")
    stuck.sendall(
        f"GET /sse HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
    )
    assert stuck.recv(4096).startswith(b"HTTP/1.1 200")
    return stuck


async def test_behind_nginx_my_chat_still_closes_a_stream_nobody_reads(
    server_process, start_nginx, certificate
):
    """nginx does not buffer the stream, so the backlog of a reader who stopped reading comes
    back to my_chat, whose buffer limit closes that stream; the others get everything."""
    process = server_process(*QUIET, *FAST_MESSAGES, "--buffer-limit", "65536")
    nginx = start_nginx([process])
    async with https_session(certificate) as session:
        reader = await ChatClient(nginx.url, session).signup("reader")
        stream = await reader.open_stream()
        sleeper = await ChatClient(nginx.url, session).signup("sleeper")
        stuck = await asyncio.to_thread(stuck_stream, nginx, certificate, sleeper.token)
        try:

            async def both_open() -> bool:
                return await stream_count(process) == 2

            await until(both_open, "both streams to be open")
            service = {"Authorization": f"Bearer {SERVICE_KEY}"}
            big = {"event": "bulk", "data": "y" * 30_000}
            sent = 0
            while (await stats(process))["slow_disconnects"] == 0:
                assert sent < 2000, "2,000 broadcasts (60 MB) and still nobody was too slow"
                async with session.post(
                    f"{process.url}/api/broadcast", json=big, headers=service
                ) as response:
                    assert response.status == 202
                sent += 1
            await until(
                lambda: sum(event.type == "bulk" for event in stream.received) == sent,
                f"the reader to get all {sent} broadcasts",
            )
            assert (await stats(process))["connections"] == 1
            reply = await reader.send("after the sleeper was let go")
            assert (await stream.next_json("message"))["id"] == reply["id"]
        finally:
            stuck.close()
            stream.close()
    assert "closing slow client=" in process.log()


# ---------------------------------------------------------------- client address


async def signup_status(session: aiohttp.ClientSession, base_url: str, name: str, **kwargs) -> int:
    async with session.post(
        f"{base_url}/api/signup",
        json={"username": name, "password": "pw-for-nginx-tests"},
        **kwargs,
    ) as response:
        await response.read()
        return response.status


async def test_rate_limits_see_the_browser_through_a_trusted_proxy(
    server_process, start_nginx, certificate
):
    process = server_process("--signup-per-minute", "2", "--trusted-proxy", "127.0.0.1")
    nginx = start_nginx([process])
    async with (
        https_session(certificate, "127.0.0.2") as first,
        https_session(certificate, "127.0.0.3") as second,
    ):
        assert await signup_status(first, nginx.url, "a1") == 201
        assert await signup_status(first, nginx.url, "a2") == 201
        assert await signup_status(first, nginx.url, "a3") == 429
        # A made-up X-Forwarded-For does not help: nginx appends the real address after it.
        spoof = {"X-Forwarded-For": "203.0.113.7"}
        assert await signup_status(first, nginx.url, "a4", headers=spoof) == 429
        # Another browser has its own limit, and signs up normally after the refusals.
        assert await signup_status(second, nginx.url, "b1") == 201
        chat = await ChatClient(nginx.url, second).login("b1", "pw-for-nginx-tests")
        assert (await chat.send("b1 is in"))["from"] == "b1"
    access = "\n".join(nginx.access_log())
    assert re.search(r'^127\.0\.0\.2 .*"POST /api/signup HTTP/1\.1" 429', access, re.M), access


async def test_an_untrusted_forwarded_header_is_ignored(server_process):
    """Straight to my_chat from an address that is not a trusted proxy: the header is noise."""
    process = server_process("--signup-per-minute", "2", "--trusted-proxy", "127.0.0.1")
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(local_addr=("127.0.0.5", 0))
    ) as direct:
        for n, expected in enumerate((201, 201, 429, 429)):
            # A new made-up client address each time: believed, it would dodge the limit.
            spoof = {"X-Forwarded-For": f"198.51.100.{n}"}
            assert await signup_status(direct, process.url, f"d{n}", headers=spoof) == expected


async def test_without_a_trusted_proxy_every_browser_shares_its_limit(
    server_process, start_nginx, certificate
):
    """Why the setting exists: behind nginx, every request comes from nginx's address."""
    process = server_process("--signup-per-minute", "2")
    nginx = start_nginx([process])
    async with (
        https_session(certificate, "127.0.0.2") as first,
        https_session(certificate, "127.0.0.3") as second,
    ):
        assert await signup_status(first, nginx.url, "a1") == 201
        assert await signup_status(first, nginx.url, "a2") == 201
        assert await signup_status(second, nginx.url, "b1") == 429


# Pairs of X-Forwarded-For values from a trusted peer, and whether the two count as the same
# client (then the second sign-up hits the limit of one). None: no header at all.
FORWARDED_PAIRS = [
    # made up on the left, appended by the trusted proxy on the right: only the right counts
    (["203.0.113.7, 198.51.100.1"], ["198.51.100.1"], True),
    # a chain of trusted proxies is walked past
    (["198.51.100.2, 10.0.0.2"], ["198.51.100.2"], True),
    # two browsers
    (["198.51.100.3"], ["198.51.100.4"], False),
    # the header sent twice counts as one list
    (["198.51.100.5", "10.0.0.3"], ["198.51.100.5"], True),
    # not an address at the right-hand end: no trusted proxy wrote it, so the peer counts
    (["198.51.100.6, not-an-address"], None, True),
]


@pytest.mark.parametrize(("first", "second", "same"), FORWARDED_PAIRS)
async def test_the_forwarded_address_is_read_from_the_right(make_server, first, second, same):
    async with make_server(
        signup_per_minute=1, trusted_proxies=("127.0.0.1", "10.0.0.0/8")
    ) as server:

        def headers(values):
            return [("X-Forwarded-For", value) for value in values or ()]

        assert await signup_status(server.session, server.url, "u1", headers=headers(first)) == 201
        status = await signup_status(server.session, server.url, "u2", headers=headers(second))
        assert status == (429 if same else 201)


def test_a_trusted_proxy_must_be_an_address():
    assert parse_args(
        ["--trusted-proxy", "10.0.0.0/8", "--trusted-proxy", "::1"]
    ).trusted_proxies == (
        "10.0.0.0/8",
        "::1",
    )
    assert parse_args([]).trusted_proxies == ()
    with pytest.raises(SystemExit):
        parse_args(["--trusted-proxy", "nginx.internal"])


async def test_the_service_api_is_not_public(server_process, start_nginx, certificate):
    process = server_process()
    nginx = start_nginx([process])
    service = {"Authorization": f"Bearer {SERVICE_KEY}"}
    async with https_session(certificate, "127.0.0.2") as outside:
        async with outside.get(f"{nginx.url}/api/stats", headers=service) as response:
            assert response.status == 403
        async with outside.get(f"{nginx.url}/healthz") as response:
            assert response.status == 200
            assert (await response.json())["ok"] is True
    async with https_session(certificate) as local:
        async with local.get(f"{nginx.url}/api/stats", headers=service) as response:
            assert response.status == 200
    async with (
        aiohttp.ClientSession() as plain,
        plain.get(f"{nginx.http_url}/api/me", allow_redirects=False) as response,
    ):
        assert response.status == 301
        assert response.headers["Location"].startswith("https://")


# ---------------------------------------------------------------- browsers


@contextlib.asynccontextmanager
async def chromium(*extra_args: str) -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}; install it: apt-get install chromium")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, *extra_args], headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()


@pytest.mark.browser
@pytest.mark.redis
async def test_a_browser_moves_to_the_other_process_after_kill_9(
    server_process, start_nginx, certificate, tmp_path
):
    if redis_server_path() is None:
        pytest.fail("redis-server is not installed: apt-get install redis-server")
    redis = RedisServer(tmp_path / "redis").start()
    try:
        # --history 0: a new stream gets no history, so what the page gets after the kill
        # can only come from resuming after its Last-Event-ID.
        processes = [
            await asyncio.to_thread(
                server_process,
                *(
                    "--redis",
                    redis.url,
                    "--history",
                    "0",
                    "--retry-ms",
                    "500",
                    "--retry-jitter-ms",
                    "0",
                ),
                *("--periodic-interval", "0.5", "--healthcheck-interval", "1"),
                data_dir=tmp_path / f"chat-{n}",
                env={"MY_CHAT_JWT_SECRET": JWT_SECRET, "MY_CHAT_PRESENCE_TTL": "1.5"},
            )
            for n in range(2)
        ]
        nginx = start_nginx(processes)
        async with chromium() as browser, https_session(certificate) as session:
            context = await browser.new_context(ignore_https_errors=True)
            alice = ChatPage(await context.new_page())
            alice.page.on("pageerror", lambda error: alice.errors.append(str(error)))
            await alice.sign_up(nginx.url, "alice")
            bob = await ChatClient(nginx.url, session).signup("bob")
            before = await bob.send("before the kill")
            await expect(alice.room_message("before the kill")).to_have_count(1)

            serving = [p for p in processes if "user=alice" in p.log()]
            assert len(serving) == 1, "alice's stream should be on exactly one process"
            victim = serving[0]
            survivor = next(p for p in processes if p is not victim)
            victim.kill()

            during = [await bob.send(f"while alice reconnects #{n}") for n in range(3)]
            for message in during:
                await expect(alice.room_message(message["text"])).to_have_count(
                    1, timeout=RECONNECT_TIMEOUT_MS
                )
            await expect(alice.state).to_have_attribute("data-state", "live")
            after = await bob.send("after the reconnection")
            await expect(alice.room_message("after the reconnection")).to_have_count(1)
            ids = (
                await alice.by("room-messages")
                .locator("li[data-id]")
                .evaluate_all("items => items.map(item => Number(item.dataset.id))")
            )
            assert ids == [before["id"], *(m["id"] for m in during), after["id"]]
            assert alice.errors == []
            await context.close()

        # The stream's log line is written when it ends: it resumed on the survivor.
        resumed = f'"GET /sse HTTP/2.0" 200 .* upstream=127.0.0.1:{survivor.port} '
        resumed += f'last_event_id="{before["id"]}"'
        await until(
            lambda: any(re.search(resumed, line) for line in nginx.access_log()),
            "nginx to log the resumed stream",
        )
    finally:
        redis.stop()


STREAMS = 8
OPEN_STREAMS = """count => {
    window.streams = {opened: 0, openNow: 0, mostOpen: 0, messages: 0, sources: []};
    for (let n = 0; n < count; n++) {
        const source = new EventSource("/sse");
        source.addEventListener("open", () => {
            streams.opened++;
            streams.openNow++;
            streams.mostOpen = Math.max(streams.mostOpen, streams.openNow);
        });
        source.addEventListener("message", () => streams.messages++);
        streams.sources.push(source);
    }
}"""
CLOSE_FIRST = """() => {
    streams.sources[0].close();
    streams.openNow--;
}"""


@pytest.mark.browser
@pytest.mark.parametrize("protocol", ["h2", "http/1.1"])
async def test_http2_lifts_the_six_streams_per_host_limit(
    protocol, server_process, start_nginx, certificate
):
    process = server_process(*QUIET, *FAST_MESSAGES, "--history", "0")
    nginx = start_nginx([process])
    extra = ["--disable-http2"] if protocol == "http/1.1" else []
    async with chromium(*extra) as browser, https_session(certificate) as session:
        # The page's CSP allows no eval, which Playwright's wait_for_function polling needs;
        # this test is about connections, so its own page script may bypass the CSP.
        context = await browser.new_context(ignore_https_errors=True, bypass_csp=True)
        page = await context.new_page()
        await page.goto(nginx.url)
        assert (
            await page.evaluate("performance.getEntriesByType('navigation')[0].nextHopProtocol")
            == protocol
        )
        status = await page.evaluate(
            """async () => (await fetch("/api/signup", {
                method: "POST",
                headers: {"Content-Type": "application/json"},
                body: JSON.stringify({username: "alice", password: "pw-for-nginx-tests"}),
            })).status"""
        )
        assert status == 201
        await page.evaluate(OPEN_STREAMS, STREAMS)
        if protocol == "h2":
            await page.wait_for_function(f"streams.opened === {STREAMS}")
            assert await stream_count(process) == STREAMS
        else:
            await page.wait_for_function("streams.opened >= 6")
            # A message from outside the browser reaches the six open streams, while the
            # other two requests still wait inside the browser for a connection.
            bob = await ChatClient(nginx.url, session).signup("bob")
            await bob.send("to every open stream")
            await page.wait_for_function("streams.messages >= 6")
            assert await page.evaluate("streams.opened") == 6
            assert await stream_count(process) == 6
            # Closing one stream frees its connection, and one waiting stream takes it.
            await page.evaluate(CLOSE_FIRST)
            await page.wait_for_function("streams.opened === 7")
        most_open = await page.evaluate("streams.mostOpen")
        assert most_open == (STREAMS if protocol == "h2" else 6)
        await context.close()
