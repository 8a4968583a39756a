"""The report: the machine it ran on, the comparisons with the reference, the table and the
targets."""

from __future__ import annotations

import contextlib
import math
import os
import platform
import re
import resource
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from bench.common import (
    TARGET_BYTES_PER_CONNECTION,
    TARGET_CHAT_P50_MS,
    TARGET_CONNECT_RATIO,
    TARGET_N,
    TARGET_P99_RATIO,
    TARGET_RATE_RATIO,
    TARGET_REDIS_P99_RATIO,
    TARGET_STORM_RESUME_RATIO,
    TARGET_THROUGHPUT_RATIO,
)
from bench.stats import ratio


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


# Figures also divided by aiohttp's floor (an empty aiohttp SSE handler), when it ran.
FLOOR_COMPARED = {"connect all (s)", "memory per connection (KB)", "server CPU s, connect"}


def comparisons(size: dict[str, Any]) -> dict[str, Any]:
    """my_chat / reference for every metric; chat is compared with the reference's push.
    With aiohttp's floor in the run, also my_chat / aiohttp for connect and memory."""
    out = {}
    for label, path, _, _ in METRICS:
        if path[0] in NOT_COMPARED:
            continue
        ref_path = ("push", *path[1:]) if path[0] == "chat" else path
        out[label.strip()] = ratio(
            pick(size.get("my_chat"), *path), pick(size.get("reference"), *ref_path)
        )
        if label in FLOOR_COMPARED and size.get("aiohttp"):
            out[f"{label} / aiohttp"] = ratio(
                pick(size.get("my_chat"), *path), pick(size.get("aiohttp"), *path)
            )
    return out


def fmt(value: Any, scale: float, pattern: str) -> str:
    return "-" if value is None else pattern.format(value * scale)


