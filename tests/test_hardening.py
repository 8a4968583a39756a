"""A failure leaves the server whole: each attack or accident, followed by normal use.

Issue 11's red-team list, over real HTTP to a running server with a real SQLite file. Every
test here failed on the code before the fix it guards (see chapters/appendix-security.md).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3

from my_chat.server import TASKS
from tests.chat_client import PASSWORD


async def wait_for(condition, what: str, timeout: float = 20.0):
    """Poll ``condition()`` (async) until it returns something true; fail naming ``what``."""
    try:
        async with asyncio.timeout(timeout):
            while not (result := await condition()):
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"gave up after {timeout} s waiting for {what}") from None
    return result


# --- The critical bug: a failed write must not keep the database locked ---------------------


async def test_a_taken_name_then_a_message_works_at_once(server):
    alice = await server.user("alice")
    status, body = await server.client().request(
        "POST", "/api/signup", json={"username": "alice", "password": "another-password"}
    )
    assert status == 409 and body["error"] == "username_taken"
    status, body = await alice.request("POST", "/api/messages", json={"text": "still here"})
    assert status == 201, body
    # ... and sign-ups still work too.
    await server.user("bob")
    status, body = await alice.request("POST", "/api/messages", json={"text": "and again"})
    assert status == 201, body


async def test_a_lone_surrogate_then_reads_then_sign_up_then_a_message_works(server):
    alice = await server.user("alice")
    status, body = await alice.request("POST", "/api/messages", json={"text": "x\ud800"})
    assert status == 400 and body["error"] == "invalid_unicode", body
    status, _ = await alice.request("GET", "/api/history")
    assert status == 200
    stream = await alice.open_stream()
    stream.close()
    await server.user("bob")
    for n in range(3):
        status, body = await alice.request("POST", "/api/messages", json={"text": f"ok {n}"})
        assert status == 201, body
    status, history = await alice.request("GET", "/api/history")
    assert [m["text"] for m in history["messages"]] == ["ok 0", "ok 1", "ok 2"]


async def test_a_store_write_that_fails_is_rolled_back(server):
    """Below the API's own checks: the store itself rolls back a failed INSERT."""
    store = server.context.store
    alice = await server.user("alice")
    try:
        await store.append("alice", "x\ud800", None, 1)
    except UnicodeEncodeError:
        pass
    else:
        raise AssertionError("SQLite stored a lone surrogate")
    status, _ = await alice.request("GET", "/api/history")
    assert status == 200
    await server.user("bob")
    status, body = await alice.request("POST", "/api/messages", json={"text": "fine"})
    assert status == 201, body


async def test_a_failed_sign_up_insert_is_rolled_back(server):
    alice = await server.user("alice")
    try:
        await server.context.accounts.create("x\ud800", PASSWORD, 1)
    except UnicodeEncodeError:
        pass
    else:
        raise AssertionError("SQLite stored a lone surrogate")
    await server.client().login("alice")  # a read on the accounts connection
    await alice.send("a write on the other connection")
    await server.user("bob")  # without the rollback: "database is locked"
    status, body = await alice.request("POST", "/api/messages", json={"text": "fine"})
    assert status == 201, body


async def test_retention_survives_a_locked_database(make_server):
    async with make_server(retention_count=3, retention_interval=0.1) as server:
        alice = await server.user("alice")
        health = server.client()

        async def retention_failed():
            status, body = await health.request("GET", "/healthz")
            return status == 200 and body["tasks"]["retention"]["failures"] > 0

        # Another process holds the write lock longer than SQLite's busy timeout (5 s).
        locker = sqlite3.connect(server.settings.database_path, isolation_level=None)
        try:
            locker.execute("BEGIN IMMEDIATE")
            await wait_for(retention_failed, "a retention sweep failed on the lock")
        finally:
            locker.rollback()
            locker.close()
        for n in range(6):
            await alice.send(f"m{n}")

        async def pruned():
            _, history = await alice.request("GET", "/api/history")
            return [m["text"] for m in history["messages"]] == ["m3", "m4", "m5"]

        await wait_for(pruned, "retention pruned again after the lock went away")
        status, body = await health.request("GET", "/healthz")
        assert status == 200 and body["ok"] is True, body


