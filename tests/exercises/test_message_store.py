"""Exercise 3: message persistence. Run: python -m exercises check message_store"""

from __future__ import annotations

import sqlite3

import pytest

from my_chat.events import Message


@pytest.fixture
def message_store(impl):
    return impl.module("message_store")


@pytest.fixture
async def store(message_store, tmp_path):
    opened = await message_store.MessageStore.open(str(tmp_path / "chat.sqlite3"))
    yield opened
    await opened.close()


async def fill(store, count: int, sender: str = "alice", to: str | None = None) -> list[Message]:
    return [await store.append(sender, f"{sender} {n}", to, 1_000 + n) for n in range(count)]


async def test_append_returns_the_stored_message_with_growing_ids(store):
    first = await store.append("alice", "hello", None, 1234)
    second = await store.append("bob", "hi", "alice", 1235)
    assert isinstance(first, Message)
    assert first == Message(id=first.id, sender="alice", to=None, text="hello", timestamp=1234)
    assert second.to == "alice" and second.id > first.id >= 1


async def test_a_message_is_on_disk_when_append_returns(store, tmp_path):
    message = await store.append("alice", "durable", None, 1)
    # A separate connection, as another process would have.
    with sqlite3.connect(tmp_path / "chat.sqlite3") as other:
        rows = other.execute("SELECT COUNT(*) FROM messages WHERE id = ?", (message.id,))
        assert rows.fetchone() == (1,)


async def test_history_survives_closing_and_reopening(message_store, tmp_path):
    path = str(tmp_path / "chat.sqlite3")
    store = await message_store.MessageStore.open(path)
    sent = await fill(store, 3)
    await store.close()
    reopened = await message_store.MessageStore.open(path)
    try:
        assert await reopened.after(0, "alice", 10) == sent
        newer = await reopened.append("alice", "after restart", None, 5)
        assert newer.id > sent[-1].id
    finally:
        await reopened.close()


async def test_after_returns_what_came_later_in_order_up_to_the_limit(store):
    sent = await fill(store, 10)
    assert await store.after(sent[3].id, "bob", 100) == sent[4:]
    assert await store.after(sent[3].id, "bob", 2) == sent[4:6]
    assert await store.after(sent[-1].id, "bob", 100) == []
    assert await store.after(0, "bob", 100) == sent


async def test_before_and_latest_page_backwards_oldest_first(store):
    sent = await fill(store, 10)
    assert await store.latest("bob", 3) == sent[-3:]
    assert await store.before(None, "bob", 3) == sent[-3:]
    assert await store.before(sent[5].id, "bob", 3) == sent[2:5]
    assert await store.before(sent[1].id, "bob", 10) == sent[:1]
    assert await store.before(sent[0].id, "bob", 10) == []


async def test_private_messages_are_only_for_their_two_users(store):
    room = await store.append("alice", "room", None, 1)
    private = await store.append("alice", "secret", "bob", 2)
    reply = await store.append("bob", "secret reply", "alice", 3)
    later = await store.append("carol", "room again", None, 4)
    for viewer in ("alice", "bob"):
        assert await store.after(0, viewer, 10) == [room, private, reply, later]
        assert await store.latest(viewer, 10) == [room, private, reply, later]
    assert await store.after(0, "carol", 10) == [room, later]
    assert await store.latest("carol", 10) == [room, later]
    assert await store.before(later.id, "carol", 10) == [room]
    # The limit counts what the viewer may see, not what is stored.
    assert await store.latest("carol", 1) == [later]
    assert await store.after(room.id, "carol", 1) == [later]


async def test_prune_by_count_keeps_the_newest(store):
    sent = await fill(store, 10)
    assert await store.prune(4, None) == 6
    assert await store.after(0, "alice", 100) == sent[-4:]
    assert await store.prune(4, None) == 0


async def test_prune_by_age(store):
    old = [await store.append("alice", f"old {n}", None, 1_000 + n) for n in range(3)]
    new = [await store.append("alice", f"new {n}", None, 9_000 + n) for n in range(2)]
    assert await store.prune(0, 5_000) == len(old)
    assert await store.after(0, "alice", 100) == new


async def test_ids_never_come_back_after_deletes(store):
    sent = await fill(store, 3)
    await store.prune(1, None)
    await store.prune(0, 10**15)  # everything is older than that
    assert await store.after(0, "alice", 10) == []
    again = await store.append("alice", "again", None, 1)
    assert again.id > sent[-1].id


async def test_a_failed_append_is_rolled_back_and_writing_goes_on(store, tmp_path):
    # UTF-8 cannot encode a lone surrogate, so SQLite refuses this text inside the INSERT.
    with pytest.raises(UnicodeEncodeError):
        await store.append("alice", "x\ud800", None, 1)
    assert await store.after(0, "alice", 10) == []  # a read after the failure
    # Another connection (another process) writes meanwhile: no lock was left behind.
    with sqlite3.connect(tmp_path / "chat.sqlite3", timeout=1) as other:
        other.execute(
            "INSERT INTO messages (sender, recipient, text, timestamp)"
            " VALUES ('bob', NULL, 'hi', 2)"
        )
    fine = await store.append("alice", "fine", None, 3)
    assert [m.text for m in await store.after(0, "alice", 10)] == ["hi", "fine"]
    assert fine.text == "fine"
