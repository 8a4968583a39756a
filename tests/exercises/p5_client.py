"""What the phase-5 exercise tests share: the learner's app on a real loopback port, and
streams read with my_chat's own parser (tests/chat_client.py's ``Stream``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from aiohttp import web

from my_chat.serve import serve
from tests.chat_client import Stream, client_session


class EventStream(Stream):
    """tests/chat_client.py's Stream, quiet when the server shuts down under it."""

    async def _read(self) -> None:
        try:
            await super()._read()
        except RuntimeError:  # aiohttp's "Connection closed." when the server goes away
            self.ended.set()


class Server:
    """The learner's app, served on 127.0.0.1, with one HTTP client session."""

    def __init__(self, url: str, app: web.Application, session: aiohttp.ClientSession) -> None:
        self.url = url
        self.app = app
        self.session = session

    async def request(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        async with self.session.request(method, self.url + path, **kwargs) as response:
            text = await response.text()
            try:
                return response.status, json.loads(text) if text else None
            except ValueError:
                return response.status, text

    async def open_stream(
        self, params: dict[str, str] | None = None, headers: dict[str, str] | None = None
    ) -> EventStream:
        """``GET /sse``; the stream's events are parsed as they arrive."""
        response = await self.session.get(
            self.url + "/sse",
            params=params,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=None, sock_read=None),
        )
        stream = EventStream(response)
        stream.reader = asyncio.create_task(stream._read())
        return stream

    async def connections(self) -> int:
        status, body = await self.request("GET", "/healthz")
        assert status == 200, body
        return body["connections"]

    async def wait_for_connections(self, count: int, seconds: float = 5.0) -> int:
        """/healthz's count once it equals ``count``, or the last count after ``seconds``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        seen = await self.connections()
        while seen != count and loop.time() < deadline:
            await asyncio.sleep(0.02)
            seen = await self.connections()
        return seen


@asynccontextmanager
async def running(app: web.Application, port: int = 0) -> AsyncIterator[Server]:
    async with serve(app, port=port) as url, client_session() as session:
        yield Server(url, app, session)


async def json_events(stream: Stream, event_type: str, seconds: float = 0.3) -> list[Any]:
    """Every ``event_type`` event the stream has received after waiting ``seconds`` more."""
    await asyncio.sleep(seconds)
    return [json.loads(e.data) for e in stream.received if e.type == event_type]