async def test_healthz_names_a_background_task_that_stopped(server):
    status, body = await server.client().request("GET", "/healthz")
    assert status == 200 and body["ok"] is True
    retention = next(b.task for b in server.app[TASKS] if b.task.get_name() == "retention")
    retention.cancel()
    await asyncio.gather(retention, return_exceptions=True)
    status, body = await server.client().request("GET", "/healthz")
    assert status == 503, body
    assert body["stopped"] == ["retention"] and body["error"] == "background_task_stopped"


async def test_a_heartbeat_loop_that_raises_is_restarted(make_server, monkeypatch):
    import solutions.heartbeat as heartbeat

    calls = []
    real = heartbeat.periodic_heartbeats

    async def flaky(manager, interval):
        if interval < 1 and not calls:  # not the start-up check, which runs it with 3600
            calls.append(1)
            raise RuntimeError("a bug in one tick")
        await real(manager, interval)

    monkeypatch.setattr(heartbeat, "periodic_heartbeats", flaky)
    async with make_server(periodic_interval=0.05) as server:
        alice = await server.user("alice")
        stream = await alice.open_stream()
        while True:  # periodic heartbeats arrive once the loop was restarted
            event = await stream.next_json("heartbeat", timeout=10)
            if event["type"] == "periodic":
                break
        stream.close()
        status, body = await server.client().request("GET", "/healthz")
        assert status == 200 and body["tasks"]["periodic-heartbeats"]["failures"] == 1, body


# --- 1. Text that is not Unicode: 400 in bodies, 401 in credentials ------------------------


async def test_lone_surrogates_in_any_field_are_400(server):
    alice = await server.user("alice")
    await server.user("bob")
    bad = "x\udc80yz-long-enough"
    cases = [
        ("/api/signup", {"username": "carol", "password": bad}, {}),
        ("/api/signup", {"username": "car\ud800ol", "password": PASSWORD}, {}),
        ("/api/login", {"username": "alice", "password": bad}, {}),
        ("/api/messages", {"text": "hi", "to": "bob\ud800"}, alice.auth),
        ("/api/push", {"user_ids": ["bob"], "event": "notice", "data": bad}, None),
        ("/api/push", {"user_ids": ["bob\ud800"], "event": "notice", "data": 1}, None),
        ("/api/broadcast", {"event": "notice", "data": {bad: 1}}, None),
    ]
    client = server.client()
    for path, body, headers in cases:
        headers = server.service_headers if headers is None else headers
        status, reply = await client.request("POST", path, json=body, headers=headers)
        assert status == 400 and reply["error"] == "invalid_unicode", (path, reply)
    # ... and everything still works after them.
    await server.user("carol")
    await alice.send("after the bad ones", to="bob")


