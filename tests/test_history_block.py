"""The history block fresh streams share (history.LatestWindow), over real HTTP.

Whether a stream's history came from the shared block or from the store, it must be the
same: the latest messages that viewer may see, private ones included, oldest first.
"""

from __future__ import annotations

import asyncio

COUNT = 5


async def history_of(client) -> list[dict]:
    """What the store says ``client`` should get: the latest COUNT it may see."""
    status, body = await client.request("GET", f"/api/history?limit={COUNT}")
    assert status == 200, body
    return body["messages"]


async def fresh_history(client) -> list[dict]:
    stream = await client.open_stream()
    try:
        return await stream.messages(COUNT)
    finally:
        stream.close()


async def test_viewers_without_private_messages_share_one_block(make_server):
    async with make_server(history_on_connect=COUNT) as server:
        alice, bob, carol = [await server.user(name) for name in ("alice", "bob", "carol")]
        for n in range(COUNT + 2):
            await alice.send(f"room {n}")
        window = server.context.broker.latest_window
        assert window.block_for("bob") is not None  # served from the block, not the store
        for viewer in (alice, bob, carol):
            assert await fresh_history(viewer) == await history_of(viewer)
        block = window.block_for("carol")
        await bob.send("one more")
        assert window.block_for("carol") != block  # a new message makes a new block
        assert await fresh_history(carol) == await history_of(carol)


async def test_a_private_message_in_the_window_is_never_lost_nor_leaked(make_server):
    async with make_server(history_on_connect=COUNT) as server:
        alice, bob, carol = [await server.user(name) for name in ("alice", "bob", "carol")]
        for n in range(COUNT):
            await alice.send(f"room {n}")
        secret = await alice.send("for bob only", to="bob")
        for n in range(2):
            await carol.send(f"more {n}")
        window = server.context.broker.latest_window
        assert window.block_for("bob") is None and window.block_for("alice") is None
        assert window.block_for("carol") is not None
        bobs = await fresh_history(bob)
        assert secret["id"] in [m["id"] for m in bobs]
        assert bobs == await history_of(bob)
        assert await fresh_history(alice) == await history_of(alice)
        carols = await fresh_history(carol)
        assert secret["id"] not in [m["id"] for m in carols]
        assert carols == await history_of(carol)


async def test_after_a_restart_the_store_answers_until_the_window_was_seen_whole(make_server):
    async with make_server(history_on_connect=COUNT) as server:
        alice = await server.user("alice")
        await server.user("bob")
        for n in range(COUNT):
            await alice.send(f"before {n}")
        secret = await alice.send("for bob, before the restart", to="bob")
    async with make_server(history_on_connect=COUNT) as server:
        alice = await server.client().login("alice")
        bob = await server.client().login("bob")
        for n in range(COUNT - 1):
            await alice.send(f"after {n}")
        assert server.context.broker.latest_window.block_for("bob") is None
        bobs = await fresh_history(bob)
        assert secret["id"] in [m["id"] for m in bobs]
        assert bobs == await history_of(bob)
        await alice.send("the window is whole now")
        assert server.context.broker.latest_window.block_for("bob") is not None
        assert await fresh_history(bob) == await history_of(bob)


async def test_retention_empties_the_window(make_server):
    async with make_server(
        history_on_connect=COUNT, retention_count=COUNT + 1, retention_interval=0.05
    ) as server:
        alice = await server.user("alice")
        for n in range(COUNT + 3):
            await alice.send(f"room {n}")
        window = server.context.broker.latest_window
        async with asyncio.timeout(10):
            while window.block_for("alice") is not None:
                await asyncio.sleep(0.05)
        assert await fresh_history(alice) == await history_of(alice)


