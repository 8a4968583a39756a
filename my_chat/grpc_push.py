"""The push API over gRPC: the guide's ``SSEServiceServer`` and its ``PushToUsers`` logic.

The guide's gateway serves other backend services over gRPC (``pb.RegisterSSEServiceServer``)
beside its HTTP side. my_chat does too, with grpcio's asyncio API: the gRPC server runs on
the same event loop as aiohttp, on its own port (``--grpc-port``, off unless set), and starts
and stops with the application. A call is a coroutine on the loop, like an HTTP request, so
it uses the broker and the manager directly. (grpcio keeps one poller thread of its own while
a server or channel exists, to wake the loop; no handler runs on it, and it ends with them.)

A call goes through the checks of ``POST /api/push`` (``push.checked_user_ids`` and
``push.pushed_frame``) and the same broker, so it behaves as the HTTP push does, with one
process or with Redis, and answers at once with how many connections took the event.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import grpc
from aiohttp import web

from my_chat import push, sse_pb2, sse_pb2_grpc
from my_chat.context import CONTEXT, ServiceContext
from my_chat.errors import ApiError, BadRequest, StartupError, TooLarge, Unauthorized
from my_chat.metrics import METRICS, Metrics

logger = logging.getLogger("my_chat")

# The HTTP push's statuses, as gRPC codes.
STATUS_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    413: grpc.StatusCode.INVALID_ARGUMENT,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
}
# Seconds calls in progress get to finish when the server stops.
STOP_GRACE = 1.0

Reply = TypeVar("Reply")


def service_key_of(metadata) -> str | None:
    """The key in ``authorization: Bearer <key>`` or ``x-service-key: <key>``, if any."""
    for key, value in metadata or ():
        if key == "authorization":
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
        elif key == "x-service-key" and value.strip():
            return value.strip()
    return None


def _refuse(text: str) -> float:
    raise ValueError(f"{text} is not JSON")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):  # 1e999 would be written out as Infinity, which is not JSON
        raise ValueError(f"{text} is out of range")
    return number


def parsed_json(text: str) -> object:
    """``json_data`` as a value: strict JSON (no NaN or Infinity), at most 32 KiB."""
    if len(text.encode()) > push.MAX_DATA_BYTES:
        raise TooLarge("data_too_large", f"'json_data' is over {push.MAX_DATA_BYTES} bytes")
    try:
        return json.loads(text, parse_constant=_refuse, parse_float=_finite)
    except (ValueError, RecursionError):
        raise BadRequest("invalid_json", "'json_data' must be valid JSON text") from None


# --8<-- [start:service]
class SSEService(sse_pb2_grpc.SSEServiceServicer):
    """The guide's SSEServiceServer: what other backend services call."""

    def __init__(self, context: ServiceContext, metrics: Metrics | None = None) -> None:
        self.context = context
        self.metrics = metrics

    async def PushToUsers(self, request, call) -> sse_pb2.PushReply:
        async def push_to_users() -> sse_pb2.PushReply:
            user_ids = push.checked_user_ids(list(request.user_ids))
            frame = push.pushed_frame(request.event, parsed_json(request.json_data))
            queued = await self.context.broker.push(user_ids, frame)
            return sse_pb2.PushReply(queued=queued)

        return await self._answer(call, "push", push_to_users)

    async def Broadcast(self, request, call) -> sse_pb2.PushReply:
        async def broadcast() -> sse_pb2.PushReply:
            frame = push.pushed_frame(request.event, parsed_json(request.json_data))
            return sse_pb2.PushReply(queued=await self.context.broker.broadcast(frame))

        return await self._answer(call, "broadcast", broadcast)

    async def OnlineUsers(self, request, call) -> sse_pb2.OnlineUsersReply:
        async def online_users() -> sse_pb2.OnlineUsersReply:
            users = await self.context.presence.online_users()
            return sse_pb2.OnlineUsersReply(user_ids=users)

        return await self._answer(call, None, online_users)

    async def _answer(
        self, call, counted: str | None, handle: Callable[[], Awaitable[Reply]]
    ) -> Reply:
        """Check the service key, run ``handle``, and turn its errors into gRPC status codes."""
        try:
            key = service_key_of(call.invocation_metadata())
            expected = self.context.service_key.encode()
            if key is None or not hmac.compare_digest(key.encode(), expected):
                raise Unauthorized(
                    "invalid_service_key", "send the service key as 'authorization: Bearer KEY'"
                )
            reply = await handle()
        except ApiError as error:
            self._count(counted, error.code)
            code = STATUS_CODES.get(error.status, grpc.StatusCode.INTERNAL)
            await call.abort(code, f"{error.code}: {error.message}")
        except grpc.aio.AbortError:
            raise
        except Exception:
            logger.exception("gRPC %s failed", counted or "call")
            await call.abort(grpc.StatusCode.INTERNAL, "internal: the server failed; it is logged")
        self._count(counted, "accepted")
        return reply

    # --8<-- [end:service]

    def _count(self, counted: str | None, outcome: str) -> None:
        if counted is not None and self.metrics is not None:
            self.metrics.pushes.labels("grpc", counted, outcome).inc()


def listen_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# --8<-- [start:lifecycle]
async def grpc_server(app: web.Application) -> AsyncIterator[None]:
    """Serve ``SSEService`` on ``--grpc-port`` while the app runs (an aiohttp cleanup context).

    Appended after the app's own context, it starts once the service context exists, and
    stops first: calls in progress get ``STOP_GRACE`` seconds, new ones are refused.
    """
    context = app[CONTEXT]
    port = context.settings.grpc_port
    if not port:
        yield
        return
    server = grpc.aio.server()
    sse_pb2_grpc.add_SSEServiceServicer_to_server(SSEService(context, app.get(METRICS)), server)
    address = listen_address(context.settings.host, port)
    try:
        server.add_insecure_port(address)
    except RuntimeError as error:
        await server.stop(None)
        raise StartupError(f"cannot listen for gRPC on {address}: {error}") from None
    await server.start()
    logger.info("gRPC push service (my_chat/sse.proto) on %s", address)
    try:
        yield
    finally:
        await server.stop(STOP_GRACE)


# --8<-- [end:lifecycle]
