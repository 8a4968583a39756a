"""Streams that resume from the same id share one read of the store (LatestWindow.after).

Each stream must still get exactly what it missed: every message after its Last-Event-ID
that its user may see, once, in order, while messages keep arriving; the shared read is
topped up from the messages delivered since it was made.
"""

from __future__ import annotations

import asyncio
from collections import Counter

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
    stream = await carol.open_stream(last_event_id=resume_from)
    try:
        assert await ids_until(stream, last) == await visible_after(carol, resume_from)
    finally:
        stream.close()


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

    again = await alice.open_stream(last_event_id=resume_from)
    try:
        assert await ids_until(again, last) == await visible_after(alice, resume_from)
    finally:
        again.close()
    assert store_reads[("alice", resume_from)] == 2


async def test_after_retention_a_resume_reads_the_store_again(server, store_reads):
    alice, bob = await server.user("alice"), await server.user("bob")
    resume_from = (await alice.send("first"))["id"]
    await bob.send("second")
    first = await alice.open_stream(last_event_id=resume_from)
    first.close()

    server.context.broker.latest_window.reset()  # what the retention sweep does
    last = (await bob.send("third"))["id"]
    again = await alice.open_stream(last_event_id=resume_from)
    try:
        assert await ids_until(again, last) == await visible_after(alice, resume_from)
    finally:
        again.close()
    assert store_reads[("alice", resume_from)] == 2