def table(report: dict[str, Any]) -> str:
    lines = []
    for size in report["sizes"]:
        floor = size.get("aiohttp")
        lines.append(f"\nN = {size['n']:,} streams")
        lines.append(
            f"  {'metric':<32}{'my_chat':>12}{'reference':>12}{'ratio':>8}"
            + (f"{'aiohttp':>12}{'ratio':>8}" if floor else "")
        )
        for label, path, scale, pattern in METRICS:
            ref_path = ("push", *path[1:]) if path[0] == "chat" else path
            mine = pick(size.get("my_chat"), *path)
            ref = pick(size.get("reference"), *ref_path)
            if mine is None and ref is None:
                continue
            r = None if path[0] in NOT_COMPARED else ratio(mine, ref)
            line = (
                f"  {label:<32}{fmt(mine, scale, pattern):>12}"
                f"{fmt(ref, scale, pattern):>12}{'-' if r is None else f'{r:.2f}':>8}"
            )
            if floor and label in FLOOR_COMPARED:
                base = pick(floor, *path)
                r = ratio(mine, base)
                line += f"{fmt(base, scale, pattern):>12}{'-' if r is None else f'{r:.2f}':>8}"
            lines.append(line)
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
    throughputs = [("one process", pick(report.get("throughput"), "my_chat"))] + [
        (f"Redis, 2 processes (N = {redis['n']:,} run)", redis.get("throughput"))
        for redis in report.get("redis", [])
    ]
    for where, result in throughputs:
        if not result:
            continue
        lines.append(
            f"\nChat throughput, {where}: {result['senders']} senders, "
            f"{result['listeners']} listeners, {result['seconds']} s"
        )
        lines.append(f"  {'accepted (messages/s)':<32}{result['accepted_per_s']:>12,}")
        lines.append(f"  {'ceiling, body refused (req/s)':<32}{result['ceiling_per_s']:>12,}")
        lines.append(f"  {'ratio':<32}{fmt(result['ratio_to_ceiling'], 1, '{:.2f}'):>12}")
        lines.append(f"  {'lost / duplicated':<32}{result['lost']:>7} / {result['duplicated']}")
    for redis in report.get("redis", []):
        single = next((s_ for s_ in report["sizes"] if s_["n"] == redis["n"]), {}).get("my_chat")
        lines.append(f"\nRedis, 2 processes, N = {redis['n']:,} streams (beside one process)")
        lines.append(f"  {'metric':<32}{'2 procs':>12}{'1 proc':>12}{'ratio':>8}")
        for label, path in (
            ("push p50 (ms)", ("push", "latency", "p50_ms")),
            ("push p99 (ms)", ("push", "latency", "p99_ms")),
            ("chat p50 (ms)", ("chat", "latency", "p50_ms")),
            ("chat p99 (ms)", ("chat", "latency", "p99_ms")),
        ):
            cross, one = pick(redis, *path), pick(single, *path)
            r = ratio(cross, one)
            lines.append(
                f"  {label:<32}{fmt(cross, 1, '{:.1f}'):>12}{fmt(one, 1, '{:.1f}'):>12}"
                f"{'-' if r is None else f'{r:.2f}':>8}"
            )
    for storm in report.get("storm", []):
        lines.append(f"\nRestart storm, my_chat, N = {storm['n']:,} streams")
        lines.append(
            f"  {'fresh connect (s)':<32}{fmt(storm.get('fresh_connect_s'), 1, '{:.2f}'):>12}"
        )
        lines.append(
            f"  {'kill -9 to restarted (s)':<32}{fmt(storm.get('restart_s'), 1, '{:.2f}'):>12}"
        )
        lines.append(
            f"  {'kill -9 to all resumed (s)':<32}{fmt(storm.get('resume_s'), 1, '{:.2f}'):>12}"
        )
        for key in ("messages_acked", "lost", "duplicated", "out_of_order", "reconnect_attempts"):
            lines.append(f"  {key.replace('_', ' '):<32}{fmt(storm.get(key), 1, '{:,.0f}'):>12}")
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

    seconds, ref_seconds = pick(mine, "connect", "seconds"), pick(ref, "connect", "seconds")
    all_live = pick(mine, "connect", "live") == pick(mine, "connect", "streams")
    connect_ratio = ratio(seconds, ref_seconds)
    floor_seconds = pick(size.get("aiohttp"), "connect", "seconds")
    add(
        f"all {n or 0:,} signed-in streams connected in <= {TARGET_CONNECT_RATIO} x the "
        "reference's time",
        None if connect_ratio is None else (connect_ratio if all_live else math.inf),
        TARGET_CONNECT_RATIO,
        f"{pick(mine, 'connect', 'live')} live in {seconds} s vs {ref_seconds} s, "
        f"ratio {connect_ratio}"
        + (
            f"; aiohttp's floor {floor_seconds} s ({ratio(floor_seconds, ref_seconds)} x the "
            f"reference's), my_chat {ratio(seconds, floor_seconds)} x the floor"
            if floor_seconds
            else ""
        ),
    )
    per_conn = pick(mine, "memory", "bytes_per_connection")
    add(
        f"memory <= {TARGET_BYTES_PER_CONNECTION // 1024} KB per idle signed-in stream",
        per_conn,
        TARGET_BYTES_PER_CONNECTION,
        "-" if per_conn is None else f"{per_conn / 1024:.1f} KB per connection",
    )
    p99, ref_p99 = pick(mine, "push", "latency", "p99_ms"), pick(ref, "push", "latency", "p99_ms")
    p99_ratio = ratio(p99, ref_p99)
    add(
        f"broadcast p99 <= {TARGET_P99_RATIO} x the reference's",
        p99_ratio,
        TARGET_P99_RATIO,
        f"{p99} ms vs {ref_p99} ms, ratio {p99_ratio}",
    )
    rate_ratio = ratio(pick(mine, "ramp", "best_rate"), pick(ref, "ramp", "best_rate"))
    add(
        f"sustained rate >= {TARGET_RATE_RATIO} x the reference's",
        rate_ratio,
        TARGET_RATE_RATIO,
        f"{pick(mine, 'ramp', 'best_rate')}/s vs {pick(ref, 'ramp', 'best_rate')}/s, "
        f"ratio {rate_ratio}",
        below=False,
    )
    chat_p50 = pick(report.get("chat"), "my_chat", "latency", "p50_ms")
    add(
        f"chat POST to delivery p50 < {TARGET_CHAT_P50_MS:g} ms (100 clients)",
        chat_p50,
        TARGET_CHAT_P50_MS,
        f"{chat_p50} ms",
    )
    throughput = pick(report.get("throughput"), "my_chat")
    if throughput:
        whole = (throughput["lost"], throughput["duplicated"]) == (0, 0)
        value = throughput["ratio_to_ceiling"]
        add(
            f"chat messages accepted/s >= {TARGET_THROUGHPUT_RATIO} x the rejected-request "
            f"ceiling ({throughput['senders']} senders, {throughput['listeners']} listeners), "
            "every one delivered",
            None if value is None else (value if whole else -math.inf),
            TARGET_THROUGHPUT_RATIO,
            f"{throughput['accepted_per_s']:,}/s vs {throughput['ceiling_per_s']:,}/s, ratio "
            f"{value}; {throughput['lost']} lost, {throughput['duplicated']} duplicated",
            below=False,
        )
    for storm in report.get("storm", []):
        whole = (storm.get("lost"), storm.get("duplicated"), storm.get("out_of_order")) == (0, 0, 0)
        resume_ratio = storm.get("resume_ratio")
        add(
            f"restart storm at N = {storm['n']:,}: 0 lost, duplicated or out of order, and every "
            f"stream resumed within {TARGET_STORM_RESUME_RATIO} x the fresh connect time",
            None if resume_ratio is None else (resume_ratio if whole else math.inf),
            TARGET_STORM_RESUME_RATIO,
            f"{storm.get('lost')} lost, {storm.get('duplicated')} duplicated, "
            f"{storm.get('out_of_order')} out of order; resumed {storm.get('resume_s')} s after "
            f"the kill, fresh connect {storm.get('fresh_connect_s')} s, ratio {resume_ratio}",
        )
    for redis in report.get("redis", []):
        single = pick(sizes.get(redis["n"]), "my_chat", "push", "latency", "p99_ms")
        cross = pick(redis, "push", "latency", "p99_ms")
        redis_ratio = ratio(cross, single)
        add(
            f"Redis, 2 processes, N = {redis['n']:,}: broadcast p99 <= {TARGET_REDIS_P99_RATIO} "
            "x one process's",
            redis_ratio,
            TARGET_REDIS_P99_RATIO,
            f"{cross} ms vs {single} ms, ratio {redis_ratio}",
        )
    return n, targets


def strip_for_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: strip_for_json(v) for k, v in value.items() if k != "latencies_us"}
    if isinstance(value, list):
        return [strip_for_json(v) for v in value]
    return value
