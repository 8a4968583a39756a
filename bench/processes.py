"""The processes of a run: the server under test, and the load-generator workers that hold
the streams (:mod:`bench.loadgen`)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import resource
import sys
import time
from array import array
from collections import defaultdict
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from bench.common import PROJECT_ROOT, log
from my_chat.launch import ChildServer


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
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.child = ChildServer(
            argv, port=port, log_path=log_path, env=env, cwd=PROJECT_ROOT, ready_path=ready_path
        )
        self.ps: psutil.Process | None = None

    async def start(self, session: aiohttp.ClientSession, wait_s: float = 30.0) -> None:
        try:
            await self.child.start_async(wait_s)
        except RuntimeError:
            raise RuntimeError(f"{self.name} did not start; its log:\n{self.log_tail()}") from None
        assert self.child.process is not None
        self.ps = psutil.Process(self.child.process.pid)

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.child.log().splitlines()[-lines:]) or "(no log)"

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

    async def kill(self) -> None:
        """``kill -9``: no shutdown, no goodbye to the streams, as in a crash."""
        await self.child.kill_async()

    async def stop(self) -> None:
        await self.child.stop_async(15)


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
        self.next_index = 0

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
        self,
        port: int,
        count: int,
        tokens: list[str] | None,
        label: str,
        wait_s: float = 120.0,
        resume: bool = False,
    ) -> dict[str, Any]:
        shares = [
            count // len(self.workers) + (i < count % len(self.workers))
            for i in range(len(self.workers))
        ]
        # Stream indices go on from the last connect, so streams of several calls never share one.
        offset = self.next_index
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
                    "resume": resume,
                }
            )
            offset += share
        self.next_index = offset
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

    async def arm(self, phase: int, track: bool = False) -> int:
        for worker in self.workers:
            worker.send({"cmd": "arm", "phase": phase, "notify": not track, "track": track})
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

    async def collect(self, phase: int, acked: list[int] | None = None) -> dict[str, Any]:
        for worker in self.workers:
            worker.send({"cmd": "collect", "phase": phase, "acked": acked or []})
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
        tracked = {
            key: sum(r[key] for r in replies)
            for key in ("lost", "duplicated", "out_of_order", "tracked_streams")
            if key in replies[0]
        }
        return {
            **tracked,
            "streams": sum(r["streams"] for r in replies),
            "live_now": sum(r["live_now"] for r in replies),
            "lost_after_live": sum(r["lost_after_live"] for r in replies),
            "latencies_us": latencies,
            "seq_counts": dict(seq_counts),
            "seq_last_ns": seq_last_ns,
            "streams_by_count": dict(streams_by_count),
        }

    async def status(self) -> dict[str, int]:
        """Streams live and reconnecting now, and reconnect attempts so far, over all workers."""
        for worker in self.workers:
            worker.send({"cmd": "status"})
        replies = [await worker.reply("status", 30) for worker in self.workers]
        return {
            key: sum(reply[key] for reply in replies)
            for key in ("live", "reconnecting", "reconnect_attempts")
        }

    async def close_streams(self) -> None:
        for worker in self.workers:
            worker.send({"cmd": "close"})
        for worker in self.workers:
            await worker.reply("closed", 60)
        self.live = 0
        self.next_index = 0
