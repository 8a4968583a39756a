"""``python -m bench``: my_chat beside a raw-asyncio reference, under the same SSE load.

For each size N the orchestrator starts a fresh server (my_chat, then the reference, then
aiohttp's floor: an aiohttp handler that only opens the stream), opens N streams from the
load-generator workers (:mod:`bench.loadgen`), and measures:

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
import datetime as dt
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import FD_MARGIN, RESULTS_DIR, SCHEMA_VERSION, TARGET_N, log
from bench.phases import (
    PhaseIds,
    measure_chat,
    measure_redis,
    measure_size,
    measure_storm,
    measure_throughput,
)
from bench.processes import WorkerPool, raise_open_file_limit
from bench.report import check_targets, comparisons, host_kind, machine_info, strip_for_json, table
from bench.targets import AIOHTTP_FLOOR, TARGET_NAMES, Target
from tests.redis_server import redis_server_path

STANDARD_SIZES = (1000, 5000, 10_000)
LARGEST_SIZE = 50_000  # past this a run takes too long for make bench


def default_sizes() -> list[int]:
    """The standard sizes that fit under the open-file limit, and the largest N that does
    (rounded down to a thousand): each server holds N sockets and each worker its share."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    cap = LARGEST_SIZE if hard == resource.RLIM_INFINITY else hard - FD_MARGIN
    largest = min(cap, LARGEST_SIZE) // 1000 * 1000
    sizes = [n for n in STANDARD_SIZES if n <= largest]
    if largest > (sizes[-1] if sizes else 0):
        sizes.append(largest)
    return sizes or [max(100, cap // 2)]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default=None,
        help="stream counts N, comma-separated (1000,5000,10000 and the largest N the "
        "open-file limit allows, in thousands, up to 50,000)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: N=200, few broadcasts, short ramp, 20 accounts",
    )
    parser.add_argument(
        "--targets",
        default=",".join(TARGET_NAMES),
        help="servers to measure (%(default)s); aiohttp: no ramp, no chat stage",
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
        "--storm-sizes",
        default=None,
        help="N for the restart storm, comma-separated; 0 skips it (default: the largest size)",
    )
    parser.add_argument(
        "--storm-rate",
        type=float,
        default=20.0,
        help="chat messages per second during the storm (%(default)s)",
    )
    parser.add_argument(
        "--storm-before", type=float, default=2.0, help="seconds of chat before the kill"
    )
    parser.add_argument(
        "--storm-after", type=float, default=2.0, help="seconds of chat after all resumed"
    )
    parser.add_argument(
        "--storm-timeout",
        type=float,
        default=120.0,
        help="give up waiting for the streams to resume after this many seconds (%(default)s)",
    )
    parser.add_argument("--throughput-senders", type=int, default=20)
    parser.add_argument("--throughput-listeners", type=int, default=10)
    parser.add_argument(
        "--throughput-seconds",
        type=float,
        default=5.0,
        help="seconds the senders post for, once for the ceiling, once for real (%(default)s)",
    )
    parser.add_argument(
        "--redis-sizes",
        default=None,
        help="N for the Redis phase (two processes); 0 skips it (default: the largest size)",
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
    if args.quick:
        args.throughput_seconds = min(args.throughput_seconds, 1.5)
        args.throughput_senders = min(args.throughput_senders, args.users)
    if args.output is None:
        args.output = RESULTS_DIR / ("quick.json" if args.quick else "latest.json")
    if args.sizes is None:
        args.sizes = ",".join(str(n) for n in default_sizes())
    args.size_list = [int(s) for s in args.sizes.split(",") if s.strip()]
    # The restart storm and the Redis phase run at the size the targets are checked at.
    phase_n = str(TARGET_N if TARGET_N in args.size_list else max(args.size_list))
    storm = args.storm_sizes if args.storm_sizes is not None else phase_n
    args.storm_list = [int(s) for s in storm.split(",") if s.strip() and int(s) > 0]
    redis = args.redis_sizes if args.redis_sizes is not None else phase_n
    args.redis_list = [int(s) for s in redis.split(",") if s.strip() and int(s) > 0]
    args.target_list = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = set(args.target_list) - set(TARGET_NAMES)
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
                t.name: await measure_chat(session, pool, t, args, new_phase)
                for t in targets
                if t.name != AIOHTTP_FLOOR
            }
            report["throughput"] = {
                t.name: await measure_throughput(session, pool, t, args, new_phase)
                for t in targets
                if t.has_chat
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
            report["redis"] = [
                await measure_redis(session, pool, target, n, args, new_phase, workdir / f"r{n}")
                for target in targets
                if target.has_chat and redis_server_path()
                for n in args.redis_list
            ]
            if args.redis_list and not redis_server_path():
                log("\nRedis phase skipped: redis-server is not installed")
            report["storm"] = [
                await measure_storm(session, pool, target, n, args, new_phase)
                for target in targets
                if target.has_chat
                for n in args.storm_list
            ]
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
    limit = raise_open_file_limit(
        max([*args.size_list, *args.storm_list, *args.redis_list, args.chat_clients]) + FD_MARGIN
    )
    settings = {
        k: v
        for k, v in vars(args).items()
        if k not in {"output", "size_list", "target_list", "storm_list", "redis_list"}
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