async def raw_request(url: str, head: bytes) -> tuple[int, bytes]:
    """Send ``head`` (a request without body) as raw bytes; the status and the body."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(head)
    await writer.drain()
    async with asyncio.timeout(10):
        status_line = await reader.readline()
        headers = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in headers.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    body = await reader.readexactly(length)
    writer.close()
    return int(status_line.split()[1]), body


AUTHENTICATED = [
    ("GET", "/api/me"),
    ("GET", "/api/history"),
    ("GET", "/api/online"),
    ("GET", "/sse"),
    ("POST", "/api/messages"),
    ("POST", "/api/push"),
    ("POST", "/api/broadcast"),
    ("GET", "/api/stats"),
]


async def test_credentials_that_are_not_utf8_are_401_everywhere(server):
    import json

    alice = await server.user("alice")
    for method, path in AUTHENTICATED:
        for header in (b"Authorization: Bearer \xff\xfe", b"Cookie: my_chat_session=\xc3\x28"):
            head = (
                f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n".encode()
                + header
                + b"\r\nConnection: close\r\n\r\n"
            )
            status, body = await raw_request(server.url, head)
            assert status == 401, (method, path, header, body)
            assert json.loads(body)["error"] == "invalid_token"
    await alice.send("still fine")


MALFORMED = {
    "a request line that is not HTTP": b"GARBAGE\r\n\r\n",
    "a method with a bad character": b"G(T /api/me HTTP/1.1\r\nHost: x\r\n\r\n",
    "a header line over 8,190 bytes": b"GET /api/me HTTP/1.1\r\nHost: x\r\nX-Long: "
    + b"<script>" * 1200
    + b"\r\n\r\n",
    "a NUL byte in a header": b"GET /api/me HTTP/1.1\r\nHost: x\r\nX-A: <script>\x00\r\n\r\n",
    "a Content-Length that is no number": b"POST /api/messages HTTP/1.1\r\nHost: x\r\n"
    b"Content-Length: <script>\r\n\r\n",
    "a bad chunk size": b"POST /api/messages HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
    b"Content-Type: application/json\r\n\r\n<script>\r\n",
    "TLS sent to the HTTP port": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(40),
}


async def test_requests_the_http_parser_refuses_get_a_json_400_then_all_works(server):
    """aiohttp answers these before any handler runs, in plain text quoting the bytes back;
    my_chat's connection protocol answers them as JSON, like every other error."""
    alice = await server.user("alice")
    stream = await alice.open_stream()
    host, port = server.url.removeprefix("http://").split(":")
    for name, data in MALFORMED.items():
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(data)
        async with asyncio.timeout(10):
            answer = await reader.read()  # to the end: the server closes the connection
        writer.close()
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.split(b"\r\n")[0].split()[1] == b"400", (name, answer)
        assert b"\r\ncontent-type: application/json" in head.lower(), (name, answer)
        assert b"\r\nx-content-type-options: nosniff" in head.lower(), (name, answer)
        error = json.loads(body)
        assert error["error"] == "malformed_request", (name, error)
        assert error["message"].startswith("the request is not valid HTTP/1.1"), (name, error)
        assert b"<script>" not in body, (name, body)  # the client's bytes are not echoed
    # The server is whole: the open stream still gets messages, new requests are answered.
    await alice.send("still fine")
    assert [m["text"] for m in await stream.messages(1)] == ["still fine"]
    stream.close()
    async with server.session.get(f"{server.url}/api/me", headers=alice.auth) as response:
        assert response.status == 200


def test_a_failure_outside_the_middleware_is_a_json_500():
    from my_chat.errors import refused_early

    response = refused_early(500, RuntimeError("boom"), None)
    assert response.status == 500 and response.content_type == "application/json"
    assert json.loads(response.body) == {
        "error": "internal",
        "message": "the server failed on this request; it is logged",
    }


# --- 3. Stream caps ------------------------------------------------------------------------


async def test_streams_over_the_per_user_cap_are_429_before_the_stream(make_server):
    async with make_server(max_streams_per_user=2, max_streams=3) as server:
        alice, bob = await server.user("alice"), await server.user("bob")
        streams = [await alice.open_stream(), await alice.open_stream()]
        async with server.session.get(f"{server.url}/sse", headers=alice.auth) as response:
            assert response.status == 429
            assert response.content_type == "application/json"
            assert (await response.json())["error"] == "too_many_streams"
        streams.append(await bob.open_stream())
        async with server.session.get(f"{server.url}/sse", headers=bob.auth) as response:
            assert response.status == 503 and response.content_type == "application/json"
            assert (await response.json())["error"] == "server_full"
        streams.pop(0).close()
        await wait_for(
            lambda: asyncio.sleep(0, len(server.context.manager) == 2), "a stream closed"
        )
        streams.append(await alice.open_stream())  # room again
        for stream in streams:
            stream.close()


