"""Presence: who is online, and the frames that tell the room when that changes.

``Presence`` is the interface; ``LocalPresence`` is the one-process kind, and
:class:`~my_chat.redis_presence.RedisPresence` shares the list between processes through
Redis. Both wait out a grace period and batch changes with :class:`PresenceBatcher`. Every
presence frame is built by :func:`my_chat.events.presence_frame`: here by ``LocalPresence``,
and in Redis mode by the broker's reader, for the changes Redis reports.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from my_chat.client_manager import ClientManager
from my_chat.events import presence_frame


class Presence(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def user_online(self, user: str) -> None:
        """``user``'s first stream on this process opened."""

    async def user_offline(self, user: str) -> None:
        """``user``'s last stream on this process closed."""

    async def online_users(self) -> list[str]:
        """Everyone online now, sorted."""

    async def online_snapshot(self, viewer: str) -> list[str]:
        """The list a new stream of ``viewer`` starts from; later presence frames change it."""


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


class LocalPresence:
    """Who is online in one process: the client manager's users, and those in their grace."""

    def __init__(self, manager: ClientManager, *, grace: float = 0.0, window: float = 0.0) -> None:
        self.manager = manager
        # Who the room was last told is online; presence frames are changes to this set.
        self._announced: set[str] = set()
        self._snapshot: list[str] | None = None  # sorted(self._announced), until it changes
        self.batcher = PresenceBatcher(grace, window, self._announce_changes)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        self.batcher.close()

    async def user_online(self, user: str) -> None:
        self.batcher.came_online(user)

    async def user_offline(self, user: str) -> None:
        self.batcher.went_offline(user)

    # --8<-- [start:announce]
    def _announce_changes(self, users: list[str]) -> None:
        changes = []
        for user in users:
            online = self.manager.is_online(user) or self.batcher.leaving(user)
            if online == (user in self._announced):
                continue  # came and went (or went and came) since the room was last told
            if online:
                self._announced.add(user)
            else:
                self._announced.discard(user)
            changes.append((user, online))
        if changes:
            self._snapshot = None
            self.manager.broadcast(presence_frame(changes))  # one write per stream per batch

    # --8<-- [end:announce]

    async def online_users(self) -> list[str]:
        """Everyone online now, or leaving but still in their grace period."""
        return sorted(self._announced.union(self.manager.online_users()))

    async def online_snapshot(self, viewer: str) -> list[str]:
        """The list a new stream starts from: what the room was last told, and the viewer.

        Later ``presence`` frames are changes to exactly this list, so applying them keeps the
        page right; the viewer is online as long as this stream is open. The list is shared
        by the streams that ask while nobody comes or goes: do not change it.
        """
        if viewer not in self._announced:
            return sorted(self._announced | {viewer})
        if self._snapshot is None:
            self._snapshot = sorted(self._announced)
        return self._snapshot
