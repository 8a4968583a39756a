"""The broker: how an accepted message or event reaches every stream that should get it.

``LocalBroker`` is the embedded default: one process, messages stored in SQLite, frames
handed straight to this process's client manager. Scaling out swaps in a broker that goes
through Redis; the handlers only ever talk to this interface.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

from my_chat.client_manager import ClientManager, Frame
from my_chat.events import PRESENCE, Message, PresenceData, to_json
from my_chat.history import LatestWindow, message_frame
from my_chat.parts import Parts
from my_chat.sse import encode_event

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


class LocalBroker:
    def __init__(self, store: Any, manager: ClientManager, parts: Parts) -> None:
        self.store = store
        self.manager = manager
        self.parts = parts
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
                for (_, future), message in zip(group, messages, strict=True):
                    self._deliver_and_answer(message, future)
                return
        for row, future in group:
            try:
                message = await self.store.append(*row)
            except Exception as error:
                if not future.done():
                    future.set_exception(error)
                continue
            self._deliver_and_answer(message, future)

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
        self._announce(user, True)

    async def user_offline(self, user: str) -> None:
        self._announce(user, False)

    def _announce(self, user: str, online: bool) -> None:
        data = PresenceData(user=user, online=online)
        self.manager.broadcast(encode_event(to_json(data), event=PRESENCE))

    async def online_users(self) -> list[str]:
        return self.manager.online_users()
