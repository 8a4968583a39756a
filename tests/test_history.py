"""History, resume with Last-Event-ID, and private messages (in-process server, real SQLite)."""

from __future__ import annotations

import asyncio
import json

from tests.test_stream import _silent_reader, wait_for


async def test_a_new_stream_gets_the_latest_messages_then_live_ones(make_server):
    async with make_server(history_on_connect=3) as server:
        alice = await server.user("alice")
        sent = [await alice.send(f"m{n}") for n in range(5)]
        stream = await alice.open_stream()
        replayed = await stream.messages(3)
        assert [m["id"] for m in replayed] == [m["id"] for m in sent[-3:]]
        live = await alice.send("live")
        assert (await stream.next_json("message"))["id"] == live["id"]
        stream.close()


async def test_resume_after_last_event_id_header_or_query(server):
    alice = await server.user("alice")
    sent = [await alice.send(f"m{n}") for n in range(6)]
    stream = await alice.open_stream(last_event_id=sent[2]["id"])
    assert [m["id"] for m in await stream.messages(3)] == [m["id"] for m in sent[3:]]
    stream.close()

    async with server.session.get(
        f"{server.url}/sse?last_event_id={sent[4]['id']}", headers=alice.auth
    ) as response:
        body = await response.content.readuntil(b'"text":"m5"')
        assert b'"text":"m4"' not in body and b'"text":"m3"' not in body

    # The header wins over the query parameter: it is what a browser's own reconnect sends.
    async with server.session.get(
        f"{server.url}/sse?last_event_id=0",
        headers={**alice.auth, "Last-Event-ID": str(sent[4]["id"])},
    ) as response:
        body = await response.content.readuntil(b'"text":"m5"')
        assert b'"text":"m0"' not in body


async def test_resume_replays_everything_missed_even_past_one_page(make_server):
    async with make_server(replay_max=0) as server:  # no cap: see test_hardening for it
        alice = await server.user("alice")
        first = await alice.send("first")
        ids = [(await alice.send(f"m{n}"))["id"] for n in range(1200)]
        stream = await alice.open_stream(last_event_id=first["id"])
        got = [m["id"] for m in await stream.messages(1200)]
        assert got == ids
        stream.close()


async def test_messages_posted_during_a_replay_are_neither_lost_nor_doubled(server):
    alice, bob = await server.user("alice"), await server.user("bob")
    for n in range(600):
        await alice.send(f"old {n}")

    async def post_many() -> list[int]:
        return [(await bob.send(f"new {n}"))["id"] for n in range(150)]

    posting = asyncio.create_task(post_many())
    await asyncio.sleep(0.005)
    stream = await alice.open_stream(last_event_id=0)
    new_ids = await posting
    expected_last = new_ids[-1]
    got: list[int] = []
    async with asyncio.timeout(20):
        while not got or got[-1] != expected_last:
            got.append((await stream.next_json("message"))["id"])
    assert got == sorted(set(got)), "duplicates or out of order"
    assert got == list(range(1, expected_last + 1))
    stream.close()


async def test_private_messages_reach_exactly_the_two_users(server):
    alice, bob, carol = [await server.user(n) for n in ("alice", "bob", "carol")]
    alice_phone, alice_laptop = await alice.open_stream(), await alice.open_stream()
    bob_stream, carol_stream = await bob.open_stream(), await carol.open_stream()

    private = await alice.send("secret for bob", to="bob")
    assert private["to"] == "bob" and private["from"] == "alice"
    public = await alice.send("hello room")
    for stream in (alice_phone, alice_laptop, bob_stream):
        assert [m["id"] for m in await stream.messages(2)] == [private["id"], public["id"]]
    # carol got the public message, so had the private one been sent to her, it came first.
    assert (await carol_stream.next_json("message"))["id"] == public["id"]

    # Not on replay either, and not in history.
    replay_carol = await carol.open_stream(last_event_id=0)
    assert [m["id"] for m in await replay_carol.messages(1)] == [public["id"]]
    _status, history = await carol.request("GET", "/api/history")
    assert [m["id"] for m in history["messages"]] == [public["id"]]
    _status, history = await bob.request("GET", "/api/history")
    assert [m["id"] for m in history["messages"]] == [private["id"], public["id"]]
    replay_bob = await bob.open_stream(last_event_id=0)
    assert [m["id"] for m in await replay_bob.messages(2)] == [private["id"], public["id"]]

    texts = [e.data for s in (carol_stream, replay_carol) for e in s.received]
    assert not any("secret for bob" in text for text in texts)
    for stream in (alice_phone, alice_laptop, bob_stream, carol_stream, replay_carol, replay_bob):
        stream.close()


async def test_private_message_errors(server):
    alice = await server.user("alice")
    await server.user("Bob")
    status, body = await alice.request("POST", "/api/messages", json={"text": "x", "to": "zed"})
    assert (status, body["error"]) == (404, "unknown_recipient")
    status, body = await alice.request("POST", "/api/messages", json={"text": "x", "to": "alice"})
    assert (status, body["error"]) == (400, "self_message")
    status, body = await alice.request("POST", "/api/messages", json={"text": "x", "to": 7})
    assert (status, body["error"]) == (400, "invalid_recipient")
    message = await alice.send("hi", to="bob")  # names match regardless of case
    assert message["to"] == "Bob"


async def test_retention_keeps_the_newest(make_server):
    async with make_server(retention_count=5) as server:
        alice = await server.user("alice")
        ids = [(await alice.send(f"m{n}"))["id"] for n in range(12)]
        deleted = await server.context.store.prune(5, None)
        assert deleted == 7
        _status, body = await alice.request("GET", "/api/history?limit=50")
        assert [m["id"] for m in body["messages"]] == ids[-5:]
        newer = await alice.send("after pruning")
        assert newer["id"] == ids[-1] + 1  # ids never go back, even after deletes


async def test_a_slow_client_loses_latency_not_messages(make_server):
    async with make_server(buffer_limit=32 * 1024, replay_max=0) as server:
        alice, bob = await server.user("alice"), await server.user("bob")
        silent = await _silent_reader(server.url, bob.token)
        await wait_for(lambda: len(server.context.manager) == 1)
        big = "y" * 1800
        sent = []
        async with asyncio.timeout(30):
            while not server.context.manager.stats.slow_disconnects:
                sent.append((await alice.send(big + str(len(sent))))["id"])
        silent.close()
        # bob comes back with the last id he really read: none. Everything is replayed.
        resumed = await bob.open_stream(last_event_id=0)
        got = [m["id"] for m in await resumed.messages(len(sent), timeout=10)]
        assert got == sent
        resumed.close()


async def test_presence_sends_changes_and_a_new_stream_gets_the_list(server):
    alice, bob = await server.user("alice"), await server.user("bob")
    a = await alice.open_stream()
    b = await bob.open_stream()
    event = await a.next_json("presence")
    while event["user"] != "bob":
        event = await a.next_json("presence")
    assert event == {"user": "bob", "online": True}
    b.close()
    assert await a.next_json("presence") == {"user": "bob", "online": False}
    late = await bob.open_stream(wait_connected=False)
    assert await late.next_json("online") == {"users": ["alice", "bob"]}
    late.close()
    assert json.loads(json.dumps(event))
    a.close()
