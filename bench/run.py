"""``python -m bench``: my_chat beside a raw-asyncio reference, under the same SSE load.

For each size N the orchestrator starts a fresh server (my_chat, then the reference), opens
N streams from the load-generator workers (:mod:`bench.loadgen`), and measures:

* the time until every stream is live (has its ``connection_id`` event);
* server memory per connection: RSS after all connected and idle, minus before, over N;
* fan-out latency of K broadcasts sent one at a time (push API; for my_chat also K chat
  messages): from just before the POST to each stream reading the frame;
* the highest sustained delivery rate: broadcasts at a rising rate, a few seconds per step,
  until a step misses deliveries, falls behind, or its p99 passes one second;
* CPU seconds of the server and of the load generator in each phase.

Before the sizes, a chat stage measures POST-to-delivery of 50 chat messages, one at a time,
with 100 clients connected. Results go to ``bench/results/latest.json`` (and a dated copy),
and a table with the pass/fail of each target is printed. See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import json
import math
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import time
from array import array
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil

RESULTS_DIR = Path(__file__).resolve().parent / "results"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "bench-password-123"
EVENT_NAME = "bench"
SCHEMA_VERSION = 1

# Targets from the issue, checked at N = 10,000 (or the largest N run).
TARGET_P99_RATIO = 1.5
TARGET_RATE_RATIO = 0.75
TARGET_BYTES_PER_CONNECTION = 16 * 1024
TARGET_CONNECT_SECONDS = 10.0
TARGET_CHAT_P50_MS = 5.0
TARGET_N = 10_000

# Load generator: streams and files it needs beyond N, for its own pipes and the POSTs.
FD_MARGIN = 256

Sender = Callable[[str, int], Awaitable[None]]


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Statistics


def percentile(sorted_values: list[int] | array, fraction: float) -> int:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return 0
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def latency_summary(latencies_us: array) -> dict[str, Any]:
    values = sorted(latencies_us)
    if not values:
        return {
            "count": 0,
            "p50_ms": None,
            "p90_ms": None,
            "p99_ms": None,
            "max_ms": None,
            "mean_ms": None,
            "quantiles_ms": [],
        }
    ms = 1000.0
    return {
        "count": len(values),
        "p50_ms": percentile(values, 0.50) / ms,
        "p90_ms": percentile(values, 0.90) / ms,
        "p99_ms": percentile(values, 0.99) / ms,
        "max_ms": values[-1] / ms,
        "mean_ms": round(sum(values) / len(values) / ms, 3),
        # 0th to 100th percentile, enough to draw the distribution.
        "quantiles_ms": [
            (values[0] if q == 0 else percentile(values, q / 100)) / ms for q in range(101)
        ],
    }


def ratio(mine: float | None, reference: float | None) -> float | None:
    if mine is None or reference is None or reference == 0:
        return None
    return round(mine / reference, 3)


# ---------------------------------------------------------------------------------------------
# Processes


def raise_open_file_limit(needed: int) -> tuple[int, int]:
    """Raise RLIMIT_NOFILE to the hard limit (children inherit it); fail if that is too low."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise SystemExit(
            f"bench: needs {needed} open files per process but the hard limit is {hard}. "
            f"Raise it (e.g. `ulimit -Hn {needed}` as root, or LimitNOFILE= in systemd) "
            "or run smaller sizes with --sizes."
        )
    target = hard if hard != resource.RLIM_INFINITY else max(soft, needed)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            total += times.user + times.system
            total += times.children_user + times.children_system
    return total


