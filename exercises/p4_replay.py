"""Phase 4, step 4: replay, then live, with no gap and no duplicate.

A client reconnects with ``Last-Event-ID: 41``. The server must send what it missed (from
the history) and then the live messages. Two classic bugs sit in between:

- **a gap**: reading the history first and subscribing afterwards loses every message
  published while the history query ran;
- **a duplicate**: subscribing first fixes that, but a message published during the query
  may arrive twice: once in the history, once live.

The fix is a hold-back buffer: subscribe first (the live messages wait in the subscriber's
queue while the history is read), send the history, then send the held-back and later live
messages, skipping any whose id was already sent.

Write the async generator ``replay_then_live(after_id, history, hub)``:

- It subscribes to ``hub`` (the ``Hub`` of phase 3's fan-out step) **before** it reads
  ``await history.after(after_id)``.
- It yields the history's messages (those after ``after_id``, oldest first), then the live
  messages from its subscriber's queue, forever.
- No gap, no duplicate: every message is yielded once, so the ids it yields only go up (skip
  any live message whose id is not above the last one yielded). Do not expect each id to be
  the last one plus one: in this exercise they happen to be, but in my_chat a private message
  you may not see, or one another process stored, leaves a hole in the ids.
- When the generator is closed (``aclose()``, or the client disconnects), it unsubscribes.
"""

# Generated from solutions/p4_replay.py by tools/make_exercises.py —
# edit this file, it is yours.

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from .p3_fanout import Hub


@dataclass(frozen=True)
class Message:
    id: int
    text: str


class History(Protocol):
    async def after(self, message_id: int) -> list[Message]: ...


async def replay_then_live(after_id: int, history: History, hub: Hub) -> AsyncIterator[Message]:
    """The messages after ``after_id``: first from the history, then live."""
    # TODO: subscribe, replay history, then the queue skipping ids already sent
    raise NotImplementedError("TODO: replay_then_live() in exercises/p4_replay.py")
