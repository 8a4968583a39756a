"""Real loopback sockets wrapped as my_chat connections, for the exercise tests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from my_chat.client_manager import Client, ClientManager
from my_chat.sse import EventStreamParser, ServerSentEvent


@dataclass
class Peer:
    """The client end of a connection: everything it has read, parsed."""

    connection: Client
    reader: asyncio.StreamReader
    events: list[ServerSentEvent] = field(default_factory=list)
    parser: EventStreamParser = field(default_factory=EventStreamParser)

    async def read_for(self, seconds: float) -> list[ServerSentEvent]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (left := deadline - loop.time()) > 0:
            try:
                chunk = await asyncio.wait_for(self.reader.read(65536), left)
            except TimeoutError:
                break
            if not chunk:
                break
            self.events.extend(self.parser.feed(chunk))
        return self.events

    def heartbeats(self) -> list[dict]:
        return [json.loads(e.data) for e in self.events if e.type == "heartbeat"]


@asynccontextmanager
async def connected_peers(
    users: list[str], manager: ClientManager | None = None
) -> AsyncIterator[tuple[ClientManager, list[Peer]]]:
    """A manager with one registered connection per user, each a real TCP socket pair."""
    manager = manager or ClientManager()
    accepted: asyncio.Queue[asyncio.StreamWriter] = asyncio.Queue()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accepted.put(writer)

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    peers: list[Peer] = []
    client_writers = []
    try:
        for n, user in enumerate(users):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            client_writers.append(writer)
            server_side = await accepted.get()
            connection = Client(f"client-{n}", user, server_side.transport, chunked=False)
            manager.register(connection)
            peers.append(Peer(connection, reader))
        yield manager, peers
    finally:
        for peer in peers:
            manager.unregister(peer.connection)
            peer.connection._transport.close()
        for writer in client_writers:
            writer.close()
        server.close()
        await server.wait_closed()