async def test_the_default_caps():
    from my_chat.config import Settings

    assert Settings().max_streams_per_user == 20 and Settings().max_streams > 0


# --- 6. The rate limit comes before "no such user" -----------------------------------------


async def test_unknown_recipients_cannot_be_probed_faster_than_the_rate_limit(make_server):
    async with make_server(message_burst=5, message_rate=0.01) as server:
        alice = await server.user("alice")
        statuses = []
        for n in range(8):
            status, _ = await alice.request(
                "POST", "/api/messages", json={"text": "hi", "to": f"nobody{n}"}
            )
            statuses.append(status)
        assert statuses == [404] * 5 + [429] * 3


# --- 7. Look-alike names --------------------------------------------------------------------


async def test_look_alike_names_cannot_both_exist(server):
    await server.user("alice")
    await server.user("b0b")
    client = server.client()
    for name in ("aIice", "ALICE", "a1ice", "AL1CE", "bob", "BOB", "b0B"):
        status, body = await client.request(
            "POST", "/api/signup", json={"username": name, "password": PASSWORD}
        )
        assert status == 409 and body["error"] == "username_taken", name
    await server.user("alicia")  # different enough
    await server.user("bobby")


async def test_an_older_database_with_look_alikes_keeps_both_and_takes_no_third(make_server):
    from my_chat.accounts import SqliteAccountStore, hash_password

    async with make_server() as server:
        path = server.settings.database_path
    # An older my_chat had no skeletons: both names exist.
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE account_skeletons")
        for name in ("alice", "aIice"):
            db.execute("INSERT INTO accounts VALUES (?, ?, 1)", (name, hash_password(PASSWORD)))
    store = await SqliteAccountStore.open(str(path))
    await store.close()
    async with make_server() as server:
        for name in ("alice", "aIice"):
            await server.client().login(name)
        status, _ = await server.client().request(
            "POST", "/api/signup", json={"username": "a1ice", "password": PASSWORD}
        )
        assert status == 409


# --- 8. Cross-site requests -----------------------------------------------------------------


