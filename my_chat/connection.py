"""Connection handling, ``GET /sse``: the guide's module 3.

The flow follows the guide's diagram: authenticate, answer with the event-stream headers,
create the client with a server-made id, register it with the manager, send
``connection_id`` and the ``initial`` heartbeat, and then listen until the stream ends.
Two things differ from the guide, on purpose:

* The client is always unregistered, in ``finally``: the guide's chat room never
  unregisters, so its map only grows.
* Before live messages, the client gets the history it missed (``Last-Event-ID``), and live
  frames that arrive during that replay wait behind it: no gap, no duplicate.
"""

from __future__ import annotations

import contextlib
import logging
import random
import uuid

from aiohttp import web

from my_chat.auth import authenticate_session
from my_chat.client_manager import Connection
from my_chat.config import Settings
from my_chat.context import ServiceContext, context_of
from my_chat.errors import ApiError, BadRequest, TooManyRequests
from my_chat.events import (
    CONNECTION_ID,
    HEARTBEAT_INITIAL,
    ONLINE,
    ConnectionIdData,
    OnlineData,
    to_json,
)
from my_chat.history import replay
from my_chat.sessions import SESSION_REVOKED, end_streams
from my_chat.sse import encode_event

logger = logging.getLogger("my_chat")

routes = web.RouteTableDef()

STREAM_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    # nginx and similar proxies buffer responses unless told not to; SSE must not wait.
    "X-Accel-Buffering": "no",
}

MAX_EVENT_ID = 2**63 - 1


def requested_last_event_id(request: web.Request) -> int | None:
    """The id to resume after: the ``Last-Event-ID`` header, else ``?last_event_id=``."""
    # Both are checked, so a bad one is refused even when the other one wins; and each may
    # be given once, or a bad second value would hide behind a good (or empty) first one.
    from_header = _event_id(request.headers.getall("Last-Event-ID", []))
    from_query = _event_id(request.query.getall("last_event_id", []))
    return from_header if from_header is not None else from_query


def _event_id(values: list[str]) -> int | None:
    if len(values) > 1:
        raise BadRequest("invalid_last_event_id", "give Last-Event-ID once")
    raw = values[0] if values else None
    if raw is None or raw.strip() == "":
        return None
    raw = raw.strip()
    if not raw.isascii() or not raw.isdigit() or int(raw) > MAX_EVENT_ID:
        raise BadRequest("invalid_last_event_id", "Last-Event-ID must be a message id")
    return int(raw)


def check_stream_caps(context: ServiceContext, user: str) -> None:
    """Refuse a stream over the per-user or the server-wide cap, before any header is sent.

    The counts are this process's: behind a load balancer each process applies its own caps.
    """
    settings, manager = context.settings, context.manager
    if settings.max_streams and len(manager) >= settings.max_streams:
        raise ApiError(
            "server_full",
            "the server has as many streams open as it takes; try again later",
            status=503,
            headers={"Retry-After": "10"},
        )
    per_user = settings.max_streams_per_user
    if per_user and len(manager.connections_of(user)) >= per_user:
        raise TooManyRequests(
            "too_many_streams",
            f"you have {per_user} streams open, the most one user may; close one first",
            headers={"Retry-After": "10"},
        )


def suggested_retry(settings: Settings) -> int:
    """The ``retry:`` delay for one stream: ``retry_ms`` plus up to ``retry_jitter_ms``.

    Why at random: after a restart every stream reconnects after its retry delay. With one
    delay for all, all of them come back in the same few milliseconds (a thundering herd);
    with a spread, the server accepts them over the spread.
    """
    if settings.retry_jitter_ms <= 0:
        return settings.retry_ms
    return settings.retry_ms + random.randint(0, settings.retry_jitter_ms)


class EventStreamResponse(web.StreamResponse):
    """aiohttp's ``StreamResponse``, except that its headers wait for the first write and
    leave with it, in one ``send()``: aiohttp sends them on their own at ``prepare()``."""

    _send_headers_immediately = False


class OpeningWrites:
    """Everything a new stream gets before live frames, gathered for one write.

    Headers, ``connection_id``, the online list and the history used to be four ``send()``
    calls per stream; a system call each, and with thousands of streams connecting at once
    they were the largest cost of a connect. A long resume is still written in pieces of
    ``flush_at`` bytes, so it is never all held in memory.
    """

    __slots__ = ("_pieces", "_size", "_write", "flush_at")

    def __init__(self, write, flush_at: int = 64 * 1024) -> None:
        self._write = write
        self._pieces: list[bytes] = []
        self._size = 0
        self.flush_at = flush_at

    async def write(self, data: bytes) -> None:
        self._pieces.append(data)
        self._size += len(data)
        if self._size >= self.flush_at:
            await self.flush()

    async def flush(self) -> None:
        if self._pieces:
            data = b"".join(self._pieces)
            self._pieces.clear()
            self._size = 0
            await self._write(data)