async def test_after_a_restart_each_viewers_answer_is_kept_until_the_next_message(make_server):
    async with make_server(history_on_connect=COUNT) as server:
        alice = await server.user("alice")
        await server.user("bob")
        await server.user("carol")
        for n in range(COUNT):
            await alice.send(f"before {n}")
        secret = await alice.send("for bob, before the restart", to="bob")
    async with make_server(history_on_connect=COUNT) as server:
        alice, bob, carol, dave = [
            await server.client().login(name) for name in ("alice", "bob", "carol")
        ] + [await server.user("dave")]
        window = server.context.broker.latest_window
        assert window.block_for("bob") is None  # nothing known yet: the store answers
        for viewer in (bob, carol, dave):
            assert await fresh_history(viewer) == await history_of(viewer)
        # Their next streams are served from what the store said, each their own history.
        bobs, carols, daves = (window.block_for(name) for name in ("bob", "carol", "dave"))
        assert bobs is not None and carols is not None and daves is not None
        assert bobs.frame is not carols.frame  # bob's holds the private message
        assert carols.frame is daves.frame  # the same room messages: one frame, shared
        bob_again = await fresh_history(bob)
        assert secret["id"] in [m["id"] for m in bob_again]
        assert bob_again == await history_of(bob)
        assert secret["id"] not in [m["id"] for m in await fresh_history(carol)]
        # A private message forgets its two people's answers only; a room message, all.
        await alice.send("for carol", to="carol")
        assert window.block_for("carol") is None and window.block_for("alice") is None
        assert window.block_for("bob") is bobs
        assert await fresh_history(carol) == await history_of(carol)
        await dave.send("to the room")
        assert all(window.block_for(name) is None for name in ("bob", "carol", "dave"))
        for viewer in (bob, carol, dave):
            assert await fresh_history(viewer) == await history_of(viewer)


def test_an_answer_read_while_a_message_was_delivered_is_not_kept():
    from my_chat.events import Message, messages_frame
    from my_chat.history import LatestWindow

    window = LatestWindow(COUNT)
    answer = [Message(id=n, sender="alice", to=None, text=f"m{n}", timestamp=n) for n in (1, 2)]
    generation = window.generation  # read before the store is asked...
    window.delivered(Message(id=3, sender="alice", to=None, text="new", timestamp=3))
    window.remember("bob", generation, answer, messages_frame(answer))  # ...too old now
    assert window.block_for("bob") is None
    window.remember("bob", window.generation, answer, messages_frame(answer))
    assert window.block_for("bob") is not None


def test_few_answers_with_a_private_message_are_kept(monkeypatch):
    """Such an answer has a frame of its own, so their number is capped; room-only answers
    share one frame and are all kept."""
    from my_chat.events import Message, messages_frame
    from my_chat.history import LatestWindow

    monkeypatch.setattr(LatestWindow, "MAX_PRIVATE_ANSWERS", 2)
    window = LatestWindow(COUNT)
    room = [Message(id=1, sender="alice", to=None, text="hi", timestamp=1)]
    for n in range(4):
        viewer = f"user{n}"
        private = [*room, Message(id=2 + n, sender="alice", to=viewer, text="psst", timestamp=2)]
        window.remember(viewer, window.generation, private, messages_frame(private))
        window.remember(f"quiet{n}", window.generation, room, messages_frame(room))
    assert [window.block_for(f"user{n}") is not None for n in range(4)] == [
        True,
        True,
        False,
        False,
    ]
    assert all(window.block_for(f"quiet{n}") is not None for n in range(4))
    assert len({id(window.block_for(f"quiet{n}").frame) for n in range(4)}) == 1


async def test_an_empty_history_is_kept_too_until_the_first_message(make_server, monkeypatch):
    """A new server has nothing to replay: each user's streams ask the store once, not each
    stream (at 10,000 streams that was a store read per connect), and a message to a user
    makes their next stream ask again."""
    async with make_server(history_on_connect=COUNT) as server:
        store = server.context.store.uncounted
        reads: dict[str, int] = {}
        original = type(store).latest

        async def counting(self, viewer: str, limit: int):
            reads[viewer] = reads.get(viewer, 0) + 1
            return await original(self, viewer, limit)

        monkeypatch.setattr(type(store), "latest", counting)
        alice, bob, carol = [await server.user(name) for name in ("alice", "bob", "carol")]
        streams = [await alice.open_stream() for _ in range(4)]
        streams += [await bob.open_stream() for _ in range(3)]
        try:
            secret = await bob.send("for alice", to="alice")
            # Nothing was replayed: the first message each stream gets is the live one.
            for stream in streams:
                assert [m["id"] for m in await stream.messages(1)] == [secret["id"]]
            assert reads == {"alice": 1, "bob": 1}
            # The private message made alice's and bob's kept answers stale, not carol's.
            carols = [await carol.open_stream() for _ in range(3)]
            streams += carols
            room = await alice.send("to the room")
            for stream in carols:
                assert [m["id"] for m in await stream.messages(1)] == [room["id"]]
            assert reads == {"alice": 1, "bob": 1, "carol": 1}
            for viewer in (alice, carol):
                history = await history_of(viewer)
                stream = await viewer.open_stream()
                streams.append(stream)
                assert await stream.messages(len(history)) == history
            assert reads == {"alice": 2, "bob": 1, "carol": 2}
        finally:
            for stream in streams:
                stream.close()
