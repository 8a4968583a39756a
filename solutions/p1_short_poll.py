"""Phase 1, step 1: a short-polling endpoint.

The oldest way to get new messages over plain HTTP: the client asks again and again, and the
server answers at once with whatever is new, even when that is nothing.

``MessageLog`` (given) keeps the messages in memory; each gets an id that grows from 1.
``create_app()`` (given) routes two handlers, which you write:

- ``post_message``: ``POST /messages`` with the JSON body ``{"text": "..."}`` appends the
  text to the log and answers **201** with the stored message as JSON:
  ``{"id": 1, "text": "...", "sent": 1795487438.25}``.
- A body that is not JSON, not an object, or has no string ``text``, is answered **400**.
- ``short_poll``: ``GET /poll?after=N`` answers **at once**, 200, with the JSON list of the
  messages whose id is greater than N, oldest first; ``[]`` when there is nothing new.
- ``after`` is 0 when it is missing; one that is not a whole number >= 0 is answered **400**.

Try it: ``python -c "from exercises.p1_short_poll import create_app; from aiohttp import web;
web.run_app(create_app(), host='127.0.0.1', port=8080)"``, then ``curl -d '{"text": "hi"}'
localhost:8080/messages`` and ``curl 'localhost:8080/poll?after=0'``.
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web


class MessageLog:
    """Messages in memory, with growing ids. ``changed`` is notified on every append."""

    def __init__(self) -> None:
        self.messages: list[dict] = []
        self.changed = asyncio.Condition()

    def after(self, message_id: int) -> list[dict]:
        """The messages with an id greater than ``message_id``, oldest first."""
        return self.messages[message_id:]

    async def append(self, text: str) -> dict:
        async with self.changed:
            message = {"id": len(self.messages) + 1, "text": text, "sent": time.time()}
            self.messages.append(message)
            self.changed.notify_all()
        return message


LOG = web.AppKey("log", MessageLog)


def after_parameter(request: web.Request) -> int:
    """The ``after`` query parameter as an int >= 0 (0 when missing), else 400."""
    ### BEGIN SOLUTION: read request.query, refuse what is not a whole number >= 0 with a 400
    raw = request.query.get("after", "0")
    if not raw.isascii() or not raw.isdigit():
        raise web.HTTPBadRequest(text="after must be a whole number >= 0")
    return int(raw)
    ### END SOLUTION


async def post_message(request: web.Request) -> web.Response:
    """``POST /messages``: append ``{"text": ...}`` to the log; 201 with the message."""
    ### BEGIN SOLUTION: parse the JSON body, check it, append, answer 201 with the message
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="the body is not JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("text"), str):
        raise web.HTTPBadRequest(text='send {"text": "..."}')
    message = await request.app[LOG].append(body["text"])
    return web.json_response(message, status=201)
    ### END SOLUTION


async def short_poll(request: web.Request) -> web.Response:
    """``GET /poll?after=N``: the messages after N, at once."""
    ### BEGIN SOLUTION: answer the log's messages after N as JSON, without waiting
    return web.json_response(request.app[LOG].after(after_parameter(request)))
    ### END SOLUTION


def create_app() -> web.Application:
    app = web.Application()
    app[LOG] = MessageLog()
    app.router.add_post("/messages", post_message)
    app.router.add_get("/poll", short_poll)
    return app
