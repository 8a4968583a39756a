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
from aiohttp.abc import AbstractStreamWriter

from my_chat.auth import authenticate_session
from my_chat.client_manager import Client
from my_chat.config import Settings
from my_chat.context import ServiceContext, context_of
from my_chat.errors import ApiError, BadRequest, TooManyRequests
from my_chat.events import (
    HEARTBEAT_INITIAL,
    Frame,
    as_frame,
    connection_id_frame,
    joined_frame,
    online_frame,
)
from my_chat.history import replay
from my_chat.sessions import SESSION_REVOKED, end_streams
from my_chat.store import MAX_MESSAGE_ID

logger = logging.getLogger("my_chat")

routes = web.RouteTableDef()

STREAM_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    # nginx and similar proxies buffer responses unless told not to; SSE must not wait.
    "X-Accel-Buffering": "no",
}


# --8<-- [start:head]
class EventStreamResponse(web.StreamResponse):
    """The response of ``GET /sse``: its head waits to leave with the first frames.

    aiohttp sends a stream's status line and headers as soon as it is prepared, and the
    first frames follow in a write of their own: two system calls, and two TCP segments for
    the client to take in, for every connect. ``_send_headers_immediately`` is aiohttp's own
    switch for holding the head back (its ``web.Response`` turns it off); ``take_head`` then
    hands the held head to the connection, whose first write carries both.
    """

    _send_headers_immediately = False


def take_head(writer: AbstractStreamWriter) -> bytes | None:
    """The head ``writer`` holds back, taken out of it; None if it has none to give."""
    # aiohttp (pinned in requirements.lock) keeps the held head in these two attributes;
    # tests/test_connect_writes.py checks that it still does. Any other writer sends it now.
    head = getattr(writer, "_headers_buf", None)
    if isinstance(head, bytes) and getattr(writer, "_headers_written", None) is False:
        writer._headers_buf = None
        writer._headers_written = True
        return head
    writer.send_headers()
    return None


# --8<-- [end:head]


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
    if not raw.isascii() or not raw.isdigit() or int(raw) > MAX_MESSAGE_ID:
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


# --8<-- [start:opening]
def opening_frames(context: ServiceContext, connection: Client) -> Frame:
    """``connection_id`` with ``retry:``, then the ``initial`` heartbeat: one frame, one write."""
    frames = [connection_id_frame(connection.id, suggested_retry(context.settings))]
    heartbeat = context.parts.heartbeat  # its stand-in sends none
    payload = heartbeat.heartbeat_payload(
        HEARTBEAT_INITIAL, client_id=connection.id, user_id=connection.user
    )
    frames.append(as_frame(heartbeat.heartbeat_frame(payload)))
    return joined_frame(frames)


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
    # prepare() makes the status line and the headers; the connection sends them with its
    # first frame. Every frame, the handler's own included, is written by the connection
    # (Client.write), never by the response.
    writer = await response.prepare(request)
    # The headers are sent: the dict of them need not live as long as the stream (about 1 KB).
    response.headers.clear()
    connection = Client(
        uuid.uuid4().hex,
        user,
        request.transport,
        chunked=response.chunked,
        buffer_limit=context.settings.buffer_limit,
        head=take_head(writer),
    )
    connection.session = session
    connection.start_replay()
    first_of_user = context.manager.register(connection)
    # One line per stream only at debug level: at thousands of connects a second, a log line
    # each was about a sixth of a connect's CPU. Info has a line when a user comes and goes.
    logger.debug("connect client=%s user=%s", connection.id, user)
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
        # The handler's own frames go first, gathered into one write (see
        # Client.write_in_turn); live frames wait behind them until finish_replay.
        await connection.write_in_turn(opening_frames(context, connection), writer.drain)
        if first_of_user:
            logger.info("online user=%s client=%s", user, connection.id)
            await context.presence.user_online(user)
        # Who is online, for this stream only; the presence changes after it are held back
        # with the live frames, so the page applies them on top of this list, in order.
        # No local for it: the handler's frame lives as long as the stream, and so would the list.
        await connection.write_in_turn(
            online_frame(await context.presence.online_snapshot(user)), writer.drain
        )
        last_replayed = await replay(
            context.store,
            connection,
            context.parts.private.may_see,
            last_event_id,
            context.settings.history_on_connect,
            context.settings.replay_max,
            window=context.broker.latest_window,
            drain=writer.drain,
            upto=context.broker.replay_upto(),
        )
        connection.finish_replay(last_replayed)
        await connection.closed
        transport = request.transport
        if not connection.slow and transport is not None and not transport.is_closing():
            with contextlib.suppress(ConnectionError):
                await response.write_eof()
    except ConnectionError:
        pass  # the client went away mid-write; finally cleans up
    except Exception:
        # No JSON error can follow: the head is out, or held for the first frames (then the
        # client gets no answer at all). Cut the connection instead of leaving a silent
        # stream: the browser then reconnects with Last-Event-ID.
        logger.exception("stream failed for client=%s user=%s; closing it", connection.id, user)
        if request.transport is not None:
            request.transport.abort()
    finally:
        last_of_user = context.manager.unregister(connection)
        context.sessions.expiries.forget(connection)
        logger.debug(
            "disconnect client=%s user=%s%s",
            connection.id,
            user,
            " (slow)" if connection.slow else "",
        )
        if last_of_user:
            logger.info("offline user=%s client=%s", user, connection.id)
            try:
                await context.presence.user_offline(user)
            except Exception:
                logger.exception("could not announce that %s went offline", user)
    return response


# --8<-- [end:stream]
