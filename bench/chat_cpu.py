"""Server CPU per chat request, refused and accepted: ``python -m bench.chat_cpu``.

The benchmark's chat-throughput figure is a ratio of two rates, each measured over a few
seconds; on a shared machine each is hit by whatever else runs at the time. The server's CPU
time per request moves far less: this starts ``python -m my_chat`` as the benchmark does,
signs up 20 senders, opens 10 listening streams, and lets the senders post for
``--seconds`` at a time, in turns: a body the server refuses after sign-in and JSON parsing
(an empty text, 400: the benchmark's ceiling), then messages it stores and delivers (201).
For each turn it prints the server process's CPU time per request (psutil).

    .venv/bin/python -m bench.chat_cpu --rounds 2
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import secrets
import sys
import tempfile
import time

import aiohttp
import psutil

from bench.common import PASSWORD, PROJECT_ROOT
from my_chat.serve import free_port


async def run(args: argparse.Namespace) -> list[dict[str, object]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, MY_CHAT_SERVICE_KEY=secrets.token_urlsafe(32))
    env["MY_CHAT_JWT_SECRET"] = secrets.token_urlsafe(32)
    results: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="chat-cpu-") as data_dir:
        argv = [sys.executable, "-m", "my_chat", "--port", str(port), "--data-dir", data_dir]
        argv += ["--log-level", "warning", "--signup-per-minute", "0"]
        argv += ["--max-streams-per-user", "0", "--max-streams", "0"]
        argv += ["--message-burst", "1000000", "--message-rate", "1000000"]
        server = await asyncio.create_subprocess_exec(
            *argv, env=env, cwd=PROJECT_ROOT, stderr=asyncio.subprocess.DEVNULL
        )
        process = psutil.Process(server.pid)
        try:
            async with aiohttp.ClientSession() as session:
                results = await measure(session, base, process, args)
        finally:
            server.terminate()
            await server.wait()
    return results


async def measure(
    session: aiohttp.ClientSession, base: str, process: psutil.Process, args: argparse.Namespace
) -> list[dict[str, object]]:
    for _ in range(200):
        with contextlib.suppress(aiohttp.ClientError, OSError):
            async with session.get(base + "/api/status") as response:
                if response.status == 200:
                    break
        await asyncio.sleep(0.1)
    tokens = []
    for index in range(args.senders):
        body = {"username": f"cpu_{index:03d}", "password": PASSWORD}
        async with session.post(base + "/api/signup", json=body) as response:
            tokens.append((await response.json())["token"])

    async def listen(token: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        async with session.get(base + "/sse", headers=headers) as response:
            async for _ in response.content.iter_any():
                pass

    listeners = [asyncio.create_task(listen(tokens[i % len(tokens)])) for i in range(10)]
    await asyncio.sleep(1.0)
    seqs = itertools.count()
    results = []
    try:
        for _ in range(args.rounds):
            for kind in ("refused", "accepted"):
                cpu_before = sum(process.cpu_times()[:2])
                answered = await turn(session, base, tokens, kind, args.seconds, seqs)
                await asyncio.sleep(0.3)  # the last deliveries
                cpu = sum(process.cpu_times()[:2]) - cpu_before
                row = {
                    "kind": kind,
                    "requests": answered,
                    "server_cpu_us_per_request": round(cpu * 1e6 / max(1, answered)),
                }
                print(
                    f"{kind:>8}: {answered:,} requests, "
                    f"{row['server_cpu_us_per_request']} µs of server CPU each",
                    flush=True,
                )
                results.append(row)
    finally:
        for listener in listeners:
            listener.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)
    return results


async def turn(
    session: aiohttp.ClientSession,
    base: str,
    tokens: list[str],
    kind: str,
    seconds: float,
    seqs: itertools.count,
) -> int:
    """Every sender posts until ``seconds`` are over; returns the requests answered as meant."""
    expected = 400 if kind == "refused" else 201
    deadline = time.monotonic() + seconds
    answered = 0

    async def sender(token: str) -> None:
        nonlocal answered
        headers = {"Authorization": f"Bearer {token}"}
        while time.monotonic() < deadline:
            text = "" if kind == "refused" else f"message {next(seqs)}"
            url = base + "/api/messages"
            async with session.post(url, json={"text": text}, headers=headers) as response:
                await response.read()
                answered += response.status == expected

    await asyncio.gather(*(sender(token) for token in tokens))
    return answered


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--senders", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=4.0, help="per turn (4)")
    parser.add_argument("--rounds", type=int, default=2, help="refused, then accepted (2)")
    asyncio.run(run(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
