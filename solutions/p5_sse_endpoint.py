"""Phase 5, step 2: ``GET /sse``, a stream that stays open.

Add the event stream to step 1's app. A client opens ``GET /sse?user=alice``; the server
answers with the event-stream headers, sends a first event, and keeps the response open.
The stream is a my_chat ``Client`` (phase 4) registered with the app's manager, so
anything the manager sends later reaches it. (Step 5 replaces ``?user=`` with a signed
token: until then, anyone may say they are anyone.)

Requirements (each is a test in tests/exercises/test_p5_sse_endpoint.py):

- ``user_of(request)`` returns the ``user`` query parameter. Missing or empty: raise
  ``BadRequest("missing_user", ...)`` (a 400); not matching ``USER_NAME`` (1 to 32 letters,
  digits, ``_``, ``.`` or ``-``): ``BadRequest("invalid_user", ...)``. After a bad request
  the server keeps working.
- The answer is 200 with the headers in ``STREAM_HEADERS`` (``Content-Type:
  text/event-stream``, ``Cache-Control: no-cache``), in chunked transfer encoding when the
  request is HTTP/1.1; an HTTP/1.0 client gets the bytes unframed, the end of the body being
  the end of the connection (``open_stream``).
- The first event is ``connection_id``, its data the JSON ``{"client_id": ID}`` with the
  connection's id (a new one for every stream), and it sets ``retry: RETRY_MS``
  (``connection_id_frame``; build it with ``my_chat.sse.encode_event``).
- While the stream is open, its connection is registered with ``app[MANAGER]``:
  ``/healthz`` counts it, and a frame given to ``manager.broadcast`` reaches the stream.
- When the client goes away, the connection is unregistered, in a ``finally`` block:
  ``/healthz`` counts 0 again. (The server cancels the handler when its client disconnects,
  so the ``await`` that waits for the end raises ``CancelledError``: only ``finally`` runs.)

Try it (``python -m exercises run``, then in two terminals; ``-N`` turns off curl's buffer)::

    curl -N 'http://127.0.0.1:8080/sse?user=alice'
    curl http://127.0.0.1:8080/healthz

In a browser, open the console on http://127.0.0.1:8080/healthz and type
``new EventSource("/sse?user=alice").addEventListener("connection_id", e => console.log(e.data))``.
"""

from __future__ import annotations

import re
import uuid

from aiohttp import web

from my_chat.client_manager import Client
from my_chat.errors import BadRequest
from my_chat.events import CONNECTION_ID, ConnectionIdData, to_json
from my_chat.sse import encode_event

from .p5_app import MANAGER
from .p5_app import create_app as create_step1_app

USER_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,32}")
RETRY_MS = 1000
STREAM_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # proxies such as nginx must not hold the stream back
}


def user_of(request: web.Request) -> str:
    """The user named by ``?user=``; ``BadRequest`` if missing or not a valid name."""
    ### BEGIN SOLUTION: read the query parameter; raise missing_user or invalid_user
    user = request.query.get("user", "")
    if not user:
        raise BadRequest("missing_user", "name yourself with ?user=NAME")
    if not USER_NAME.fullmatch(user):
        raise BadRequest("invalid_user", "a name is 1 to 32 letters, digits, '_', '.' or '-'")
    return user
    ### END SOLUTION


async def open_stream(request: web.Request, user: str) -> tuple[web.StreamResponse, Client]:
    """Start the response with the stream headers; a Client that writes to this socket.

    The response uses chunked encoding if the request is HTTP/1.1 (``request.version``), and
    the Client writes ready-made chunks (or, for HTTP/1.0, bare frames) straight to
    ``request.transport``: ``Client(id, user, request.transport)``.
    Give it a new id: ``uuid.uuid4().hex``.
    """
    ### BEGIN SOLUTION: a StreamResponse with STREAM_HEADERS, chunked, prepared; then the Client
    response = web.StreamResponse(headers=STREAM_HEADERS)
    if request.version >= (1, 1):
        response.enable_chunked_encoding()
    await response.prepare(request)
    connection = Client(uuid.uuid4().hex, user, request.transport, chunked=response.chunked)
    return response, connection
    ### END SOLUTION


def connection_id_frame(connection: Client) -> bytes:
    """The first event: ``connection_id`` with ``{"client_id": ...}``, and ``retry``."""
    ### BEGIN SOLUTION: encode ConnectionIdData as JSON in a connection_id event with retry
    return encode_event(
        to_json(ConnectionIdData(connection.id)), event=CONNECTION_ID, retry=RETRY_MS
    )
    ### END SOLUTION


async def stream(request: web.Request) -> web.StreamResponse:
    """``GET /sse``: the stream of one client, open until the client goes away."""
    manager = request.app[MANAGER]
    user = user_of(request)  # before the headers go out, so an error can still be JSON
    response, connection = await open_stream(request, user)
    ### BEGIN SOLUTION: first event, register, await connection.closed; finally: unregister
    # prepare() has sent the headers. Write the first event before registering, so that
    # nothing the manager sends can reach the stream ahead of it.
    await response.write(connection_id_frame(connection))
    manager.register(connection)
    try:
        await connection.closed
    finally:
        manager.unregister(connection)
    ### END SOLUTION
    return response


def create_app() -> web.Application:
    """Step 1's app with ``GET /sse``."""
    app = create_step1_app()
    app.router.add_get("/sse", stream)
    return app