# --8<-- [start:opening]
def opening_frames(context: ServiceContext, connection: Connection) -> bytes:
    frames = [
        encode_event(
            to_json(ConnectionIdData(connection.id)),
            event=CONNECTION_ID,
            retry=suggested_retry(context.settings),
        ),
    ]
    if context.parts.done("heartbeat"):
        heartbeat = context.parts.heartbeat
        payload = heartbeat.heartbeat_payload(
            HEARTBEAT_INITIAL, client_id=connection.id, user_id=connection.user
        )
        frames.append(heartbeat.heartbeat_frame(payload))
    return b"".join(frames)


# --8<-- [end:opening]


# --8<-- [start:stream]
@routes.get("/sse")
async def stream(request: web.Request) -> web.StreamResponse:
    context = context_of(request)
    session = authenticate_session(request)
    user = session.user
    last_event_id = requested_last_event_id(request)
    check_stream_caps(context, user)

    response = EventStreamResponse(headers=STREAM_HEADERS)
    if request.version >= (1, 1):
        # Chunked on purpose: the connection writes ready-made chunks straight to the socket.
        response.enable_chunked_encoding()
    await response.prepare(request)
    # prepare() has serialized the headers, and the first write sends them: the dict of them
    # need not live as long as the stream (about 1 KB each).
    response.headers.clear()
    opening = OpeningWrites(response.write)  # headers and all below leave in one write
    connection = Connection(
        uuid.uuid4().hex,
        user,
        request.transport,
        chunked=response.chunked,
        buffer_limit=context.settings.buffer_limit,
    )
    connection.session = session
    connection.start_replay()
    first_of_user = context.manager.register(connection)
    logger.info("connect client=%s user=%s", connection.id, user)
    context.sessions.expiries.watch(connection, session.expires)
    # The handler is cancelled when the client goes away, but that cancellation can be lost
    # (rarely: seen with clients that close right after connecting, in Redis mode), and the
    # stream would then stay registered for good. The protocol tells us directly as well.
    watch_connection = getattr(request.protocol, "on_connection_lost", None)
    if watch_connection is not None:
        watch_connection(connection.close)
        request.protocol.carries_a_stream()  # no next request: aiohttp's parser can go
    if context.sessions.is_revoked(session):
        end_streams([connection], SESSION_REVOKED)  # signed out while this stream opened
    try:
        # The headers, then retry:, connection_id, heartbeat.
        await opening.write(opening_frames(context, connection))
        if first_of_user:
            await context.broker.user_online(user)
        # Who is online, for this stream only; the presence changes after it are held back
        # with the live frames, so the page applies them on top of this list, in order.
        # No local for it: this frame lives as long as the stream, and so would the list.
        snapshot = OnlineData(await context.broker.online_snapshot(user))
        await opening.write(encode_event(to_json(snapshot), event=ONLINE))
        del snapshot
        may_see = context.parts.private.may_see if context.parts.done("private") else _room_only
        last_replayed = await replay(
            context.store,
            connection,
            opening.write,
            may_see,
            last_event_id,
            context.settings.history_on_connect,
            context.settings.replay_max,
            window=getattr(context.broker, "latest_window", None),
        )
        await opening.flush()
        del opening
        connection.finish_replay(last_replayed)
        await connection.closed
        transport = request.transport
        if not connection.slow and transport is not None and not transport.is_closing():
            with contextlib.suppress(ConnectionError):
                await response.write_eof()
    except ConnectionError:
        pass  # the client went away mid-write; finally cleans up
    except Exception:
        # The headers are out, so no JSON error can follow. Cut the connection instead of
        # leaving a silent stream: the browser then reconnects with Last-Event-ID.
        logger.exception("stream failed for client=%s user=%s; closing it", connection.id, user)
        if request.transport is not None:
            request.transport.abort()
    finally:
        last_of_user = context.manager.unregister(connection)
        context.sessions.expiries.forget(connection)
        logger.info(
            "disconnect client=%s user=%s%s",
            connection.id,
            user,
            " (slow)" if connection.slow else "",
        )
        if last_of_user:
            try:
                await context.broker.user_offline(user)
            except Exception:
                logger.exception("could not announce that %s went offline", user)
    return response


# --8<-- [end:stream]


def _room_only(message, viewer: str) -> bool:
    return message.to is None