async def test_a_form_from_another_site_cannot_log_out_or_post(server):
    alice = await server.user("alice")
    for origin in ("https://evil.example", "null"):
        status, body = await alice.request("POST", "/api/logout", headers={"Origin": origin})
        assert status == 403 and body["error"] == "cross_origin", origin
        status, body = await alice.request(
            "POST", "/api/messages", json={"text": "hi"}, headers={"Origin": origin}
        )
        assert status == 403
    # A form body, even an empty one, is refused: forms cannot send JSON.
    for content_type in ("application/x-www-form-urlencoded", "text/plain", "multipart/form-data"):
        status, body = await alice.request(
            "POST", "/api/logout", data=b"", headers={"Content-Type": content_type}
        )
        assert status == 415 and body["error"] == "unsupported_media_type", content_type
    status, body = await alice.request(
        "POST",
        "/api/signup",
        data="username=x&password=yyyyyyyy",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 415
    # The page's own origin is fine.
    own = server.url
    status, _ = await alice.request(
        "POST", "/api/messages", json={"text": "from the page"}, headers={"Origin": own}
    )
    assert status == 201
    status, _ = await alice.request("POST", "/api/logout", headers={"Origin": own})
    assert status == 204


# --- 9. Files and headers -------------------------------------------------------------------


async def test_the_database_files_are_private(server):
    alice = await server.user("alice")
    await alice.send("hello")
    data_dir = server.settings.data_dir
    files = [p for p in data_dir.iterdir() if p.name.startswith("my_chat.sqlite3")]
    assert {p.name for p in files} >= {"my_chat.sqlite3", "my_chat.sqlite3-wal"}
    for path in files:
        assert path.stat().st_mode & 0o777 == 0o600, path


async def test_an_old_world_readable_database_is_made_private(make_server):
    async with make_server() as server:
        path = server.settings.database_path
    path.chmod(0o644)
    async with make_server() as server:
        await (await server.user("alice")).send("hi")
        assert path.stat().st_mode & 0o777 == 0o600


async def test_pages_carry_the_security_headers(server):
    for path in ("/", "/static/app.js", "/api/status", "/no-such-page"):
        async with server.session.get(f"{server.url}{path}") as response:
            headers = response.headers
            assert headers["X-Content-Type-Options"] == "nosniff", path
            assert headers["X-Frame-Options"] == "DENY"
            assert headers["Referrer-Policy"]
            assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
            assert "script-src" not in headers["Content-Security-Policy"]  # default-src 'self'


# --- 10. Push: reserved names, values browsers cannot parse ---------------------------------


async def test_push_refuses_browser_event_names_and_non_json_numbers(server):
    bob = await server.user("bob")
    client = server.client()
    headers = {**server.service_headers, "Content-Type": "application/json"}
    for event in ("open", "error", "message", "recovered", "presence", "connection_id"):
        status, body = await client.request(
            "POST",
            "/api/push",
            json={"user_ids": ["bob"], "event": event, "data": 1},
            headers=server.service_headers,
        )
        assert status == 400 and body["error"] == "reserved_event", event
    for number in (b"NaN", b"Infinity", b"-Infinity", b"1e999"):
        raw = b'{"user_ids": ["bob"], "event": "notice", "data": ' + number + b"}"
        status, body = await client.request("POST", "/api/push", data=raw, headers=headers)
        assert status == 400 and body["error"] == "invalid_json", number
    stream = await bob.open_stream()
    status, _ = await client.request(
        "POST",
        "/api/push",
        json={"user_ids": ["bob"], "event": "notice", "data": 1.5},
        headers=server.service_headers,
    )
    assert status == 202
    assert await stream.next_json("notice") == 1.5
    stream.close()


# --- 11. Resuming from far behind ------------------------------------------------------------


async def test_a_resume_replays_at_most_replay_max_then_says_recovered_false(make_server):
    async with make_server(replay_max=10, history_on_connect=3) as server:
        alice = await server.user("alice")
        ids = [(await alice.send(f"m{n}"))["id"] for n in range(25)]
        # Within the cap: everything missed, no "recovered" event.
        near = await alice.open_stream(last_event_id=ids[14])
        assert [m["id"] for m in await near.messages(10)] == ids[15:]
        await alice.send("live")
        assert (await near.next_json("message"))["text"] == "live"
        assert not [e for e in near.received if e.type == "recovered"]
        near.close()
        # Too far behind: told so, then only the latest, as on a first connection.
        far = await alice.open_stream(last_event_id=ids[0])
        told = await far.next_json("recovered")
        assert told == {"recovered": False, "last_event_id": ids[0], "replay_max": 10}
        latest = await far.messages(3)
        assert [m["text"] for m in latest] == ["m23", "m24", "live"]
        await alice.send("live 2")
        assert (await far.next_json("message"))["text"] == "live 2"
        far.close()


async def test_the_default_replay_cap_is_on():
    from my_chat.config import Settings

    assert 0 < Settings().replay_max <= 10_000


async def test_a_listed_origin_may_post(make_server):
    """Behind a proxy that rewrites Host, the public origin is listed in the settings."""
    public = "https://chat.example.com"
    async with make_server(allowed_origins=(public,)) as server:
        alice = await server.user("alice")
        status, _ = await alice.request(
            "POST", "/api/messages", json={"text": "via the proxy"}, headers={"Origin": public}
        )
        assert status == 201
        status, _ = await alice.request(
            "POST", "/api/messages", json={"text": "x"}, headers={"Origin": public + ".evil"}
        )
        assert status == 403