class ServerProcess:
    """A server under test, as a subprocess with its output in a log file."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        port: int,
        ready_path: str,
        log_path: Path,
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.ready_path = ready_path
        self.log_path = log_path
        self.proc: asyncio.subprocess.Process | None = None
        self.ps: psutil.Process | None = None

    async def start(self, session: aiohttp.ClientSession, wait_s: float = 30.0) -> None:
        log_file = self.log_path.open("ab")
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv,
                env=self.env,
                cwd=PROJECT_ROOT,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
            )
        finally:
            log_file.close()
        self.ps = psutil.Process(self.proc.pid)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self.proc.returncode is not None:
                break
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(self.base_url + self.ready_path) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
        await self.stop()
        raise RuntimeError(f"{self.name} did not start; its log:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def processes(self) -> list[psutil.Process]:
        if self.ps is None:
            return []
        with contextlib.suppress(psutil.Error):
            return [self.ps, *self.ps.children(recursive=True)]
        return []

    def rss(self) -> int:
        total = 0
        for process in self.processes():
            with contextlib.suppress(psutil.Error):
                total += process.memory_info().rss
        return total

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), 15)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


class WorkerProcess:
    def __init__(self, index: int, pool: WorkerPool) -> None:
        self.index = index
        self.pool = pool
        self.proc: asyncio.subprocess.Process | None = None
        self.replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.progress_live = 0
        self.reader: asyncio.Task[None] | None = None
        self.uvloop = False

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.loadgen",
            cwd=PROJECT_ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=1 << 28,
        )
        self.reader = asyncio.create_task(self._read())
        ready = await self.reply("ready", 30)
        self.uvloop = bool(ready.get("uvloop"))

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            message = json.loads(line)
            event = message.get("ev")
            if event == "progress":
                self.progress_live = message["live"]
            elif event == "seq_done":
                self.pool.on_seq_done(message["phase"], message["seq"])
            else:
                await self.replies.put(message)
        await self.replies.put({"ev": "exited"})

    def send(self, command: dict[str, Any]) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(command) + "\n").encode())

    async def reply(self, event: str, wait_s: float) -> dict[str, Any]:
        message = await asyncio.wait_for(self.replies.get(), wait_s)
        if message.get("ev") != event:
            raise RuntimeError(f"load generator {self.index}: expected {event}, got {message}")
        return message

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        with contextlib.suppress(OSError, RuntimeError):
            self.send({"cmd": "exit"})
        try:
            await asyncio.wait_for(self.proc.wait(), 10)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        if self.reader is not None:
            self.reader.cancel()


class WorkerPool:
    """The load-generator processes, driven together."""

    def __init__(self, count: int) -> None:
        self.workers = [WorkerProcess(i, self) for i in range(count)]
        self._armed: dict[int, int] = {}  # phase -> workers that have streams in it
        self._done: defaultdict[tuple[int, int], int] = defaultdict(int)
        self._waiters: dict[tuple[int, int], asyncio.Future[None]] = {}
        self.live = 0

    async def start(self) -> None:
        await asyncio.gather(*(worker.start() for worker in self.workers))

    async def stop(self) -> None:
        await asyncio.gather(*(worker.stop() for worker in self.workers))

    def processes(self) -> list[psutil.Process]:
        found = [psutil.Process()]
        for worker in self.workers:
            if worker.proc is not None:
                with contextlib.suppress(psutil.Error):
                    found.append(psutil.Process(worker.proc.pid))
        return found

    async def connect(
        self, port: int, count: int, tokens: list[str] | None, label: str, wait_s: float = 120.0
    ) -> dict[str, Any]:
        shares = [
            count // len(self.workers) + (i < count % len(self.workers))
            for i in range(len(self.workers))
        ]
        offset = 0
        for worker, share in zip(self.workers, shares, strict=True):
            worker.progress_live = 0
            worker.send(
                {
                    "cmd": "connect",
                    "host": "127.0.0.1",
                    "port": port,
                    "count": share,
                    "offset": offset,
                    "tokens": tokens or [],
                    "concurrency": 64,
                    "timeout": 60,
                }
            )
            offset += share
        started = time.monotonic()
        pending = [asyncio.create_task(w.reply("connected", wait_s)) for w in self.workers]
        last_print = 0.0
        while not all(task.done() for task in pending):
            await asyncio.wait(pending, timeout=0.5)
            now = time.monotonic()
            if now - last_print >= 1.0 or all(task.done() for task in pending):
                live = sum(w.progress_live for w in self.workers)
                log(f"  {label}: connecting {live:,}/{count:,} ({now - started:.1f} s)")
                last_print = now
        seconds = time.monotonic() - started
        replies = [task.result() for task in pending]
        self.live += sum(r["live"] for r in replies)
        errors: dict[str, int] = defaultdict(int)
        for reply in replies:
            for reason, times in reply["errors"].items():
                errors[reason] += times
        return {
            "streams": count,
            "live": sum(r["live"] for r in replies),
            "failed": sum(r["failed"] for r in replies),
            "seconds": round(seconds, 3),
            "errors": dict(errors),
        }

    async def arm(self, phase: int) -> int:
        for worker in self.workers:
            worker.send({"cmd": "arm", "phase": phase, "notify": True})
        replies = [await worker.reply("armed", 30) for worker in self.workers]
        self._armed[phase] = sum(1 for reply in replies if reply["streams"] > 0)
        return sum(reply["streams"] for reply in replies)

    def on_seq_done(self, phase: int, seq: int) -> None:
        key = (phase, seq)
        self._done[key] += 1
        waiter = self._waiters.get(key)
        if waiter is not None and not waiter.done() and self._done[key] >= self._armed[phase]:
            waiter.set_result(None)

    def delivered(self, phase: int, seq: int) -> asyncio.Future[None]:
        """Resolves when every stream has read broadcast ``seq`` of ``phase``."""
        key = (phase, seq)
        waiter = asyncio.get_running_loop().create_future()
        if self._done[key] >= self._armed.get(phase, 0):
            waiter.set_result(None)
        self._waiters[key] = waiter
        return waiter

    async def collect(self, phase: int) -> dict[str, Any]:
        for worker in self.workers:
            worker.send({"cmd": "collect", "phase": phase})
        replies = [await worker.reply("collected", 60) for worker in self.workers]
        for key in [k for k in self._waiters if k[0] == phase]:
            self._waiters.pop(key).cancel()
        for key in [k for k in self._done if k[0] == phase]:
            del self._done[key]
        self._armed.pop(phase, None)
        latencies = array("q")
        seq_counts: defaultdict[int, int] = defaultdict(int)
        seq_last_ns: dict[int, int] = {}
        streams_by_count: defaultdict[int, int] = defaultdict(int)
        for reply in replies:
            latencies.frombytes(base64.b64decode(reply["latencies_us"]))
            for seq, count in reply["seq_counts"].items():
                seq_counts[int(seq)] += count
            for seq, last in reply["seq_last_ns"].items():
                seq_last_ns[int(seq)] = max(last, seq_last_ns.get(int(seq), 0))
            for count, streams in reply["streams_by_count"].items():
                streams_by_count[int(count)] += streams
        return {
            "streams": sum(r["streams"] for r in replies),
            "live_now": sum(r["live_now"] for r in replies),
            "lost_after_live": sum(r["lost_after_live"] for r in replies),
            "latencies_us": latencies,
            "seq_counts": dict(seq_counts),
            "seq_last_ns": seq_last_ns,
            "streams_by_count": dict(streams_by_count),
        }

    async def close_streams(self) -> None:
        for worker in self.workers:
            worker.send({"cmd": "close"})
        for worker in self.workers:
            await worker.reply("closed", 60)
        self.live = 0


# ---------------------------------------------------------------------------------------------
# The two servers


@dataclass
class Target:
    """How to start one server and make it send frames."""

    name: str
    uvloop: bool
    data_dir: Path
    log_dir: Path
    extra_args: list[str] = field(default_factory=list)
    service_key: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    tokens: list[str] = field(default_factory=list)
    http_errors: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))

    @property
    def has_chat(self) -> bool:
        return self.name == "my_chat"

    def server(self, port: int) -> ServerProcess:
        env = dict(os.environ)
        log_path = self.log_dir / f"{self.name}.log"
        if self.name == "my_chat":
            env["MY_CHAT_SERVICE_KEY"] = self.service_key
            argv = [
                sys.executable,
                "-m",
                "my_chat",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--data-dir",
                str(self.data_dir),
                "--signup-per-minute",
                "0",
                # The benchmark measures capacity: its streams share few accounts, so no caps.
                "--max-streams-per-user",
                "0",
                "--max-streams",
                "0",
                *self.extra_args,
            ]
            ready = "/api/status"
        else:
            argv = [
                sys.executable,
                "-m",
                "bench.reference_server",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ]
            ready = "/stats"
        if self.uvloop:
            argv.append("--uvloop")
        return ServerProcess(self.name, argv, env, port, ready, log_path)

    async def sign_in(self, session: aiohttp.ClientSession, base_url: str, users: int) -> float:
        """Sign up (or log in) ``users`` accounts; keep their tokens. Returns seconds taken."""
        if not self.has_chat:
            return 0.0
        if self.tokens:  # from an earlier server start on the same data directory
            async with session.get(
                base_url + "/api/me", headers={"Authorization": f"Bearer {self.tokens[0]}"}
            ) as r:
                if r.status == 200:
                    return 0.0
        started = time.monotonic()
        limit = asyncio.Semaphore(8)
        tokens: list[str] = [""] * users

        async def account(index: int) -> None:
            body = {"username": f"bench_{index:04d}", "password": PASSWORD}
            async with limit:
                for path in ("/api/signup", "/api/login"):
                    async with session.post(base_url + path, json=body) as response:
                        if response.status in (200, 201):
                            tokens[index] = (await response.json())["token"]
                            return
                        if response.status == 429:
                            raise RuntimeError(
                                f"my_chat answered 429 to {path}: its per-address limit blocks "
                                "the benchmark's sign-ups (bench passes --signup-per-minute 0)"
                            )
                        if not (path == "/api/signup" and response.status == 409):
                            raise RuntimeError(
                                f"{path} answered {response.status}: {await response.text()}"
                            )

        tasks = [asyncio.create_task(account(i)) for i in range(users)]
        done = 0
        for task in asyncio.as_completed(tasks):
            await task
            done += 1
            if done % 50 == 0 or done == users:
                log(f"  my_chat: {done}/{users} accounts signed in")
        self.tokens = tokens
        return time.monotonic() - started

    async def _post(self, session: aiohttp.ClientSession, url: str, **kwargs: Any) -> None:
        try:
            async with session.post(url, **kwargs) as response:
                await response.read()
                if response.status >= 300:
                    self.http_errors[f"{url.split('/', 3)[-1]} {response.status}"] += 1
        except (aiohttp.ClientError, OSError) as error:
            self.http_errors[type(error).__name__] += 1

    def broadcaster(self, session: aiohttp.ClientSession, base_url: str) -> Sender:
        if self.has_chat:
            url = base_url + "/api/broadcast"
            headers = {"Authorization": f"Bearer {self.service_key}"}

            async def push(marker: str, seq: int) -> None:
                body = {"event": EVENT_NAME, "data": {"m": marker}}
                await self._post(session, url, json=body, headers=headers)

            return push

        url = f"{base_url}/broadcast?event={EVENT_NAME}"

        async def broadcast(marker: str, seq: int) -> None:
            await self._post(session, url, data=json.dumps({"m": marker}))

        return broadcast

    def chatter(self, session: aiohttp.ClientSession, base_url: str) -> Sender:
        """Chat messages from the accounts in turn (each user has its own rate limit)."""
        url = base_url + "/api/messages"

        async def chat(marker: str, seq: int) -> None:
            token = self.tokens[seq % len(self.tokens)]
            await self._post(
                session, url, json={"text": marker}, headers={"Authorization": f"Bearer {token}"}
            )

        return chat


# ---------------------------------------------------------------------------------------------
# Phases


class PhaseIds:
    def __init__(self) -> None:
        self._next = 1

    def __call__(self) -> int:
        self._next += 1
        return self._next


def cpu_window(server: ServerProcess, pool: WorkerPool) -> Callable[[], dict[str, float]]:
    """Start measuring; the returned function gives wall and CPU seconds since."""
    server_procs, load_procs = server.processes(), pool.processes()
    wall0 = time.monotonic()
    server0, load0 = cpu_seconds(server_procs), cpu_seconds(load_procs)

    def stop() -> dict[str, float]:
        wall = time.monotonic() - wall0
        server_cpu = cpu_seconds(server_procs) - server0
        load_cpu = cpu_seconds(load_procs) - load0
        return {
            "wall_s": round(wall, 3),
            "server_cpu_s": round(server_cpu, 3),
            "loadgen_cpu_s": round(load_cpu, 3),
            "server_busy": round(server_cpu / wall, 3) if wall else None,
            "loadgen_busy": round(load_cpu / wall, 3) if wall else None,
        }

    return stop


def delivery_check(collected: dict[str, Any], streams: int, broadcasts: int) -> dict[str, Any]:
    expected = streams * broadcasts
    by_count = collected["streams_by_count"]
    delivered = len(collected["latencies_us"])
    return {
        "streams": streams,
        "broadcasts": broadcasts,
        "expected": expected,
        "delivered": delivered,
        "missing": max(0, expected - delivered),
        "streams_with_all": by_count.get(broadcasts, 0),
        "streams_with_extra": sum(n for count, n in by_count.items() if count > broadcasts),
        "all_delivered": by_count.get(broadcasts, 0) == streams and delivered == expected,
        "lost_streams": collected["lost_after_live"],
    }


async def fanout(
    pool: WorkerPool,
    server: ServerProcess,
    send: Sender,
    new_phase: PhaseIds,
    broadcasts: int,
    label: str,
    wait_s: float = 10.0,
) -> dict[str, Any]:
    """``broadcasts`` frames, one at a time: each waits until every stream has read the last."""
    phase = new_phase()
    streams = await pool.arm(phase)
    measuring = cpu_window(server, pool)
    timeouts = 0
    for seq in range(broadcasts):
        delivered = pool.delivered(phase, seq)
        await send(f"bench:{phase}:{seq}:{time.time_ns()};", seq)
        try:
            await asyncio.wait_for(delivered, wait_s)
        except TimeoutError:
            timeouts += 1
        await asyncio.sleep(0.02)  # let the last stragglers' reads finish before the next
    cpu = measuring()
    collected = await pool.collect(phase)
    result = delivery_check(collected, streams, broadcasts)
    result["timeouts"] = timeouts
    result["latency"] = latency_summary(collected["latencies_us"])
    result["cpu"] = cpu
    if result["delivered"]:
        for side in ("server", "loadgen"):
            result[f"{side}_cpu_us_per_delivery"] = round(
                cpu[f"{side}_cpu_s"] * 1e6 / result["delivered"], 2
            )
    lat = result["latency"]
    log(
        f"  {label}: {result['delivered']:,}/{result['expected']:,} delivered, "
        f"p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms, max {lat['max_ms']} ms"
    )
    return result


async def ramp_step(
    pool: WorkerPool,
    server: ServerProcess,
    send: Sender,
    new_phase: PhaseIds,
    rate: float,
    step_seconds: float,
    p99_limit_s: float,
    min_broadcasts: int = 5,
) -> dict[str, Any]:
    """Broadcast at ``rate`` deliveries per second for about ``step_seconds``; did it hold?"""
    phase = new_phase()
    streams = await pool.arm(phase)
    if not streams:
        raise RuntimeError("no live streams left to broadcast to")
    per_second = rate / streams
    broadcasts = max(min_broadcasts, round(per_second * step_seconds))
    interval = 1.0 / per_second
    waiters = [pool.delivered(phase, seq) for seq in range(broadcasts)]
    sent_ns: list[int] = []
    posts: list[asyncio.Task[None]] = []
    measuring = cpu_window(server, pool)
    loop = asyncio.get_running_loop()
    start = loop.time()
    for seq in range(broadcasts):
        delay = start + seq * interval - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        now_ns = time.time_ns()
        sent_ns.append(now_ns)
        posts.append(asyncio.create_task(send(f"bench:{phase}:{seq}:{now_ns};", seq)))
    # Wait for the backlog, if any, to drain (bounded): a step that falls behind fails anyway.
    drain = max(2.0 * p99_limit_s, 2.0)
    _, late = await asyncio.wait(waiters, timeout=drain)
    await asyncio.wait(posts, timeout=drain)
    cpu = measuring()
    collected = await pool.collect(phase)
    result = delivery_check(collected, streams, broadcasts)
    latency = latency_summary(collected["latencies_us"])
    completions = sorted(collected["seq_last_ns"].values())
    send_span = (sent_ns[-1] - sent_ns[0]) / 1e9
    done_span = (completions[-1] - completions[0]) / 1e9 if len(completions) > 1 else 0.0
    offered = streams * (broadcasts - 1) / send_span if send_span > 0 else rate
    # Throughput between the first and last completed broadcast: a server that keeps up
    # completes them as fast as they were sent, one that falls behind spreads them out.
    achieved = streams * (len(completions) - 1) / done_span if done_span > 0 else 0.0
    reasons = []
    if not result["all_delivered"]:
        reasons.append(f"missing {result['missing']} deliveries")
    if latency["p99_ms"] is None or latency["p99_ms"] > p99_limit_s * 1000:
        reasons.append(f"p99 {latency['p99_ms']} ms over {p99_limit_s * 1000:.0f} ms")
    if achieved < 0.9 * offered:
        reasons.append(f"fell behind: {achieved:,.0f}/s of {offered:,.0f}/s")
    result.update(
        {
            "target_rate": round(rate),
            "offered_rate": round(offered),
            "achieved_rate": round(achieved),
            "broadcasts_per_second": round(per_second, 2),
            "p50_ms": latency["p50_ms"],
            "p99_ms": latency["p99_ms"],
            "max_ms": latency["max_ms"],
            "unfinished_broadcasts": len(late),
            "held": not reasons,
            "reasons": reasons,
            "cpu": cpu,
        }
    )
    return result


async def connect_and_measure(
    server: ServerProcess,
    pool: WorkerPool,
    n: int,
    tokens: list[str] | None,
    label: str,
    settle: float,
) -> tuple[dict[str, Any], dict[str, int]]:
    """Open ``n`` streams; their connect figures (with CPU) and the server's RSS per stream."""
    rss_before = server.rss()
    measuring = cpu_window(server, pool)
    connect = await pool.connect(server.port, n, tokens, label)
    connect["cpu"] = measuring()
    await quiesce(server, pool)
    await asyncio.sleep(settle)
    rss_after = server.rss()
    memory = {
        "rss_before": rss_before,
        "rss_after": rss_after,
        "bytes_per_connection": round((rss_after - rss_before) / max(1, connect["live"])),
    }
    return connect, memory


