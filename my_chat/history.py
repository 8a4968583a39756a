"""Messages as frames, the replay that fills a reconnecting client's gap, and a stand-in store.

A message's SSE ``id:`` is its id in the store, so a browser that reconnects sends the last
one it saw as ``Last-Event-ID``, and ``replay`` sends exactly what came after it.
"""

from __future__ import annotations

import functools
import itertools
from typing import Any

from my_chat.client_manager import Connection, Frame
from my_chat.events import MESSAGE, RECOVERED, Message, RecoveredData, to_json
from my_chat.sse import encode_event

REPLAY_PAGE = 500


# --8<-- [start:replay]
@functools.lru_cache(maxsize=4096)
def message_frame(message: Message) -> Frame:
    """The frame of ``message``, made once: replays to many clients reuse the same bytes."""
    payload = encode_event(to_json(message.to_payload()), event=MESSAGE, id=str(message.id))
    return Frame(payload, message_id=message.id)


async def replay(
    store: Any,
    connection: Connection,
    write,
    may_see,
    last_event_id: int | None,
    count: int,
    replay_max: int = 0,
) -> int:
    """Write the history ``connection`` missed; returns the last id written (0 if none).

    With ``last_event_id``: every message after it, page by page, but at most
    ``replay_max`` (0: no cap). A client further behind gets a ``recovered`` event saying
    so and then, as on a first connection, the latest ``count``. Without
    ``last_event_id``: the latest ``count``. ``may_see`` is checked again for every
    message, so a store that returned too much cannot leak a private message.
    """
    viewer = connection.user
    if last_event_id is None:
        batch = await store.latest(viewer, count) if count > 0 else []
        await _write_visible(batch, viewer, write, may_see)
        return batch[-1].id if batch else 0
    if replay_max > 0:
        # One read of at most replay_max + 1 messages tells "all of it" from "too far behind".
        batch = await store.after(last_event_id, viewer, replay_max + 1)
        if len(batch) > replay_max:
            gap = RecoveredData(recovered=False, last_event_id=last_event_id, replay_max=replay_max)
            await write(encode_event(to_json(gap), event=RECOVERED))
            return await replay(store, connection, write, may_see, None, count)
        await _write_visible(batch, viewer, write, may_see)
        return batch[-1].id if batch else last_event_id
    last_written = last_event_id
    while not connection.closed.done():
        batch = await store.after(last_written, viewer, REPLAY_PAGE)
        if not batch:
            break
        await _write_visible(batch, viewer, write, may_see)
        last_written = batch[-1].id
    return last_written


async def _write_visible(batch: list[Message], viewer: str, write, may_see) -> None:
    visible = [m for m in batch if may_see(m, viewer)]
    if visible:
        await write(b"".join(message_frame(m).payload for m in visible))


# --8<-- [end:replay]


class NoHistory:
    """Stands in for the message store until exercise 3 is done: ids, but nothing kept."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)

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
