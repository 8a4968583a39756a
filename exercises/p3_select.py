"""Phase 3, step 2: timeouts and ``asyncio.wait``, the answer to Go's ``select``.

Go waits for whichever of several channels is ready first::

    select {
    case m := <-inbox:        // a message
    case <-stop:              // asked to stop
    case <-time.After(t):     // nothing for t
    }

In asyncio, each of those is an awaitable; put them in tasks and ``asyncio.wait`` for the
first one to finish. Write ``next_event(inbox, stop, timeout) -> tuple[str, object]``:

- ``("message", item)`` when ``inbox`` (an ``asyncio.Queue``) has an item, or gets one
  before the others happen.
- ``("stop", None)`` when the ``stop`` event is set and no item is waiting.
- A message that is already waiting **wins** over ``stop``, and an item taken from the
  queue is **never lost**: it is returned, never dropped with a cancelled task.
- ``("timeout", None)`` when neither happens within ``timeout`` seconds.
- When it returns, **no task it started is still running**: cancel the losers and wait
  for them to finish.
"""

# Generated from solutions/p3_select.py by tools/make_exercises.py —
# edit this file, it is yours.

from __future__ import annotations

import asyncio
from typing import Any


async def next_event(
    inbox: asyncio.Queue[Any],
    stop: asyncio.Event,
    timeout: float,  # noqa: ASYNC109 (the timeout is the lesson here)
) -> tuple[str, Any]:
    """Whichever comes first: a message, the stop signal, or the timeout."""
    # TODO: a waiting item first; else wait for a get task or a stop task
    raise NotImplementedError("TODO: next_event() in exercises/p3_select.py")
