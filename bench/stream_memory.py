"""Where the memory of an idle signed-in stream goes: ``python -m bench.stream_memory``.

my_chat runs in this process, exactly as ``python -m my_chat`` builds it (``create_app``, the
``ChatRunner`` with its deadlines, the same garbage-collector settings), with ``tracemalloc``
on. A load generator in another process (``bench/loadgen.py``, the benchmark's own) opens N
streams, each waiting for its ``connection_id``, with the tokens of 200 accounts in turn after
50 chat messages, as the benchmark does. Taken when
they are idle, the snapshot minus the one before, divided by N, is what one stream costs in
Python allocations, and it is printed three ways:

* by **component**: each allocation is charged to the first frame of its traceback that
  belongs to a known part (aiohttp's parser, its request, the handler task, my_chat's
  ``Client``, ...), see ``COMPONENTS``;
* by the **line** that allocated it (file, function and line);
* by **object type**: the objects the garbage collector tracks, counted before and after
  (``gc.get_objects``), with their shallow sizes: one ``Task`` per stream, two, or none?

``--profile`` runs cProfile over the connects instead (stderr), for what a connect costs.
RSS per stream is printed too; with tracemalloc on it includes tracemalloc's own overhead,
so ``--no-trace`` measures it alone. The kernel's socket buffers are not in either figure.

    .venv/bin/python -m bench.stream_memory --streams 2000
    .venv/bin/python -m bench.stream_memory --streams 2000 --json out.json
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import contextlib
import cProfile
import functools
import gc
import io
import json
import linecache
import pstats
import secrets
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from bench.common import PASSWORD, log
from bench.processes import WorkerPool, raise_open_file_limit
from my_chat.serve import free_port, tune_garbage_collector

# (component, path fragment, function names, text on the line; None matches any): the first
# frame of an allocation's traceback, from the innermost out, that matches names its part.
# The order matters: more specific rules first.
COMPONENTS: list[tuple[str, str, tuple[str, ...] | None, str | None]] = [
    ("my_chat: Client object", "my_chat/client_manager.py", ("__init__",), None),
    ("my_chat: session expiry timer", "my_chat/sessions.py", ("ExpiryWatch.watch",), None),
    ("my_chat: session expiry timer", "my_chat/sessions.py", None, None),
    ("my_chat: registration (manager dicts)", "my_chat/client_manager.py", ("register",), None),
    (
        "my_chat: online list kept by the handler",
        "my_chat/presence.py",
        ("LocalPresence.online_snapshot",),
        None,
    ),
    (
        "aiohttp: parsed request (message, headers, URL)",
        "aiohttp/web_protocol.py",
        ("RequestHandler.data_received",),
        None,
    ),
    (
        "aiohttp: HTTP parser kept for a next request",
        "aiohttp/web_protocol.py",
        None,
        "HttpRequestParser(",
    ),
    ("aiohttp: deque of pipelined requests", "aiohttp/web_protocol.py", None, "deque("),
    (
        "aiohttp: protocol object (RequestHandler + deadline fields)",
        "my_chat/deadlines.py",
        ("DeadlineServer.__call__",),
        None,
    ),
    ("my_chat: deadline timers and callbacks", "my_chat/deadlines.py", None, None),
    ("aiohttp: Request object", "aiohttp/web_request.py", None, None),
    ("aiohttp: Request object", "aiohttp/web_app.py", ("Application._make_request",), None),
    ("aiohttp: StreamResponse and its headers", "aiohttp/web_response.py", None, None),
    (
        "aiohttp: StreamResponse and its headers",
        "my_chat/guards.py",
        ("add_security_headers",),
        None,
    ),
    ("aiohttp: response writer", "aiohttp/http_writer.py", None, None),
    ("aiohttp: response writer", "aiohttp/abc.py", None, None),
    ("my_chat: stream handler frame", "my_chat/connection.py", None, None),
    ("middleware frames (errors, metrics, guards)", "my_chat/errors.py", None, None),
    ("middleware frames (errors, metrics, guards)", "my_chat/metrics.py", None, None),
    ("middleware frames (errors, metrics, guards)", "my_chat/guards.py", None, None),
    ("middleware frames (errors, metrics, guards)", "aiohttp/web_middlewares.py", None, None),
    ("aiohttp: app dispatch frames", "aiohttp/web_app.py", None, None),
    ("aiohttp: app dispatch frames", "aiohttp/web_urldispatcher.py", None, None),
    (
        "aiohttp: protocol tasks and frames (start, _handle_request)",
        "aiohttp/web_protocol.py",
        None,
        None,
    ),
    (
        "aiohttp: protocol tasks and frames (start, _handle_request)",
        "aiohttp/web_server.py",
        None,
        None,
    ),
    (
        "aiohttp: protocol tasks and frames (start, _handle_request)",
        "aiohttp/base_protocol.py",
        None,
        None,
    ),
    (
        "aiohttp: protocol tasks and frames (start, _handle_request)",
        "aiohttp/streams.py",
        None,
        None,
    ),
    (
        "aiohttp: protocol tasks and frames (start, _handle_request)",
        "aiohttp/tcp_helpers.py",
        None,
        None,
    ),
    ("asyncio: socket transport", "asyncio/selector_events.py", None, None),
    (
        "asyncio: socket transport",
        "asyncio/base_events.py",
        ("BaseEventLoop._accept_connection2",),
        None,
    ),
    ("my_chat: other", "my_chat/", None, None),
]


@functools.cache
def functions_of(filename: str) -> list[tuple[int, int, str]]:
    """(first line, last line, qualified name) of every function in ``filename``."""
    try:
        tree = ast.parse(Path(filename).read_text())
    except (OSError, SyntaxError, ValueError):
        return []
    found: list[tuple[int, int, str]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    found.append((child.lineno, child.end_lineno or child.lineno, name))
                visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


def function_at(filename: str, line: int) -> str:
    best = ""
    best_span = 1 << 30
    for first, last, name in functions_of(filename):
        if first <= line <= last and last - first < best_span:
            best, best_span = name, last - first
    return best or "<module>"


def short(filename: str) -> str:
    for marker in ("site-packages/", "/lib/python3", "wt-perf/", "/my_chat/"):
        if marker in filename:
            tail = filename.split(marker, 1)[1]
            return tail.split("/", 1)[1] if marker == "/lib/python3" else tail
    return filename


def component_of(traceback: tracemalloc.Traceback) -> str:
    # Oldest frame first (Python 3.7+): walk from the frame that allocated outwards. A task,
    # future or timer is charged to whoever asked asyncio for it, not to asyncio.
    for frame in reversed(traceback):
        path = frame.filename.replace("\\", "/")
        if "asyncio/" in path and "selector_events" not in path:
            if function_at(frame.filename, frame.lineno) != "BaseEventLoop._accept_connection2":
                continue
        for name, fragment, functions, text in COMPONENTS:
            if fragment not in path:
                continue
            if functions is not None and function_at(frame.filename, frame.lineno) not in functions:
                continue
            if text is not None and text not in linecache.getline(frame.filename, frame.lineno):
                continue
            return name
    return "other (asyncio, Python, libraries)"


def census() -> Counter[str]:
    counts: Counter[str] = Counter()
    for obj in gc.get_objects():
        counts[type(obj).__qualname__] += 1
    return counts


def census_sizes() -> dict[str, int]:
    sizes: Counter[str] = Counter()
    for obj in gc.get_objects():
        with contextlib.suppress(TypeError):
            sizes[type(obj).__qualname__] += sys.getsizeof(obj)
    return dict(sizes)


async def sign_up(base_url: str, accounts: int, history: int) -> list[str]:
    """Sign up ``accounts`` (8 at a time: scrypt is slow), then post ``history`` messages, so
    that each stream gets a history on connect, as in the benchmark."""
    limit = asyncio.Semaphore(8)
    async with aiohttp.ClientSession() as session:

        async def account(index: int) -> str:
            body = {"username": f"mem_{index:03d}", "password": PASSWORD}
            async with limit, session.post(base_url + "/api/signup", json=body) as response:
                response.raise_for_status()
                return (await response.json())["token"]

        tokens = list(await asyncio.gather(*(account(i) for i in range(accounts))))
        for seq in range(history):
            headers = {"Authorization": f"Bearer {tokens[seq % len(tokens)]}"}
            body = {"text": f"history message {seq}"}
            async with session.post(base_url + "/api/messages", json=body, headers=headers) as r:
                r.raise_for_status()
    return tokens


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    from aiohttp import web

    from my_chat.config import Settings
    from my_chat.deadlines import ChatRunner, ClientDeadlines
    from my_chat.server import create_app

    raise_open_file_limit(args.streams + 256)
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="stream-memory-") as data_dir:
        settings = Settings(
            port=port,
            data_dir=Path(data_dir),
            signup_per_minute=0,
            max_streams=0,
            max_streams_per_user=0,
            message_burst=1_000_000,
            jwt_secret=secrets.token_urlsafe(32),
            service_key=secrets.token_urlsafe(32),
            log_level="warning",
        )
        app = create_app(settings)
        runner = ChatRunner(
            app,
            ClientDeadlines.of(settings),
            handler_cancellation=True,
            shutdown_timeout=1.0,
            access_log=None,
        )
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port, backlog=4096)
        await site.start()
        pool = WorkerPool(1)
        await pool.start()
        try:
            tokens = await sign_up(f"http://127.0.0.1:{port}", args.accounts, args.history)
            tune_garbage_collector()  # as python -m my_chat does once it serves
            await asyncio.sleep(0.5)
            process = psutil.Process()
            trace = not args.no_trace and not args.profile
            if trace:
                tracemalloc.start(args.frames)
            gc.collect()
            before = tracemalloc.take_snapshot() if trace else None
            types_before, sizes_before = census(), census_sizes()
            rss_before = process.memory_info().rss
            cpu_before = sum(process.cpu_times()[:2])
            profiler = cProfile.Profile() if args.profile else None
            if profiler is not None:
                profiler.enable()
            connect = await pool.connect(port, args.streams, tokens, "stream_memory")
            if profiler is not None:
                profiler.disable()
                profile_text = io.StringIO()
                stats = pstats.Stats(profiler, stream=profile_text)
                stats.sort_stats("tottime").print_stats(args.top)
                log(profile_text.getvalue())
            connect_cpu = sum(process.cpu_times()[:2]) - cpu_before
            if connect["live"] < args.streams:
                raise RuntimeError(f"only {connect['live']} streams live: {connect['errors']}")
            await asyncio.sleep(args.settle)
            gc.collect()
            rss_after = process.memory_info().rss
            # The census before the snapshot: a snapshot is many Python objects of its own.
            types_after, sizes_after = census(), census_sizes()
            after = tracemalloc.take_snapshot() if trace else None
            if trace:
                tracemalloc.stop()
            n = connect["live"]
            result: dict[str, Any] = {
                "streams": n,
                "connect_s": connect["seconds"],
                "connect_cpu_us_per_stream": round(connect_cpu * 1e6 / max(1, connect["live"])),
                "rss_per_stream": round((rss_after - rss_before) / n),
                "traced": trace,
            }
            if after is not None and before is not None:
                result.update(breakdown(before, after, n, args.top))
            result["objects"] = object_census(
                types_before, types_after, sizes_before, sizes_after, n, args.top
            )
        finally:
            await pool.close_streams()
            await pool.stop()
            await runner.cleanup()
    return result


def breakdown(
    before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, n: int, top: int
) -> dict[str, Any]:
    keep = [tracemalloc.Filter(False, tracemalloc.__file__)]
    before, after = before.filter_traces(keep), after.filter_traces(keep)
    by_traceback = after.compare_to(before, "traceback")
    components: Counter[str] = Counter()
    for stat in by_traceback:
        components[component_of(stat.traceback)] += stat.size_diff
    total = sum(stat.size_diff for stat in by_traceback)
    lines = []
    for stat in after.compare_to(before, "lineno")[:top]:
        frame = stat.traceback[0]
        lines.append(
            {
                "bytes": round(stat.size_diff / n),
                "blocks": round(stat.count_diff / n, 2),
                "where": f"{short(frame.filename)}:{frame.lineno}",
                "function": function_at(frame.filename, frame.lineno),
            }
        )
    return {
        "traced_per_stream": round(total / n),
        "components": {name: round(size / n) for name, size in components.most_common()},
        "lines": lines,
    }


def object_census(
    types_before: Counter[str],
    types_after: Counter[str],
    sizes_before: dict[str, int],
    sizes_after: dict[str, int],
    n: int,
    top: int,
) -> list[dict[str, Any]]:
    rows = []
    for name, count in (types_after - types_before).most_common():
        per_stream = count / n
        if per_stream < 0.5:
            continue
        grown = sizes_after.get(name, 0) - sizes_before.get(name, 0)
        rows.append({"type": name, "per_stream": round(per_stream, 2), "bytes": round(grown / n)})
    rows.sort(key=lambda row: -row["bytes"])
    return rows[:top]


def print_report(result: dict[str, Any]) -> None:
    n = result["streams"]
    print(
        f"\n{n:,} idle signed-in streams, connected in {result['connect_s']:.2f} s, "
        f"{result['connect_cpu_us_per_stream']:,} µs of server CPU each"
    )
    print(f"RSS per stream: {result['rss_per_stream']:,} bytes", end="")
    print(" (tracemalloc on: includes its own overhead)" if result["traced"] else "")
    if "components" in result:
        print(f"Traced Python allocations per stream: {result['traced_per_stream']:,} bytes\n")
        print("| bytes per stream | component |")
        print("|---:|---|")
        for name, size in result["components"].items():
            if abs(size) >= 8:
                print(f"| {size:,} | {name} |")
        print("\n| bytes | blocks | allocated at | function |")
        print("|---:|---:|---|---|")
        for line in result["lines"]:
            print(
                f"| {line['bytes']:,} | {line['blocks']} | `{line['where']}` | {line['function']} |"
            )
    print("\n| objects per stream | type | shallow bytes per stream |")
    print("|---:|---|---:|")
    for row in result["objects"]:
        print(f"| {row['per_stream']} | {row['type']} | {row['bytes']:,} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=2000, help="idle streams to open (2000)")
    parser.add_argument("--accounts", type=int, default=200, help="accounts they share (200)")
    parser.add_argument(
        "--history", type=int, default=50, help="messages posted before the streams open (50)"
    )
    parser.add_argument("--frames", type=int, default=30, help="traceback depth traced (30)")
    parser.add_argument("--top", type=int, default=25, help="rows per table (25)")
    parser.add_argument("--settle", type=float, default=1.0, help="idle seconds before measuring")
    parser.add_argument("--no-trace", action="store_true", help="RSS and objects only")
    parser.add_argument(
        "--profile", action="store_true", help="no tracemalloc; cProfile the connects instead"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    started = time.monotonic()
    result = asyncio.run(measure(args))
    result["seconds"] = round(time.monotonic() - started, 1)
    print_report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
