"""The servers under test: my_chat, the raw-asyncio reference, and aiohttp's floor (an
empty aiohttp SSE handler, :mod:`bench.variants`' baseline); how to start each and make it
send frames."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import EVENT_NAME, PASSWORD, Sender, log
from bench.processes import ServerProcess
from my_chat.launch import chat_command

# The name of the target that measures aiohttp's own cost (see Target.server).
AIOHTTP_FLOOR = "aiohttp"
TARGET_NAMES = ("my_chat", "reference", AIOHTTP_FLOOR)


@dataclass
class Target:
    """How to start one server and make it send frames."""

    name: str
    uvloop: bool
    data_dir: Path
    log_dir: Path
    extra_args: list[str] = field(default_factory=list)
    service_key: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    # One secret for every process of a run, as a deployment behind a load balancer needs.
    jwt_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    tokens: list[str] = field(default_factory=list)
    http_errors: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))

    @property
    def has_chat(self) -> bool:
        return self.name == "my_chat"

    def server(self, port: int, redis_url: str | None = None) -> ServerProcess:
        """The server on ``port``; my_chat with ``redis_url`` runs in Redis mode, with its own
        data folder (the messages, accounts and presence are in Redis)."""
        env = dict(os.environ)
        log_path = self.log_dir / f"{self.name}.log"
        if self.name == "my_chat":
            env["MY_CHAT_SERVICE_KEY"] = self.service_key
            env["MY_CHAT_JWT_SECRET"] = self.jwt_secret
            data_dir = self.data_dir if redis_url is None else self.data_dir / f"redis-{port}"
            redis = ["--redis", redis_url] if redis_url else []
            argv = chat_command(
                port,
                data_dir,
                "--signup-per-minute",
                "0",
                # The benchmark measures capacity: its streams share few accounts, so no caps.
                "--max-streams-per-user",
                "0",
                "--max-streams",
                "0",
                # Capacity, not abuse: the limiter still runs on every message, it never says no.
                "--message-burst",
                "1000000",
                "--message-rate",
                "1000000",
                *redis,
                *self.extra_args,
            )
            ready = "/api/status"
        elif self.name == AIOHTTP_FLOOR:
            # What aiohttp itself costs: a handler that only opens the stream, no sign-in,
            # history or presence, with my_chat's garbage-collector settings (runs before
            # 2026-12-02 22:50 UTC ran it on Python's defaults). my_chat cannot be faster.
            argv = [
                sys.executable,
                "-m",
                "bench.variants",
                "--tuned-gc",
                "--serve",
                "baseline-uvloop" if self.uvloop else "baseline",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ]
            return ServerProcess(self.name, argv, env, port, "/stats", log_path)
        else:
            argv = [
                sys.executable,
                "-m",
                "bench.reference_server",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ]
            ready = "/stats"
        if self.uvloop:
            argv.append("--uvloop")
        return ServerProcess(self.name, argv, env, port, ready, log_path)

    async def sign_in(self, session: aiohttp.ClientSession, base_url: str, users: int) -> float:
        """Sign up (or log in) ``users`` accounts; keep their tokens. Returns seconds taken."""
        if not self.has_chat:
            return 0.0
        if self.tokens:  # from an earlier server start on the same data directory
            async with session.get(
                base_url + "/api/me", headers={"Authorization": f"Bearer {self.tokens[0]}"}
            ) as r:
                if r.status == 200:
                    return 0.0
        started = time.monotonic()
        limit = asyncio.Semaphore(8)
        tokens: list[str] = [""] * users

        async def account(index: int) -> None:
            body = {"username": f"bench_{index:04d}", "password": PASSWORD}
            async with limit:
                for path in ("/api/signup", "/api/login"):
                    async with session.post(base_url + path, json=body) as response:
                        if response.status in (200, 201):
                            tokens[index] = (await response.json())["token"]
                            return
                        if response.status == 429:
                            raise RuntimeError(
                                f"my_chat answered 429 to {path}: its per-address limit blocks "
                                "the benchmark's sign-ups (bench passes --signup-per-minute 0)"
                            )
                        if not (path == "/api/signup" and response.status == 409):
                            raise RuntimeError(
                                f"{path} answered {response.status}: {await response.text()}"
                            )

        tasks = [asyncio.create_task(account(i)) for i in range(users)]
        done = 0
        for task in asyncio.as_completed(tasks):
            await task
            done += 1
            if done % 50 == 0 or done == users:
                log(f"  my_chat: {done}/{users} accounts signed in")
        self.tokens = tokens
        return time.monotonic() - started

    async def _post(self, session: aiohttp.ClientSession, url: str, **kwargs: Any) -> None:
        try:
            async with session.post(url, **kwargs) as response:
                await response.read()
                if response.status >= 300:
                    self.http_errors[f"{url.split('/', 3)[-1]} {response.status}"] += 1
        except (aiohttp.ClientError, OSError) as error:
            self.http_errors[type(error).__name__] += 1

    def broadcaster(self, session: aiohttp.ClientSession, base_url: str) -> Sender:
        if self.has_chat:
            url = base_url + "/api/broadcast"
            headers = {"Authorization": f"Bearer {self.service_key}"}

            async def push(marker: str, seq: int) -> None:
                body = {"event": EVENT_NAME, "data": {"m": marker}}
                await self._post(session, url, json=body, headers=headers)

            return push

        url = f"{base_url}/broadcast?event={EVENT_NAME}"

        async def broadcast(marker: str, seq: int) -> None:
            await self._post(session, url, data=json.dumps({"m": marker}))

        return broadcast

    def chatter(self, session: aiohttp.ClientSession, base_url: str) -> Sender:
        """Chat messages from the accounts in turn (each user has its own rate limit)."""
        url = base_url + "/api/messages"

        async def chat(marker: str, seq: int) -> None:
            token = self.tokens[seq % len(self.tokens)]
            await self._post(
                session, url, json={"text": marker}, headers={"Authorization": f"Bearer {token}"}
            )

        return chat
