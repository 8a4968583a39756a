"""Run an aiohttp application on a free loopback port, for notebooks and tests."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from my_chat.deadlines import ChatRunner, ClientDeadlines


def deadlines_of(app: web.Application) -> ClientDeadlines:
    from my_chat.server import SETTINGS

    settings = app.get(SETTINGS)
    return ClientDeadlines.of(settings) if settings is not None else ClientDeadlines()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@asynccontextmanager
async def serve(
    app: web.Application,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    shutdown_timeout: float = 1.0,
    deadlines: ClientDeadlines | None = None,
) -> AsyncIterator[str]:
    """``async with serve(app) as url:`` runs ``app`` until the block ends.

    The server binds ``host`` on a free port (or ``port``), and the block gets its base URL,
    such as ``http://127.0.0.1:53817``. Leaving the block runs the app's shutdown hooks and
    closes every connection, so nothing is left behind. Slow clients meet the deadlines of
    the app's settings (``deadlines`` if given; the defaults for an app that is not my_chat).
    """
    runner = ChatRunner(
        app,
        deadlines or deadlines_of(app),
        handler_cancellation=True,
        shutdown_timeout=shutdown_timeout,
        access_log=None,
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port or 0)
    try:
        await site.start()
        bound_port = runner.addresses[0][1]
        yield f"http://{host}:{bound_port}"
    finally:
        await runner.cleanup()
