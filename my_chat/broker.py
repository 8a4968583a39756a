"""The broker: how an accepted message or event reaches every stream that should get it.

``LocalBroker`` is the embedded default: one process, messages stored in SQLite, frames
handed straight to this process's client manager. Scaling out swaps in a broker that goes
through Redis; the handlers only ever talk to this interface.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
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


class LocalBroker:
    def __init__(self, store: Any, manager: ClientManager, parts: Parts) -> None:
        self.store = store
        self.manager = manager
        self.parts = parts
        self.messages_accepted = 0
        # Store-then-deliver runs one message at a time: ids are handed out in the order
        # messages are delivered, so a client never sees id 7 before id 6 and resumes past 6.
        self._publish_lock = asyncio.Lock()
        self.revocations: Revocations | None = None  # one process: nobody else revokes

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

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
        self._announce(user, True)

    async def user_offline(self, user: str) -> None:
        self._announce(user, False)

    def _announce(self, user: str, online: bool) -> None:
        data = PresenceData(user=user, online=online)
        self.manager.broadcast(encode_event(to_json(data), event=PRESENCE))

    async def online_users(self) -> list[str]:
        return self.manager.online_users()
