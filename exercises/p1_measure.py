"""Phase 1, step 3: measure short polling and long polling against SSE.

Three clients wait for the same ``count`` messages from one server, each with its own
technique, and record what it cost. ``watch_sse`` is written for you as the example; write
the other two the same way. Each returns a ``Measurement``:

- ``received``: the ids of the messages it got, in arrival order. Every message exactly
  once, in order: 1, 2, ..., ``count``; stop as soon as you have ``count`` of them.
- ``requests``: how many HTTP requests it made, exactly (the tests count them on the
  server too).
- ``delays``: for each message, in the same order, the seconds from its ``sent`` time (a
  field of the message, from ``time.time()`` on the server) to its arrival.

``watch_short_poll`` asks ``GET /poll?after=N`` (N: the last id received, 0 at first) and,
whenever the answer is empty, sleeps ``interval`` seconds before asking again; it must
keep asking, since that is the only way short polling learns anything.
``watch_long_poll`` asks ``GET /long-poll?after=N`` again as soon as each answer arrives:
the server holds every request until there is news, so it needs one request per batch.

The server is any app with the routes of steps 1 and 2 plus ``/sse``; the notebook runs
these against its own and plots ``delays`` and ``requests`` side by side.
"""

# Generated from solutions/p1_measure.py by tools/make_exercises.py —
# edit this file, it is yours.

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

import aiohttp

from my_chat.sse import EventStreamParser


@dataclass
class Measurement:
    technique: str
    requests: int = 0
    received: list[int] = field(default_factory=list)
    delays: list[float] = field(default_factory=list)

    def record(self, message: dict) -> None:
        self.received.append(message["id"])
        self.delays.append(time.time() - message["sent"])


async def watch_sse(session: aiohttp.ClientSession, base_url: str, *, count: int) -> Measurement:
    """One request; the server pushes each message as an SSE event whose data is its JSON."""
    measurement = Measurement("sse", requests=1)
    parser = EventStreamParser()
    async with session.get(f"{base_url}/sse") as response:
        async for chunk in response.content.iter_any():
            for event in parser.feed(chunk):
                measurement.record(json.loads(event.data))
                if len(measurement.received) >= count:
                    return measurement
    return measurement


async def watch_short_poll(
    session: aiohttp.ClientSession, base_url: str, *, count: int, interval: float
) -> Measurement:
    """Ask ``/poll`` until ``count`` messages came, sleeping ``interval`` after an empty answer."""
    # TODO: loop: GET /poll?after=last, count the request, record, sleep if empty
    raise NotImplementedError("TODO: watch_short_poll() in exercises/p1_measure.py")


async def watch_long_poll(
    session: aiohttp.ClientSession, base_url: str, *, count: int
) -> Measurement:
    """Ask ``/long-poll`` again as soon as each answer arrives, until ``count`` messages."""
    # TODO: loop: GET /long-poll?after=last, count the request, record, no sleep
    raise NotImplementedError("TODO: watch_long_poll() in exercises/p1_measure.py")
