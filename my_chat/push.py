"""The push API for other backend services: the guide's module 4.

The guide's gateway takes ``PushToUsers(userIds, event, jsonData)`` over gRPC, drops the
frame into a channel and answers "success" at once. my_chat does the same over HTTP and says
precisely what that success means: ``202 Accepted`` with the number of connections the frame
was handed to. Accepted, not delivered: a client may still vanish before it reads it.
"""

from __future__ import annotations

import re

from aiohttp import web

from my_chat.auth import require_service
from my_chat.context import context_of
from my_chat.errors import BadRequest, TooLarge, read_json_object
from my_chat.events import RESERVED_EVENTS, Frame, pushed_event_frame, to_json

routes = web.RouteTableDef()

# EventSource itself dispatches these: a pushed "open" or "error" would fire the page's own
# connection handlers, and "message" is what onmessage and unnamed events get.
BROWSER_EVENTS = frozenset({"open", "error", "message"})
EVENT_NAME = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")
MAX_USERS_PER_PUSH = 10_000
MAX_DATA_BYTES = 32 * 1024


# --8<-- [start:push]
def checked_event_name(value: object) -> str:
    """An event name a service may push: allowed characters only, none of the server's own."""
    if not isinstance(value, str) or not EVENT_NAME.fullmatch(value):
        raise BadRequest(
            "invalid_event", "'event' must be 1 to 64 letters, digits, '_', '.', ':' or '-'"
        )
    if value in RESERVED_EVENTS or value in BROWSER_EVENTS:
        raise BadRequest("reserved_event", f"'{value}' is one of the server's own event names")
    return value


def checked_user_ids(user_ids: object) -> list[str]:
    """The users a push may address: a non-empty list of names, at most 10,000."""
    if (
        not isinstance(user_ids, list)
        or not user_ids
        or not all(isinstance(u, str) and u for u in user_ids)
    ):
        raise BadRequest("invalid_user_ids", "'user_ids' must be a non-empty list of usernames")
    if len(user_ids) > MAX_USERS_PER_PUSH:
        raise TooLarge("too_many_users", f"at most {MAX_USERS_PER_PUSH} user ids per push")
    return user_ids


def pushed_frame(event: object, data: object) -> Frame:
    """The frame for a pushed event; the HTTP and the gRPC push both check through here."""
    event = checked_event_name(event)
    data_json = to_json(data)
    if len(data_json.encode()) > MAX_DATA_BYTES:
        raise TooLarge("data_too_large", f"'data' is over {MAX_DATA_BYTES} bytes as JSON")
    return pushed_event_frame(event, data_json)


def event_frame(body: dict) -> Frame:
    if "data" not in body:
        checked_event_name(body.get("event"))  # a bad name is still the first thing reported
        raise BadRequest("invalid_data", "'data' is required (any JSON value)")
    return pushed_frame(body.get("event"), body["data"])


@routes.post("/api/push")
async def push_to_users(request: web.Request) -> web.Response:
    require_service(request)
    body = await read_json_object(request)
    user_ids = checked_user_ids(body.get("user_ids"))
    frame = event_frame(body)
    queued = await context_of(request).broker.push(user_ids, frame)
    return web.json_response({"queued": queued}, status=202)


# --8<-- [end:push]


@routes.post("/api/broadcast")
async def broadcast(request: web.Request) -> web.Response:
    require_service(request)
    frame = event_frame(await read_json_object(request))
    queued = await context_of(request).broker.broadcast(frame)
    return web.json_response({"queued": queued}, status=202)


@routes.get("/api/stats")
async def stats(request: web.Request) -> web.Response:
    require_service(request)
    context = context_of(request)
    manager_stats = context.manager.stats
    return web.json_response(
        {
            "connections": len(context.manager),
            "users_online": len(await context.presence.online_users()),
            "connections_opened": manager_stats.connections_opened,
            "connections_closed": manager_stats.connections_closed,
            "slow_disconnects": manager_stats.slow_disconnects,
            "deliveries": manager_stats.deliveries,
            "messages_accepted": getattr(context.broker, "messages_accepted", 0),
        }
    )
