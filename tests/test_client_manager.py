"""The client manager on real loopback sockets: replay hold-back, shutdown, fan-out."""

from __future__ import annotations

from my_chat.events import Frame
from my_chat.sse import encode_event
from tests.exercises.sockets import connected_peers


def message(n: int) -> Frame:
    return Frame(encode_event(f"m{n}", event="message", id=str(n)), message_id=n)


async def test_frames_held_back_during_a_replay_follow_it_without_duplicates():
    async with connected_peers(["alice"]) as (manager, peers):
        connection = peers[0].connection
        connection.start_replay()
        for n in (4, 5, 6):  # live messages that arrive while the history is being read
            manager.broadcast(message(n))
        manager.broadcast(encode_event("{}", event="presence"))
        connection.finish_replay(5)  # the replay itself went up to 5
        events = await peers[0].read_for(0.2)
        assert [(e.type, e.data) for e in events] == [("message", "m6"), ("presence", "{}")]


async def test_a_message_the_replay_sent_is_not_sent_again_when_it_is_delivered_late():
    """The replay can read a message from the store before its publisher delivers it (the
    publisher awaits its commit; the replay's read runs in between). That late delivery comes
    after the replay has finished, and must not write the message a second time."""
    async with connected_peers(["alice"]) as (manager, peers):
        connection = peers[0].connection
        connection.start_replay()
        connection.finish_replay(7)  # the replay read up to 7, committed a moment ago
        manager.broadcast(message(7))  # ... and now 7's publisher delivers it
        manager.broadcast(message(8))
        events = await peers[0].read_for(0.2)
        assert [e.data for e in events] == ["m8"]


async def test_a_shutdown_during_a_replay_still_says_reconnect():
    async with connected_peers(["alice", "bob"]) as (manager, peers):
        replaying, live = peers[0].connection, peers[1].connection
        replaying.start_replay()
        manager.close_all(encode_event('{"reason":"shutdown"}', event="reconnect"))
        assert replaying.closed.done() and live.closed.done()
        replaying.finish_replay(0)
        for peer in peers:
            events = await peer.read_for(0.2)
            assert [e.type for e in events] == ["reconnect"]
        # Once closed and flushed, nothing more is written.
        assert not replaying.send(encode_event("late", event="message"))
        assert await peers[0].read_for(0.1) == [events[0]]


async def test_broadcast_counts_and_send_to_users():
    async with connected_peers(["alice", "bob", "alice"]) as (manager, peers):
        assert manager.online_users() == ["alice", "bob"]
        assert manager.broadcast(encode_event("all")) == 3
        assert manager.send_to_users(["alice", "nobody"], encode_event("a")) == 2
        assert manager.send_to_connection(peers[1].connection.id, encode_event("b"))
        got = [[e.data for e in await peer.read_for(0.2)] for peer in peers]
        assert got == [["all", "a"], ["all", "b"], ["all", "a"]]
        assert manager.stats.deliveries == 5
