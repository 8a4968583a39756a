"""Phase 1, step 2: a long-polling endpoint.

Short polling answers at once, so the client must ask again and again. Long polling holds
the request open until there is something to say, or until a time limit passes.

Write ``long_poll``, served at ``GET /long-poll?after=N&timeout=T`` by ``create_app()``
(given; it also keeps ``/messages`` and ``/poll`` from step 1, so do that step first):

- When the log already has messages after N, answer **at once**, 200, with their JSON list,
  oldest first (as ``/poll`` does).
- Otherwise **wait** until a message after N is appended, then answer with the new
  messages.
- Every client waiting at that moment gets the message, not only one of them.
- When nothing new arrives within ``timeout`` seconds, answer 200 with ``[]``.
- ``timeout`` defaults to 25; one that is not a number above 0 and at most 60 is
  answered **400**, and so is a bad ``after`` (reuse step 1's ``after_parameter``).

The log's ``changed`` is an ``asyncio.Condition`` that ``append`` notifies.
"""

from __future__ import annotations

import asyncio
import math

from aiohttp import web

from .p1_short_poll import LOG, after_parameter
from .p1_short_poll import create_app as create_short_poll_app

DEFAULT_TIMEOUT = 25.0
MAX_TIMEOUT = 60.0


def timeout_parameter(request: web.Request) -> float:
    """The ``timeout`` query parameter in seconds: above 0, at most 60, default 25; else 400."""
    ### BEGIN SOLUTION: parse a float, refuse anything outside (0, MAX_TIMEOUT] with a 400
    raw = request.query.get("timeout")
    if raw is None:
        return DEFAULT_TIMEOUT
    try:
        seconds = float(raw)
    except ValueError:
        raise web.HTTPBadRequest(text="timeout must be a number of seconds") from None
    if not math.isfinite(seconds) or not 0 < seconds <= MAX_TIMEOUT:
        raise web.HTTPBadRequest(text=f"timeout must be above 0 and at most {MAX_TIMEOUT}")
    return seconds
    ### END SOLUTION


async def long_poll(request: web.Request) -> web.Response:
    """``GET /long-poll?after=N&timeout=T``: the messages after N, as soon as there are any."""
    ### BEGIN SOLUTION: wait on the log's condition for messages after N, at most timeout s
    after = after_parameter(request)
    timeout = timeout_parameter(request)
    log = request.app[LOG]
    try:
        async with log.changed:
            await asyncio.wait_for(log.changed.wait_for(lambda: log.after(after)), timeout)
    except TimeoutError:
        return web.json_response([])
    return web.json_response(log.after(after))
    ### END SOLUTION


def create_app() -> web.Application:
    app = create_short_poll_app()
    app.router.add_get("/long-poll", long_poll)
    return app
