"""Scaling out over Redis: several ``python -m my_chat`` processes sharing one real redis-server.

Every test starts its own redis-server (persistence on, see ``tests/redis_server.py``) and
my_chat processes on free ports, and talks to them over HTTP like any client. The checks
that matter: each stream gets every message it may see exactly once and in id order, across
processes, across a process killed with ``kill -9``, and across a Redis restart.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import pytest
from redis.asyncio import Redis

from my_chat.accounts import UsernameTaken, hash_password
from my_chat.events import Message
from my_chat.history import replay
from my_chat.redis_accounts import RedisAccountStore
from my_chat.redis_store import RedisMessageStore
from tests.chat_client import PASSWORD, ChatClient, Stream, client_session
from tests.conftest import SERVICE_KEY
from tests.ports import free_port
from tests.redis_server import RedisServer, redis_server_path

pytestmark = pytest.mark.redis

JWT_SECRET = "jwt-secret-shared-by-every-process-0123456789"
PRESENCE_TTL = 1.5  # seconds: a killed process's users are gone soon after
WAIT = 10.0  # seconds any one awaited thing may take before the test fails


@pytest.fixture
def redis_server(tmp_path: Path):
    if redis_server_path() is None:
        pytest.fail(
            "redis-server is not installed, and the Redis tests need a real one: "
            "apt-get install redis-server (or put redis-server on PATH)"
        )
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


async def start_processes(server_process, tmp_path: Path, redis: RedisServer, count: int):
    """``count`` my_chat processes on one Redis, started side by side."""
    env = {"MY_CHAT_JWT_SECRET": JWT_SECRET, "MY_CHAT_PRESENCE_TTL": str(PRESENCE_TTL)}
    return await asyncio.gather(
        *(
            asyncio.to_thread(
                server_process,
                *("--redis", redis.url, "--message-burst", "1000", "--message-rate", "1000"),
                data_dir=tmp_path / f"chat-{i}",
                env=env,
            )
            for i in range(count)
        )
    )


def message_ids(stream: Stream) -> list[int]:
    return [json.loads(event.data)["id"] for event in stream.received if event.type == "message"]


def events_of(stream: Stream, event_type: str) -> list[dict]:
    return [json.loads(event.data) for event in stream.received if event.type == event_type]


async def until(condition, what: str, timeout: float = WAIT) -> None:
    """Wait until ``condition()`` is true (it may be async); fail naming ``what`` if not."""
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


async def until_message(stream: Stream, message_id: int, who: str) -> None:
    await until(lambda: message_id in message_ids(stream), f"message {message_id} to reach {who}")


def assert_exactly_once_in_order(stream: Stream, expected: list[int], who: str) -> None:
    received = message_ids(stream)
    duplicates = sorted({i for i in received if received.count(i) > 1})
    assert not duplicates, f"{who} got messages {duplicates} more than once: {received}"
    assert received == sorted(received), f"{who} got messages out of id order: {received}"
    assert received == sorted(expected), f"{who} got {received}, expected {sorted(expected)}"


async def online(client: ChatClient) -> list[str]:
    status, body = await client.request("GET", "/api/online")
    assert status == 200, body
    return body["users"]


async def test_the_redis_stores_keep_the_sqlite_stores_contract(redis_server):
    """The stream as message store: ids, visibility, paging, retention, the replay limit."""
    client = Redis.from_url(redis_server.url)
    try:
        store = RedisMessageStore(client, retention_count=0)
        kept: list[Message] = []  # what the store should hold, worked out in plain Python
        for i in range(1300):  # more than one SCAN_PAGE, with private messages sprinkled in
            sender = ("alice", "bob", "carol")[i % 3]
            to = "bob" if i % 7 == 0 and sender != "bob" else None
            kept.append(await store.append(sender, f"message {i}", to, 1000 + i))
        assert [m.id for m in kept] == list(range(1, 1301))

        def visible(viewer: str) -> list[Message]:
            return [m for m in kept if m.to is None or viewer in (m.sender, m.to)]

        async def check_queries() -> None:
            for viewer in ("alice", "bob", "carol", "dave"):
                mine = visible(viewer)
                for last_id, limit in [(0, 50), (600, 1000), (1299, 10), (1300, 10)]:
                    expected = [m for m in mine if m.id > last_id][:limit]
                    assert await store.after(last_id, viewer, limit) == expected
                for before_id, limit in [(None, 20), (700, 600), (2, 5), (1, 5)]:
                    expected = [m for m in mine if before_id is None or m.id < before_id]
                    assert await store.before(before_id, viewer, limit) == expected[-limit:]
                assert await store.latest(viewer, 5) == mine[-5:]

        await check_queries()

        # Replay stops at what this process's reader has delivered (upto): the rest comes live.
        async def replayed(last_event_id: int | None, count: int, replay_max: int = 0):
            written: list[bytes] = []

            async def write_in_turn(frame, drain) -> None:
                written.append(frame.payload)

            closed = asyncio.get_running_loop().create_future()
            bob = SimpleNamespace(user="bob", closed=closed, write_in_turn=write_in_turn)
            last = await replay(store, bob, may_see, last_event_id, count, replay_max, upto=10)
            ids = [int(i) for i in re.findall(rb"^id: (\d+)$", b"".join(written), re.M)]
            return last, ids

        def may_see(message: Message, viewer: str) -> bool:
            return message.to is None or viewer in (message.sender, message.to)

        assert await replayed(0, 3) == (10, list(range(1, 11)))
        assert await replayed(0, 3, replay_max=100) == (10, list(range(1, 11)))
        assert await replayed(None, 3) == (10, [8, 9, 10])

        assert await store.prune(1000, None) == 300
        kept = kept[300:]
        await check_queries()
        assert await store.prune(0, 1000 + 500) == 200  # timestamps below 1500: ids 301..500
        kept = kept[200:]
        await check_queries()
        assert await store.prune(1000, 1000) == 0

        accounts = RedisAccountStore(client)
        await accounts.create("Alice", PASSWORD, 0)
        with pytest.raises(UsernameTaken):
            await accounts.create("alice", "another password", 0)
        assert await accounts.check_password("ALICE", PASSWORD) == "Alice"
        assert await accounts.check_password("alice", "wrong password") is None
        assert await accounts.check_password("nobody", PASSWORD) is None
        assert await accounts.canonical_name("aLiCe") == "Alice"
        assert await accounts.canonical_name("nobody") is None
    finally:
        await client.aclose()


async def test_processes_share_one_chat(redis_server, server_process, tmp_path):
    a, b = await start_processes(server_process, tmp_path, redis_server, 2)
    service = {"Authorization": f"Bearer {SERVICE_KEY}"}
    async with client_session() as session:
        alice = await ChatClient(a.url, session).signup("alice")
        bob = await ChatClient(b.url, session).signup("bob")
        carol = await ChatClient(b.url, session).signup("carol")

        # Accounts are shared: alice signs in on B, names are unique regardless of case,
        # and a token from one process is good on the other.
        assert (await ChatClient(b.url, session).login("ALICE")).username == "alice"
        status, body = await ChatClient(a.url, session).request(
            "POST", "/api/signup", json={"username": "Bob", "password": PASSWORD}
        )
        assert status == 409, body
        status, body = await ChatClient(b.url, session).request(
            "GET", "/api/me", headers=alice.auth
        )
        assert (status, body) == (200, {"username": "alice"})

        alice_stream = await alice.open_stream()  # on A
        bob_stream = await bob.open_stream()  # on B
        carol_stream = await carol.open_stream()  # on B

        # Presence crosses processes: alice, on A, hears that carol came online on B.
        def carol_online_for_alice():
            return [p for p in events_of(alice_stream, "presence") if p["user"] == "carol"]

        await until(carol_online_for_alice, "alice to hear that carol came online")
        assert carol_online_for_alice()[0] == {"user": "carol", "online": True}

        # Reports reach Redis within a presence window, and a process whose heartbeat was
        # late under load drops out for a moment: so the lists agree soon, not at once.
        async def both_see_everyone() -> bool:
            return await online(alice) == await online(bob) == ["alice", "bob", "carol"]

        await until(both_see_everyone, "both processes to list alice, bob and carol")

        room = [
            (await alice.send("hello from A"))["id"],
            (await bob.send("hello from B"))["id"],
            (await carol.send("hello from B too"))["id"],
        ]
        alice_to_bob = (await alice.send("just for bob", to="bob"))["id"]
        bob_to_alice = (await bob.send("just for alice", to="alice"))["id"]
        last = (await carol.send("the last one"))["id"]
        room.append(last)
        for stream, who in [(alice_stream, "alice"), (bob_stream, "bob"), (carol_stream, "carol")]:
            await until_message(stream, last, who)
        assert_exactly_once_in_order(alice_stream, [*room, alice_to_bob, bob_to_alice], "alice")
        assert_exactly_once_in_order(bob_stream, [*room, alice_to_bob, bob_to_alice], "bob")
        assert_exactly_once_in_order(carol_stream, room, "carol")

        # The history is shared too, with the same privacy.
        status, body = await carol.request("GET", "/api/history")
        assert [m["id"] for m in body["messages"]] == room
        status, body = await ChatClient(a.url, session).request(
            "GET", "/api/history", headers=bob.auth
        )
        assert sorted(m["id"] for m in body["messages"]) == sorted(
            [*room, alice_to_bob, bob_to_alice]
        )

        # The push API on A reaches bob on B, and counts his one connection there.
        async with session.post(
            f"{a.url}/api/push",
            headers=service,
            json={"user_ids": ["bob"], "event": "order_created", "data": {"order_no": "123"}},
        ) as response:
            assert response.status == 202
            assert await response.json() == {"queued": 1}
        assert await bob_stream.next_json("order_created", WAIT) == {"order_no": "123"}
        # A broadcast from B reaches everyone, on both processes; the events stream keeps its
        # order, so once alice and carol have it, they would have had the push too.
        async with session.post(
            f"{b.url}/api/broadcast",
            headers=service,
            json={"event": "maintenance", "data": {"at": "22:00"}},
        ) as response:
            assert response.status == 202
            assert await response.json() == {"queued": 3}
        for stream in (alice_stream, bob_stream, carol_stream):
            assert await stream.next_json("maintenance", WAIT) == {"at": "22:00"}
        assert not events_of(alice_stream, "order_created")
        assert not events_of(carol_stream, "order_created")

        # carol opens and closes a second stream, on A: she was online all along (on B), so
        # nobody hears about it. (A reports presence changes in order, so once bob hears
        # that alice left A, he would have heard about carol's second stream.)
        carol_on_a = ChatClient(a.url, session)
        carol_on_a.username, carol_on_a.token = carol.username, carol.token
        (await carol_on_a.open_stream()).close()

        async def a_saw_it_close() -> bool:
            _, stats = await alice.request("GET", "/api/stats", headers=service)
            return stats["connections_closed"] == 1

        await until(a_saw_it_close, "A to see carol's second stream close")

        # Resume on the other process: alice leaves A, misses two messages, comes back on B.
        last_seen = message_ids(alice_stream)[-1]
        alice_stream.close()
        await until(
            lambda: [p for p in events_of(bob_stream, "presence") if p["online"] is False],
            "bob to hear that alice went offline",
        )
        carol_changes = [
            p["online"] for p in events_of(bob_stream, "presence") if p["user"] == "carol"
        ]
        assert carol_changes == [True], "carol's second stream was announced"
        missed = [(await bob.send(f"while alice is away {i}"))["id"] for i in range(2)]
        alice_on_b = ChatClient(b.url, session)
        alice_on_b.username, alice_on_b.token = alice.username, alice.token
        resumed = await alice_on_b.open_stream(last_event_id=last_seen)
        after = (await carol.send("after alice is back"))["id"]
        await until_message(resumed, after, "alice on B")
        assert_exactly_once_in_order(resumed, [*missed, after], "alice, resumed on B")
        resumed.close()
        bob_stream.close()
        carol_stream.close()


async def test_a_killed_process_loses_nothing(redis_server, server_process, tmp_path):
    a, b = await start_processes(server_process, tmp_path, redis_server, 2)
    async with client_session() as session:
        alice = await ChatClient(a.url, session).signup("alice")
        dave = await ChatClient(a.url, session).signup("dave")
        bob = await ChatClient(b.url, session).signup("bob")
        alice_stream = await alice.open_stream()
        dave_stream = await dave.open_stream()
        bob_stream = await bob.open_stream()

        async def everyone_online() -> bool:
            return await online(bob) == ["alice", "bob", "dave"]

        await until(everyone_online, "bob to see everyone online")

        before = [(await bob.send("one"))["id"], (await alice.send("two"))["id"]]
        await until_message(alice_stream, before[-1], "alice")
        last_seen = message_ids(alice_stream)[-1]

        a.kill()  # kill -9: no goodbye, no presence events from A
        await asyncio.wait_for(alice_stream.ended.wait(), WAIT)
        await asyncio.wait_for(dave_stream.ended.wait(), WAIT)
        during = [(await bob.send(f"while A is dead {i}"))["id"] for i in range(3)]

        # alice reconnects to B with her token from A and the last id she saw; dave never does.
        alice_on_b = ChatClient(b.url, session)
        alice_on_b.username, alice_on_b.token = alice.username, alice.token
        resumed = await alice_on_b.open_stream(last_event_id=last_seen)
        after = (await bob.send("after the reconnection"))["id"]
        await until_message(resumed, after, "alice on B")
        assert_exactly_once_in_order(alice_stream, before, "alice on A")
        assert_exactly_once_in_order(resumed, [*during, after], "alice after reconnecting")
        await until_message(bob_stream, after, "bob")
        assert_exactly_once_in_order(bob_stream, [*before, *during, after], "bob")

        # A's users drop out of the online list once its deadline passes, except alice, who
        # is on B now; bob hears that dave went offline.
        async def only_alice_and_bob() -> bool:
            return await online(bob) == ["alice", "bob"]

        await until(only_alice_and_bob, "dave to leave the online list", PRESENCE_TTL * 3 + WAIT)
        await until(
            lambda: {"user": "dave", "online": False} in events_of(bob_stream, "presence"),
            "bob to hear that dave went offline",
        )
        resumed.close()
        bob_stream.close()


async def test_a_redis_restart_loses_no_acknowledged_message(
    redis_server, server_process, tmp_path
):
    a, b = await start_processes(server_process, tmp_path, redis_server, 2)
    async with client_session() as session:
        alice = await ChatClient(a.url, session).signup("alice")
        bob = await ChatClient(b.url, session).signup("bob")
        alice_stream = await alice.open_stream()
        bob_stream = await bob.open_stream()

        acknowledged: list[int] = []
        refused: list[tuple[int, object]] = []
        stop = asyncio.Event()

        async def keep_sending() -> None:
            timeout = aiohttp.ClientTimeout(total=WAIT)  # a POST must never hang
            i = 0
            while not stop.is_set():
                sender = (alice, bob)[i % 2]
                status, body = await sender.request(
                    "POST", "/api/messages", json={"text": f"message {i}"}, timeout=timeout
                )
                if status == 201:
                    acknowledged.append(body["id"])
                else:
                    refused.append((status, body))
                i += 1
                await asyncio.sleep(0.01)

        sender = asyncio.create_task(keep_sending())
        try:
            await until(lambda: len(acknowledged) >= 10, "messages before the restart")
            redis_server.stop()
            # Down long enough for several POSTs to fail and for the readers to back off, so
            # that messages are acknowledged after the restart before the readers are back.
            refused_before = len(refused)
            await until(lambda: len(refused) >= refused_before + 3, "POSTs to fail while down")
            redis_server.start()
            acknowledged_before = len(acknowledged)
            await until(
                lambda: len(acknowledged) >= acknowledged_before + 10, "messages after the restart"
            )
        finally:
            stop.set()
            await sender
        assert refused, "no POST failed: Redis was not really down"
        for status, body in refused:
            assert status == 503 and body["error"] == "redis_unavailable", (status, body)

        last = (await alice.send("the end"))["id"]
        for stream, who in [(alice_stream, "alice"), (bob_stream, "bob")]:
            await until_message(stream, last, who)
            received = message_ids(stream)
            assert len(received) == len(set(received)), f"{who} got duplicates: {received}"
            assert received == sorted(received), f"{who} got messages out of order: {received}"
            lost = sorted(set(acknowledged) - set(received))
            assert not lost, f"{who} never got acknowledged messages {lost}"
        alice_stream.close()
        bob_stream.close()


def test_without_redis_at_start_up_exit_code_2(tmp_path):
    unreachable = f"redis://127.0.0.1:{free_port()}/0"
    options = ["--port", str(free_port()), "--data-dir", str(tmp_path / "data")]
    result = subprocess.run(
        [sys.executable, "-m", "my_chat", *options, "--redis", unreachable],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "MY_CHAT_JWT_SECRET": JWT_SECRET},
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert f"cannot reach Redis at {unreachable}" in output
    assert "Traceback" not in output


async def test_reconnecting_while_messages_flow(redis_server, server_process, tmp_path):
    """Resume again and again on A while B keeps accepting messages: no gap, no duplicate.

    A message B has just stored may not have reached A's reader yet when A replays the
    history to a reconnecting client; it must then come once, not by both roads.
    """
    a, b = await start_processes(server_process, tmp_path, redis_server, 2)
    async with client_session() as session:
        alice = await ChatClient(a.url, session).signup("alice")
        bob = await ChatClient(b.url, session).signup("bob")
        acknowledged: list[int] = []
        stop = asyncio.Event()

        async def keep_sending() -> None:
            while not stop.is_set():
                acknowledged.append((await bob.send(f"message {len(acknowledged)}"))["id"])

        senders = [asyncio.create_task(keep_sending()) for _ in range(3)]
        received: list[int] = []
        last_seen = 0
        try:
            for _ in range(50):
                stream = await alice.open_stream(last_event_id=last_seen)
                await until(lambda: message_ids(stream), "a message on the resumed stream")  # noqa: B023
                stream.close()
                await asyncio.wait_for(stream.ended.wait(), WAIT)
                received += message_ids(stream)
                last_seen = received[-1]
        finally:
            stop.set()
            await asyncio.gather(*senders)
        duplicates = sorted({i for i in received if received.count(i) > 1})
        assert not duplicates, f"resumed streams repeated messages {duplicates}"
        assert received == sorted(received), "resumed streams went back in time"
        expected = [i for i in sorted(acknowledged) if i <= received[-1]]
        assert received == expected, "resumed streams skipped messages"


async def test_without_a_jwt_secret_every_process_shares_the_one_in_redis(
    redis_server, server_process, tmp_path
):
    """Issue 11, item 12: a token from one process is good on the other (no 401 lottery)."""
    env = {"MY_CHAT_PRESENCE_TTL": str(PRESENCE_TTL)}
    saved = os.environ.pop("MY_CHAT_JWT_SECRET", None)
    try:
        a, b = await asyncio.gather(
            *(
                asyncio.to_thread(
                    server_process,
                    "--redis",
                    redis_server.url,
                    data_dir=tmp_path / f"node-{i}",
                    env=env,
                )
                for i in range(2)
            )
        )
    finally:
        if saved is not None:
            os.environ["MY_CHAT_JWT_SECRET"] = saved
    async with client_session() as session:
        alice = await ChatClient(a.url, session).signup("alice")
        on_b = ChatClient(b.url, session)
        on_b.token = alice.token
        status, body = await on_b.request("GET", "/api/me")
        assert (status, body) == (200, {"username": "alice"})
        stream = await on_b.open_stream()
        await alice.send("from A, read on B")
        assert (await stream.next_json("message"))["text"] == "from A, read on B"
        stream.close()
    client = Redis.from_url(redis_server.url)
    try:
        assert await client.get("my_chat:jwt_secret")
    finally:
        await client.aclose()
    for node in (a, b):
        assert not (node.data_dir / "jwt_secret").exists()


async def test_look_alike_names_in_redis_mode(redis_server, server_process, tmp_path):
    """Issue 11, item 7, across processes, with an account made before skeletons existed."""
    client = Redis.from_url(redis_server.url)
    try:
        # An older my_chat wrote "b0b" without a skeleton.
        record = {"username": "b0b", "password_hash": hash_password(PASSWORD), "created": 1}
        await client.hset("my_chat:accounts", "b0b", json.dumps(record))
    finally:
        await client.aclose()
    a, b = await start_processes(server_process, tmp_path, redis_server, 2)
    async with client_session() as session:
        await ChatClient(a.url, session).signup("alice")
        for url, name in ((b.url, "aIice"), (a.url, "A1ICE"), (b.url, "bob"), (a.url, "BOB")):
            status, body = await ChatClient(url, session).request(
                "POST", "/api/signup", json={"username": name, "password": PASSWORD}
            )
            assert status == 409 and body["error"] == "username_taken", name
        assert (await ChatClient(b.url, session).login("b0b")).username == "b0b"
        await ChatClient(b.url, session).signup("alicia")


async def test_group_commit_across_processes_every_message_once_in_order(
    redis_server, server_process, tmp_path
):
    """Many senders at once on both processes: their appends go to Redis in pipelines, and
    every acknowledged message reaches every stream of both processes once, in id order."""
    a, b = await start_processes(server_process, tmp_path, redis_server, 2)
    async with client_session() as session:
        senders = [
            await ChatClient(process.url, session).signup(f"sender{n}")
            for n, process in enumerate([a, b] * 4)
        ]
        listeners = [
            await ChatClient(process.url, session).signup(f"listener{n}")
            for n, process in enumerate([a, b])
        ]
        streams = [await listener.open_stream() for listener in listeners]

        async def send_some(client: ChatClient, n: int) -> list[int]:
            return [(await client.send(f"{n}:{k}"))["id"] for k in range(12)]

        sent = await asyncio.gather(*(send_some(c, n) for n, c in enumerate(senders)))
        acknowledged = sorted(i for ids in sent for i in ids)
        assert len(set(acknowledged)) == 8 * 12
        assert all(ids == sorted(ids) for ids in sent), "a sender's ids went back"
        for who, stream in zip(["a", "b"], streams, strict=True):
            await until_message(stream, acknowledged[-1], f"the listener on {who}")
            assert_exactly_once_in_order(stream, acknowledged, f"the listener on {who}")
            stream.close()


async def test_a_pipelined_group_with_one_bad_message_fails_only_that_one(
    redis_server, make_server
):
    """Below the API's checks (which answer 400 first): a text Redis's client cannot encode
    stops the whole pipeline, and the broker then stores the group one by one."""
    async with make_server(redis_url=redis_server.url) as server:
        broker = server.context.broker
        bob = await server.user("bob")
        stream = await bob.open_stream()
        texts = ["a", "b", "x\ud800", "c", "d"]
        outcomes = await asyncio.gather(
            *(broker.publish("alice", text, None) for text in texts), return_exceptions=True
        )
        assert isinstance(outcomes[2], UnicodeEncodeError), outcomes
        stored = [o for n, o in enumerate(outcomes) if n != 2]
        assert all(isinstance(o, Message) for o in stored), outcomes
        assert [m.text for m in stored] == ["a", "b", "c", "d"]
        assert [m.id for m in stored] == sorted(m.id for m in stored)
        after = await bob.send("after the bad one")
        await until_message(stream, after["id"], "bob")
        assert_exactly_once_in_order(stream, [*(m.id for m in stored), after["id"]], "bob")
        stream.close()


async def test_append_pipelined_gives_ids_in_row_order_even_after_a_script_flush(redis_server):
    client = Redis.from_url(redis_server.url)
    try:
        store = RedisMessageStore(client, retention_count=0)
        first = await store.append("alice", "one", None, 1)
        await client.script_flush()  # as after a Redis restart: the script must be loaded again
        rows = [("bob", "two", None, 2), ("carol", "three", "bob", 3), ("bob", "four", None, 4)]
        group = await store.append_pipelined(rows)
        assert [m.id for m in group] == [first.id + 1, first.id + 2, first.id + 3]
        assert [(m.sender, m.text, m.to, m.timestamp) for m in group] == rows
        assert await store.after(0, "bob", 10) == [first, *group]
    finally:
        await client.aclose()


async def test_a_connect_storm_opens_every_stream(redis_server, server_process, tmp_path):
    """More streams open at once than a process's Redis pool has connections (100): each
    Redis command waits its turn, and the streams opening together share one read of who is
    online, so none fails. (redis-py's default pool refused the 101st command, and streams
    were cut right after their 200.)"""
    users, per_user = 10, 40
    env = {"MY_CHAT_JWT_SECRET": JWT_SECRET, "MY_CHAT_PRESENCE_TTL": str(PRESENCE_TTL)}
    caps = ("--max-streams-per-user", "0", "--signup-per-minute", "0")
    process = await asyncio.to_thread(
        server_process, "--redis", redis_server.url, *caps, data_dir=tmp_path / "chat", env=env
    )
    async with client_session() as session:
        clients = [await ChatClient(process.url, session).signup(f"user{i}") for i in range(users)]
        streams = await asyncio.gather(
            *(clients[i % users].open_stream() for i in range(users * per_user))
        )
        try:
            for index, stream in enumerate(streams):
                listed = await stream.next_json("online", timeout=WAIT)
                assert clients[index % users].username in listed["users"], listed
            # Each stream is live: a message reaches all of them, once.
            sent = (await clients[0].send("after the storm"))["id"]
            for index, stream in enumerate(streams):
                await until_message(stream, sent, f"stream {index}")
                assert message_ids(stream).count(sent) == 1
        finally:
            for stream in streams:
                stream.close()
        assert "Traceback" not in process.log(), process.log()[-3000:]


async def test_rate_limits_are_shared_by_every_process_and_outlive_a_restart(
    redis_server, server_process, tmp_path
):
    """With a bucket in each process, two processes would let a user send twice the burst,
    guess passwords twice as fast, and a restart would refill every bucket. In Redis mode
    there is one bucket per user (or address and name) for every process."""
    env = {"MY_CHAT_JWT_SECRET": JWT_SECRET, "MY_CHAT_PRESENCE_TTL": str(PRESENCE_TTL)}
    limits = ("--redis", redis_server.url, "--message-burst", "4", "--message-rate", "0.01")

    def start(name: str):
        return server_process(*limits, data_dir=tmp_path / name, env=env)

    a, b = await asyncio.gather(asyncio.to_thread(start, "a"), asyncio.to_thread(start, "b"))
    async with client_session() as session:
        on_a = await ChatClient(a.url, session).signup("alice")
        on_b = ChatClient(b.url, session)
        on_b.token = on_a.token
        answers = [
            await (on_a, on_b)[i % 2].request("POST", "/api/messages", json={"text": f"m{i}"})
            for i in range(6)
        ]
        assert [status for status, _ in answers] == [201] * 4 + [429] * 2, answers
        assert answers[-1][1]["error"] == "rate_limited"
        bob = await ChatClient(b.url, session).signup("bob")
        await bob.send("bob has a bucket of his own")

        # A restart of A: the bucket is in Redis, still empty; then normal use goes on.
        a.stop()
        a = await asyncio.to_thread(start, "a")
        on_a.base_url = a.url
        status, body = await on_a.request("POST", "/api/messages", json={"text": "again"})
        assert (status, body["error"]) == (429, "rate_limited")
        assert (await on_a.request("GET", "/api/me"))[0] == 200

        # Failed sign-ins: 10 a minute per address and name (the default), on both together.
        statuses = []
        for i in range(12):
            url = (a.url, b.url)[i % 2]
            async with session.post(
                f"{url}/api/login", json={"username": "bob", "password": "wrong password"}
            ) as response:
                statuses.append(response.status)
        assert statuses == [401] * 10 + [429] * 2, statuses
        await bob.send("bob's own token still works")

    client = Redis.from_url(redis_server.url)
    try:
        keys = sorted(key.decode() for key in await client.keys("my_chat:rate:*"))
        ttls = [await client.pttl(key) for key in keys]
    finally:
        await client.aclose()
    assert "my_chat:rate:messages:alice" in keys, keys
    assert all(ttl > 0 for ttl in ttls), dict(zip(keys, ttls, strict=True))  # none kept forever


async def test_the_redis_bucket_refills_on_redis_clock_and_peek_takes_nothing(redis_server):
    from my_chat.redis_ratelimit import RedisRateLimiter
    from my_chat.redis_store import RedisUnavailable

    client = Redis.from_url(redis_server.url)
    try:
        limiter = RedisRateLimiter(client, "test", burst=2, rate=20.0)  # a token per 50 ms
        assert [await limiter.retry_after("k") for _ in range(2)] == [0.0, 0.0]
        wait = await limiter.retry_after("k")
        assert 0 < wait <= 0.05, wait
        assert 0 < await limiter.peek("k") <= 0.05  # looking spends nothing...
        assert await limiter.peek("other") == 0.0
        await asyncio.sleep(wait + 0.03)
        assert await limiter.retry_after("k") == 0.0  # ...so the refill is not delayed by it
        assert 0 < await client.pttl("my_chat:rate:test:k") <= 2 / 20 * 1000 + 1000
        assert await client.exists("my_chat:rate:test:other") == 0  # peek wrote nothing
        off = RedisRateLimiter(client, "off", burst=0, rate=1.0)
        assert await off.retry_after("k") == 0.0 and await client.exists("my_chat:rate:off:k") == 0
        redis_server.stop()
        with pytest.raises(RedisUnavailable) as refused:
            await limiter.retry_after("k")
        assert refused.value.status == 503
        redis_server.start()
        await until(lambda: _answers(limiter), "the limiter to work again after Redis came back")
    finally:
        await client.aclose()


async def _answers(limiter) -> bool:
    from my_chat.redis_store import RedisUnavailable

    try:
        await limiter.peek("k")
    except RedisUnavailable:
        return False
    return True


async def test_every_call_redis_serves_is_a_documented_503_while_redis_is_down_then_works(
    redis_server, server_process, tmp_path
):
    """What the OpenAPI document promises in Redis mode: a JSON 503 with Retry-After, never a
    500 or a hang, from every operation that needs Redis; and normal use once it is back."""
    from my_chat.openapi import document

    (node,) = await start_processes(server_process, tmp_path, redis_server, 1)
    service = {"Authorization": f"Bearer {SERVICE_KEY}"}
    async with client_session() as session:
        alice = await ChatClient(node.url, session).signup("alice")
        bob = await ChatClient(node.url, session).signup("bob")
        new_password = {"old_password": PASSWORD, "new_password": "another password"}
        # Those that end sessions last: once Redis is back, each one works for real.
        calls = [
            ("post", "/api/signup", None, {"username": "carol", "password": PASSWORD}),
            ("post", "/api/login", None, {"username": "alice", "password": PASSWORD}),
            ("post", "/api/messages", alice.auth, {"text": "while Redis is down"}),
            ("get", "/api/history", alice.auth, None),
            ("get", "/api/online", alice.auth, None),
            ("post", "/api/push", service, {"user_ids": ["bob"], "event": "note", "data": 1}),
            ("post", "/api/broadcast", service, {"event": "note", "data": 1}),
            ("post", "/api/password", alice.auth, new_password),
            ("post", "/api/logout-all", bob.auth, None),
            ("post", "/api/logout", alice.auth, None),
        ]

        async def call(method, path, headers, body):
            timeout = aiohttp.ClientTimeout(total=WAIT)  # a request must never hang
            async with session.request(
                method, node.url + path, headers=headers, json=body, timeout=timeout
            ) as response:
                answer = await response.json() if response.status != 204 else None
                return response.status, response.headers.get("Retry-After"), answer

        redis_server.stop()
        for method, path, headers, body in calls:
            status, retry_after, answer = await call(method, path, headers, body)
            assert (status, answer["error"]) == (503, "redis_unavailable"), (path, answer)
            assert retry_after == "1", path
            assert "503" in document()["paths"][path][method]["responses"], path
        redis_server.start()
        for method, path, headers, body in calls:
            await until(
                lambda m=method, p=path, h=headers, b=body: _succeeds(call(m, p, h, b)),
                f"{path} to work again once Redis is back",
            )


async def _succeeds(answer) -> bool:
    status, _, _ = await answer
    return status < 300