async def quiesce(server: ServerProcess, pool: WorkerPool, limit_s: float = 10.0) -> None:
    """Wait (bounded) until the server and the load generator are idle: no backlog left."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        measuring = cpu_window(server, pool)
        await asyncio.sleep(0.2)
        cpu = measuring()
        if (cpu["server_busy"] or 0) < 0.2 and (cpu["loadgen_busy"] or 0) < 0.3:
            return


async def ramp(
    pool: WorkerPool,
    server: ServerProcess,
    send: Sender,
    new_phase: PhaseIds,
    args: argparse.Namespace,
    label: str,
) -> dict[str, Any]:
    """Raise the rate step by step until a step fails twice; then narrow down by bisection.

    A failed step is tried once more before the ramp stops (at most twice per ramp), because
    on a shared two-core machine one stall from another process can sink a single step.
    """
    steps: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    rate = args.ramp_start
    deadline = time.monotonic() + args.ramp_budget
    failed_rate: float | None = None
    retries_left = 2

    async def step(rate: float) -> dict[str, Any]:
        await quiesce(server, pool)
        result = await ramp_step(
            pool, server, send, new_phase, rate, args.step_seconds, args.p99_limit
        )
        steps.append(result)
        verdict = "held" if result["held"] else "FAILED: " + "; ".join(result["reasons"])
        log(
            f"  {label}: ramp {result['offered_rate']:>9,}/s offered, "
            f"{result['achieved_rate']:>9,}/s achieved, p99 {result['p99_ms']} ms  {verdict}"
        )
        return result

    retried_rate: float | None = None
    while time.monotonic() < deadline and rate <= args.ramp_max:
        result = await step(rate)
        if result["lost_streams"]:
            failed_rate = rate
            break
        if not result["held"]:
            if retries_left and retried_rate != rate:
                retries_left -= 1
                retried_rate = rate
                continue
            failed_rate = rate
            break
        best = result
        rate *= args.ramp_factor
    # Narrow the gap between the last rate that held and the first that failed.
    for _ in range(args.ramp_refine):
        if (
            best is None
            or failed_rate is None
            or steps[-1]["lost_streams"]
            or time.monotonic() >= deadline
        ):
            break
        middle = math.sqrt(best["target_rate"] * failed_rate)
        result = await step(middle)
        if result["held"]:
            if result["offered_rate"] > best["offered_rate"]:
                best = result
        else:
            failed_rate = middle
    return {
        "steps": steps,
        "best_rate": best["offered_rate"] if best else None,
        "best_achieved_rate": best["achieved_rate"] if best else None,
        "best_p99_ms": best["p99_ms"] if best else None,
        "best_cpu": best["cpu"] if best else None,
        "capped": failed_rate is None,
        "lost_streams": sum(step["lost_streams"] for step in steps),
    }


async def server_stats(
    session: aiohttp.ClientSession, target: Target, server: ServerProcess
) -> dict[str, Any] | None:
    path, headers = (
        ("/api/stats", {"Authorization": f"Bearer {target.service_key}"})
        if target.has_chat
        else ("/stats", {})
    )
    with contextlib.suppress(aiohttp.ClientError, OSError, ValueError):
        async with session.get(server.base_url + path, headers=headers) as response:
            return await response.json()
    return None


async def measure_size(
    session: aiohttp.ClientSession,
    pool: WorkerPool,
    target: Target,
    n: int,
    args: argparse.Namespace,
    new_phase: PhaseIds,
) -> dict[str, Any]:
    label = f"{target.name} N={n:,}"
    log(f"\n== {label}")
    server = target.server(free_port())
    await server.start(session)
    result: dict[str, Any] = {"n": n, "load_average_at_start": os.getloadavg()[0]}
    try:
        result["sign_in_s"] = round(await target.sign_in(session, server.base_url, args.users), 3)
        await asyncio.sleep(0.5)
        connect, result["memory"] = await connect_and_measure(
            server, pool, n, target.tokens or None, label, args.settle
        )
        result["connect"] = connect
        if connect["live"] < n:
            log(f"  {label}: only {connect['live']:,} of {n:,} streams live: {connect['errors']}")
        log(
            f"  {label}: all live in {connect['seconds']:.2f} s, "
            f"{result['memory']['bytes_per_connection'] / 1024:.1f} KB per connection"
        )
        result["push"] = await fanout(
            pool,
            server,
            target.broadcaster(session, server.base_url),
            new_phase,
            args.broadcasts,
            f"{label} push",
        )
        if target.has_chat:
            result["chat"] = await fanout(
                pool,
                server,
                target.chatter(session, server.base_url),
                new_phase,
                args.broadcasts,
                f"{label} chat",
            )
        if args.ramp:
            result["ramp"] = await ramp(
                pool, server, target.broadcaster(session, server.base_url), new_phase, args, label
            )
        result["server_stats"] = await server_stats(session, target, server)
    finally:
        await pool.close_streams()
        await server.stop()
    result["http_errors"] = dict(target.http_errors)
    target.http_errors.clear()
    result["load_average_at_end"] = os.getloadavg()[0]
    return result


async def measure_chat(
    session: aiohttp.ClientSession,
    pool: WorkerPool,
    target: Target,
    args: argparse.Namespace,
    new_phase: PhaseIds,
) -> dict[str, Any]:
    """POST to delivery, one message at a time, with a few clients (the reference broadcasts)."""
    label = f"{target.name} chat, {args.chat_clients} clients"
    log(f"\n== {label}")
    server = target.server(free_port())
    await server.start(session)
    try:
        sign_in_s = await target.sign_in(session, server.base_url, args.users)
        connect = await pool.connect(server.port, args.chat_clients, target.tokens or None, label)
        send = (target.chatter if target.has_chat else target.broadcaster)(session, server.base_url)
        result = await fanout(pool, server, send, new_phase, args.chat_messages, label)
        result["connect"] = connect
        result["sign_in_s"] = round(sign_in_s, 3)
        result["sent_as"] = "POST /api/messages" if target.has_chat else "POST /broadcast"
    finally:
        await pool.close_streams()
        await server.stop()
    result["http_errors"] = dict(target.http_errors)
    target.http_errors.clear()
    return result


# ---------------------------------------------------------------------------------------------
# Report


def machine_info(uvloop_servers: bool, uvloop_loadgen: bool) -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    try:
        import uvloop

        uvloop_version: str | None = uvloop.__version__
    except ImportError:
        uvloop_version = None
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "memory_bytes": psutil.virtual_memory().total,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "aiohttp": aiohttp.__version__,
        "uvloop_installed": uvloop_version,
        "uvloop_servers": uvloop_servers,
        "uvloop_loadgen": uvloop_loadgen,
        "open_file_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        # Other work on the machine skews every figure; the load average says how much.
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def host_kind(machine: dict[str, Any]) -> str:
    model = re.sub(r"[^a-z0-9]+", "-", machine["cpu_model"].lower()).strip("-") or "cpu"
    return f"{machine['cpu_count']}cpu-{model}"


def pick(result: dict[str, Any] | None, *path: str) -> Any:
    value: Any = result
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


METRICS: list[tuple[str, tuple[str, ...], float, str]] = [
    # label, path in a size's result, scale, format
    ("connect all (s)", ("connect", "seconds"), 1, "{:.2f}"),
    ("memory per connection (KB)", ("memory", "bytes_per_connection"), 1 / 1024, "{:.1f}"),
    ("push p50 (ms)", ("push", "latency", "p50_ms"), 1, "{:.1f}"),
    ("push p99 (ms)", ("push", "latency", "p99_ms"), 1, "{:.1f}"),
    ("push max (ms)", ("push", "latency", "max_ms"), 1, "{:.1f}"),
    ("chat p50 (ms)", ("chat", "latency", "p50_ms"), 1, "{:.1f}"),
    ("chat p99 (ms)", ("chat", "latency", "p99_ms"), 1, "{:.1f}"),
    ("chat max (ms)", ("chat", "latency", "max_ms"), 1, "{:.1f}"),
    ("sustained deliveries/s", ("ramp", "best_rate"), 1, "{:,.0f}"),
    ("  p99 at that rate (ms)", ("ramp", "best_p99_ms"), 1, "{:.1f}"),
    ("server CPU us/delivery (push)", ("push", "server_cpu_us_per_delivery"), 1, "{:.2f}"),
    ("loadgen CPU us/delivery (push)", ("push", "loadgen_cpu_us_per_delivery"), 1, "{:.2f}"),
    ("server CPU busy at best rate", ("ramp", "best_cpu", "server_busy"), 1, "{:.2f}"),
    ("loadgen CPU busy at best rate", ("ramp", "best_cpu", "loadgen_busy"), 1, "{:.2f}"),
    ("server CPU s, connect", ("connect", "cpu", "server_cpu_s"), 1, "{:.2f}"),
    ("loadgen CPU s, connect", ("connect", "cpu", "loadgen_cpu_s"), 1, "{:.2f}"),
    ("load average (1 min) at end", ("load_average_at_end",), 1, "{:.2f}"),
]


# Context rather than a figure of either server: shown, never divided.
NOT_COMPARED = {"load_average_at_end"}


def comparisons(size: dict[str, Any]) -> dict[str, Any]:
    """my_chat / reference for every metric; chat is compared with the reference's push."""
    out = {}
    for label, path, _, _ in METRICS:
        if path[0] in NOT_COMPARED:
            continue
        ref_path = ("push", *path[1:]) if path[0] == "chat" else path
        out[label.strip()] = ratio(
            pick(size.get("my_chat"), *path), pick(size.get("reference"), *ref_path)
        )
    return out


