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

from __future__ import annotations

import asyncio
from typing import Any


async def next_event(
    inbox: asyncio.Queue[Any],
    stop: asyncio.Event,
    timeout: float,  # noqa: ASYNC109 (the timeout is the lesson here)
) -> tuple[str, Any]:
    """Whichever comes first: a message, the stop signal, or the timeout."""
    ### BEGIN SOLUTION: a waiting item first; else wait for a get task or a stop task
    if not inbox.empty():
        return "message", inbox.get_nowait()
    if stop.is_set():
        return "stop", None
    getting = asyncio.create_task(inbox.get())
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({getting, stopping}, timeout=timeout, return_when="FIRST_COMPLETED")
    finally:
        for task in (getting, stopping):
            task.cancel()
        # Wait for them to finish. Not `suppress(CancelledError)` around `await task`: that
        # would also swallow a cancellation of next_event itself.
        await asyncio.gather(getting, stopping, return_exceptions=True)
    if getting.done() and not getting.cancelled():
        return "message", getting.result()
    if stopping.done() and not stopping.cancelled():
        return "stop", None
    return "timeout", None
    ### END SOLUTION
