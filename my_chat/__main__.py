"""``python -m my_chat``: run the chat server.

Defaults are the embedded ones ``make chat`` uses: 127.0.0.1:8080, SQLite in ``var/``, the
in-process broker. SIGINT or SIGTERM tells every stream to reconnect and closes it within a
second.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import os
import signal
import sys
from collections.abc import Mapping
from pathlib import Path

from my_chat.config import Settings
from my_chat.config_file import LOG_LEVELS, SettingsError, load_settings
from my_chat.errors import StartupError
from my_chat.serve import serve, tune_garbage_collector
from my_chat.server import create_app

logger = logging.getLogger("my_chat")


def proxy_address(text: str) -> str:
    """``--trusted-proxy``: an IP address or network, refused at start-up if it is neither."""
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an IP address or network: {text!r}") from None
    return text


def build_parser() -> argparse.ArgumentParser:
    defaults = Settings()
    parser = argparse.ArgumentParser(
        prog="python -m my_chat",
        description="The workbook's SSE chat server. Every setting can also come from the "
        "environment (MY_CHAT_PORT=9000) or a TOML file (--config; see my_chat.example.toml); "
        "the command line wins over the environment, which wins over the file.",
    )
    parser.add_argument(
        "--config",
        type=Path,
        help="read settings from this TOML file first (keys as in my_chat.example.toml)",
    )
    parser.add_argument("--host", default=defaults.host, help="address to bind (%(default)s)")
    parser.add_argument("--port", type=int, default=defaults.port, help="port (%(default)s)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=defaults.data_dir,
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
        "--retry-jitter-ms",
        type=int,
        default=defaults.retry_jitter_ms,
        help="up to this many ms added at random to each stream's retry delay (%(default)s)",
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
        "--presence-ttl",
        type=float,
        default=defaults.presence_ttl,
        help="with --redis: seconds after which a silent process's users go offline (%(default)s)",
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
        "--grpc-port",
        type=int,
        default=defaults.grpc_port,
        help="serve the gRPC push service (my_chat/sse.proto) on this port, 0 for off "
        "(%(default)s)",
    )
    parser.add_argument(
        "--trusted-proxy",
        dest="trusted_proxies",
        action="append",
        type=proxy_address,
        default=[],
        metavar="ADDRESS",
        help="a reverse proxy (address or network) whose X-Forwarded-For is believed; "
        "repeat for several (none)",
    )
    parser.add_argument(
        "--exercises",
        action="store_true",
        help="run on your code in exercises/ instead of solutions/",
    )
    parser.add_argument(
        "--redis",
        dest="redis_url",
        default=defaults.redis_url,
        help="redis://host:port/db to share one chat between processes",
    )
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop if installed")
    parser.add_argument(
        "--log-level",
        default=defaults.log_level,
        choices=LOG_LEVELS,
        help="my_chat's log level; debug adds a line per stream opened and closed (%(default)s)",
    )
    return parser


# --8<-- [start:parse-args]
def parse_args(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from the command line, the environment and ``--config``, in that order.

    ``SettingsError`` (one line naming the setting) if any of them holds a value that cannot be.
    """
    parser = build_parser()
    parser.parse_args(argv)  # --help, and the command line's own errors
    # Parse again with every default removed, to learn which options were really given:
    # those, and only those, win over the environment and the file.
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    given = vars(parser.parse_args(argv))
    config = given.pop("config", None)
    flags = {
        action.dest: action.option_strings[0] for action in parser._actions if action.option_strings
    }
    return load_settings(config, os.environ if environ is None else environ, given, flags)


# --8<-- [end:parse-args]


# --8<-- [start:run]
async def run(settings: Settings) -> None:
    app = create_app(settings)
    async with serve(app, host=settings.host, port=settings.port, backlog=4096) as url:
        tune_garbage_collector()  # start-up objects out of the collector's way
        logger.info("my_chat is serving on %s (data in %s)", url, settings.data_dir)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        logger.info("shutting down: telling every stream to reconnect")


# --8<-- [end:run]


def main(argv: list[str] | None = None) -> None:
    try:
        settings = parse_args(argv)
    except SettingsError as error:
        # One plain line, no traceback: the message names the setting and where it came from.
        print(f"python -m my_chat: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    level = logging.getLevelName(settings.log_level.upper())
    # Libraries stay at info even then: aiosqlite's debug level is a line per query.
    logging.basicConfig(
        level=max(level, logging.INFO),
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    logger.setLevel(level)
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
