"""The event stream: headers, frames, heartbeats, several devices, and connection lifecycle."""

from __future__ import annotations

import asyncio
import json
import socket

import httpx
import httpx_sse

from my_chat.sse import EventStreamParser


async def wait_for(predicate, timeout: float = 5.0, step: float = 0.01) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(step)


async def test_headers_and_opening_frames(server):
    alice = await server.user("alice")
    stream = await alice.open_stream(wait_connected=False)
    headers = stream.response.headers
    assert headers["Content-Type"] == "text/event-stream; charset=utf-8"
    assert headers["Cache-Control"] == "no-cache"
    assert headers["X-Accel-Buffering"] == "no"

    first = await stream.next()
    assert first.type == "connection_id"
    client_id = json.loads(first.data)["client_id"]
    assert len(client_id) >= 16
    heartbeat = await stream.next()
    assert heartbeat.type == "heartbeat"
    data = json.loads(heartbeat.data)
    assert set(data) == {"timestamp", "data", "type", "client_id", "user_id"}
    assert (data["type"], data["client_id"], data["user_id"]) == ("initial", client_id, "alice")
    online = await stream.next()
    assert (online.type, json.loads(online.data)) == ("online", {"users": ["alice"]})
    presence = await stream.next_json("presence")
    assert presence == {"user": "alice", "online": True}
    stream.close()


async def test_connection_ids_are_unique_and_made_by_the_server(server):
    alice = await server.user("alice")
    streams = [await alice.open_stream(wait_connected=False) for _ in range(5)]
    ids = {json.loads((await s.next("connection_id")).data)["client_id"] for s in streams}
    assert len(ids) == 5
    for stream in streams:
        stream.close()


async def test_frames_read_alike_by_an_independent_parser(server):
    alice = await server.user("alice")
    tricky = ["plain", "two\nlines", "crlf\r\nline", " leading space", "unicode ✓ 你好", "a:b"]
    for text in tricky:
        await alice.send(text)
    ours = await alice.open_stream()
    mine = [await ours.next_json("message") for _ in tricky]
    ours.close()

    async with httpx.AsyncClient(base_url=server.url, headers=alice.auth, timeout=5) as http:
        async with httpx_sse.aconnect_sse(http, "GET", "/sse") as event_source:
            assert event_source.response.headers["content-type"].startswith("text/event-stream")
            theirs = []
            async for event in event_source.aiter_sse():
                if event.event == "message":
                    theirs.append((event.id, json.loads(event.data)))
                if len(theirs) == len(tricky):
                    break
    assert [m for _, m in theirs] == mine
    assert [event_id for event_id, _ in theirs] == [str(m["id"]) for m in mine]
    # The text travels inside JSON, so even its CRLF arrives exactly as sent.
    assert [m["text"] for m in mine] == tricky


async def test_heartbeats_with_millisecond_intervals(make_server):
    async with make_server(periodic_interval=0.05, healthcheck_interval=0.08) as server:
        alice = await server.user("alice")
        stream = await alice.open_stream(wait_connected=False)
        client_id = json.loads((await stream.next("connection_id")).data)["client_id"]
        kinds: dict[str, list[dict]] = {"initial": [], "periodic": [], "healthcheck": []}
        async with asyncio.timeout(5):
            while len(kinds["periodic"]) < 4 or len(kinds["healthcheck"]) < 3:
                beat = await stream.next_json("heartbeat")
                kinds[beat["type"]].append(beat)
        assert len(kinds["initial"]) == 1
        assert all(b["client_id"] == "" and b["user_id"] == "" for b in kinds["periodic"])
        assert all(
            b["client_id"] == client_id and b["user_id"] == "alice" for b in kinds["healthcheck"]
        )
        stamps = [b["timestamp"] for b in kinds["periodic"]]
        assert stamps == sorted(stamps)
        stream.close()


