"""Deadlines for slow clients: a request head in 10 s, a body in 30 s, idle keep-alive 75 s.

A client that opens a connection and then sends its request a byte at a time (slowloris), or
never finishes its body, or just sits on an idle keep-alive connection, holds a socket and
some memory for as long as the server lets it. aiohttp has a setting for the last of the
three only (``keepalive_timeout``, about an hour by default), and a connection that has sent
part of a head counts as idle for it, so a trickled head lives as long as an idle one.

The two other deadlines are built one layer down, in aiohttp's per-connection protocol, the
``RequestHandler``, because only there is it known when a head is complete: the HTTP parser
hands over a request the moment its last header line arrives. The subclass below starts a
timer when a head begins (a new connection, or the first bytes after a finished request) and
stops it when the parser produces the request; it starts another when a request has a body,
stopped by the body's end. Nothing here watches a response: an SSE stream, which has no
request body and has long finished its head, is never cut.

* A head that misses its deadline gets ``408`` with a JSON error and the connection closes
  (a connection that sent nothing at all is just closed: browsers open spare connections).
* A body that misses its deadline makes the handler's ``await request.read()`` fail with
  ``408 body_timeout`` (a JSON error, through the usual error middleware); the connection
  closes after that answer.

The same subclass answers the requests aiohttp's HTTP parser refuses (``handle_error``) with a
JSON error, ``400 malformed_request``, like every other error of the API.

This reads attributes aiohttp keeps for itself (``_request_count``, ``_messages``, and the
``_parser`` a stream's connection lets go and gets back, see ``carries_a_stream``), and swaps
``_messages`` for a smaller queue (:class:`RequestQueue`): aiohttp is pinned
(``pyproject.toml``), and ``tests/test_timeouts.py`` fails if an upgrade changes them.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.http import HttpRequestParser
from aiohttp.web_protocol import MAX_MSG_QUEUE_SIZE, RequestHandler, RequestPayloadError

from my_chat.config import Settings
from my_chat.errors import ApiError, refused_early


@dataclass(frozen=True)
class ClientDeadlines:
    """Seconds a client gets for each step; 0 turns that deadline off."""

    head: float = 10.0
    body: float = 30.0
    keepalive: float = 75.0

    @classmethod
    def of(cls, settings: Settings) -> ClientDeadlines:
        return cls(
            settings.request_head_timeout, settings.request_body_timeout, settings.keepalive_timeout
        )


class BodyTimeout(ApiError):
    status = 408

    def __init__(self, seconds: float) -> None:
        super().__init__("body_timeout", f"the request body did not arrive within {seconds:g} s")


class HeadTimeout(ApiError):
    status = 408

    def __init__(self, seconds: float) -> None:
        super().__init__("head_timeout", f"the request head did not arrive within {seconds:g} s")


def _head_timeout_response(seconds: float) -> bytes:
    # Written straight to the socket: no request was parsed, so there is no response object.
    error = HeadTimeout(seconds)
    body = json.dumps({"error": error.code, "message": error.message}).encode()
    return (
        b"HTTP/1.1 408 Request Timeout\r\n"
        b"Content-Type: application/json; charset=utf-8\r\n"
        b"Content-Length: %d\r\n"
        b"Connection: close\r\n\r\n%b" % (len(body), body)
    )


class RequestQueue(list):
    """The requests parsed but not yet answered on one connection, oldest first.

    aiohttp keeps them in a ``deque``, which allocates a block of 64 slots (760 bytes) up
    front, for every connection, SSE streams included. Pipelining is rare and its queue
    short (aiohttp pauses reading at a few requests), so a list, whose ``pop(0)`` moves one
    or two items, does the same job in about 60 bytes.
    """

    __slots__ = ()

    def popleft(self) -> Any:
        return self.pop(0)


# --8<-- [start:handler]
class DeadlineRequestHandler(RequestHandler):
    """aiohttp's connection protocol, with deadlines for the request head and body."""

    __slots__ = ("_body", "_body_timer", "_deadlines", "_head_bytes", "_head_timer", "_on_lost")

    def __init__(self, manager: web.Server, *, deadlines: ClientDeadlines, **kwargs: Any):
        super().__init__(manager, **kwargs)
        self._deadlines = deadlines
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_bytes = False  # has part of the head arrived?
        self._body_timer: asyncio.TimerHandle | None = None
        self._body: Any = None  # the payload of the request whose body is being read
        self._on_lost: Callable[[], None] | None = None
        self._messages = RequestQueue()  # type: ignore[assignment]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._start_head_timer()  # a new connection must send a head in time too

    def data_received(self, data: bytes) -> None:
        if not data or self._force_close or self._close:
            super().data_received(data)
            return
        if self._parser is None:  # this connection carried a stream (see carries_a_stream)
            if self._request_in_progress:
                self.close()  # sent behind a running stream: closed once the stream ends
                return
            self._parser = self._manager.parser_for(self)  # it ended: a next request may come
        if self._body is None:  # not inside a body: these bytes begin or continue a head
            self._head_bytes = True
            if self._head_timer is None:
                self._start_head_timer()
        requests_before = self._request_count
        super().data_received(data)
        if self._request_count != requests_before:  # the parser finished one or more heads
            self._stop_head_timer()
            self._watch_body(self._messages[-1][1] if self._messages else None)

    def _start_head_timer(self) -> None:
        if self._deadlines.head > 0:
            self._head_timer = self._loop.call_later(self._deadlines.head, self._head_too_slow)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        self._head_timer = None
        self._head_bytes = False

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self._request_in_progress:
            # A request is being answered (a stream, say) and the next head, pipelined
            # behind it, stalls: let the answer finish, then close instead of waiting.
            self.close()
            return
        if self.transport is not None and self._head_bytes:
            self.transport.write(_head_timeout_response(self._deadlines.head))
        self.force_close()  # close() after write: the 408 is flushed before the FIN

    def _watch_body(self, payload: Any) -> None:
        if payload is None or payload.is_eof() or self._deadlines.body <= 0:
            return
        self._body = payload
        self._body_timer = self._loop.call_later(self._deadlines.body, self._body_too_slow)
        payload.on_eof(self._body_done)

    def _body_done(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
        self._body_timer = None
        self._body = None

    def _body_too_slow(self) -> None:
        self._body_timer = None
        payload, self._body = self._body, None
        if payload is None or payload.is_eof():
            return
        if self._request_in_progress:
            # The handler reading the body gets a 408 JSON error; then the connection closes.
            payload.set_exception(BodyTimeout(self._deadlines.body))
            self.close()
        else:
            self.force_close()  # answered already; aiohttp was only draining the rest

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """A request no handler answered (its parser refused it, or it failed outside the
        error middleware) gets a JSON error too, not aiohttp's plain text."""
        super().handle_error(request, status, exc, message)  # logs; raises if a response began
        return refused_early(status, exc, message)

    def on_connection_lost(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when the client's connection is gone (see my_chat/connection.py).

        One callback per connection: the stream is the only caller, once.
        """
        self._on_lost = callback

    def carries_a_stream(self) -> None:
        """The request being answered is an SSE stream: no other request comes while it runs.

        aiohttp keeps the connection's HTTP parser for the next request, and with it what it
        parsed (about 1.3 KB in all), for the whole of a stream's life. Let it go. A client
        that sends more while the stream runs has the connection closed once the stream
        ends, as a pipelined head behind a stream always had; after a stream has ended (a
        revocation, say), the next request on the connection gets a new parser.
        """
        self._parser = None

    def connection_lost(self, exc: BaseException | None) -> None:
        self._stop_head_timer()
        self._body_done()
        callback, self._on_lost = self._on_lost, None
        if callback is not None:
            callback()
        super().connection_lost(exc)


# --8<-- [end:handler]


# The parser settings of aiohttp's RequestHandler, with its defaults, for parser_for.
_PARSER_OPTIONS = {
    name: parameter.default
    for name, parameter in inspect.signature(RequestHandler.__init__).parameters.items()
    if name in ("max_line_size", "max_field_size", "max_headers", "auto_decompress")
}


class DeadlineServer(web.Server):
    """aiohttp's low-level server, making a :class:`DeadlineRequestHandler` per connection."""

    def __init__(self, *args: Any, deadlines: ClientDeadlines, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deadlines = deadlines
        given = {name: value for name, value in self._kwargs.items() if name in _PARSER_OPTIONS}
        self._parser_options = {**_PARSER_OPTIONS, **given}

    def parser_for(self, handler: RequestHandler) -> HttpRequestParser:
        """A new HTTP parser for ``handler``, made as aiohttp's ``RequestHandler`` makes it."""
        return HttpRequestParser(
            handler,
            self._loop,
            handler._read_bufsize,
            payload_exception=RequestPayloadError,
            max_msg_queue_size=MAX_MSG_QUEUE_SIZE,
            **self._parser_options,
        )

    def __call__(self) -> RequestHandler:
        return DeadlineRequestHandler(
            self, deadlines=self.deadlines, loop=self._loop, **self._kwargs
        )


class ChatRunner(web.AppRunner):
    """``web.AppRunner`` whose connections have the deadlines, and the idle keep-alive one."""

    def __init__(self, app: web.Application, deadlines: ClientDeadlines, **kwargs: Any) -> None:
        # aiohttp closes at once after each answer with 0, so 0 ("off") means its own default.
        keepalive = deadlines.keepalive if deadlines.keepalive > 0 else 3630.0
        super().__init__(app, keepalive_timeout=keepalive, **kwargs)
        self.deadlines = deadlines

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()  # starts the app; the server it built is unused
        return DeadlineServer(
            plain.request_handler,
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            loop=plain._loop,
            deadlines=self.deadlines,
            **plain._kwargs,
        )
