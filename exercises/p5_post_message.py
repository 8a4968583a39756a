"""Phase 5, step 3: posting a message that fans out to every stream.

Add ``POST /api/messages`` to step 2's app. The sender names themselves with ``?user=``
(as on ``/sse``; step 5 replaces it with a token) and sends ``{"text": "hello"}``. The server
gives the message an id, answers with it, and sends it to every open stream as a
``message`` event whose SSE ``id:`` is the message id. Ids come from ``app[STORE]``: for
now my_chat's ``NoHistory``, which counts but keeps nothing; step 5 puts your SQLite
message store in its place, with the same ``append``.

Requirements (each is a test in tests/exercises/test_p5_post_message.py):

- ``message_text(body)`` returns ``body["text"]``. Not a string, or only white space:
  ``BadRequest("empty_text", ...)`` (400). Longer than ``MAX_TEXT`` characters:
  ``TooLarge("text_too_long", ...)`` (413).
- A body that is not a JSON object is refused by my_chat's ``read_json_object`` (400, or 415
  without ``Content-Type: application/json``); a missing ``?user=`` is step 2's 400. After
  any of these the server accepts the next good message.
- A good message answers 201 with the message as JSON: ``{"id", "from", "to": null,
  "text", "timestamp"}`` (``Message.to_payload()``), ``timestamp`` in milliseconds.
- Every open stream, the sender's own included, gets one ``message`` event: its data is
  that same JSON and its ``id:`` the message id. my_chat's ``message_frame(message)``
  (my_chat/history.py) makes exactly that frame; hand it to the manager once for everyone.
- Ids grow by one per message.

Try it (``python -m exercises run``; one terminal per line)::

    curl -N 'http://127.0.0.1:8080/sse?user=bob'
    curl -i -H 'Content-Type: application/json' -d '{"text": "hello"}' \\
        'http://127.0.0.1:8080/api/messages?user=alice'
"""

# Generated from solutions/p5_post_message.py by tools/make_exercises.py —
# edit this file, it is yours.

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from my_chat.errors import BadRequest, TooLarge, read_json_object
from my_chat.events import message_frame
from my_chat.store import NoHistory

from .p5_app import MANAGER
from .p5_sse_endpoint import create_app as create_step2_app
from .p5_sse_endpoint import user_of

MAX_TEXT = 2000
# The message store: anything with ``append(sender, text, to, timestamp) -> Message``.
STORE = web.AppKey("store", Any)


def message_text(body: dict[str, Any]) -> str:
    """The message's text; ``BadRequest`` if empty or not text, ``TooLarge`` if too long."""
    # TODO: check that text is a non-blank string of at most MAX_TEXT characters
    raise NotImplementedError("TODO: message_text() in exercises/p5_post_message.py")


def now_ms() -> int:
    return int(time.time() * 1000)


async def post_message(request: web.Request) -> web.Response:
    """``POST /api/messages?user=NAME`` with ``{"text": ...}``: store, fan out, answer 201."""
    sender = user_of(request)
    body = await read_json_object(request)
    text = message_text(body)
    # TODO: append to the store, broadcast its frame, answer 201 with its payload
    raise NotImplementedError("TODO: post_message() in exercises/p5_post_message.py")


def create_app() -> web.Application:
    """Step 2's app with a message store and ``POST /api/messages``."""
    app = create_step2_app()
    app[STORE] = NoHistory()
    app.router.add_post("/api/messages", post_message)
    return app
