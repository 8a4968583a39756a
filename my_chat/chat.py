"""The chat room's API: send a message, page through history, see who is online."""

from __future__ import annotations

from aiohttp import web

from my_chat.auth import authenticate
from my_chat.context import context_of
from my_chat.errors import BadRequest, TooLarge, read_json_object
from my_chat.ratelimit import limit
from my_chat.store import MAX_MESSAGE_ID

routes = web.RouteTableDef()


# --8<-- [start:send-message]
@routes.post("/api/messages")
async def send_message(request: web.Request) -> web.Response:
    context = context_of(request)
    sender = authenticate(request)  # the sender is who signed in; a "from" field never counts
    body = await read_json_object(request)
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise BadRequest("empty_text", "'text' must be a non-empty string")
    if len(text) > context.settings.max_text:
        raise TooLarge(
            "text_too_long", f"a message is at most {context.settings.max_text} characters"
        )
    # Rate-limit before looking the recipient up: a 404 for an unknown name would otherwise
    # let anyone test a thousand names a second.
    await limit(context.message_limiter, sender, "messages")
    to = body.get("to")
    if to is not None:
        if not isinstance(to, str) or not to:
            raise BadRequest("invalid_recipient", "'to' must be a username")
        canonical = await context.accounts.canonical_name(to)
        context.parts.private.check_recipient(
            sender, canonical or to, recipient_exists=canonical is not None
        )
        to = canonical
    message = await context.broker.publish(sender, text, to)
    return web.json_response(message.to_payload(), status=201)


# --8<-- [end:send-message]


def _int_query(request: web.Request, name: str, default: int | None, low: int, high: int):
    values = request.query.getall(name, [])
    if len(values) > 1:  # a bad second value must not hide behind a good first one
        raise BadRequest(f"invalid_{name}", f"give '{name}' once")
    raw = values[0] if values else None
    if raw is None or raw == "":
        return default
    if not raw.isascii() or not raw.isdigit() or not low <= int(raw) <= high:
        raise BadRequest(f"invalid_{name}", f"'{name}' must be a whole number from {low} to {high}")
    return int(raw)


@routes.get("/api/history")
async def history(request: web.Request) -> web.Response:
    context = context_of(request)
    viewer = authenticate(request)
    before = _int_query(request, "before", None, 1, MAX_MESSAGE_ID)
    limit_ = _int_query(request, "limit", 50, 1, context.settings.history_page_max)
    messages = await context.store.before(before, viewer, limit_)
    messages = [m for m in messages if context.parts.private.may_see(m, viewer)]
    return web.json_response({"messages": [m.to_payload() for m in messages]})


@routes.get("/api/online")
async def online(request: web.Request) -> web.Response:
    authenticate(request)
    return web.json_response({"users": await context_of(request).presence.online_users()})