def fmt(value: Any, scale: float, pattern: str) -> str:
    return "-" if value is None else pattern.format(value * scale)


def table(report: dict[str, Any]) -> str:
    lines = []
    for size in report["sizes"]:
        lines.append(f"\nN = {size['n']:,} streams")
        lines.append(f"  {'metric':<32}{'my_chat':>12}{'reference':>12}{'ratio':>8}")
        for label, path, scale, pattern in METRICS:
            ref_path = ("push", *path[1:]) if path[0] == "chat" else path
            mine = pick(size.get("my_chat"), *path)
            ref = pick(size.get("reference"), *ref_path)
            if mine is None and ref is None:
                continue
            r = None if path[0] in NOT_COMPARED else ratio(mine, ref)
            lines.append(
                f"  {label:<32}{fmt(mine, scale, pattern):>12}"
                f"{fmt(ref, scale, pattern):>12}{'-' if r is None else f'{r:.2f}':>8}"
            )
    chat = report.get("chat")
    if chat:
        lines.append(
            f"\nChat POST to delivery, {report['settings']['chat_clients']} clients, "
            f"{report['settings']['chat_messages']} messages one at a time"
        )
        lines.append(f"  {'':<32}{'my_chat':>12}{'reference':>12}{'ratio':>8}")
        for key in ("p50_ms", "p99_ms", "max_ms"):
            mine = pick(chat.get("my_chat"), "latency", key)
            ref = pick(chat.get("reference"), "latency", key)
            r = ratio(mine, ref)
            lines.append(
                f"  {key.replace('_ms', ' (ms)'):<32}{fmt(mine, 1, '{:.2f}'):>12}"
                f"{fmt(ref, 1, '{:.2f}'):>12}{'-' if r is None else f'{r:.2f}':>8}"
            )
    lines.append(
        "\nTargets" + (f" (at N = {report['targets_n']:,})" if report["targets_n"] else "")
    )
    for target in report["targets"]:
        verdict = {True: "PASS", False: "FAIL", None: "n/a"}[target["passed"]]
        lines.append(f"  [{verdict}] {target['name']}: {target['observed']}")
    return "\n".join(lines)


