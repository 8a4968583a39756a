"""The phases of one size: connect N streams, measure memory, fan-out latency, the sustained
rate, and the chat stage; and the restart storm."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import math
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import Sender, log
from bench.processes import ServerProcess, WorkerPool, cpu_seconds
from bench.stats import latency_summary
from bench.targets import AIOHTTP_FLOOR, Target
from my_chat.serve import free_port


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


@contextlib.asynccontextmanager
async def fresh_server(
    session: aiohttp.ClientSession, pool: WorkerPool, target: Target, label: str
) -> AsyncIterator[ServerProcess]:
    """A new server for one phase; afterwards every stream is closed and the server stopped."""
    log(f"\n== {label}")
    server = target.server(free_port())
    await server.start(session)
    try:
        yield server
    finally:
        await pool.close_streams()
        await server.stop()


async def measure_size(
    session: aiohttp.ClientSession,
    pool: WorkerPool,
    target: Target,
    n: int,
    args: argparse.Namespace,
    new_phase: PhaseIds,
) -> dict[str, Any]:
    label = f"{target.name} N={n:,}"
    result: dict[str, Any] = {"n": n, "load_average_at_start": os.getloadavg()[0]}
    async with fresh_server(session, pool, target, label) as server:
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
        if args.ramp and target.name != AIOHTTP_FLOOR:  # the floor: connect, memory, fan-out
            result["ramp"] = await ramp(
                pool, server, target.broadcaster(session, server.base_url), new_phase, args, label
            )
        result["server_stats"] = await server_stats(session, target, server)
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
    async with fresh_server(session, pool, target, label) as server:
        sign_in_s = await target.sign_in(session, server.base_url, args.users)
        connect = await pool.connect(server.port, args.chat_clients, target.tokens or None, label)
        send = (target.chatter if target.has_chat else target.broadcaster)(session, server.base_url)
        result = await fanout(pool, server, send, new_phase, args.chat_messages, label)
        result["connect"] = connect
        result["sign_in_s"] = round(sign_in_s, 3)
        result["sent_as"] = "POST /api/messages" if target.has_chat else "POST /broadcast"
    result["http_errors"] = dict(target.http_errors)
    target.http_errors.clear()
    return result


async def wait_until_resumed(pool: WorkerPool, streams: int, limit_s: float) -> float | None:
    """Seconds until ``streams`` are live and none is reconnecting; None past ``limit_s``."""
    started = time.monotonic()
    last_print = started
    while (elapsed := time.monotonic() - started) < limit_s:
        status = await pool.status()
        if status["live"] >= streams and not status["reconnecting"]:
            return elapsed
        if time.monotonic() - last_print >= 1.0:
            log(f"    {status['live']:,}/{streams:,} live again ({elapsed:.1f} s)")
            last_print = time.monotonic()
        await asyncio.sleep(0.1)
    return None


async def measure_storm(
    session: aiohttp.ClientSession,
    pool: WorkerPool,
    target: Target,
    n: int,
    args: argparse.Namespace,
    new_phase: PhaseIds,
) -> dict[str, Any]:
    """A restart storm: ``kill -9`` mid-chat, a restart on the same data and port, and every
    stream back at once with its ``Last-Event-ID`` while messages keep coming.

    Each stream behaves as a browser's EventSource: it waits the ``retry:`` delay the server
    sent, then reconnects with the last id it saw, until it is live. Every chat message the
    server acknowledged (201) must then reach every stream exactly once, in order.
    """
    label = f"{target.name} restart storm N={n:,}"
    log(f"\n== {label}")
    port = free_port()
    server = target.server(port)
    await server.start(session)
    result: dict[str, Any] = {"n": n}
    sender: asyncio.Task[None] | None = None
    try:
        await target.sign_in(session, server.base_url, args.users)
        connect = await pool.connect(port, n, target.tokens or None, label, resume=True)
        result["fresh_connect_s"] = connect["seconds"]
        live = connect["live"]
        await quiesce(server, pool)
        phase = new_phase()
        await pool.arm(phase, track=True)
        acked: list[int] = []
        refused: dict[str, int] = {}
        base_url = server.base_url

        async def chat_steadily() -> None:
            interval = 1.0 / args.storm_rate
            for seq in itertools.count():
                token = target.tokens[seq % len(target.tokens)]
                body = {"text": f"bench:{phase}:{seq}:{time.time_ns()};"}
                try:
                    async with session.post(
                        base_url + "/api/messages",
                        json=body,
                        headers={"Authorization": f"Bearer {token}"},
                        timeout=aiohttp.ClientTimeout(total=5),
                    ) as response:
                        if response.status == 201:
                            acked.append(seq)
                        else:
                            refused[str(response.status)] = refused.get(str(response.status), 0) + 1
                except (aiohttp.ClientError, OSError, TimeoutError) as error:
                    name = type(error).__name__
                    refused[name] = refused.get(name, 0) + 1
                await asyncio.sleep(interval)

        sender = asyncio.create_task(chat_steadily())
        await asyncio.sleep(args.storm_before)
        killed = time.monotonic()
        await server.kill()
        server = target.server(port)
        await server.start(session)
        result["restart_s"] = round(time.monotonic() - killed, 3)
        resumed = await wait_until_resumed(pool, live, args.storm_timeout)
        result["resume_s"] = round(time.monotonic() - killed, 3) if resumed is not None else None
        await asyncio.sleep(args.storm_after)
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        await asyncio.sleep(1.0)
        await quiesce(server, pool)
        collected = await pool.collect(phase, acked)
        status = await pool.status()
        result.update(
            {
                "streams": live,
                "live_after": status["live"],
                "reconnect_attempts": status["reconnect_attempts"],
                "messages_acked": len(acked),
                "messages_refused": refused,
                "lost": collected["lost"],
                "duplicated": collected["duplicated"],
                "out_of_order": collected["out_of_order"],
                "resume_ratio": (
                    round(result["resume_s"] / connect["seconds"], 3)
                    if result["resume_s"] and connect["seconds"]
                    else None
                ),
            }
        )
        log(
            f"  {label}: fresh connect {connect['seconds']:.2f} s; killed, restarted in "
            f"{result['restart_s']:.2f} s, all {live:,} streams back "
            f"{result['resume_s']} s after the kill; {len(acked)} messages acknowledged: "
            f"{result['lost']} lost, {result['duplicated']} duplicated, "
            f"{result['out_of_order']} out of order"
        )
    finally:
        if sender is not None:
            sender.cancel()
        await pool.close_streams()
        await server.stop()
    return result


async def chat_throughput(
    session: aiohttp.ClientSession,
    pool: WorkerPool,
    servers: list[ServerProcess],
    target: Target,
    new_phase: PhaseIds,
    args: argparse.Namespace,
    label: str,
) -> dict[str, Any]:
    """Chat messages accepted per second, and the harness's own ceiling.

    ``args.throughput_senders`` clients (each its own account) post as fast as they get
    answers, for ``args.throughput_seconds``, spread over ``servers``; a message counts when it
    is acknowledged (201, so committed). Every acknowledged message must then reach each of the
    ``args.throughput_listeners`` streams, exactly once. The ceiling is the same harness with
    a body the server refuses after sign-in and JSON parsing (an empty text, 400): what the
    HTTP layer alone allows here, so the store's share of the cost shows.
    """
    tokens = target.tokens[: args.throughput_senders]
    listeners = args.throughput_listeners
    for index, server in enumerate(servers):
        share = listeners // len(servers) + (index < listeners % len(servers))
        await pool.connect(server.port, share, target.tokens or None, f"{label} listeners")
    await quiesce(servers[0], pool)
    loop = asyncio.get_running_loop()

    async def hammer(text_of: Callable[[int], str], expect: int) -> tuple[list[int], float, dict]:
        seqs = itertools.count()
        answered: list[int] = []
        other: dict[str, int] = {}
        deadline = loop.time() + args.throughput_seconds

        async def sender(number: int) -> None:
            url = servers[number % len(servers)].base_url + "/api/messages"
            headers = {"Authorization": f"Bearer {tokens[number % len(tokens)]}"}
            while loop.time() < deadline:
                seq = next(seqs)
                try:
                    async with session.post(
                        url, json={"text": text_of(seq)}, headers=headers
                    ) as response:
                        await response.read()
                        if response.status == expect:
                            answered.append(seq)
                        else:
                            other[str(response.status)] = other.get(str(response.status), 0) + 1
                except (aiohttp.ClientError, OSError) as error:
                    other[type(error).__name__] = other.get(type(error).__name__, 0) + 1

        started = loop.time()
        await asyncio.gather(*(sender(i) for i in range(args.throughput_senders)))
        return answered, loop.time() - started, other

    ceiling_answered, ceiling_s, ceiling_other = await hammer(lambda seq: "", 400)
    await quiesce(servers[0], pool)
    phase = new_phase()
    await pool.arm(phase, track=True)
    measuring = cpu_window(servers[0], pool)
    acked, accepted_s, refused = await hammer(
        lambda seq: f"bench:{phase}:{seq}:{time.time_ns()};", 201
    )
    await asyncio.sleep(1.0)
    await quiesce(servers[0], pool)
    cpu = measuring()
    collected = await pool.collect(phase, acked)
    await pool.close_streams()
    accepted_rate = len(acked) / accepted_s
    ceiling_rate = len(ceiling_answered) / ceiling_s
    result = {
        "senders": args.throughput_senders,
        "listeners": listeners,
        "processes": len(servers),
        "seconds": round(accepted_s, 2),
        "accepted": len(acked),
        "accepted_per_s": round(accepted_rate),
        "refused": refused,
        "ceiling_per_s": round(ceiling_rate),
        "ceiling_other_answers": ceiling_other,
        "ratio_to_ceiling": round(accepted_rate / ceiling_rate, 3) if ceiling_rate else None,
        "lost": collected["lost"],
        "duplicated": collected["duplicated"],
        "latency": latency_summary(collected["latencies_us"]),
        "cpu": cpu,
    }
    log(
        f"  {label}: {result['accepted_per_s']:,} messages/s accepted "
        f"({result['ratio_to_ceiling']} x the {result['ceiling_per_s']:,}/s ceiling), "
        f"{result['lost']} lost, {result['duplicated']} duplicated at {listeners} listeners"
    )
    return result


async def measure_throughput(
    session: aiohttp.ClientSession,
    pool: WorkerPool,
    target: Target,
    args: argparse.Namespace,
    new_phase: PhaseIds,
) -> dict[str, Any]:
    label = f"{target.name} chat throughput"
    async with fresh_server(session, pool, target, label) as server:
        await target.sign_in(session, server.base_url, args.users)
        return await chat_throughput(session, pool, [server], target, new_phase, args, label)


async def measure_redis(
    session: aiohttp.ClientSession,
    pool: WorkerPool,
    target: Target,
    n: int,
    args: argparse.Namespace,
    new_phase: PhaseIds,
    folder: Path,
) -> dict[str, Any]:
    """Scale-out on a real redis-server: two my_chat processes with N/2 streams each.

    Broadcasts and chat messages are posted to the first process; half the streams read them
    from the second, so every frame there crossed Redis. Then the chat throughput with the
    senders and listeners spread over both.
    """
    from tests.redis_server import RedisServer  # the tests' launcher: a free port, its folder

    label = f"{target.name} Redis, 2 processes, N={n:,}"
    log(f"\n== {label}")
    # everysec: like SQLite's WAL with synchronous=NORMAL, an acknowledged message survives a
    # killed my_chat, not a power loss.
    redis = RedisServer(folder, appendfsync="everysec").start()
    servers = [target.server(free_port(), redis.url) for _ in range(2)]
    saved_tokens, target.tokens = target.tokens, []
    result: dict[str, Any] = {"n": n, "processes": 2, "redis_appendfsync": "everysec"}
    try:
        for server in servers:
            await server.start(session)
        await target.sign_in(session, servers[0].base_url, args.users)
        connects = []
        for index, server in enumerate(servers):
            share = n // 2 + (index < n % 2)
            connects.append(
                await pool.connect(server.port, share, target.tokens, f"{label} on {server.port}")
            )
        errors: Counter[str] = Counter()
        for connect in connects:
            errors.update(connect["errors"])
        result["connect"] = {
            "live": sum(c["live"] for c in connects),
            "failed": sum(c["failed"] for c in connects),
            "seconds": round(sum(c["seconds"] for c in connects), 3),
            "errors": dict(errors),
        }
        if result["connect"]["live"] < n:
            log(f"  {label}: only {result['connect']['live']:,} of {n:,} streams live: {errors}")
        await quiesce(servers[0], pool)
        result["push"] = await fanout(
            pool,
            servers[0],
            target.broadcaster(session, servers[0].base_url),
            new_phase,
            args.broadcasts,
            f"{label} push",
        )
        result["chat"] = await fanout(
            pool,
            servers[0],
            target.chatter(session, servers[0].base_url),
            new_phase,
            args.broadcasts,
            f"{label} chat",
        )
        await pool.close_streams()
        result["throughput"] = await chat_throughput(
            session, pool, servers, target, new_phase, args, f"{label} throughput"
        )
    finally:
        await pool.close_streams()
        for server in servers:
            await server.stop()
        redis.stop()
        target.tokens = saved_tokens
    result["http_errors"] = dict(target.http_errors)
    target.http_errors.clear()
    return result
