"""Phase 3, step 3: a bounded queue, and back-pressure.

A fast producer and a slow consumer: with an unbounded queue the producer runs ahead and
memory grows without limit. With ``asyncio.Queue(maxsize)``, ``await queue.put()`` waits
while the queue is full, so the producer slows to the consumer's pace. (A Go channel with
a buffer, ``make(chan T, n)``, does the same.)

Write ``pump(source, sink, *, maxsize) -> int``:

- It runs a **reader** task that takes items from ``source`` (an async iterator) and puts
  them into an ``asyncio.Queue(maxsize)``, and a **writer** that takes them out and awaits
  ``sink(item)`` for each.
- Every item reaches ``sink`` **once, in order**; ``pump`` returns how many there were,
  once the source is exhausted and the last item is sunk.
- The reader is **never more than** ``maxsize`` + 2 items ahead of the sink (the queue
  holds at most ``maxsize``; one more in each hand).
- When ``sink`` raises, ``pump`` raises the same error and the reader task is cancelled
  (no task left running); the source is not read to its end.

Tip: the writer needs to know when the reader is done; a sentinel object put into the
queue after the last item is the usual way.
"""

# Generated from solutions/p3_backpressure.py by tools/make_exercises.py —
# edit this file, it is yours.

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

DONE = object()  # put after the last item


async def pump(
    source: AsyncIterator[Any], sink: Callable[[Any], Awaitable[None]], *, maxsize: int
) -> int:
    """Move every item from ``source`` to ``sink`` through a queue of ``maxsize``."""
    # TODO: a bounded queue, a reader task, the writer loop here; cancel on error
    raise NotImplementedError("TODO: pump() in exercises/p3_backpressure.py")
