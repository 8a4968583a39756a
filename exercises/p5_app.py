"""Phase 5, step 1: an empty aiohttp app that answers in JSON.

The chat server of phase 5 grows from this app, one step at a time: each later step takes
the app its previous step made and adds one thing. Here the app gets the piece every step
needs, my_chat's ``ClientManager`` (the one phase 4 built), and one route to see it work.

Requirements (each is a test in tests/exercises/test_p5_app.py):

- ``create_app()`` returns an ``aiohttp.web.Application`` that holds a ``ClientManager``
  under the key ``MANAGER`` (``app[MANAGER]``).
- ``GET /healthz`` answers 200 with the JSON object ``{"ok": true, "connections": N}``,
  where N is ``len(manager)``, the number of open streams (0 for now).
- Every error is JSON: an unknown path answers 404 with ``{"error": "not_found", ...}``.
  my_chat's middleware ``my_chat.errors.json_errors`` does exactly that; install it. After a
  404 the server answers normally.
- When the server stops, every open stream is told to end, so that Ctrl-C does not wait for
  streams that never end by themselves: add the given ``close_streams`` to the app's
  ``on_shutdown`` hooks.

Try it: ``python -m exercises run`` serves your latest phase-5 step, then, in another
terminal (use the port that ``run`` prints)::

    curl -i http://127.0.0.1:8080/healthz
    curl -i http://127.0.0.1:8080/nowhere
"""

# Generated from solutions/p5_app.py by tools/make_exercises.py —
# edit this file, it is yours.

from __future__ import annotations

from aiohttp import web

from my_chat.client_manager import ClientManager
from my_chat.errors import json_errors

MANAGER = web.AppKey("manager", ClientManager)


async def healthz(request: web.Request) -> web.Response:
    """``{"ok": true, "connections": N}``: N open streams in the app's manager."""
    # TODO: answer JSON with ok and the manager's number of connections
    raise NotImplementedError("TODO: healthz() in exercises/p5_app.py")


async def close_streams(app: web.Application) -> None:
    """On shutdown: end every open stream (each stream's handler then returns)."""
    app[MANAGER].close_all()


def create_app() -> web.Application:
    """The app: JSON errors, a ClientManager under MANAGER, GET /healthz, close_streams."""
    # TODO: an Application with json_errors, the manager, the route, the hook
    raise NotImplementedError("TODO: create_app() in exercises/p5_app.py")