def check_targets(report: dict[str, Any]) -> tuple[int | None, list[dict[str, Any]]]:
    sizes = {size["n"]: size for size in report["sizes"]}
    n = TARGET_N if TARGET_N in sizes else (max(sizes) if sizes else None)
    size = sizes.get(n, {}) if n is not None else {}
    mine, ref = size.get("my_chat"), size.get("reference")
    targets = []

    def add(
        name: str, value: float | None, limit: float, observed: str, below: bool = True
    ) -> None:
        passed = None if value is None else (value <= limit if below else value >= limit)
        targets.append(
            {"name": name, "value": value, "limit": limit, "passed": passed, "observed": observed}
        )

    p99_ratio = ratio(
        pick(mine, "push", "latency", "p99_ms"), pick(ref, "push", "latency", "p99_ms")
    )
    add(
        "broadcast p99 <= 1.5 x reference",
        p99_ratio,
        TARGET_P99_RATIO,
        f"{pick(mine, 'push', 'latency', 'p99_ms')} ms vs {pick(ref, 'push', 'latency', 'p99_ms')}"
        f" ms, ratio {p99_ratio}",
    )
    rate_ratio = ratio(pick(mine, "ramp", "best_rate"), pick(ref, "ramp", "best_rate"))
    add(
        "sustained rate >= 0.75 x reference",
        rate_ratio,
        TARGET_RATE_RATIO,
        f"{pick(mine, 'ramp', 'best_rate')}/s vs {pick(ref, 'ramp', 'best_rate')}/s, "
        f"ratio {rate_ratio}",
        below=False,
    )
    per_conn = pick(mine, "memory", "bytes_per_connection")
    add(
        "memory <= 16 KB per idle authenticated connection",
        per_conn,
        TARGET_BYTES_PER_CONNECTION,
        "-" if per_conn is None else f"{per_conn / 1024:.1f} KB per connection",
    )
    seconds = pick(mine, "connect", "seconds")
    all_live = pick(mine, "connect", "live") == pick(mine, "connect", "streams")
    add(
        f"all {n or 0:,} authenticated streams connected in < 10 s",
        None if seconds is None else (seconds if all_live else math.inf),
        TARGET_CONNECT_SECONDS,
        f"{pick(mine, 'connect', 'live')} live in {seconds} s",
    )
    chat_p50 = pick(report.get("chat"), "my_chat", "latency", "p50_ms")
    add(
        "chat POST to delivery p50 < 5 ms (100 clients)",
        chat_p50,
        TARGET_CHAT_P50_MS,
        f"{chat_p50} ms",
    )
    return n, targets


