"""What does the trip through Redis cost? POST -> delivery latency, with and without Redis.

    .venv/bin/python tools/measure_redis_hop.py [--count 300] [--json results.json]

Starts real servers (``python -m my_chat``) and a real redis-server in a temporary folder,
then, for each setup, signs in a sender and a listener, opens the listener's stream, and
sends ``--count`` messages one after the other. For each it measures from just before the
POST until the listener's stream has parsed that message, and separately how long the POST
took to answer ``201``. The setups:

``in-process``
    one process, the default broker: SQLite, frames handed straight to the streams.
``redis, same process``
    ``--redis``: the sender and the listener on the same process; the message goes to
    Redis and comes back through that process's reader.
``redis, across processes``
    the sender on process A, the listener on process B.
``redis everysec, across``
    the same, with Redis fsyncing its log once a second instead of before every answer:
    the difference to the row above is the price of ``appendfsync always``.

The numbers are for this machine, with everything on loopback and the client in the same
machine too; they compare the setups with each other and are not a capacity figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.chat_client import ChatClient, ServerProcess, client_session  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402

SERVICE_KEY = "service-key-for-the-measurement-0123456789"
JWT_SECRET = "jwt-secret-for-the-measurement-0123456789abcd"
FAST = ["--message-burst", "100000", "--message-rate", "100000", "--history", "0"]
WARM_UP = 20


def start_server(folder: Path, *args: str) -> ServerProcess:
    env = {"MY_CHAT_JWT_SECRET": JWT_SECRET, "MY_CHAT_SERVICE_KEY": SERVICE_KEY}
    return ServerProcess(folder, *FAST, *args, env=env).start()


async def measure(sender_url: str, listener_url: str, count: int) -> dict[str, list[float]]:
    """Latencies in milliseconds: POST -> delivered, and POST -> 201."""
    async with client_session() as session:
        suffix = os.urandom(3).hex()
        sender = await ChatClient(sender_url, session).signup(f"sender-{suffix}")
        listener = await ChatClient(listener_url, session).signup(f"listener-{suffix}")
        stream = await listener.open_stream()
        delivered, answered = [], []
        try:
            for i in range(WARM_UP + count):
                started = time.perf_counter()
                reply = await sender.send(f"message {i}")
                replied = time.perf_counter()
                while True:
                    message = await stream.next_json("message", timeout=10)
                    if message["id"] == reply["id"]:
                        break
                arrived = time.perf_counter()
                if i >= WARM_UP:
                    delivered.append((arrived - started) * 1000)
                    answered.append((replied - started) * 1000)
        finally:
            stream.close()
    return {"delivered_ms": delivered, "post_ms": answered}


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def at(fraction: float) -> float:
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]

    return {
        "median": round(statistics.median(ordered), 3),
        "p90": round(at(0.90), 3),
        "p99": round(at(0.99), 3),
    }


def machine() -> dict[str, str]:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    redis_version = subprocess.run(
        ["redis-server", "--version"], capture_output=True, text=True
    ).stdout.split()
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "redis": next((w.split("=", 1)[1] for w in redis_version if w.startswith("v=")), "?"),
    }


async def run(count: int) -> dict:
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="redis-hop-") as folder:
        root = Path(folder)
        local = start_server(root / "local")
        try:
            results["in-process"] = await measure(local.url, local.url, count)
        finally:
            local.stop()
        for fsync in ("always", "everysec"):
            with RedisServer(root / f"redis-{fsync}", appendfsync=fsync) as redis:
                a = start_server(root / f"a-{fsync}", "--redis", redis.url)
                b = start_server(root / f"b-{fsync}", "--redis", redis.url)
                try:
                    if fsync == "always":
                        results["redis, same process"] = await measure(a.url, a.url, count)
                        results["redis, across processes"] = await measure(a.url, b.url, count)
                    else:
                        results["redis everysec, across"] = await measure(a.url, b.url, count)
                finally:
                    a.stop()
                    b.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=300, help="messages per setup")
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    args = parser.parse_args()
    results = asyncio.run(run(args.count))
    about = machine()
    print(
        f"{args.count} messages per setup, one at a time, after {WARM_UP} to warm up; "
        f"{about['cpu']}, {about['cores']} cores, Linux {about['kernel']}, "
        f"Python {about['python']}, Redis {about['redis']}"
    )
    print(f"{'setup':<26} {'POST->delivered (median p90 p99)':>34} {'POST->201 (median)':>20}")
    for name, numbers in results.items():
        delivered, post = summary(numbers["delivered_ms"]), summary(numbers["post_ms"])
        print(
            f"{name:<26} {delivered['median']:>14.2f} {delivered['p90']:>9.2f} "
            f"{delivered['p99']:>9.2f} ms {post['median']:>17.2f} ms"
        )
    if args.json:
        args.json.write_text(
            json.dumps({"machine": about, "count": args.count, "results": results}, indent=1)
        )


if __name__ == "__main__":
    main()
