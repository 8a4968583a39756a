"""Phase 5, step 6: the page, EventSource in a real browser.

Your server gets its page: ``GET /`` answers ``index.html`` and ``/static/`` the files of
the folder ``p5_page_static/`` next to this module (page.js and page.css). The page signs
in, sends messages and shows who is online by itself. Yours are two parts: in this module,
the two routes in ``create_app`` (marked TODO); and in ``exercises/p5_page_static/page.js``,
the four functions marked TODO, the stream's life:

- ``streamUrl(token, lastId)``: ``/sse?token=TOKEN`` (encoded), plus
  ``&last_event_id=ID`` when ``lastId`` is above 0;
- ``onOpen()``: the state shown in ``#state`` becomes ``live``;
- ``onError(source)``: ``reconnecting`` while EventSource tries again by itself
  (``readyState`` is ``CONNECTING``), ``offline`` once it has given up (``CLOSED``);
- ``onMessage(event)``: shows each message once (by id, even when it arrives twice) and
  remembers the highest id shown in ``state.lastId`` and in sessionStorage, so that after a
  reload the page resumes from it and gets exactly the messages it missed.

Requirements (each is a test in tests/exercises/test_p5_page.py, run in headless Chromium
against your server on a free port): ``GET /`` is the page and ``/static/page.js`` its
script (this module's ``create_app``); the four points above. The tests run your step-5
server with ``history=0``, so a stream without ``last_event_id`` gets no history and a
reload shows only what arrived after it.

Try it: ``python -m exercises run``; ``curl -i http://127.0.0.1:8080/`` and
``curl -I http://127.0.0.1:8080/static/page.js`` show the two routes. Then open
http://127.0.0.1:8080/ in two browser tabs (each tab keeps its own sign-in, in
sessionStorage), sign in with two names and chat. Stop the server (Ctrl-C) and watch the
state go to ``reconnecting``; start it again and see ``live``. Reload a tab: it resumes
where it was. The browser's developer tools (Network, the ``sse`` request) show the events
as they arrive.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from .p5_plug_classics import create_app as create_step5_app

STATIC = Path(__file__).parent / "p5_page_static"


async def index(request: web.Request) -> web.FileResponse:
    """``GET /``: the page. ``no-cache``, so an edited page is fetched again."""
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


def create_app(**settings) -> web.Application:
    """Step 5's server (``settings`` go to it) with the page at ``/`` and ``/static/``."""
    app = create_step5_app(**settings)
    ### BEGIN SOLUTION: GET / is index; /static/ serves the STATIC folder
    app.router.add_get("/", index)
    app.router.add_static("/static/", STATIC)
    ### END SOLUTION
    return app
