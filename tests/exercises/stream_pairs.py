"""Real loopback TCP connections as (server-side writer, client-side reader) pairs."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


@asynccontextmanager
async def stream_pairs(
    count: int, *, small_buffers: bool = False
) -> AsyncIterator[list[tuple[asyncio.StreamWriter, asyncio.StreamReader]]]:
    """``count`` connections; with ``small_buffers`` the kernel buffers fill up quickly."""
    accepted: asyncio.Queue[asyncio.StreamWriter] = asyncio.Queue()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if small_buffers:
            writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        await accepted.put(writer)

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pairs = []
    try:
        for _ in range(count):
            raw = socket.socket()
            if small_buffers:
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            raw.setblocking(False)
            await asyncio.get_running_loop().sock_connect(raw, ("127.0.0.1", port))
            reader, client_writer = await asyncio.open_connection(sock=raw)
            server_writer = await asyncio.wait_for(accepted.get(), 5)
            pairs.append((server_writer, reader, client_writer))
        yield [(server_writer, reader) for server_writer, reader, _ in pairs]
    finally:
        for server_writer, _, client_writer in pairs:
            server_writer.transport.abort()
            client_writer.transport.abort()
        server.close()
