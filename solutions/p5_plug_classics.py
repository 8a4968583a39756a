"""Phase 5, step 5: the four classic exercises plug in.

Your server from steps 1 to 4 now runs on the guide's four extension exercises, which you
wrote in exercises/tokens.py, heartbeat.py, message_store.py and private.py (do those
first: this step imports them). my_chat's own server uses them the same way; here you wire
them in yourself, one region each:

- **tokens** replace ``?user=``. ``POST /api/login`` with ``{"username": "alice"}`` answers
  200 ``{"username": "alice", "token": ...}``, a token from your ``issue_token`` signed with
  ``app[SECRET]`` (kept in ``var/p5_jwt_secret``, so a restart keeps everyone signed in),
  valid ``TOKEN_TTL`` seconds. (No password here, to keep the step small:
  my_chat's accounts add them.) A name that does not match ``USER_NAME`` is step 2's 400
  ``invalid_user``. Every other call names its user with ``Authorization: Bearer TOKEN``, or
  ``?token=TOKEN`` (``EventSource`` cannot set headers). ``user_of`` answers 401
  ``missing_token`` without a token and 401 ``invalid_token`` when your ``verify_token``
  refuses it; ``?user=`` counts for nothing any more.
- **heartbeat**: each stream's second event, right after ``connection_id``, is the
  ``initial`` heartbeat for that connection (its ``client_id`` and ``user_id``). While the app
  runs, your ``periodic_heartbeats`` and ``healthcheck_heartbeats`` loops run as tasks
  (every ``app[INTERVALS]`` seconds), cancelled when the app stops (``running``).
- **message_store**: ``running`` opens your ``MessageStore`` on the file ``app[DATABASE]``
  and closes it on the way out, so messages and their ids survive a restart. A stream that
  sends ``Last-Event-ID`` (or ``?last_event_id=``) first gets every message after that id,
  then live ones, none twice and none missing; a stream without one first gets the latest
  ``app[HISTORY]`` messages. my_chat's ``replay`` (my_chat/history.py) writes the history
  and the connection's replay buffer (phase 4) holds live frames back meanwhile.
- **private**: a message with ``"to": "bob"`` goes only to bob's and the sender's streams.
  ``to`` that is not a non-empty string: 400 ``invalid_recipient``. Your ``check_recipient``
  refuses a message to yourself (400 ``self_message``) and to a user who never signed in (404
  ``unknown_recipient``; ``app[USERS]`` holds who did). A replay shows each stream only the
  private messages its user sent or received (your store's queries already filter; hand
  ``replay`` your ``may_see`` too, which checks every message once more).

Requirements: each point above is a test in tests/exercises/test_p5_plug_classics.py, and
after any refused request the server keeps working. ``create_app`` takes the settings as
keywords, so the tests can use a temporary database and short intervals.

Try it (``python -m exercises run``)::

    curl -s -H 'Content-Type: application/json' -d '{"username": "alice"}' \\
        http://127.0.0.1:8080/api/login                     # copy the token
    curl -N -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8080/sse
    curl -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\
        -d '{"text": "stored this time"}' http://127.0.0.1:8080/api/messages
    curl -N -H "Authorization: Bearer $TOKEN" -H 'Last-Event-ID: 0' http://127.0.0.1:8080/sse
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from my_chat.auth import bearer_token
from my_chat.connection import requested_last_event_id
from my_chat.errors import BadRequest, InvalidToken, Unauthorized, read_json_object
from my_chat.events import HEARTBEAT_INITIAL, message_frame
from my_chat.history import replay
from my_chat.server import read_or_create_secret

from . import heartbeat, message_store, private, tokens
from .p5_app import MANAGER
from .p5_app import create_app as create_step1_app
from .p5_post_message import STORE, message_text, now_ms
from .p5_presence import online, online_frame, presence_frame
from .p5_sse_endpoint import USER_NAME, connection_id_frame, open_stream

TOKEN_TTL = 24 * 3600
SECRET = web.AppKey("secret", str)
DATABASE = web.AppKey("database", Path)
INTERVALS = web.AppKey("intervals", tuple)  # (periodic, healthcheck) in seconds
HISTORY = web.AppKey("history", int)
USERS = web.AppKey("users", set)
LOOPS = web.AppKey("loops", list)


async def login(request: web.Request) -> web.Response:
    """``POST /api/login`` with ``{"username": NAME}``: a token for NAME."""
    body = await read_json_object(request)
    username = body.get("username")
    if not isinstance(username, str) or not USER_NAME.fullmatch(username):
        raise BadRequest("invalid_user", "a name is 1 to 32 letters, digits, '_', '.' or '-'")
    ### BEGIN SOLUTION: add the user to app[USERS]; answer the name and your issue_token's token
    request.app[USERS].add(username)
    token = tokens.issue_token(username, secret=request.app[SECRET], ttl=TOKEN_TTL)
    return web.json_response({"username": username, "token": token})
    ### END SOLUTION


def user_of(request: web.Request) -> str:
    """The user the request's token names: bearer header first, then ``?token=``."""
    token = bearer_token(request) or request.query.get("token")
    if not token:
        raise Unauthorized("missing_token", "sign in with POST /api/login, then send the token")
    ### BEGIN SOLUTION: your verify_token; turn its InvalidToken into a 401 invalid_token
    try:
        return tokens.verify_token(token, secret=request.app[SECRET])
    except InvalidToken as error:
        raise Unauthorized("invalid_token", f"the token is not valid: {error}") from None
    ### END SOLUTION