async def test_one_user_three_connections(server):
    alice, bob = await server.user("alice"), await server.user("bob")
    watcher = await bob.open_stream()
    devices = [await alice.open_stream() for _ in range(3)]
    assert await watcher.next_json("online") == {"users": ["bob"]}
    assert await watcher.next_json("presence") == {"user": "bob", "online": True}
    assert (await watcher.next_json("presence"))["user"] == "alice"

    sent = await bob.send("to every device")
    for device in devices:
        assert (await device.next_json("message"))["id"] == sent["id"]
    assert server.context.manager.connections_of("alice").__len__() == 3

    devices[0].close()
    devices[1].close()
    await wait_for(lambda: len(server.context.manager.connections_of("alice")) == 1)
    _status, body = await bob.request("GET", "/api/online")
    assert body["users"] == ["alice", "bob"]
    devices[2].close()
    offline = await watcher.next_json("presence")
    assert offline == {"user": "alice", "online": False}
    # Exactly one "online" and one "offline" for alice, whatever her device count.
    alice_presence = [
        json.loads(e.data)
        for e in watcher.received
        if e.type == "presence" and json.loads(e.data)["user"] == "alice"
    ]
    assert [p["online"] for p in alice_presence] == [True, False]
    watcher.close()


async def test_a_client_that_leaves_is_unregistered_at_once(server):
    alice = await server.user("alice")
    stream = await alice.open_stream()
    assert len(server.context.manager) == 1
    stream.close()
    await wait_for(lambda: len(server.context.manager) == 0, timeout=2)


async def test_a_thousand_connect_disconnect_cycles_leave_nothing_behind(make_server):
    async with make_server(max_streams_per_user=0) as server:
        await _thousand_cycles(server)


async def _thousand_cycles(server) -> None:
    # No per-user cap: the server may not have seen the last batch close yet.
    alice = await server.user("alice")
    warmup = await alice.open_stream()
    warmup.close()
    await wait_for(lambda: len(server.context.manager) == 0)
    baseline = len(asyncio.all_tasks())

    for _batch in range(50):
        streams = await asyncio.gather(*(alice.open_stream() for _ in range(20)))
        for stream in streams:
            stream.close()
        await asyncio.gather(*(s.reader for s in streams), return_exceptions=True)
    await wait_for(lambda: len(server.context.manager) == 0, timeout=10)
    await wait_for(lambda: len(asyncio.all_tasks()) <= baseline, timeout=10)
    stats = server.context.manager.stats
    assert stats.connections_opened == stats.connections_closed == 1001
    assert server.context.manager.online_users() == []


async def _silent_reader(url: str, token: str) -> socket.socket:
    """A client that sends its request and then never reads a byte."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    request = f"GET /sse HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n"
    await asyncio.get_running_loop().sock_sendall(sock, request.encode())
    return sock


async def test_a_reader_that_never_reads_is_disconnected_and_others_keep_receiving(make_server):
    async with make_server(buffer_limit=64 * 1024) as server:
        alice, bob = await server.user("alice"), await server.user("bob")
        good = await alice.open_stream()
        silent = await _silent_reader(server.url, bob.token)
        await wait_for(lambda: len(server.context.manager) == 2)

        payload = "x" * 30_000
        pushes = 0
        async with asyncio.timeout(30):
            while not server.context.manager.stats.slow_disconnects:
                status, _ = await server.client().request(
                    "POST",
                    "/api/broadcast",
                    headers=server.service_headers,
                    json={"event": "bulk", "data": {"n": pushes, "pad": payload}},
                )
                assert status == 202
                pushes += 1
                await asyncio.sleep(0)  # let the good reader read
        for n in range(pushes):
            assert (await good.next_json("bulk", timeout=10))["n"] == n
        assert server.context.manager.connections_of("bob") == []
        assert len(server.context.manager.connections_of("alice")) == 1
        silent.close()
        good.close()


async def test_parser_in_tests_is_the_projects(server):
    # The helper client must use my_chat's own parser, so a parser bug fails these tests.
    from tests import chat_client

    assert chat_client.EventStreamParser is EventStreamParser
