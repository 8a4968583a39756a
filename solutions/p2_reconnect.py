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
    ### BEGIN SOLUTION: loop: connect with the headers, parse, call on_event, wait, reconnect
    last_id = last_event_id or ""
    retry_ms: int | None = None
    while True:
        headers = {"Accept": "text/event-stream"}
        if last_id:
            headers["Last-Event-ID"] = last_id
        parser = EventStreamParser()
        try:
            async with session.get(url, headers=headers) as response:
                if response.status == 204:
                    return last_id
                if response.status != 200 or response.content_type != "text/event-stream":
                    raise StreamRefused(f"{response.status} {response.content_type}")
                async for chunk in response.content.iter_any():
                    for event in parser.feed(chunk):
                        last_id = event.id
                        if on_event(event) is True:
                            return last_id
                    if parser.retry is not None:
                        retry_ms = parser.retry
        except aiohttp.ClientError:
            pass
        if parser.retry is not None:
            retry_ms = parser.retry
        await asyncio.sleep(reconnect_delay if retry_ms is None else retry_ms / 1000)
    ### END SOLUTION
