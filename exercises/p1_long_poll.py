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

# Generated from solutions/p1_long_poll.py by tools/make_exercises.py —
# edit this file, it is yours.

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
    # TODO: parse a float, refuse anything outside (0, MAX_TIMEOUT] with a 400
    raise NotImplementedError("TODO: timeout_parameter() in exercises/p1_long_poll.py")


async def long_poll(request: web.Request) -> web.Response:
    """``GET /long-poll?after=N&timeout=T``: the messages after N, as soon as there are any."""
    # TODO: wait on the log's condition for messages after N, at most timeout s
    raise NotImplementedError("TODO: long_poll() in exercises/p1_long_poll.py")


def create_app() -> web.Application:
    app = create_short_poll_app()
    app.router.add_get("/long-poll", long_poll)
    return app
