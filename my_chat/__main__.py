"""``python -m my_chat``: run the chat server.

Defaults are the embedded ones ``make chat`` uses: 127.0.0.1:8080, SQLite in ``var/``, the
in-process broker. SIGINT or SIGTERM tells every stream to reconnect and closes it within a
second.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import sys
from pathlib import Path

from aiohttp import web

from my_chat.config import Settings
from my_chat.deadlines import ChatRunner, ClientDeadlines
from my_chat.errors import StartupError
from my_chat.server import create_app

logger = logging.getLogger("my_chat")


def parse_args(argv: list[str] | None = None) -> Settings:
    defaults = Settings()
    parser = argparse.ArgumentParser(
        prog="python -m my_chat", description="The workbook's SSE chat server."
    )
    parser.add_argument("--host", default=defaults.host, help="address to bind (%(default)s)")
    parser.add_argument("--port", type=int, default=defaults.port, help="port (%(default)s)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("MY_CHAT_DATA_DIR", defaults.data_dir)),
        help="where the database and generated secrets live (%(default)s)",
    )
    parser.add_argument(
        "--periodic-interval",
        type=float,
        default=defaults.periodic_interval,
        help="seconds between periodic heartbeats to all (%(default)s)",
    )
    parser.add_argument(
        "--healthcheck-interval",
        type=float,
        default=defaults.healthcheck_interval,
        help="seconds between healthcheck heartbeats per connection (%(default)s)",
    )
    parser.add_argument(
        "--retry-ms",
        type=int,
        default=defaults.retry_ms,
        help="reconnection delay sent to clients (%(default)s)",
    )
    parser.add_argument(
        "--history",
        type=int,
        default=defaults.history_on_connect,
        dest="history_on_connect",
        help="messages a new stream gets before live ones (%(default)s)",
    )
    parser.add_argument(
        "--retention-count",
        type=int,
        default=defaults.retention_count,
        help="keep at most this many messages, 0 for no cap (%(default)s)",
    )
    parser.add_argument(
        "--retention-days",
        type=float,
        default=defaults.retention_days,
        help="delete messages older than this, 0 for no cap (%(default)s)",
    )
    parser.add_argument(
        "--buffer-limit",
        type=int,
        default=defaults.buffer_limit,
        help="bytes a slow client may have waiting before it is closed (%(default)s)",
    )
    parser.add_argument(
        "--message-burst",
        type=int,
        default=defaults.message_burst,
        help="messages a user may send at once (%(default)s)",
    )
    parser.add_argument(
        "--message-rate",
        type=float,
        default=defaults.message_rate,
        help="messages per second a user may keep sending (%(default)s)",
    )
    parser.add_argument(
        "--signup-per-minute",
        type=int,
        default=defaults.signup_per_minute,
        help="sign-ups per address and minute, 0 for no limit (%(default)s)",
    )
    parser.add_argument(
        "--max-streams-per-user",
        type=int,
        default=defaults.max_streams_per_user,
        help="open streams one user may have, 0 for no cap (%(default)s)",
    )
    parser.add_argument(
        "--max-streams",
        type=int,
        default=defaults.max_streams,
        help="open streams in this process, 0 for no cap (%(default)s)",
    )
    parser.add_argument(
        "--replay-max",
        type=int,
        default=defaults.replay_max,
        help="messages one resume replays at most, 0 for no cap (%(default)s)",
    )
    parser.add_argument(
        "--head-timeout",
        type=float,
        default=defaults.request_head_timeout,
        dest="request_head_timeout",
        help="seconds a client has to send a whole request head, 0 for no limit (%(default)s)",
    )
    parser.add_argument(
        "--body-timeout",
        type=float,
        default=defaults.request_body_timeout,
        dest="request_body_timeout",
        help="seconds a client has to send a request body, 0 for no limit (%(default)s)",
    )
    parser.add_argument(
        "--keepalive-timeout",
        type=float,
        default=defaults.keepalive_timeout,
        help="seconds an idle keep-alive connection stays open (%(default)s)",
    )
    parser.add_argument(
        "--presence-grace",
        type=float,
        default=defaults.presence_grace,
        help="seconds before a user whose last stream closed is announced offline (%(default)s)",
    )
    parser.add_argument(
        "--presence-window",
        type=float,
        default=defaults.presence_window,
        help="presence changes are sent at most once per this many seconds (%(default)s)",
    )
    parser.add_argument(
        "--exercises",
        action="store_true",
        help="run on your code in exercises/ instead of solutions/",
    )
    parser.add_argument(
        "--redis",
        dest="redis_url",
        default=os.environ.get("MY_CHAT_REDIS_URL"),
        help="redis://host:port/db to share one chat between processes",
    )
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop if installed")
    parser.add_argument(
        "--log-level", default=defaults.log_level, choices=["debug", "info", "warning", "error"]
    )
    args = parser.parse_args(argv)
    settings = Settings(**vars(args))
    return settings


# --8<-- [start:run]
async def run(settings: Settings) -> None:
    app = create_app(settings)
    runner = ChatRunner(
        app,
        ClientDeadlines.of(settings),
        handler_cancellation=True,
        shutdown_timeout=1.0,
        access_log=None,
    )
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, backlog=4096)
    try:
        await site.start()
    except OSError as error:
        await runner.cleanup()
        raise SystemExit(
            f"cannot listen on {settings.host}:{settings.port}: {error.strerror}"
        ) from None
    # Start-up objects live as long as the process: move them out of the collector's way,
    # and let young objects pile up longer between collections. With thousands of streams
    # this cuts the connect-time CPU spent in the garbage collector by about a third.
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    logger.info(
        "my_chat is serving on http://%s:%d (data in %s)",
        settings.host,
        settings.port,
        settings.data_dir,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
        logger.info("shutting down: telling every stream to reconnect")
    finally:
        await runner.cleanup()


# --8<-- [end:run]


def main(argv: list[str] | None = None) -> None:
    settings = parse_args(argv)
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    if settings.uvloop:
        import uvloop

        uvloop.install()
    try:
        asyncio.run(run(settings))
    except StartupError as error:
        logger.error("%s", error)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
