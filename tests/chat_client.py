"""A small real client for tests: sign in over HTTP, read a stream with the project's parser."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from my_chat.launch import ChildServer, chat_command
from my_chat.sse import EventStreamParser, ServerSentEvent
from tests.ports import free_port

PASSWORD = "password-for-tests"


@dataclass
class Stream:
    """An open ``GET /sse`` stream whose events are parsed as they arrive."""

    response: aiohttp.ClientResponse
    events: asyncio.Queue[ServerSentEvent] = field(default_factory=asyncio.Queue)
    received: list[ServerSentEvent] = field(default_factory=list)
    reader: asyncio.Task | None = None
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    async def _read(self) -> None:
        parser = EventStreamParser()
        try:
            async for chunk in self.response.content.iter_any():
                for event in parser.feed(chunk):
                    self.received.append(event)
                    self.events.put_nowait(event)
        except (aiohttp.ClientError, ConnectionError):
            pass
        finally:
            self.ended.set()

    async def next(self, event_type: str | None = None, timeout: float = 5.0) -> ServerSentEvent:
        """The next event (of ``event_type``, skipping others)."""
        async with asyncio.timeout(timeout):
            while True:
                event = await self.events.get()
                if event_type is None or event.type == event_type:
                    return event

    async def next_json(self, event_type: str, timeout: float = 5.0) -> Any:
        return json.loads((await self.next(event_type, timeout)).data)

    async def messages(self, count: int, timeout: float = 5.0) -> list[dict]:
        return [await self.next_json("message", timeout) for _ in range(count)]

    def close(self) -> None:
        self.response.close()
        if self.reader is not None:
            self.reader.cancel()


class ChatClient:
    """One user talking to a my_chat server over real HTTP."""

    def __init__(self, base_url: str, session: aiohttp.ClientSession) -> None:
        self.base_url = base_url
        self.session = session
        self.username: str | None = None
        self.token: str | None = None

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def signup(self, username: str, password: str = PASSWORD) -> ChatClient:
        return await self._sign_in("/api/signup", 201, username, password)

    async def login(self, username: str, password: str = PASSWORD) -> ChatClient:
        return await self._sign_in("/api/login", 200, username, password)

    async def _sign_in(self, path: str, status: int, username: str, password: str) -> ChatClient:
        async with self.session.post(
            f"{self.base_url}{path}", json={"username": username, "password": password}
        ) as response:
            body = await response.json()
            assert response.status == status, body
        self.username, self.token = body["username"], body["token"]
        return self

    async def request(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        headers = (
            {**self.auth, **kwargs.pop("headers", {})} if self.token else kwargs.pop("headers", {})
        )
        async with self.session.request(
            method, f"{self.base_url}{path}", headers=headers, **kwargs
        ) as response:
            text = await response.text()
            try:
                return response.status, json.loads(text) if text else None
            except ValueError:
                return response.status, text

    async def send(self, text: str, to: str | None = None) -> dict:
        body: dict[str, Any] = {"text": text}
        if to is not None:
            body["to"] = to
        status, reply = await self.request("POST", "/api/messages", json=body)
        assert status == 201, reply
        return reply

    async def open_stream(
        self, last_event_id: int | str | None = None, *, wait_connected: bool = True
    ) -> Stream:
        headers = dict(self.auth)
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        response = await self.session.get(
            f"{self.base_url}/sse", headers=headers, timeout=aiohttp.ClientTimeout(total=None)
        )
        assert response.status == 200, await response.text()
        stream = Stream(response)
        stream.reader = asyncio.create_task(stream._read())
        if wait_connected:
            await stream.next("connection_id")
        return stream


@contextlib.asynccontextmanager
async def client_session() -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session


class ServerProcess(ChildServer):
    """``python -m my_chat`` in a child process, for tests that kill or restart it."""

    def __init__(
        self, data_dir: Path, *args: str, port: int | None = None, env=None, cwd=None
    ) -> None:
        self.data_dir = data_dir
        port = port or free_port()
        super().__init__(
            chat_command(port, data_dir, *args),
            port=port,
            log_path=data_dir.parent / f"server-{port}.log",
            env={**os.environ, **(env or {})},
            cwd=cwd,
        )

    def start(self, timeout: float = 20.0) -> ServerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        super().start(timeout)
        return self

    def service_key(self) -> str:
        return (self.data_dir / "service_key").read_text().strip()
