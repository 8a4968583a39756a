"""Phase 3, step 6: a fan-out where one slow consumer does not hold up the others.

A chat room sends each message to every member. If ``publish`` waited for each member in
turn, one member on a slow phone would delay everyone. Instead each subscriber gets its
own bounded queue, and ``publish`` only ever does ``put_nowait``. (In Go: a buffered channel
per subscriber, and ``select`` with a ``default:`` case to never block.)

Write the ``Hub``:

- ``subscribe(maxsize=100)`` returns a new ``Subscriber`` whose ``queue`` is an
  ``asyncio.Queue(maxsize)``; from then on it receives every published item, in order.
- ``publish(item)`` is a plain function, **not** a coroutine: it never waits. It puts the
  item into every subscriber's queue and returns how many got it.
- A subscriber whose queue is **full misses** that item: its ``dropped`` count grows by
  one, and the others still get it.
- ``unsubscribe(subscriber)`` stops delivery to it; unsubscribing twice is harmless.
- ``len(hub)`` is the number of subscribers.
"""

# Generated from solutions/p3_fanout.py by tools/make_exercises.py —
# edit this file, it is yours.

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False)
class Subscriber:
    queue: asyncio.Queue[Any]
    dropped: int = 0


@dataclass
class Hub:
    subscribers: list[Subscriber] = field(default_factory=list)

    def subscribe(self, maxsize: int = 100) -> Subscriber:
        # TODO: a Subscriber with its own bounded queue, remembered
        raise NotImplementedError("TODO: subscribe() in exercises/p3_fanout.py")

    def unsubscribe(self, subscriber: Subscriber) -> None:
        # TODO: forget it, if it is there
        raise NotImplementedError("TODO: unsubscribe() in exercises/p3_fanout.py")

    def publish(self, item: Any) -> int:
        """Offer ``item`` to every subscriber without waiting; how many took it."""
        # TODO: put_nowait into each queue; a full one counts a drop
        raise NotImplementedError("TODO: publish() in exercises/p3_fanout.py")

    def __len__(self) -> int:
        # TODO: the number of subscribers
        raise NotImplementedError("TODO: __len__() in exercises/p3_fanout.py")
