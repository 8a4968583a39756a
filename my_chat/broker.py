"""The broker: how an accepted message or event reaches every stream that should get it.

``LocalBroker`` is the embedded default: one process, messages stored in SQLite, frames
handed straight to this process's client manager. Scaling out swaps in a broker that goes
through Redis; the handlers only ever talk to this interface.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

from my_chat.client_manager import ClientManager
from my_chat.events import Frame, Message, message_frame, presence_frame
from my_chat.history import LatestWindow
from my_chat.parts import Parts

if TYPE_CHECKING:
    from my_chat.sessions import Revocations

logger = logging.getLogger(__name__)

# The most messages one transaction stores: a burst larger than this is committed in turns,
# so the first senders do not wait for the whole burst's INSERTs.
MAX_GROUP = 256

Row = tuple[str, str, str | None, int]  # sender, text, to, timestamp: what append takes


def mark_retrieved(future: asyncio.Future) -> None:
    """Mark a publish's outcome as seen: its sender may have hung up before it came, and
    asyncio would log an unseen error as "Future exception was never retrieved"."""
    if not future.cancelled():
        future.exception()


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
        # Group commit (see publish): messages waiting for the next transaction, and the one
        # task that commits them. None: no commit in flight.
        self._queued: list[tuple[Row, asyncio.Future[Message]]] = []
        self._committer: asyncio.Task[None] | None = None
        # False once the store showed it has no append_many (an exercise not finished yet).
        self._store_groups = True
        # The history block fresh streams share (set by the server; see history.LatestWindow).
        self.latest_window: LatestWindow | None = None
        self.revocations: Revocations | None = None  # one process: nobody else revokes

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        if self._committer is not None:  # the messages already queued are stored and answered
            await asyncio.shield(self._committer)
        self.presence.close()

    # --8<-- [start:publish]
    async def publish(self, sender: str, text: str, to: str | None) -> Message:
        """Store the message, deliver it, and return it: after the commit that holds it.

        Group commit: one task (the committer) stores and delivers; every message that
        arrives while it is committing waits in ``_queued`` and goes into its next
        transaction, together. One commit per burst instead of one per message, and one
        writer, so ids are handed out in the order messages are delivered: a client never
        sees id 7 before id 6, and resumes past 6 without missing 5.
        """
        future = asyncio.get_running_loop().create_future()
        future.add_done_callback(mark_retrieved)
        self._queued.append(((sender, text, to, int(time.time() * 1000)), future))
        if self._committer is None:
            self._committer = asyncio.create_task(self._commit_queued(), name="group-commit")
        # Shielded: a sender that hangs up mid-request must not take its message out of the
        # batch, nor leave a stored, undelivered message behind.
        return await asyncio.shield(future)

    async def _commit_queued(self) -> None:
        try:
            while self._queued:
                group = self._queued[:MAX_GROUP]
                del self._queued[:MAX_GROUP]
                await self._commit(group)
        finally:
            self._committer = None
            for _, future in self._queued:  # only if the committer itself was cancelled
                future.cancel()
            self._queued.clear()

    async def _commit(self, group: list[tuple[Row, asyncio.Future[Message]]]) -> None:
        if len(group) > 1 and self._store_groups:
            try:
                messages = await self.store.append_many([row for row, _ in group])
            except (AttributeError, NotImplementedError):
                self._store_groups = False  # a store without append_many: one at a time
            except Exception:
                # All or nothing failed: store them one at a time below, so that only the
                # message that cannot be stored fails, and only its own sender hears of it.
                logger.warning("a group of %d messages failed; storing them one by one", len(group))
            else:
                self._deliver_group(messages, [future for _, future in group])
                return
        for row, future in group:
            try:
                message = await self.store.append(*row)
            except Exception as error:
                if not future.done():
                    future.set_exception(error)
                continue
            self._deliver_and_answer(message, future)

    def _deliver_group(self, messages: list[Message], futures: list[asyncio.Future]) -> None:
        """Deliver a group stored in one transaction: each run of room messages as one frame.

        One write per stream per run instead of one per message: with ten listeners and a
        group of twenty, 10 system calls instead of 200, which were most of what an accepted
        message cost. The frame carries the run's last id: a replay that overlaps the run read
        the whole of it (the group was committed at once, so a read sees all of it or none),
        so a stream skips the frame exactly when it has every message in it already.
        """
        run: list[tuple[Message, asyncio.Future]] = []
        for message, future in zip(messages, futures, strict=True):
            if message.to is None:
                run.append((message, future))
                continue
            self._deliver_run(run)
            run = []
            self._deliver_and_answer(message, future)  # a private message: its own audience
        self._deliver_run(run)

    def _deliver_run(self, run: list[tuple[Message, asyncio.Future]]) -> None:
        if len(run) <= 1:
            for message, future in run:
                self._deliver_and_answer(message, future)
            return
        self.messages_accepted += len(run)
        try:
            if self.latest_window is not None:
                for message, _ in run:
                    self.latest_window.delivered(message)
            payload = b"".join(message_frame(message).payload for message, _ in run)
            self.manager.broadcast(Frame(payload, message_id=run[-1][0].id))
        except Exception as error:  # stored but not delivered: the senders hear it (a 500)
            for _, future in run:
                if not future.done():
                    future.set_exception(error)
            return
        for message, future in run:
            if not future.done():
                future.set_result(message)

    def _deliver_and_answer(self, message: Message, future: asyncio.Future[Message]) -> None:
        self.messages_accepted += 1
        try:
            self.deliver(message)
        except Exception as error:  # stored but not delivered: the sender hears it (a 500)
            if not future.done():
                future.set_exception(error)
            return
        if not future.done():
            future.set_result(message)

    def deliver(self, message: Message) -> int:
        if self.latest_window is not None:
            self.latest_window.delivered(message)
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
        changes = []
        for user in users:
            online = self.manager.is_online(user) or self.presence.leaving(user)
            if online == (user in self._announced):
                continue  # came and went (or went and came) since the room was last told
            if online:
                self._announced.add(user)
            else:
                self._announced.discard(user)
            changes.append((user, online))
        if changes:
            self.manager.broadcast(presence_frame(changes))  # one write per stream per batch

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
