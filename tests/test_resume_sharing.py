"""Streams that resume from the same id share one read of the store (LatestWindow.after).

Each stream must still get exactly what it missed: every message after its Last-Event-ID
that its user may see, once, in order, while messages keep arriving; the shared read is
topped up from the messages delivered since it was made.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import aiohttp
import pytest

from my_chat.history import LatestWindow


@pytest.fixture
def store_reads(server, monkeypatch: pytest.MonkeyPatch) -> Counter:
    """How often the store itself was asked for ``after(last_id, viewer)``, by (viewer, id)."""
    store = server.context.store.uncounted
    reads: Counter = Counter()
    original = type(store).after

    async def counting(self, last_id: int, viewer: str, limit: int):
        reads[(viewer, last_id)] += 1
        return await original(self, last_id, viewer, limit)

    monkeypatch.setattr(type(store), "after", counting)
    return reads


async def visible_after(client, last_id: int) -> list[int]:
    """The ids of every message after ``last_id`` that ``client`` may see (the store's word)."""
    status, body = await client.request("GET", "/api/history?limit=100")
    assert status == 200, body
    return [m["id"] for m in body["messages"] if m["id"] > last_id]


async def ids_until(stream, last: int) -> list[int]:
    ids: list[int] = []
    while not ids or ids[-1] < last:
        ids.append((await stream.next_json("message"))["id"])
    return ids


async def assert_resume_gets_what_it_missed(client, resume_from: int, last: int) -> None:
    """A new stream of ``client`` resuming after ``resume_from`` gets, up to ``last``,
    exactly the messages the store says it may see, in order."""
    stream = await client.open_stream(last_event_id=resume_from)
    try:
        assert await ids_until(stream, last) == await visible_after(client, resume_from)
    finally:
        stream.close()


async def test_resumes_from_one_id_share_a_read_and_miss_nothing(server, store_reads):
    alice, bob, carol = [await server.user(name) for name in ("alice", "bob", "carol")]
    resume_from = (await alice.send("seen by everyone"))["id"]
    await bob.send("to carol, before", to="carol")
    await bob.send("to alice, before", to="alice")
    await alice.send("room, before")

    async def keep_sending() -> None:
        for n in range(30):
            await bob.send(f"room {n}")
            await bob.send(f"carol {n}", to="carol")
            await carol.send(f"alice {n}", to="alice")
            await asyncio.sleep(0)

    sending = asyncio.create_task(keep_sending())
    streams = []
    for _ in range(8):  # opened while messages are being delivered
        streams.append(await alice.open_stream(last_event_id=resume_from))
        await asyncio.sleep(0.005)
    await sending
    last = (await bob.send("the end"))["id"]
    try:
        expected = await visible_after(alice, resume_from)
        assert expected[-1] == last
        for stream in streams:
            assert await ids_until(stream, last) == expected
    finally:
        for stream in streams:
            stream.close()
    assert store_reads[("alice", resume_from)] == 1  # one read for all eight

    # The server is whole: carol resumes from the same id and gets her own view.
    await assert_resume_gets_what_it_missed(carol, resume_from, last)


async def test_a_shared_read_older_than_the_recent_list_is_made_again(
    server, store_reads, monkeypatch
):
    monkeypatch.setattr(LatestWindow, "RECENT", 2)
    alice, bob = await server.user("alice"), await server.user("bob")
    resume_from = (await alice.send("first"))["id"]
    await bob.send("second")

    first = await alice.open_stream(last_event_id=resume_from)
    first.close()
    for n in range(6):  # more than 2 * RECENT: the deliveries after the read are dropped
        await bob.send(f"later {n}", to="alice" if n % 2 else None)
    last = (await bob.send("last"))["id"]

    await assert_resume_gets_what_it_missed(alice, resume_from, last)
    assert store_reads[("alice", resume_from)] == 2


async def test_after_retention_a_resume_reads_the_store_again(server, store_reads):
    alice, bob = await server.user("alice"), await server.user("bob")
    resume_from = (await alice.send("first"))["id"]
    await bob.send("second")
    first = await alice.open_stream(last_event_id=resume_from)
    first.close()

    server.context.broker.latest_window.reset()  # what the retention sweep does
    last = (await bob.send("third"))["id"]
    await assert_resume_gets_what_it_missed(alice, resume_from, last)
    assert store_reads[("alice", resume_from)] == 2


async def test_long_answers_are_not_kept_and_the_kept_ones_are_bounded(
    server, store_reads, monkeypatch
):
    """Resumes from ids far back, made up by a client, cannot fill the memory."""
    monkeypatch.setattr(LatestWindow, "MAX_SHARED_BATCH", 3)
    monkeypatch.setattr(LatestWindow, "MAX_KEPT_MESSAGES", 5)
    alice, bob = await server.user("alice"), await server.user("bob")
    ids = [(await bob.send(f"m{n}"))["id"] for n in range(6)]
    window = server.context.broker.latest_window

    # Four messages after ids[1]: longer than MAX_SHARED_BATCH (though within the budget),
    # so read each time.
    for _ in range(2):
        await assert_resume_gets_what_it_missed(alice, ids[1], ids[-1])
    assert store_reads[("alice", ids[1])] == 2

    # Three, then two: kept (5 in all); one more kept answer goes past 5, and all are dropped.
    for resume_from in (ids[2], ids[3], ids[3], ids[4]):
        await assert_resume_gets_what_it_missed(alice, resume_from, ids[-1])
    assert store_reads[("alice", ids[3])] == 1  # the second resume shared the first one's read
    assert window._kept_messages == 0 and not window._resume_reads
    await assert_resume_gets_what_it_missed(alice, ids[2], ids[-1])
    assert store_reads[("alice", ids[2])] == 2  # dropped with the rest: read again


async def test_a_failed_read_is_not_shared_and_the_next_resume_works(
    server, store_reads, monkeypatch
):
    """The store fails: that stream is cut, and the next resume reads afresh."""
    alice, bob = await server.user("alice"), await server.user("bob")
    resume_from = (await alice.send("first"))["id"]
    last = (await bob.send("second"))["id"]
    store = server.context.store.uncounted
    counting = type(store).after
    # Twice: aiohttp's client sends a GET again, once, when the server closes without an answer.
    failures = [OSError("disk gone"), OSError("disk gone")]

    async def failing_once(self, last_id: int, viewer: str, limit: int):
        if failures:
            raise failures.pop()
        return await counting(self, last_id, viewer, limit)

    monkeypatch.setattr(type(store), "after", failing_once)
    # The head waits for the first frames, so the stream is cut before any answer.
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await alice.open_stream(last_event_id=resume_from)
    assert not failures and not server.context.broker.latest_window._resume_reads

    await assert_resume_gets_what_it_missed(alice, resume_from, last)
    assert store_reads[("alice", resume_from)] == 1  # the read after the failure
    status, body = await alice.request("GET", "/api/me")
    assert status == 200, body
