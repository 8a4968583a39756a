"""Phase 5, step 4: presence, who is online.

A user is online while they have at least one open stream (one user, several devices:
a phone and a laptop are two connections of one user). The manager already knows when a
user comes and goes: ``manager.register`` returns True for a user's *first* connection and
``manager.unregister`` True for their *last*. Turn that into events:

- every stream gets a ``presence`` event ``{"user": NAME, "online": true}`` when NAME's first
  connection opens, and ``{"user": NAME, "online": false}`` when their last one closes;
  a second device of a user who is already online sends nothing, and neither does closing
  one of two;
- each new stream gets, once, right after ``connection_id``, an ``online`` event
  ``{"users": [...]}``: every online user, itself included, sorted
  (``manager.online_users()``); the page starts from that list and applies the changes;
- ``GET /api/online`` answers ``{"users": [...]}``, the same sorted list.

Only the change travels, never the whole list on every change: with n users online, that
would be n names on each of n streams per change.

Requirements (each is a test in tests/exercises/test_p5_presence.py): the three points
above, plus the frames: ``presence_frame(user, online)`` is a ``presence`` event whose data
is ``to_json(PresenceData(user, online))``, ``online_frame(users)`` an ``online`` event whose
data is ``to_json(OnlineData(users))``. Step 3's ``POST /api/messages`` keeps working.

The stream handler is step 2's with presence added: ``stream`` below starts the same way,
using your ``user_of``, ``open_stream`` and ``connection_id_frame`` from step 2.

Try it (``python -m exercises run``; one terminal per line)::

    curl -N 'http://127.0.0.1:8080/sse?user=bob'
    curl -N 'http://127.0.0.1:8080/sse?user=alice'     # bob sees alice arrive; Ctrl-C: leave
    curl http://127.0.0.1:8080/api/online
"""

# Generated from solutions/p5_presence.py by tools/make_exercises.py —
# edit this file, it is yours.

from __future__ import annotations

from aiohttp import web

from my_chat.events import ONLINE, PRESENCE, OnlineData, PresenceData, to_json
from my_chat.sse import encode_event
from my_chat.store import NoHistory

from .p5_app import MANAGER
from .p5_app import create_app as create_step1_app
from .p5_post_message import STORE, post_message
from .p5_sse_endpoint import connection_id_frame, open_stream, user_of


def presence_frame(user: str, online: bool) -> bytes:
    """A ``presence`` event: ``user`` came online (True) or went offline (False)."""
    # TODO: encode PresenceData as JSON in a presence event
    raise NotImplementedError("TODO: presence_frame() in exercises/p5_presence.py")


def online_frame(users: list[str]) -> bytes:
    """An ``online`` event listing ``users``."""
    # TODO: encode OnlineData as JSON in an online event
    raise NotImplementedError("TODO: online_frame() in exercises/p5_presence.py")


async def stream(request: web.Request) -> web.StreamResponse:
    """``GET /sse``, as in step 2, telling everyone when a user comes and goes."""
    manager = request.app[MANAGER]
    user = user_of(request)
    response, connection = await open_stream(request, user)
    await response.write(connection_id_frame(connection))
    # TODO: register, online list, presence; wait; finally: unregister, presence
    raise NotImplementedError("TODO: stream() in exercises/p5_presence.py")
    return response


async def online(request: web.Request) -> web.Response:
    """``GET /api/online``: ``{"users": [...]}``, sorted."""
    # TODO: the manager's online users as JSON
    raise NotImplementedError("TODO: online() in exercises/p5_presence.py")


def create_app() -> web.Application:
    """Step 1's app with this step's ``/sse``, step 3's messages and ``/api/online``."""
    app = create_step1_app()
    app[STORE] = NoHistory()
    app.router.add_get("/sse", stream)
    app.router.add_post("/api/messages", post_message)
    app.router.add_get("/api/online", online)
    return app
