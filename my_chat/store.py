"""The message store: what keeps chat messages, and the stand-in used until exercise 3 is done.

``MessageStore`` is the interface every store has: the SQLite store of exercise 3
(``solutions/message_store.py``), :class:`~my_chat.redis_store.RedisMessageStore` when the
chat is shared through Redis, and :class:`NoHistory` until the exercise is done. The server
builds one in :func:`~my_chat.server.open_services`; the handlers, the broker and the replay
only ever talk to this interface.
"""

from __future__ import annotations

import itertools
from typing import Protocol

from my_chat.events import Message

# The largest message id: ids are SQLite INTEGERs (signed 64 bits), and so is an SSE id we
# accept back as Last-Event-ID or as a history page's ``before``.
MAX_MESSAGE_ID = 2**63 - 1


class MessageStore(Protocol):
    """Messages in id order; every read returns only what ``viewer`` may see, oldest first.

    A store may also have ``append_many(rows)`` (one transaction for several messages); the
    broker uses it when it is there.
    """

    async def append(self, sender: str, text: str, to: str | None, timestamp: int) -> Message: ...

    async def after(self, last_id: int, viewer: str, limit: int) -> list[Message]: ...

    async def before(self, before_id: int | None, viewer: str, limit: int) -> list[Message]: ...

    async def latest(self, viewer: str, limit: int) -> list[Message]: ...

    async def prune(self, keep_count: int, older_than: int | None) -> int: ...

    async def close(self) -> None: ...


class NoHistory:
    """Stands in for the message store until exercise 3 is done: ids, but nothing kept."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)

    @classmethod
    async def open(cls, path: str) -> NoHistory:
        """As the exercise's ``MessageStore.open``, with nothing to open."""
        return cls()

    async def append(self, sender: str, text: str, to: str | None, timestamp: int) -> Message:
        return Message(id=next(self._ids), sender=sender, to=to, text=text, timestamp=timestamp)

    async def after(self, last_id: int, viewer: str, limit: int) -> list[Message]:
        return []

    async def before(self, before_id: int | None, viewer: str, limit: int) -> list[Message]:
        return []

    async def latest(self, viewer: str, limit: int) -> list[Message]:
        return []

    async def prune(self, keep_count: int, older_than: int | None) -> int:
        return 0

    async def close(self) -> None:
        return None
