"""The load generator: one worker process holding many SSE streams on raw asyncio sockets.

The orchestrator (:mod:`bench.processes`) starts one or more workers as
``python -m bench.loadgen`` and drives them with JSON lines on stdin; each worker answers
with JSON lines on stdout. The streams are ``asyncio.Protocol`` objects, not an HTTP client
library, so that reading costs as little as possible: the client must not be the bottleneck
when it shares two cores with the server it measures.

Every frame the benchmark sends carries a marker ``bench:<phase>:<seq>:<sent_ns>;`` in its
data, written just before the request leaves. A stream finds markers in what it reads and
records ``time.time_ns() - sent_ns`` (same host, same clock). Only phases the orchestrator
has *armed* count, so a chat message replayed as history on a later connection is ignored.

Commands (one JSON object per line, ``cmd`` says which):

``connect``  open ``count`` streams to ``host:port`` (``GET /sse``, bearer ``tokens`` used in
             turn); answers ``progress`` lines, then ``connected``. With ``resume``, a stream
             that loses its connection behaves as a browser's EventSource: it waits the
             ``retry:`` delay the server sent and reconnects with ``Last-Event-ID``, again
             and again until it is live.
``arm``      start counting phase ``phase``; answers ``armed`` with the number of live streams.
             While armed, a ``seq_done`` line goes out when every armed stream has ``seq``.
             With ``track``, it also notes which ``seq`` each stream got, to count what was
             lost, duplicated or out of order.
``collect``  answers ``collected`` with the phase's latencies and counts, and disarms it;
             for a tracked phase, ``acked`` lists the seqs every stream should have.
``status``   answers ``status``: live streams, streams reconnecting, reconnect attempts.
``close``    closes every stream; answers ``closed``.
``exit``     ends the worker.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import sys
import time
from array import array
from collections import Counter
from typing import Any

MARKER = re.compile(rb"bench:(\d+):(\d+):(\d+);")
# A marker is at most ~45 bytes; keeping this much of an unmatched tail never splits one.
TAIL_KEEP = 64
CONNECTION_ID = re.compile(rb"event: ?connection_id\r?\n")
ID_LINE = re.compile(rb"(?:^|\n)id: ?(\d+)\r?\n")
RETRY_LINE = re.compile(rb"(?:^|\n)retry: ?(\d+)\r?\n")
DEFAULT_RETRY_MS = 3000  # what a browser waits when the server sent no retry:
MAX_HEAD = 16 * 1024


class Phase:
    """Deliveries of one armed phase in this worker."""

    __slots__ = (
        "duplicates",
        "expected",
        "first_ns",
        "indices",
        "last_ns",
        "latencies_us",
        "notify",
        "out_of_order",
        "seq_counts",
        "seq_last_ns",
        "stream_counts",
        "stream_max",
        "tracked",
    )

    def __init__(self, streams: int, notify: bool, indices: list[int] | None = None) -> None:
        self.expected = streams
        self.notify = notify
        # Tracked phases: which seqs each stream got (a byte per seq), by stream index.
        self.indices = indices
        self.tracked: dict[int, bytearray] | None = {} if indices is not None else None
        self.stream_max: dict[int, int] = {}
        self.duplicates = 0
        self.out_of_order = 0
        self.latencies_us = array("q")
        self.seq_counts: dict[bytes, int] = {}
        self.seq_last_ns: dict[bytes, int] = {}
        self.stream_counts: dict[int, int] = {}
        self.first_ns = 0
        self.last_ns = 0


class Stream(asyncio.Protocol):
    """One ``GET /sse`` connection: parses the response head, de-chunks, finds markers."""

    __slots__ = (
        "_chunk_left",
        "_chunk_raw",
        "_chunk_skip",
        "_head",
        "_pre_live",
        "_tail",
        "chunked",
        "closed",
        "index",
        "last_id",
        "live",
        "request",
        "resume",
        "retry_ms",
        "status",
        "transport",
        "worker",
    )

    def __init__(
        self, worker: Worker, index: int, request: bytes, resume: bool = False, last_id: int = 0
    ) -> None:
        self.worker = worker
        self.index = index
        self.request = request
        # Resuming streams note the last ``id:`` and the ``retry:`` delay, as EventSource does.
        self.resume = resume
        self.last_id = last_id
        self.retry_ms = DEFAULT_RETRY_MS
        self.transport: asyncio.Transport | None = None
        self.live: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed = False
        self.status = 0
        self.chunked = False
        self._head: bytes | None = b""  # None once the response head is parsed
        self._pre_live = b""
        self._tail = b""
        self._chunk_left = 0
        self._chunk_skip = 0
        self._chunk_raw = b""

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.live.done():
            reason = f"closed before live (status {self.status})" if self.status else "closed"
            self.live.set_exception(ConnectionError(reason))
        else:
            self.worker.on_stream_lost(self)

    def data_received(self, data: bytes) -> None:
        now = time.time_ns()
        if self._head is not None:
            data = self._read_head(data)
            if not data:
                return
        body = self._dechunk(data) if self.chunked else data
        if not body:
            return
        if not self.live.done():
            self._pre_live += body
            if not self._check_live():
                return
            body = self._pre_live
            self._pre_live = b""
        text = self._tail + body if self._tail else body
        if self.resume:
            for found in ID_LINE.finditer(text):
                self.last_id = max(self.last_id, int(found[1]))
        end = 0
        for match in MARKER.finditer(text):
            self.worker.deliver(self, match, now)
            end = match.end()
        rest = len(text) - end
        self._tail = text[-TAIL_KEEP:] if rest > TAIL_KEEP else text[end:]

    # parsing

    def _read_head(self, data: bytes) -> bytes:
        assert self._head is not None
        self._head += data
        head_end = self._head.find(b"\r\n\r\n")
        if head_end < 0:
            if len(self._head) > MAX_HEAD:
                self._fail("response head too large")
            return b""
        head, rest = self._head[:head_end], self._head[head_end + 4 :]
        self._head = None
        status_line, _, header_block = head.partition(b"\r\n")
        parts = status_line.split(b" ", 2)
        self.status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        if self.status != 200:
            self._fail(f"status {self.status}")
            return b""
        self.chunked = b"transfer-encoding: chunked" in header_block.lower()
        return rest

    def _dechunk(self, data: bytes) -> bytes:
        if not (self._chunk_left or self._chunk_skip or self._chunk_raw):
            # The common case: exactly one whole chunk, as servers write one per frame.
            line_end = data.find(b"\r\n", 0, 10)
            if line_end > 0:
                start = line_end + 2
                stop = start + int(data[:line_end], 16)
                if stop > start and stop + 2 == len(data):
                    return data[start:stop]
        if self._chunk_raw:
            data = self._chunk_raw + data
            self._chunk_raw = b""
        pieces = []
        pos, end = 0, len(data)
        while pos < end:
            if self._chunk_skip:
                step = min(self._chunk_skip, end - pos)
                pos += step
                self._chunk_skip -= step
            elif self._chunk_left:
                step = min(self._chunk_left, end - pos)
                pieces.append(data[pos : pos + step])
                pos += step
                self._chunk_left -= step
                if not self._chunk_left:
                    self._chunk_skip = 2
            else:
                line_end = data.find(b"\r\n", pos)
                if line_end < 0:
                    self._chunk_raw = data[pos:]
                    break
                size = int(data[pos:line_end].split(b";", 1)[0], 16)
                pos = line_end + 2
                if size == 0:  # the server ended the stream
                    break
                self._chunk_left = size
        if len(pieces) == 1:
            return pieces[0]
        return b"".join(pieces)

    def _check_live(self) -> bool:
        match = CONNECTION_ID.search(self._pre_live)
        if match is None:
            if len(self._pre_live) > MAX_HEAD:
                self._fail("no connection_id event")
            return False
        frame_end = self._pre_live.find(b"\n\n", match.end())
        if frame_end < 0:
            return False
        retry = RETRY_LINE.search(self._pre_live, 0, frame_end + 1)
        if retry is not None:
            self.retry_ms = int(retry[1])
        self.live.set_result(None)
        self.worker.on_stream_live(self)
        return True

    def _fail(self, reason: str) -> None:
        if not self.live.done():
            self.live.set_exception(ConnectionError(reason))
        if self.transport is not None:
            self.transport.abort()


class Worker:
    def __init__(self) -> None:
        self.streams: dict[int, Stream] = {}
        self.phases: dict[bytes, Phase] = {}
        self.lost_after_live = 0
        self.out = sys.stdout
        # Resuming streams: where to reconnect, which are reconnecting, how many tries so far.
        self.address: tuple[str, int] = ("127.0.0.1", 0)
        self.reconnecting: set[asyncio.Task[None]] = set()
        self.reconnect_attempts = 0
        self.closing = False

    def send(self, message: dict[str, Any]) -> None:
        self.out.write(json.dumps(message, separators=(",", ":")) + "\n")
        self.out.flush()

    # stream callbacks

    def on_stream_live(self, stream: Stream) -> None:
        self.streams[stream.index] = stream

    def on_stream_lost(self, stream: Stream) -> None:
        if self.streams.get(stream.index) is not stream:
            return
        del self.streams[stream.index]
        self.lost_after_live += 1
        if stream.resume and not self.closing:
            task = asyncio.create_task(self.reconnect(stream))
            self.reconnecting.add(task)
            task.add_done_callback(self.reconnecting.discard)

    async def reconnect(self, lost: Stream) -> None:
        """Wait the server's ``retry:`` delay, reconnect with ``Last-Event-ID``, until live."""
        loop = asyncio.get_running_loop()
        head, _, _ = lost.request.partition(b"\r\n\r\n")
        head = b"\r\n".join(
            line for line in head.split(b"\r\n") if not line.startswith(b"Last-Event-ID:")
        )
        while not self.closing:
            await asyncio.sleep(lost.retry_ms / 1000)
            request = head + b"\r\nLast-Event-ID: %d\r\n\r\n" % lost.last_id
            stream = Stream(self, lost.index, request, resume=True, last_id=lost.last_id)
            stream.retry_ms = lost.retry_ms
            self.reconnect_attempts += 1
            try:
                await loop.create_connection(lambda s=stream: s, *self.address)
                await asyncio.wait_for(stream.live, 60)
                return
            except (OSError, ConnectionError, TimeoutError):
                if stream.transport is not None:
                    stream.transport.abort()

    def deliver(self, stream: Stream, match: re.Match[bytes], now: int) -> None:
        phase = self.phases.get(match[1])
        if phase is None:
            return
        seq = match[2]
        phase.latencies_us.append((now - int(match[3])) // 1000)
        if phase.tracked is not None:
            self.track(phase, stream.index, int(match[2]))
        count = phase.seq_counts.get(seq, 0) + 1
        phase.seq_counts[seq] = count
        phase.seq_last_ns[seq] = now
        counts = phase.stream_counts
        counts[stream.index] = counts.get(stream.index, 0) + 1
        if not phase.first_ns:
            phase.first_ns = now
        phase.last_ns = now
        if phase.notify and count == phase.expected:
            self.send({"ev": "seq_done", "phase": int(match[1]), "seq": int(seq)})

    @staticmethod
    def track(phase: Phase, index: int, seq: int) -> None:
        assert phase.tracked is not None
        seen = phase.tracked.get(index)
        if seen is None:
            seen = phase.tracked[index] = bytearray()
        if seq >= len(seen):
            seen.extend(bytes(seq + 64 - len(seen)))
        if seen[seq]:
            phase.duplicates += 1
            return
        seen[seq] = 1
        if seq < phase.stream_max.get(index, -1):
            phase.out_of_order += 1
        else:
            phase.stream_max[index] = seq

    # commands

    async def connect(self, command: dict[str, Any]) -> None:
        loop = asyncio.get_running_loop()
        host, port = command["host"], int(command["port"])
        self.address = (host, port)
        resume = bool(command.get("resume", False))
        count, offset = int(command["count"]), int(command.get("offset", 0))
        tokens: list[str] = command.get("tokens") or []
        timeout = float(command.get("timeout", 60.0))
        attempts = int(command.get("attempts", 3))
        limit = asyncio.Semaphore(int(command.get("concurrency", 100)))
        errors: Counter[str] = Counter()
        failed = 0
        started = time.monotonic()
        live_before = len(self.streams)

        def request_for(index: int) -> bytes:
            lines = ["GET /sse HTTP/1.1", f"Host: {host}:{port}", "Accept: text/event-stream"]
            if tokens:
                lines.append(f"Authorization: Bearer {tokens[index % len(tokens)]}")
            return ("\r\n".join(lines) + "\r\n\r\n").encode()

        async def open_one(index: int) -> None:
            nonlocal failed
            request = request_for(index)
            for attempt in range(attempts):
                async with limit:
                    stream = Stream(self, index, request, resume=resume)
                    try:
                        await loop.create_connection(lambda s=stream: s, host, port)
                        await asyncio.wait_for(stream.live, timeout)
                        return
                    except (OSError, ConnectionError, TimeoutError) as exc:
                        errors[f"{type(exc).__name__}: {exc}"[:120]] += 1
                        if stream.transport is not None:
                            stream.transport.abort()
                if attempt + 1 < attempts:
                    await asyncio.sleep(0.2 * (attempt + 1))
            failed += 1

        async def report_progress() -> None:
            while True:
                await asyncio.sleep(0.25)
                self.send(
                    {"ev": "progress", "live": len(self.streams) - live_before, "failed": failed}
                )

        reporter = asyncio.create_task(report_progress())
        try:
            await asyncio.gather(*(open_one(offset + i) for i in range(count)))
        finally:
            reporter.cancel()
        self.send(
            {
                "ev": "connected",
                "live": len(self.streams) - live_before,
                "failed": failed,
                "errors": dict(errors.most_common(5)),
                "seconds": time.monotonic() - started,
            }
        )

    def arm(self, command: dict[str, Any]) -> None:
        key = str(int(command["phase"])).encode()
        indices = sorted(self.streams) if command.get("track") else None
        self.phases[key] = Phase(len(self.streams), bool(command.get("notify", True)), indices)
        self.send({"ev": "armed", "phase": int(key), "streams": len(self.streams)})

    def collect(self, command: dict[str, Any]) -> None:
        key = str(int(command["phase"])).encode()
        phase = self.phases.pop(key, None) or Phase(0, False)
        per_stream = Counter(phase.stream_counts.values())
        per_stream[0] += phase.expected - len(phase.stream_counts)
        tracked = {}
        if phase.tracked is not None:
            acked = [int(seq) for seq in command.get("acked", [])]
            lost = 0
            for index in phase.indices or []:
                seen = phase.tracked.get(index, b"")
                lost += sum(1 for seq in acked if seq >= len(seen) or not seen[seq])
            tracked = {
                "lost": lost,
                "duplicated": phase.duplicates,
                "out_of_order": phase.out_of_order,
                "tracked_streams": len(phase.indices or []),
            }
        self.send(
            {
                "ev": "collected",
                "phase": int(key),
                "streams": phase.expected,
                "live_now": len(self.streams),
                "lost_after_live": self.lost_after_live,
                "deliveries": len(phase.latencies_us),
                "latencies_us": base64.b64encode(phase.latencies_us.tobytes()).decode(),
                "seq_counts": {int(s): c for s, c in phase.seq_counts.items()},
                "seq_last_ns": {int(s): t for s, t in phase.seq_last_ns.items()},
                "streams_by_count": {int(c): n for c, n in per_stream.items() if n},
                "first_ns": phase.first_ns,
                "last_ns": phase.last_ns,
                **tracked,
            }
        )

    def status(self) -> None:
        self.send(
            {
                "ev": "status",
                "live": len(self.streams),
                "reconnecting": len(self.reconnecting),
                "reconnect_attempts": self.reconnect_attempts,
            }
        )

    def close(self) -> None:
        self.closing = True
        for task in self.reconnecting:
            task.cancel()
        for stream in list(self.streams.values()):
            if stream.transport is not None:
                stream.transport.abort()
        self.streams.clear()
        self.phases.clear()
        self.lost_after_live = 0
        self.reconnect_attempts = 0
        self.closing = False
        self.send({"ev": "closed"})


async def serve_commands() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    worker = Worker()
    worker.send({"ev": "ready", "uvloop": "uvloop" in type(loop).__module__})
    background: set[asyncio.Task[None]] = set()
    while line := await reader.readline():
        command = json.loads(line)
        match command["cmd"]:
            case "connect":
                task = asyncio.create_task(worker.connect(command))
                background.add(task)
                task.add_done_callback(background.discard)
            case "arm":
                worker.arm(command)
            case "collect":
                worker.collect(command)
            case "status":
                worker.status()
            case "close":
                worker.close()
            case "exit":
                break
    for task in background:
        task.cancel()
    worker.close()


def main() -> int:
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve_commands())
    else:
        uvloop.run(serve_commands())
    return 0


if __name__ == "__main__":
    sys.exit(main())
