"""Run an aiohttp application on a free loopback port, for the exercise tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

HANDLER_ERRORS: list[Exception] = []  # emptied before each test by the exercise conftest


@asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1 (a free port) and yield its base URL.

    An error a handler raises is kept in ``HANDLER_ERRORS``: when the test fails, the
    exercise conftest reports that error instead, since "500 != 201" says less than the
    ``NotImplementedError`` (or bug) behind it, with its line.
    """

    @web.middleware
    async def remember_errors(request: web.Request, handler):  # type: ignore[no-untyped-def]
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except Exception as error:
            HANDLER_ERRORS.append(error)
            raise

    app.middlewares.append(remember_errors)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
