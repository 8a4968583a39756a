"""The broker: how an accepted message or event reaches every stream that should get it.

``Broker`` is the interface; ``LocalBroker`` is the embedded default: one process, messages
kept in the message store it is given, frames handed straight to this process's client
manager. Scaling out swaps in :class:`~my_chat.redis_broker.RedisBroker`, which goes through
Redis; the handlers only ever talk to this interface. Who is online is not the broker's
business but :mod:`my_chat.presence`'s, and what keeps messages is :mod:`my_chat.store`'s.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Protocol

from my_chat.client_manager import ClientManager
from my_chat.events import Frame, Message, message_frame
from my_chat.history import LatestWindow
from my_chat.parts import Parts
from my_chat.store import MessageStore

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


Pending = tuple[Row, "asyncio.Future[Message]"]  # a message to store, and its sender's answer


# --8<-- [start:group-commit]
class GroupCommit:
    """Messages waiting to be stored, and the one task (the committer) that stores them.

    Every message that arrives while the committer is writing waits in ``queued`` and goes
    into its next write, together, at most ``MAX_GROUP`` at a time: one commit per burst
    instead of one per message. ``write_group`` stores a group and settles each message's
    future, with the message or the error its sender should hear. Both brokers use it.
    """

    def __init__(self, write_group: Callable[[list[Pending]], Awaitable[None]], name: str) -> None:
        self._write_group = write_group
        self._name = name
        self.queued: list[Pending] = []
        self.committer: asyncio.Task[None] | None = None  # None: no write in flight

    def add(self, sender: str, text: str, to: str | None) -> asyncio.Future[Message]:
        """Queue a message; the future is settled once its group is written."""
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        future.add_done_callback(mark_retrieved)
        self.queued.append(((sender, text, to, int(time.time() * 1000)), future))
        if self.committer is None:
            self.committer = asyncio.create_task(self._commit_queued(), name=self._name)
        return future

    async def drain(self) -> None:
        """Wait until the messages already queued are stored and answered."""
        if self.committer is not None:
            await asyncio.shield(self.committer)

    async def _commit_queued(self) -> None:
        try:
            while self.queued:
                group = self.queued[:MAX_GROUP]
                del self.queued[:MAX_GROUP]
                await self._write_group(group)
        finally:
            self.committer = None
            for _, future in self.queued:  # only if the committer itself was cancelled
                future.cancel()
            self.queued.clear()


# --8<-- [end:group-commit]


class Broker(Protocol):
    # Where the broker applies revocations made by other processes (Redis mode only).
    revocations: Revocations | None
    # The history block fresh streams share (set by the server; see history.LatestWindow).
    latest_window: LatestWindow | None
    messages_accepted: int

    async def start(self) -> None: ...

    async def stop(self) -> None:
        """Stop delivering: what was published is stored and answered first."""

    async def close(self) -> None:
        """Release the connections the backends share, after everything else has stopped."""

    async def publish(self, sender: str, text: str, to: str | None) -> Message:
        """Store the message and deliver it; returns it once this process's streams have it."""

    async def push(self, users: Iterable[str], frame: Frame) -> int:
        """Send ``frame`` to every stream of ``users``; returns how many were queued."""

    async def broadcast(self, frame: Frame) -> int:
        """Send ``frame`` to every stream; returns how many were queued."""

    def replay_upto(self) -> int | None:
        """The newest message id a replay may send now (None: no bound); see history.replay."""


# --8<-- [start:deliver]
def deliver(
    message: Message, manager: ClientManager, parts: Parts, window: LatestWindow | None
) -> int:
    """Hand a stored message to this process's streams: everyone, or its private audience.

    Both brokers deliver through here: LocalBroker right after the commit, RedisBroker when
    its reader gets the message back from Redis.
    """
    if window is not None:
        window.delivered(message)
    frame = message_frame(message)
    audience = parts.private.audience(message) if message.to is not None else None
    if audience is None:
        return manager.broadcast(frame)
    return manager.send_to_users(audience, frame)


# --8<-- [end:deliver]


class LocalBroker:
    def __init__(
        self,
        store: MessageStore,
        manager: ClientManager,
        parts: Parts,
    ) -> None:
        self.store = store
        self.manager = manager
        self.parts = parts
        self.messages_accepted = 0
        # Group commit (see publish): one transaction per group of messages.
        self.group = GroupCommit(self._commit, name="group-commit")
        # False once the store showed it has no append_many (an exercise not finished yet).
        self._store_groups = True
        # The history block fresh streams share (set by the server; see history.LatestWindow).
        self.latest_window: LatestWindow | None = None
        self.revocations: Revocations | None = None  # one process: nobody else revokes

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        await self.group.drain()  # the messages already queued are stored and answered

    async def close(self) -> None:
        return None  # nothing shared: the stores close their own connections

    def replay_upto(self) -> int | None:
        return None  # a message is delivered right after its commit: nothing is on its way

    # --8<-- [start:publish]
    async def publish(self, sender: str, text: str, to: str | None) -> Message:
        """Store the message, deliver it, and return it: after the commit that holds it.

        Group commit (:class:`GroupCommit`): one task (the committer) stores and delivers;
        every message that arrives while it is committing waits and goes into its next
        transaction, together. One commit per burst instead of one per message, and one
        writer, so ids are handed out in the order messages are delivered: a client never
        sees id 7 before id 6, and resumes past 6 without missing 5.
        """
        # Shielded: a sender that hangs up mid-request must not take its message out of the
        # batch, nor leave a stored, undelivered message behind.
        return await asyncio.shield(self.group.add(sender, text, to))

    async def _commit(self, group: list[Pending]) -> None:
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
        return deliver(message, self.manager, self.parts, self.latest_window)

    async def push(self, users: Iterable[str], frame: Frame) -> int:
        return self.manager.send_to_users(users, frame)

    async def broadcast(self, frame: Frame) -> int:
        return self.manager.broadcast(frame)

    # --8<-- [end:publish]
