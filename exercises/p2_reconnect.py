"""Phase 2, step 3: a client that reconnects with ``Last-Event-ID``.

What a browser's ``EventSource`` does for you, written by hand. Write ``follow(session,
url, on_event, *, last_event_id=None, reconnect_delay=3.0) -> str``:

- It asks ``GET url`` with the header ``Accept: text/event-stream``. When it knows a last
  event id (the ``last_event_id`` argument at first, later the id of the last event it
  received), it also sends ``Last-Event-ID: <that id>``; with no id, no such header.
- It reads the body chunk by chunk through your ``EventStreamParser`` from step 2 and
  calls ``on_event(event)`` for every event, in order.
- When ``on_event`` returns ``True``, it stops and returns the last event id.
- When the stream ends (the server closed it) or the connection fails
  (``aiohttp.ClientError``), it waits and connects again, so no event is lost and none
  comes twice (the server resumes after ``Last-Event-ID``).
- The wait is the server's ``retry`` (milliseconds) once the server has sent one, even on
  an earlier connection; until then ``reconnect_delay`` seconds.
- A **204** answer means "stop": it returns the last event id (``""`` if none).
- Any other status than 200, or a ``Content-Type`` other than ``text/event-stream``, raises
  ``StreamRefused`` at once, without reconnecting.
"""

# Generated from solutions/p2_reconnect.py by tools/make_exercises.py —
# edit this file, it is yours.

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp

from .p2_parser import Event, EventStreamParser


class StreamRefused(Exception):
    """The server answered, but not with an event stream."""


async def follow(
    session: aiohttp.ClientSession,
    url: str,
    on_event: Callable[[Event], bool | None],
    *,
    last_event_id: str | None = None,
    reconnect_delay: float = 3.0,
) -> str:
    """Follow the stream at ``url`` across reconnections; the last event id when it stops."""
    # TODO: loop: connect with the headers, parse, call on_event, wait, reconnect
    raise NotImplementedError("TODO: follow() in exercises/p2_reconnect.py")
