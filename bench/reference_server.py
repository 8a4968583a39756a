"""The reference: the smallest SSE broadcast server asyncio allows, the Python ceiling here.

No framework, no sign-in, no history, no slow-consumer check: ``GET /sse`` answers the
headers and a ``connection_id`` event, and the transport joins a set. ``POST /broadcast``
encodes its body once as an HTTP/1.1 chunk holding one SSE frame and makes exactly one
``transport.write`` of those bytes per stream. Everything my_chat does beyond that (sign-in,
routing, bounded buffers, history, heartbeats) shows up as the distance to this server.

Run it as ``python -m bench.reference_server --port 8090 [--uvloop]``; it prints one line,
``listening on http://127.0.0.1:8090``, once it accepts connections, and stops on SIGTERM or
SIGINT. ``GET /stats`` answers ``{"connections": N}``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import signal
import sys
from urllib.parse import parse_qs, urlsplit

STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: text/event-stream; charset=utf-8\r\n"
    b"Cache-Control: no-cache\r\n"
    b"X-Accel-Buffering: no\r\n"
    b"Transfer-Encoding: chunked\r\n"
    b"\r\n"
)
MAX_HEAD = 16 * 1024
MAX_BODY = 64 * 1024


def chunk(payload: bytes) -> bytes:
    """One HTTP/1.1 chunk, as my_chat writes each frame (``Transfer-Encoding: chunked``)."""
    return b"%x\r\n%b\r\n" % (len(payload), payload)


def sse_frame(data: bytes, event: bytes | None = None) -> bytes:
    head = b"event: " + event + b"\n" if event else b""
    return head + b"data: " + data + b"\n\n"


def response(status: str, body: bytes, content_type: bytes = b"application/json") -> bytes:
    return b"HTTP/1.1 %b\r\nContent-Type: %b\r\nContent-Length: %d\r\n\r\n%b" % (
        status.encode(),
        content_type,
        len(body),
        body,
    )


class BroadcastServer:
    """The set of open streams, and the one thing done to them: write the same bytes."""

    def __init__(self) -> None:
        self.streams: set[asyncio.Transport] = set()
        self._ids = itertools.count(1)

    def open_stream(self, transport: asyncio.Transport) -> None:
        data = json.dumps({"client_id": f"ref-{next(self._ids)}"}).encode()
        transport.write(STREAM_HEAD + chunk(sse_frame(data, b"connection_id")))
        self.streams.add(transport)

    def broadcast(self, data: bytes, event: bytes | None) -> int:
        frame = chunk(sse_frame(data, event))
        for transport in self.streams:
            transport.write(frame)
        return len(self.streams)


class HttpProtocol(asyncio.Protocol):
    """Just enough HTTP/1.1: request line, headers, a Content-Length body, keep-alive."""

    def __init__(self, server: BroadcastServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.streaming = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.server.streams.discard(self.transport)

    def data_received(self, data: bytes) -> None:
        if self.streaming:
            return  # a stream's client has nothing more to say; ignore it
        self.buffer += data
        while not self.streaming:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                if len(self.buffer) > MAX_HEAD:
                    self._reply_and_close("431 Request Header Fields Too Large")
                return
            head = self.buffer[:head_end].decode("latin-1")
            request_line, *header_lines = head.split("\r\n")
            headers = {}
            for line in header_lines:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0") or 0)
            if length > MAX_BODY:
                self._reply_and_close("413 Payload Too Large")
                return
            body_end = head_end + 4 + length
            if len(self.buffer) < body_end:
                return
            body = self.buffer[head_end + 4 : body_end]
            self.buffer = self.buffer[body_end:]
            self._handle(request_line, body)

    def _handle(self, request_line: str, body: bytes) -> None:
        assert self.transport is not None
        method, target, *_ = [*request_line.split(" "), "", ""]
        url = urlsplit(target)
        if method == "GET" and url.path == "/sse":
            self.streaming = True
            self.buffer = b""
            self.server.open_stream(self.transport)
        elif method == "POST" and url.path == "/broadcast":
            event = parse_qs(url.query).get("event", [""])[0].encode() or None
            data = body.replace(b"\r", b"").replace(b"\n", b" ")  # one data line, always
            queued = self.server.broadcast(data, event)
            self.transport.write(response("202 Accepted", b'{"queued": %d}' % queued))
        elif method == "GET" and url.path == "/stats":
            payload = b'{"connections": %d}' % len(self.server.streams)
            self.transport.write(response("200 OK", payload))
        else:
            self.transport.write(response("404 Not Found", b'{"error": "not_found"}'))

    def _reply_and_close(self, status: str) -> None:
        assert self.transport is not None
        self.transport.write(response(status, b'{"error": "bad_request"}'))
        self.transport.close()


async def serve(host: str, port: int, *, backlog: int = 4096) -> None:
    loop = asyncio.get_running_loop()
    broadcast_server = BroadcastServer()
    server = await loop.create_server(
        lambda: HttpProtocol(broadcast_server), host, port, backlog=backlog
    )
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    bound_port = server.sockets[0].getsockname()[1]
    print(f"listening on http://{host}:{bound_port}", flush=True)
    async with server:
        await stop.wait()
        server.close()
        for transport in list(broadcast_server.streams):
            transport.abort()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop instead of asyncio")
    args = parser.parse_args(argv)
    if args.uvloop:
        import uvloop

        uvloop.run(serve(args.host, args.port))
    else:
        asyncio.run(serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
