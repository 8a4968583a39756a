"""The server as a real process: --help, shutdown, kill -9 and restart on the same data."""

from __future__ import annotations

import asyncio
import json
import random
import re
import subprocess
import sys

import aiohttp
import pytest

from my_chat.sse import EventStreamParser
from tests.chat_client import ChatClient, client_session

pytestmark = pytest.mark.slow


def test_help_lists_the_options():
    result = subprocess.run(
        [sys.executable, "-m", "my_chat", "--help"], capture_output=True, text=True, check=True
    )
    for option in (
        "--host",
        "--port",
        "--data-dir",
        "--periodic-interval",
        "--healthcheck-interval",
        "--exercises",
        "--redis",
    ):
        assert option in result.stdout


def test_a_port_in_use_is_a_clear_error(server_process, tmp_path):
    first = server_process()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "my_chat",
            "--port",
            str(first.port),
            "--data-dir",
            str(tmp_path / "other"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert f"cannot listen on 127.0.0.1:{first.port}" in result.stderr
    assert "Traceback" not in result.stderr


async def test_sigterm_tells_every_stream_to_reconnect(server_process):
    process = server_process(
        "--retry-ms", "1500", "--retry-jitter-ms", "0", "--signup-per-minute", "0"
    )
    async with client_session() as session:
        users = [await ChatClient(process.url, session).signup(f"user{n}") for n in range(3)]
        streams = [await user.open_stream() for user in users]
        loop = asyncio.get_running_loop()
        started = loop.time()
        process.process.terminate()
        for stream in streams:
            farewell = await stream.next("reconnect", timeout=5)
            assert json.loads(farewell.data) == {"reason": "shutdown", "retry_ms": 1500}
            await asyncio.wait_for(stream.ended.wait(), 5)
        assert loop.time() - started < 4  # closed promptly, not after a long drain
        assert await asyncio.to_thread(process.process.wait, 10) == 0
        log = process.log()
        for n in range(3):  # each user's last stream ended: one info line each
            assert f"offline user=user{n} client=" in log, log


class ResumingReader:
    """A client that keeps reading, and reconnects with its last event id when cut off."""

    def __init__(self, client: ChatClient) -> None:
        self.client = client
        self.ids: list[int] = []
        self.last_id: int | None = None
        self.stop = asyncio.Event()
        self.reconnects = 0

    async def run(self) -> None:
        while not self.stop.is_set():
            headers = dict(self.client.auth)
            if self.last_id is not None:
                headers["Last-Event-ID"] = str(self.last_id)
            try:
                async with self.client.session.get(
                    f"{self.client.base_url}/sse",
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=None, sock_connect=2),
                ) as response:
                    parser = EventStreamParser()
                    async for chunk in response.content.iter_any():
                        for event in parser.feed(chunk):
                            if event.type == "message":
                                self.ids.append(json.loads(event.data)["id"])
                                self.last_id = int(event.last_event_id)
                        if self.stop.is_set():
                            return
            except (TimeoutError, aiohttp.ClientError, ConnectionError):
                pass
            self.reconnects += 1
            await asyncio.sleep(0.05)


async def test_kill_9_and_restart_loses_no_acknowledged_message(server_process, tmp_path):
    args = (
        "--signup-per-minute",
        "0",
        "--message-burst",
        "10000",
        "--message-rate",
        "10000",
        "--history",
        "0",
    )
    process = server_process(*args)
    port = process.port
    acknowledged: set[int] = set()
    async with client_session() as session:
        clients = [await ChatClient(process.url, session).signup(f"c{n}") for n in range(10)]
        readers = [ResumingReader(c) for c in clients]
        tasks = [asyncio.create_task(r.run()) for r in readers]
        await asyncio.sleep(0.3)

        async def sender(client: ChatClient, stop: asyncio.Event) -> None:
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    async with client.session.post(
                        f"{client.base_url}/api/messages",
                        headers=client.auth,
                        json={"text": f"{client.username} #{n}"},
                        timeout=aiohttp.ClientTimeout(total=3),
                    ) as response:
                        if response.status == 201:
                            acknowledged.add((await response.json())["id"])
                except (TimeoutError, aiohttp.ClientError, ConnectionError):
                    await asyncio.sleep(0.05)
                await asyncio.sleep(random.uniform(0, 0.01))

        stop_sending = asyncio.Event()
        senders = [asyncio.create_task(sender(c, stop_sending)) for c in clients]
        while len(acknowledged) < 150:
            await asyncio.sleep(0.01)
        process.kill()  # SIGKILL: no goodbye, no flush, nothing
        before_kill = len(acknowledged)
        await asyncio.sleep(0.3)
        process.start()
        assert process.port == port
        while len(acknowledged) < before_kill + 150:
            await asyncio.sleep(0.01)
        stop_sending.set()
        await asyncio.gather(*senders)

        last = max(acknowledged)
        async with asyncio.timeout(20):
            while not all(r.ids and r.ids[-1] >= last for r in readers):
                await asyncio.sleep(0.05)
        for reader in readers:
            reader.stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    for reader in readers:
        assert reader.reconnects >= 1
        assert reader.ids == sorted(set(reader.ids)), "a message arrived twice or out of order"
        missing = acknowledged - set(reader.ids)
        assert not missing, f"acknowledged but never delivered: {sorted(missing)[:10]}"


async def test_retry_jitter_spreads_the_delays_of_streams_and_of_the_farewell(server_process):
    """Each stream's ``retry:`` and its shutdown ``reconnect`` get their own random extra."""
    process = server_process(
        "--retry-ms", "1000", "--retry-jitter-ms", "4000", "--signup-per-minute", "0"
    )
    async with client_session() as session:
        alice = await ChatClient(process.url, session).signup("alice")
        opened, farewells = [], []
        responses = []
        for _ in range(8):
            response = await session.get(
                f"{process.url}/sse", headers=alice.auth, timeout=aiohttp.ClientTimeout(total=10)
            )
            responses.append(response)
            first = await response.content.readuntil(b"\n\n")
            opened.append(int(re.search(rb"\nretry: (\d+)\n", b"\n" + first)[1]))
        process.process.terminate()
        for response in responses:
            rest = await response.content.read()
            farewell = rest[rest.index(b"event: reconnect") :]
            retry = int(re.search(rb"\nretry: (\d+)\n", farewell)[1])
            data = json.loads(re.search(rb"\ndata: (.*)\n", farewell)[1])
            assert data == {"reason": "shutdown", "retry_ms": retry}
            farewells.append(retry)
            response.close()
        for delays in (opened, farewells):
            assert all(1000 <= delay <= 5000 for delay in delays), delays
            assert len(set(delays)) > 1, f"no spread: {delays}"
        assert await asyncio.to_thread(process.process.wait, 10) == 0
