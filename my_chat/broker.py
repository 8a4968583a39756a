"""The broker: how an accepted message or event reaches every stream that should get it.

``LocalBroker`` is the embedded default: one process, messages stored in SQLite, frames
handed straight to this process's client manager. Scaling out swaps in a broker that goes
through Redis; the handlers only ever talk to this interface.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

from my_chat.client_manager import ClientManager, Frame
from my_chat.events import PRESENCE, Message, PresenceData, to_json
from my_chat.history import message_frame
from my_chat.parts import Parts
from my_chat.sse import encode_event

if TYPE_CHECKING:
    from my_chat.sessions import Revocations


class Broker(Protocol):
    # Where the broker applies revocations made by other processes (Redis mode only).
    revocations: Revocations | None

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def publish(self, sender: str, text: str, to: str | None) -> Message: ...

    async def push(self, users: Iterable[str], frame: bytes) -> int: ...

    async def broadcast(self, frame: bytes) -> int: ...

    async def user_online(self, user: str) -> None: ...

    async def user_offline(self, user: str) -> None: ...

    async def online_users(self) -> list[str]: ...

    async def online_snapshot(self, viewer: str) -> list[str]: ...


# --8<-- [start:presence-batcher]
class PresenceBatcher:
    """Presence without flapping: a grace period for leaving, and changes sent in batches.

    A user whose last stream closes is not gone yet: a page that reconnects (a network blip, a
    reload, a server restart) is back within seconds, and telling the whole room "offline",
    then "online" again, costs a frame to every stream twice for nothing. So leaving waits
    ``grace`` seconds, and coming back within them cancels it. And whatever changes, the room
    hears about it at most once per ``window``: the users touched meanwhile are handed to
    ``flush`` together, which compares each with what the room was last told and sends only
    real changes, all in one write per stream. A user who connects and disconnects in a loop
    therefore costs the room one ``online`` and, when they stop, one ``offline``: the churn
    costs the churner (who gets the online list on every connect), not the room.
    """

    def __init__(self, grace: float, window: float, flush: Callable[[list[str]], None]) -> None:
        self.grace = grace
        self.window = window
        self._flush_users = flush
        self._leaving: dict[str, asyncio.TimerHandle] = {}
        self._touched: dict[str, None] = {}  # a set that keeps the order things happened in
        self._flush_timer: asyncio.TimerHandle | None = None

    def came_online(self, user: str) -> None:
        """A user's first stream opened (here)."""
        leaving = self._leaving.pop(user, None)
        if leaving is not None:
            leaving.cancel()  # back within the grace period: the room never hears of it
        self._touch(user)

    def went_offline(self, user: str) -> None:
        """A user's last stream closed (here): they leave when the grace period is over."""
        if self.grace <= 0:
            self._touch(user)
            return
        loop = asyncio.get_running_loop()
        self._leaving[user] = loop.call_later(self.grace, self._grace_over, user)

    def leaving(self, user: str) -> bool:
        """Is ``user`` in their grace period: gone, but still counted as online?"""
        return user in self._leaving

    def all_leaving(self) -> list[str]:
        return list(self._leaving)

    def close(self) -> None:
        for timer in self._leaving.values():
            timer.cancel()
        self._leaving.clear()
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None

    def _grace_over(self, user: str) -> None:
        self._leaving.pop(user, None)
        self._touch(user)

    def _touch(self, user: str) -> None:
        self._touched[user] = None
        if self._flush_timer is None:
            loop = asyncio.get_running_loop()
            self._flush_timer = loop.call_later(self.window, self._flush)

    def _flush(self) -> None:
        self._flush_timer = None
        users, self._touched = list(self._touched), {}
        self._flush_users(users)


# --8<-- [end:presence-batcher]


class LocalBroker:
    def __init__(
        self,
        store: Any,
        manager: ClientManager,
        parts: Parts,
        *,
        presence_grace: float = 0.0,
        presence_window: float = 0.0,
    ) -> None:
        self.store = store
        self.manager = manager
        self.parts = parts
        # Who the room was last told is online; presence frames are changes to this set.
        self._announced: set[str] = set()
        self.presence = PresenceBatcher(presence_grace, presence_window, self._announce_changes)
        self.messages_accepted = 0
        # Store-then-deliver runs one message at a time: ids are handed out in the order
        # messages are delivered, so a client never sees id 7 before id 6 and resumes past 6.
        self._publish_lock = asyncio.Lock()
        self.revocations: Revocations | None = None  # one process: nobody else revokes

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        self.presence.close()

    # --8<-- [start:publish]
    async def publish(self, sender: str, text: str, to: str | None) -> Message:
        # Shielded: a sender that hangs up mid-request must not leave a stored, undelivered
        # message behind.
        return await asyncio.shield(self._store_and_deliver(sender, text, to))

    async def _store_and_deliver(self, sender: str, text: str, to: str | None) -> Message:
        async with self._publish_lock:
            message = await self.store.append(sender, text, to, int(time.time() * 1000))
            self.messages_accepted += 1
            self.deliver(message)
        return message

    def deliver(self, message: Message) -> int:
        frame = message_frame(message)
        audience = self.parts.private.audience(message) if message.to is not None else None
        if audience is None:
            return self.manager.broadcast(frame)
        return self.manager.send_to_users(audience, frame)

    async def push(self, users: Iterable[str], frame: bytes) -> int:
        return self.manager.send_to_users(users, Frame(frame))

    async def broadcast(self, frame: bytes) -> int:
        return self.manager.broadcast(Frame(frame))

    # --8<-- [end:publish]

    async def user_online(self, user: str) -> None:
        self.presence.came_online(user)

    async def user_offline(self, user: str) -> None:
        self.presence.went_offline(user)

    # --8<-- [start:announce]
    def _announce_changes(self, users: list[str]) -> None:
        frames = []
        for user in users:
            online = self.manager.is_online(user) or self.presence.leaving(user)
            if online == (user in self._announced):
                continue  # came and went (or went and came) since the room was last told
            if online:
                self._announced.add(user)
            else:
                self._announced.discard(user)
            data = PresenceData(user=user, online=online)
            frames.append(encode_event(to_json(data), event=PRESENCE))
        if frames:
            self.manager.broadcast(Frame(b"".join(frames)))  # one write per stream per batch

    # --8<-- [end:announce]

    async def online_users(self) -> list[str]:
        """Everyone online now, or leaving but still in their grace period."""
        return sorted(self._announced.union(self.manager.online_users()))

    async def online_snapshot(self, viewer: str) -> list[str]:
        """The list a new stream starts from: what the room was last told, and the viewer.

        Later ``presence`` frames are changes to exactly this list, so applying them keeps the
        page right; the viewer is online as long as this stream is open.
        """
        return sorted(self._announced | {viewer})
