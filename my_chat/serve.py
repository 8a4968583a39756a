"""Run an aiohttp application until a block ends: ``python -m my_chat``, tests and notebooks."""

from __future__ import annotations

import gc
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from my_chat.deadlines import ChatRunner, ClientDeadlines
from my_chat.errors import StartupError


def deadlines_of(app: web.Application) -> ClientDeadlines:
    from my_chat.server import SETTINGS

    settings = app.get(SETTINGS)
    return ClientDeadlines.of(settings) if settings is not None else ClientDeadlines()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


# --8<-- [start:gc]
def tune_garbage_collector() -> None:
    """Call once start-up is done. Start-up objects live as long as the process: move them
    out of the collector's way, and let young objects pile up longer between collections.
    Connecting 10,000 streams to an empty aiohttp handler spent about 0.62 s in the
    collector on Python's defaults and under 0.2 s with this (performance appendix, 12)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


# --8<-- [end:gc]


@asynccontextmanager
async def serve(
    app: web.Application,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    shutdown_timeout: float = 1.0,
    deadlines: ClientDeadlines | None = None,
    backlog: int = 128,
) -> AsyncIterator[str]:
    """``async with serve(app) as url:`` runs ``app`` until the block ends.

    The server binds ``host`` on a free port (or ``port``), and the block gets its base URL,
    such as ``http://127.0.0.1:53817``. Leaving the block runs the app's shutdown hooks and
    closes every connection, so nothing is left behind. Slow clients meet the deadlines of
    the app's settings (``deadlines`` if given; the defaults for an app that is not my_chat).
    ``backlog`` is how many connections may wait to be accepted. An address that cannot be
    bound is a ``CannotListen``.
    """
    runner = ChatRunner(
        app,
        deadlines or deadlines_of(app),
        handler_cancellation=True,
        shutdown_timeout=shutdown_timeout,
        access_log=None,
    )
    try:
        # If start-up fails part-way (a busy gRPC port, say), the clean-up below closes what
        # did start, such as the database, whose threads would keep the process alive.
        await runner.setup()
        site = web.TCPSite(runner, host, port or 0, backlog=backlog)
        try:
            await site.start()
        except OSError as error:
            raise CannotListen(f"cannot listen on {host}:{port}: {error.strerror}") from None
        bound_port = runner.addresses[0][1]
        yield f"http://{host}:{bound_port}"
    finally:
        await runner.cleanup()


class CannotListen(StartupError):
    """The address is in use, or not this machine's."""