def strip_for_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: strip_for_json(v) for k, v in value.items() if k != "latencies_us"}
    if isinstance(value, list):
        return [strip_for_json(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------------
# Main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default="1000,5000,10000", help="stream counts N, comma-separated (%(default)s)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: N=200, few broadcasts, short ramp, 20 accounts",
    )
    parser.add_argument(
        "--targets", default="my_chat,reference", help="servers to measure (%(default)s)"
    )
    parser.add_argument(
        "--broadcasts",
        type=int,
        default=20,
        help="K broadcasts (and K chat messages) per size (%(default)s)",
    )
    parser.add_argument(
        "--users",
        type=int,
        default=200,
        help="accounts the streams share, like devices of one user (%(default)s)",
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="load-generator processes (%(default)s)"
    )
    parser.add_argument("--chat-clients", type=int, default=100)
    parser.add_argument("--chat-messages", type=int, default=50)
    parser.add_argument(
        "--no-ramp", dest="ramp", action="store_false", help="skip the sustained-rate ramp"
    )
    parser.add_argument(
        "--ramp-start",
        type=float,
        default=20_000,
        help="first ramp step, deliveries per second (%(default)s)",
    )
    parser.add_argument(
        "--ramp-factor",
        type=float,
        default=1.4,
        help="each step's rate over the last one's (%(default)s)",
    )
    parser.add_argument("--ramp-max", type=float, default=2_000_000)
    parser.add_argument(
        "--ramp-refine",
        type=int,
        default=2,
        help="bisection steps between the last rate that held and the first that failed",
    )
    parser.add_argument(
        "--ramp-budget",
        type=float,
        default=60.0,
        help="seconds one ramp may start new steps for (%(default)s)",
    )
    parser.add_argument("--step-seconds", type=float, default=3.0)
    parser.add_argument(
        "--p99-limit",
        type=float,
        default=1.0,
        help="a ramp step holds only while p99 stays under this, s (%(default)s)",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=1.0,
        help="idle seconds after connecting before measuring RSS (%(default)s)",
    )
    parser.add_argument(
        "--uvloop",
        action="store_true",
        help="run both servers on uvloop (the load generator always uses it)",
    )
    parser.add_argument(
        "--my-chat-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="pass ARG on to `python -m my_chat` (repeat it), e.g. --my-chat-arg=--history=0",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="where the JSON goes (bench/results/latest.json; with --quick, quick.json)",
    )
    parser.add_argument(
        "--no-copy",
        dest="copy",
        action="store_false",
        help="do not keep a dated copy next to latest.json",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=900.0,
        help="give up after this many seconds in all (%(default)s)",
    )
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 if a target fails (default: report only)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes = "200"
        args.broadcasts = min(args.broadcasts, 5)
        args.users = min(args.users, 20)
        args.chat_messages = min(args.chat_messages, 10)
        args.ramp_budget = min(args.ramp_budget, 6.0)
        args.step_seconds = min(args.step_seconds, 1.0)
        args.settle = min(args.settle, 0.3)
        args.copy = False
    if args.output is None:
        args.output = RESULTS_DIR / ("quick.json" if args.quick else "latest.json")
    args.size_list = [int(s) for s in args.sizes.split(",") if s.strip()]
    args.target_list = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = set(args.target_list) - {"my_chat", "reference"}
    if unknown or not args.target_list or not args.size_list:
        parser.error(f"bad --targets or --sizes: {sorted(unknown)}")
    return args


async def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="my_chat_bench_"))
    targets = [
        Target(name, args.uvloop, workdir / "data", workdir, extra_args=args.my_chat_arg)
        for name in args.target_list
    ]
    pool = WorkerPool(args.workers)
    new_phase = PhaseIds()
    report: dict[str, Any] = {"schema": SCHEMA_VERSION, "sizes": []}
    # One connection per in-flight POST; a ramp step may have many in flight.
    connector = aiohttp.TCPConnector(limit=64)
    timeout = aiohttp.ClientTimeout(total=60)
    try:
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            await pool.start()
            report["machine"] = machine_info(args.uvloop, all(w.uvloop for w in pool.workers))
            # The chat stage first: it also leaves a full history in my_chat's database, so
            # every size's streams get the same history on connect.
            report["chat"] = {
                t.name: await measure_chat(session, pool, t, args, new_phase) for t in targets
            }
            for n in args.size_list:
                size: dict[str, Any] = {"n": n}
                for target in targets:
                    try:
                        size[target.name] = await measure_size(
                            session, pool, target, n, args, new_phase
                        )
                    except (RuntimeError, OSError, aiohttp.ClientError) as error:
                        # One server failing at one size should not lose the other figures.
                        log(f"  {target.name} N={n:,} failed: {error}")
                        size[target.name] = {"n": n, "error": str(error)}
                size["ratio"] = comparisons(size)
                report["sizes"].append(size)
    finally:
        await pool.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    report["targets_n"], report["targets"] = check_targets(report)
    report["duration_s"] = round(time.monotonic() - started, 1)
    report["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Each server holds N sockets and each worker its share: the largest N plus a margin.
    limit = raise_open_file_limit(max([*args.size_list, args.chat_clients]) + FD_MARGIN)
    settings = {
        k: v for k, v in vars(args).items() if k not in {"output", "size_list", "target_list"}
    }
    settings["sizes"] = args.size_list
    settings["targets"] = args.target_list
    log(
        f"bench: sizes {args.size_list}, targets {args.target_list}, "
        f"{args.workers} load-generator processes, open-file limit {limit[0]}"
    )
    try:
        report = asyncio.run(asyncio.wait_for(run(args), args.timeout))
    except TimeoutError:
        log(f"bench: gave up after {args.timeout:.0f} s (--timeout); no results written")
        return 2
    report["settings"] = settings
    report["created"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    text = table(report)
    print(text)
    output = strip_for_json(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(output, indent=1) + "\n")
    log(f"\nwrote {args.output}")
    if args.copy:
        name = f"{dt.date.today():%Y-%m-%d}-{host_kind(report['machine'])}.json"
        dated = args.output.parent / name
        shutil.copyfile(args.output, dated)
        log(f"wrote {dated}")
    failed = [t for t in report["targets"] if t["passed"] is False]
    return 1 if args.strict and failed else 0


if __name__ == "__main__":
    sys.exit(main())