async def stream(request: web.Request) -> web.StreamResponse:
    """``GET /sse``: step 4's stream, with a token, heartbeats and the replay of history."""
    manager = request.app[MANAGER]
    user = user_of(request)
    last_event_id = requested_last_event_id(request)
    response, connection = await open_stream(request, user)
    ### BEGIN SOLUTION: write connection_id, then your initial heartbeat for this connection
    payload = heartbeat.heartbeat_payload(HEARTBEAT_INITIAL, client_id=connection.id, user_id=user)
    await response.write(connection_id_frame(connection) + heartbeat.heartbeat_frame(payload))
    ### END SOLUTION
    connection.start_replay()  # live frames wait until the history before them is out
    first_of_user = manager.register(connection)
    try:
        await response.write(online_frame(manager.online_users()))
        if first_of_user:
            manager.broadcast(presence_frame(user, True))
        ### BEGIN SOLUTION: replay the history with your may_see, then finish the replay
        last_replayed = await replay(
            request.app[STORE],
            connection,
            private.may_see,
            last_event_id,
            request.app[HISTORY],
        )
        connection.finish_replay(last_replayed)
        ### END SOLUTION
        await connection.closed
    finally:
        if manager.unregister(connection):
            manager.broadcast(presence_frame(user, False))
    return response


async def post_message(request: web.Request) -> web.Response:
    """``POST /api/messages``: step 3's, stored in your store and sent to its audience."""
    sender = user_of(request)
    body = await read_json_object(request)
    text = message_text(body)
    to = body.get("to")
    ### BEGIN SOLUTION: check a recipient; store; send to your audience (None: all); answer 201
    if to is not None:
        if not isinstance(to, str) or not to:
            raise BadRequest("invalid_recipient", "'to' must be a username")
        private.check_recipient(sender, to, recipient_exists=to in request.app[USERS])
    message = await request.app[STORE].append(sender, text, to, now_ms())
    frame = message_frame(message)
    manager = request.app[MANAGER]
    audience = private.audience(message)
    if audience is None:
        manager.broadcast(frame)
    else:
        manager.send_to_users(audience, frame)
    return web.json_response(message.to_payload(), status=201)
    ### END SOLUTION


async def running(app: web.Application) -> AsyncIterator[None]:
    """While the app runs: your message store open, your two heartbeat loops going."""
    ### BEGIN SOLUTION: open your store into app[STORE]; start both loops as tasks into app[LOOPS]
    app[STORE] = await message_store.MessageStore.open(str(app[DATABASE]))
    manager = app[MANAGER]
    periodic, healthcheck = app[INTERVALS]
    app[LOOPS] = [
        asyncio.create_task(heartbeat.periodic_heartbeats(manager, periodic)),
        asyncio.create_task(heartbeat.healthcheck_heartbeats(manager, healthcheck)),
    ]
    ### END SOLUTION
    try:
        yield
    finally:
        ### BEGIN SOLUTION: cancel the loops, wait until they end, close the store
        for task in app[LOOPS]:
            task.cancel()
        await asyncio.gather(*app[LOOPS], return_exceptions=True)
        await app[STORE].close()
        ### END SOLUTION


def create_app(
    *,
    database: str | Path = Path("var") / "p5_chat.sqlite3",
    secret: str | None = None,
    periodic: float = 30.0,
    healthcheck: float = 60.0,
    history: int = 50,
) -> web.Application:
    """The chat server of phase 5, on your four classic exercises."""
    app = create_step1_app()
    database = Path(database)
    database.parent.mkdir(parents=True, exist_ok=True)
    # Kept in a file beside the database, so tokens stay valid across a restart.
    app[SECRET], _ = read_or_create_secret(
        secret, "MY_CHAT_JWT_SECRET", database.parent / "p5_jwt_secret"
    )
    app[DATABASE] = database
    app[INTERVALS] = (periodic, healthcheck)
    app[HISTORY] = history
    app[USERS] = set()
    app[LOOPS] = []
    app.router.add_post("/api/login", login)
    app.router.add_get("/sse", stream)
    app.router.add_post("/api/messages", post_message)
    app.router.add_get("/api/online", online)
    app.cleanup_ctx.append(running)
    return app
