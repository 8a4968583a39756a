"""``python -m bench.variants``: which of my_chat's delivery choices move the numbers.

Small aiohttp SSE servers, each differing from a baseline in exactly one choice, measured with
the benchmark's own load generator and phases (:mod:`bench.phases`, :mod:`bench.loadgen`). The
baseline does what my_chat does on its delivery path, with my_chat's own ``ClientManager``,
``Client`` and ``Frame``: encode a broadcast once, write the same HTTP chunk straight into
every stream's transport, close a stream whose transport holds more than ``buffer_limit``
bytes. Every server speaks the reference server's API: ``GET /sse`` (a ``connection_id``
event, then the stream), ``POST /broadcast?event=NAME`` (the body is the data), ``GET /stats``.

Three experiments:

* **Fan-out**, for every variant in ``--variants``: open N streams, read the server's RSS per
  idle stream, send K broadcasts one at a time (latency until every stream has read each one,
  and server CPU per delivery), then a burst of B broadcasts sent back to back (the delivery
  rate the server reaches when saturated). Repeated ``--rounds`` times.
* **Slow readers**, for every variant in ``--slow-variants``: a few fast streams and a few
  sockets that never read, large broadcasts at a fixed rate, and the server's RSS sampled
  while it goes on: bounded (closed past the limit), unbounded, and the guide's port.
* **In-process timings**, no sockets: encoding one frame, and handing one frame to N
  receivers through a queue and a task each, on asyncio and on uvloop.

    python -m bench.variants                          # everything, about two minutes
    python -m bench.variants --size 10000 --rounds 1  # other settings; --help lists them

The results go to ``bench/results/variants-<date>.json``; chapters/appendix-performance.md
explains them. ``python -m bench.variants --serve NAME --port P`` runs one variant's server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import shlex
import shutil
import signal
import socket
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.common import EVENT_NAME, RESULTS_DIR, Sender, log
from bench.phases import PhaseIds, connect_and_measure, delivery_check, fanout, quiesce, ramp_step
from bench.processes import ServerProcess, WorkerPool, raise_open_file_limit
from bench.report import machine_info
from bench.stats import latency_summary
from my_chat.client_manager import Client, ClientManager
from my_chat.config import Settings
from my_chat.connection import STREAM_HEADERS
from my_chat.events import Frame, as_frame
from my_chat.serve import free_port, tune_garbage_collector
from my_chat.sse import encode_event

BUFFER_LIMIT = Settings().buffer_limit  # my_chat's own: 256 KiB
GUIDE_QUEUE_SIZE = 100  # the guide's chat room: make(chan []byte, 100)


@dataclass(frozen=True)
class Variant:
    name: str
    differs: str  # what is different from the baseline, in a few words
    encode_once: bool = True
    # "direct": write into the transport from broadcast(); "queue": a queue per stream that
    # the stream's handler task empties; "guide": the same, written like the guide's Listen.
    delivery: str = "direct"
    queue_size: int = GUIDE_QUEUE_SIZE
    buffer_limit: int | None = BUFFER_LIMIT
    uvloop: bool = False


VARIANTS = {
    variant.name: variant
    for variant in [
        Variant("baseline", "none: what my_chat does"),
        Variant("encode-per-client", "the frame is encoded for every client", encode_once=False),
        Variant(
            "queue-per-client",
            "an asyncio.Queue per stream, emptied by the stream's own task",
            delivery="queue",
        ),
        Variant("baseline-uvloop", "runs on uvloop", uvloop=True),
        Variant(
            "unbounded",
            "no limit on a stream's outgoing buffer",
            buffer_limit=None,
        ),
        Variant(
            "guide-drop",
            "the guide's port: a queue of 100, the task awaits each write, Send drops when full",
            delivery="guide",
        ),
        Variant(
            "guide-unbounded-queue",
            "the guide's port with an unbounded asyncio.Queue()",
            delivery="guide",
            queue_size=0,
        ),
    ]
}
FANOUT_VARIANTS = ["baseline", "encode-per-client", "queue-per-client", "baseline-uvloop"]
SLOW_VARIANTS = ["baseline", "unbounded", "guide-drop", "guide-unbounded-queue"]


# ---------------------------------------------------------------------------------------------
# The servers


# --8<-- [start:queued-connection]
class QueuedClient(Client):
    """The guide's ``Client`` ported as is: ``Send`` puts a frame into a queue, and the
    stream's task (Go: the goroutine running ``Listen``) takes it out and writes it.

    The write itself is the baseline's (``Client.write``: the same shared chunk, the same
    buffer limit), so the queue and the task switch are the only difference measured.
    """

    __slots__ = ("queue",)

    def __init__(self, *args: Any, queue_size: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue: asyncio.Queue[Frame] = asyncio.Queue(queue_size)

    def send(self, frame: Frame | bytes) -> bool:
        frame = as_frame(frame)
        if self.closed.done():
            return False
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self._close_slow()  # the baseline's policy for a stream that cannot keep up
            return False
        return True

    async def listen(self, response: web.StreamResponse) -> None:
        while True:
            frame = await self.queue.get()  # one task wake-up per frame per stream
            if not self.write(frame):
                return


# --8<-- [end:queued-connection]


# --8<-- [start:guide-connection]
class GuideClient(QueuedClient):
    """The guide's ``Send`` and ``Listen`` as they are: a full queue drops the frame and
    says nothing, and the task waits for every write (Go's ``Fprintf`` blocks on a full
    socket; aiohttp's ``response.write`` waits for the transport to drain)."""

    __slots__ = ("dropped",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dropped = 0

    def send(self, frame: Frame | bytes) -> bool:
        frame = as_frame(frame)
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.dropped += 1  # select { case ch <- msg: ... default: return false }
            return False
        return True

    async def listen(self, response: web.StreamResponse) -> None:
        while True:
            frame = await self.queue.get()
            await response.write(frame.payload)


# --8<-- [end:guide-connection]


VARIANT_KEY = web.AppKey("variant", Variant)
MANAGER_KEY = web.AppKey("manager", ClientManager)


def new_connection(variant: Variant, request: web.Request, response: web.StreamResponse) -> Client:
    limit = sys.maxsize if variant.buffer_limit is None else variant.buffer_limit
    common = {"chunked": response.chunked, "buffer_limit": limit}
    connection_id = uuid.uuid4().hex
    if variant.delivery == "queue":
        return QueuedClient(
            connection_id, "bench", request.transport, queue_size=variant.queue_size, **common
        )
    if variant.delivery == "guide":
        return GuideClient(
            connection_id, "bench", request.transport, queue_size=variant.queue_size, **common
        )
    return Client(connection_id, "bench", request.transport, **common)


async def stream(request: web.Request) -> web.StreamResponse:
    variant, manager = request.app[VARIANT_KEY], request.app[MANAGER_KEY]
    response = web.StreamResponse(headers=STREAM_HEADERS)
    response.enable_chunked_encoding()
    await response.prepare(request)
    connection = new_connection(variant, request, response)
    opening = json.dumps({"client_id": connection.id})
    await response.write(encode_event(opening, event="connection_id"))
    manager.register(connection)
    try:
        if isinstance(connection, QueuedClient):
            await connection.listen(response)  # this task writes every frame
        else:
            await connection.closed  # this task sleeps; broadcast() writes
    except ConnectionError:
        pass
    finally:
        manager.unregister(connection)
    return response


# --8<-- [start:encode-once]
def broadcast_encoded_once(manager: ClientManager, data: str, event: str | None) -> int:
    """The baseline, and my_chat: one frame, one chunk, shared by every connection."""
    return manager.broadcast(Frame(encode_event(data, event=event)))


# --8<-- [end:encode-once]


# --8<-- [start:encode-per-client]
def broadcast_encoded_per_client(manager: ClientManager, data: str, event: str | None) -> int:
    """The guide's ``Listen`` formats each message for its own client: N encodings."""
    sent = 0
    for connection in manager.connections():
        if connection.send(Frame(encode_event(data, event=event))):
            sent += 1
    return sent


# --8<-- [end:encode-per-client]


async def broadcast(request: web.Request) -> web.Response:
    variant, manager = request.app[VARIANT_KEY], request.app[MANAGER_KEY]
    data = (await request.text()).replace("\r", " ").replace("\n", " ")
    event = request.query.get("event") or None
    fan_out = broadcast_encoded_once if variant.encode_once else broadcast_encoded_per_client
    return web.json_response({"queued": fan_out(manager, data, event)}, status=202)


async def stats(request: web.Request) -> web.Response:
    manager = request.app[MANAGER_KEY]
    connections = list(manager.connections())
    buffered = 0
    for connection in connections:
        transport = connection._transport
        if transport is not None and not transport.is_closing():
            buffered += transport.get_write_buffer_size()
    return web.json_response(
        {
            "connections": len(connections),
            "slow_disconnects": manager.stats.slow_disconnects,
            "dropped": sum(getattr(c, "dropped", 0) for c in connections),
            "queued_frames": sum(
                c.queue.qsize() for c in connections if isinstance(c, QueuedClient)
            ),
            "transport_buffered_bytes": buffered,
        }
    )


def variant_app(variant: Variant) -> web.Application:
    app = web.Application()
    app[VARIANT_KEY] = variant
    app[MANAGER_KEY] = ClientManager()
    app.router.add_get("/sse", stream)
    app.router.add_post("/broadcast", broadcast)
    app.router.add_get("/stats", stats)
    return app


async def serve_variant(variant: Variant, host: str, port: int, tuned_gc: bool = False) -> None:
    # As my_chat's own run(): cancel a stream's handler when its client goes away.
    runner = web.AppRunner(
        variant_app(variant), handler_cancellation=True, shutdown_timeout=1.0, access_log=None
    )
    await runner.setup()
    await web.TCPSite(runner, host, port, backlog=4096).start()
    if tuned_gc:
        tune_garbage_collector()
    print(f"{variant.name} listening on http://{host}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def run_server(name: str, host: str, port: int, tuned_gc: bool = False) -> int:
    variant = VARIANTS[name]
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if variant.uvloop:
        import uvloop

        uvloop.run(serve_variant(variant, host, port, tuned_gc))
    else:
        asyncio.run(serve_variant(variant, host, port, tuned_gc))
    return 0


# ---------------------------------------------------------------------------------------------
# The experiments


def variant_server(variant: Variant, log_dir: Path) -> ServerProcess:
    port = free_port()
    argv = [sys.executable, "-m", "bench.variants", "--serve", variant.name, "--port", str(port)]
    log_path = log_dir / f"{variant.name}.log"
    return ServerProcess(variant.name, argv, dict(os.environ), port, "/stats", log_path)


def broadcaster(session: aiohttp.ClientSession, base_url: str, padding: int = 0) -> Sender:
    """POST /broadcast with the marker the load generator looks for (and ``padding`` bytes)."""
    url = f"{base_url}/broadcast?event={EVENT_NAME}"
    pad = "x" * padding

    async def send(marker: str, seq: int) -> None:
        body = json.dumps({"m": marker, "pad": pad} if padding else {"m": marker})
        with contextlib.suppress(aiohttp.ClientError, OSError):
            async with session.post(url, data=body) as response:
                await response.read()

    return send


async def server_stats(session: aiohttp.ClientSession, server: ServerProcess) -> dict[str, Any]:
    async with session.get(server.base_url + "/stats") as response:
        return await response.json()


async def measure_fanout(
    session: aiohttp.ClientSession,
    pool: WorkerPool,
    variant: Variant,
    args: argparse.Namespace,
    new_phase: PhaseIds,
    log_dir: Path,
    label: str,
) -> dict[str, Any]:
    """N streams: RSS per idle stream, K broadcasts one at a time, then a back-to-back burst."""
    log(f"\n== {label}")
    server = variant_server(variant, log_dir)
    await server.start(session)
    result: dict[str, Any] = {"variant": variant.name, "n": args.size}
    result["load_average_at_start"] = round(os.getloadavg()[0], 2)
    try:
        await asyncio.sleep(0.5)
        connect, result["memory"] = await connect_and_measure(
            server, pool, args.size, None, label, args.settle
        )
        result["connect"] = connect
        send = broadcaster(session, server.base_url)
        await quiesce(server, pool)
        result["push"] = await fanout(
            pool, server, send, new_phase, args.broadcasts, f"{label} one at a time"
        )
        await quiesce(server, pool)
        # Offered far beyond what two cores can do (a broadcast every millisecond to every
        # stream), so the rate the deliveries complete at is the saturated rate.
        burst = await ramp_step(
            pool,
            server,
            send,
            new_phase,
            rate=1000.0 * connect["live"],
            step_seconds=args.burst / 1000,
            p99_limit_s=10.0,
            min_broadcasts=args.burst,
        )
        if burst["delivered"]:
            for side in ("server", "loadgen"):
                burst[f"{side}_cpu_us_per_delivery"] = round(
                    burst["cpu"][f"{side}_cpu_s"] * 1e6 / burst["delivered"], 2
                )
        result["burst"] = burst
        log(
            f"  {label} burst: {burst['delivered']:,}/{burst['expected']:,} delivered at "
            f"{burst['achieved_rate']:,}/s, p99 {burst['p99_ms']} ms"
        )
        result["server_stats"] = await server_stats(session, server)
    finally:
        await pool.close_streams()
        await server.stop()
    result["load_average_at_end"] = round(os.getloadavg()[0], 2)
    return result


def open_silent_reader(port: int) -> socket.socket:
    """A ``GET /sse`` whose client never reads: a phone in a tunnel, a stuck tab."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # A small receive window, so the kernel holds little and the server sees the backlog.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(
        f"GET /sse HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n\r\n".encode()
    )
    return sock


async def measure_slow_readers(
    session: aiohttp.ClientSession,
    pool: WorkerPool,
    variant: Variant,
    args: argparse.Namespace,
    new_phase: PhaseIds,
    log_dir: Path,
) -> dict[str, Any]:
    """Fast streams and silent ones, padded broadcasts at a fixed rate, RSS sampled throughout."""
    label = f"{variant.name} slow readers"
    log(f"\n== {label}")
    server = variant_server(variant, log_dir)
    await server.start(session)
    silent: list[socket.socket] = []
    samples: list[tuple[float, int]] = []
    result: dict[str, Any] = {"variant": variant.name}
    result["load_average_at_start"] = round(os.getloadavg()[0], 2)
    try:
        connect = await pool.connect(server.port, args.fast_streams, None, label)
        silent = [open_silent_reader(server.port) for _ in range(args.slow_readers)]
        wanted = connect["live"] + len(silent)
        for _ in range(100):
            if (await server_stats(session, server))["connections"] >= wanted:
                break
            await asyncio.sleep(0.05)
        await quiesce(server, pool)
        phase = new_phase()
        streams = await pool.arm(phase)
        send = broadcaster(session, server.base_url, args.slow_padding)
        count = round(args.slow_rate * args.slow_seconds)
        loop = asyncio.get_running_loop()
        start = loop.time()

        async def sample_rss() -> None:
            while True:
                samples.append((round(loop.time() - start, 3), server.rss()))
                await asyncio.sleep(args.sample_interval)

        sampler = asyncio.create_task(sample_rss())
        posts = []
        for seq in range(count):
            delay = start + seq / args.slow_rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            posts.append(asyncio.create_task(send(f"bench:{phase}:{seq}:{time.time_ns()};", seq)))
        await asyncio.wait(posts, timeout=10)
        await asyncio.sleep(1.0)  # one more second of samples after the last broadcast
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
        result["server_stats"] = await server_stats(session, server)
        collected = await pool.collect(phase)
        result["fast_streams"] = delivery_check(collected, streams, count)
        result["fast_streams"]["latency"] = latency_summary(collected["latencies_us"])
        result["silent_readers"] = len(silent)
        result["silent_still_connected"] = result["server_stats"]["connections"] - streams
        result["rss_samples"] = samples
        rss = [value for _, value in samples]
        result["rss_start"], result["rss_peak"], result["rss_end"] = rss[0], max(rss), rss[-1]
        result["bytes_offered_per_reader"] = count * (args.slow_padding + 64)
        log(
            f"  {label}: RSS {rss[0] / 2**20:.1f} -> {rss[-1] / 2**20:.1f} MiB "
            f"(peak {max(rss) / 2**20:.1f}); silent readers still connected "
            f"{result['silent_still_connected']}/{len(silent)}; "
            f"dropped {result['server_stats']['dropped']}; fast streams "
            f"{result['fast_streams']['delivered']:,}/{result['fast_streams']['expected']:,}"
        )
    finally:
        for sock in silent:
            sock.close()
        await pool.close_streams()
        await server.stop()
    result["load_average_at_end"] = round(os.getloadavg()[0], 2)
    return result


def mib(size: int) -> str:
    return f"{size / 2**20:.1f}"


def summary_rows(report: dict[str, Any]) -> list[str]:
    lines = [
        f"\nFan-out, N = {report['settings']['size']:,} streams",
        f"  {'variant':<24}{'round':>6}{'KB/conn':>9}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'us/deliv':>10}{'burst/s':>11}{'server us/d':>13}{'loadgen us/d':>14}",
    ]
    for run in report["fanout"]:
        burst = run.get("burst", {})
        lines.append(
            f"  {run['variant']:<24}{run['round']:>6}"
            f"{run['memory']['bytes_per_connection'] / 1024:>9.1f}"
            f"{run['push']['latency']['p50_ms']:>9.1f}{run['push']['latency']['p99_ms']:>9.1f}"
            f"{run['push'].get('server_cpu_us_per_delivery', 0):>10.2f}"
            f"{burst.get('achieved_rate', 0):>11,}"
            f"{burst.get('server_cpu_us_per_delivery', 0):>13.2f}"
            f"{burst.get('loadgen_cpu_us_per_delivery', 0):>14.2f}"
        )
    if report["slow_readers"]:
        lines.append("\nSlow readers: server RSS (MiB) and what happened to the silent readers")
        for run in report["slow_readers"]:
            lines.append(
                f"  {run['variant']:<24} start {mib(run['rss_start']):>6}  peak "
                f"{mib(run['rss_peak']):>6}  end {mib(run['rss_end']):>6}  connected "
                f"{run['silent_still_connected']}/{run['silent_readers']}  dropped "
                f"{run['server_stats']['dropped']}"
            )
    return lines


# ---------------------------------------------------------------------------------------------
# In-process timings: the cost of one step of a delivery, without sockets


def time_encoding(data: str, repeat: int = 20_000) -> float:
    """Microseconds to encode one frame and make its chunk: what encoding per client adds to
    every delivery."""
    started = time.perf_counter()
    for _ in range(repeat):
        _ = Frame(encode_event(data, event=EVENT_NAME)).chunk
    return (time.perf_counter() - started) * 1e6 / repeat


async def time_handoff(streams: int, frames: int) -> dict[str, float]:
    """Microseconds per delivery to hand a frame to ``streams`` receivers: through a queue
    each and a task each that takes it out, or by a plain method call each."""
    loop = asyncio.get_running_loop()
    queues: list[asyncio.Queue[bytes]] = [asyncio.Queue() for _ in range(streams)]
    taken = 0
    all_taken: asyncio.Future[None] = loop.create_future()

    async def listen(queue: asyncio.Queue[bytes]) -> None:
        nonlocal taken
        while True:
            await queue.get()
            taken += 1
            if taken == streams:
                all_taken.set_result(None)

    tasks = [asyncio.create_task(listen(queue)) for queue in queues]
    await asyncio.sleep(0)  # every task now waits in queue.get()
    started = time.perf_counter()
    for _ in range(frames):
        taken, all_taken = 0, loop.create_future()
        for queue in queues:
            queue.put_nowait(b"frame")
        await all_taken
    queued = (time.perf_counter() - started) * 1e6 / (streams * frames)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    sinks: list[list[bytes]] = [[] for _ in range(streams)]
    started = time.perf_counter()
    for _ in range(frames):
        for sink in sinks:
            sink.append(b"frame")
    direct = (time.perf_counter() - started) * 1e6 / (streams * frames)
    return {"queue_and_task_us": round(queued, 3), "method_call_us": round(direct, 3)}


def in_process_timings(streams: int) -> dict[str, Any]:
    import uvloop

    frame_data = json.dumps({"m": f"bench:1:1:{time.time_ns()};"})
    message = json.dumps({"id": 1, "from": "alice", "text": "x" * 1000, "timestamp": 0})
    return {
        "encode_us": {
            "benchmark frame": round(time_encoding(frame_data), 3),
            "1 KB chat message": round(time_encoding(message), 3),
        },
        "handoff": {
            "streams": streams,
            "asyncio": asyncio.run(time_handoff(streams, 20)),
            "uvloop": uvloop.run(time_handoff(streams, 20)),
        },
    }


async def experiment(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    log_dir = Path(tempfile.mkdtemp(prefix="bench_variants_"))
    pool = WorkerPool(args.workers)
    new_phase = PhaseIds()
    report: dict[str, Any] = {"fanout": [], "slow_readers": []}
    connector = aiohttp.TCPConnector(limit=64)
    timeout = aiohttp.ClientTimeout(total=60)
    try:
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            await pool.start()
            report["machine"] = machine_info(False, all(w.uvloop for w in pool.workers))
            for round_number in range(1, args.rounds + 1):
                for name in args.variant_list:
                    label = f"{name} N={args.size:,} round {round_number}"
                    run = await measure_fanout(
                        session, pool, VARIANTS[name], args, new_phase, log_dir, label
                    )
                    run["round"] = round_number
                    report["fanout"].append(run)
            for name in args.slow_list:
                report["slow_readers"].append(
                    await measure_slow_readers(
                        session, pool, VARIANTS[name], args, new_phase, log_dir
                    )
                )
    finally:
        await pool.stop()
        shutil.rmtree(log_dir, ignore_errors=True)
    report["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    report["duration_s"] = round(time.monotonic() - started, 1)
    return report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.variants", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--size", type=int, default=5000, help="N streams (%(default)s)")
    parser.add_argument(
        "--broadcasts", type=int, default=20, help="K broadcasts one at a time (%(default)s)"
    )
    parser.add_argument(
        "--burst", type=int, default=40, help="broadcasts sent back to back (%(default)s)"
    )
    parser.add_argument("--rounds", type=int, default=2, help="fan-out rounds (%(default)s)")
    parser.add_argument("--variants", default=",".join(FANOUT_VARIANTS))
    parser.add_argument("--slow-variants", default=",".join(SLOW_VARIANTS))
    parser.add_argument("--fast-streams", type=int, default=20)
    parser.add_argument("--slow-readers", type=int, default=4)
    parser.add_argument("--slow-rate", type=float, default=100.0, help="broadcasts/s (%(default)s)")
    parser.add_argument("--slow-seconds", type=float, default=8.0)
    parser.add_argument(
        "--slow-padding", type=int, default=16384, help="bytes added to each broadcast"
    )
    parser.add_argument("--sample-interval", type=float, default=0.25)
    parser.add_argument("--workers", type=int, default=2, help="load-generator processes")
    parser.add_argument("--settle", type=float, default=1.0)
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--serve", choices=sorted(VARIANTS), help=argparse.SUPPRESS)
    parser.add_argument("--host", default="127.0.0.1", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    # With --serve: the garbage collector set as python -m my_chat sets it (aiohttp's floor).
    parser.add_argument("--tuned-gc", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.variant_list = [v for v in args.variants.split(",") if v]
    args.slow_list = [v for v in args.slow_variants.split(",") if v]
    unknown = set(args.variant_list + args.slow_list) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants: {sorted(unknown)}; known: {sorted(VARIANTS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve:
        return run_server(args.serve, args.host, args.port, args.tuned_gc)
    raise_open_file_limit(args.size + 256)
    command = "python -m bench.variants " + shlex.join(sys.argv[1:] if argv is None else argv)
    timings = in_process_timings(args.size)
    log(f"in-process timings: {timings}")
    report = asyncio.run(experiment(args))
    report["in_process"] = timings
    settings = {k: v for k, v in vars(args).items() if k not in {"output", "serve", "host", "port"}}
    settings["output"] = None if args.output is None else str(args.output)
    report = {
        "command": command.strip(),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "settings": settings,
        "variants": {name: asdict(variant) for name, variant in VARIANTS.items()},
        **report,
    }
    print("\n".join(summary_rows(report)))
    output = args.output or RESULTS_DIR / f"variants-{dt.date.today():%Y-%m-%d}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=1) + "\n")
    log(f"\nwrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
