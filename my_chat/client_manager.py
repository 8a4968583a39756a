"""The client manager: the guide's module 2.

It keeps every open stream by connection id and grouped by user (one user, several devices),
and hands frames to them: to everyone, to some users, or to one connection.

Why no lock, when the Go gateway needs ``sync.Map`` and four channels? The Go manager is
called from many goroutines running in parallel, so its maps need protection, and the guide
funnels every change through one ``Run()`` loop. Here every caller runs on one asyncio event
loop, and no method of the manager, nor a client's ``send`` or ``write``, contains an
``await``: each one runs from start to finish before any other code can run. A broadcast
therefore never sees a half-registered client, and register and unregister need no channel.
(The lost-update trap appears only when code *does* await in the middle of a
read-modify-write; notebook 3 shows it.)

How frames reach the sockets: a broadcast encodes its frame once, and each client writes
those bytes straight into its transport. Every frame of a stream takes that one path,
``Client.write``: the live ones, and the stream handler's own (the opening frames and the
replay), so the slow-client rule and the shared chunk apply to all of them. There is no
queue and no task per connection: at 10,000 clients that costs about 2.4 times less server
CPU per delivery and cuts the median fan-out time by about 2.6 (``bench/variants.py``). The
transport's own write buffer is the bounded outgoing buffer: a connection whose buffer
passes ``buffer_limit`` is too slow, and it is closed (logged and counted) instead of losing
messages silently, as the guide's ``Send`` does when its channel is full. The client
reconnects with ``Last-Event-ID`` and the history replays what it missed, so being slow
costs latency, never messages.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from my_chat.events import Frame, as_frame, joined_frame

logger = logging.getLogger("my_chat")

# The most of its own frames a stream handler gathers before writing them (see write_in_turn).
GATHER_BYTES = 64 * 1024


class Client:
    """One open ``GET /sse`` stream: a client id, its user, and the socket to write to.

    The guide's ``Client``; the ``ClientManager`` keeps them.
    """

    __slots__ = (
        "_buffer_limit",
        "_chunked",
        "_gathered",
        "_head",
        "_pending",
        "_replayed_through",
        "_transport",
        "closed",
        "id",
        "session",
        "slow",
        "user",
    )

    def __init__(
        self,
        connection_id: str,
        user: str,
        transport: asyncio.WriteTransport | None,
        *,
        chunked: bool = True,
        buffer_limit: int = 256 * 1024,
        head: bytes | None = None,
    ) -> None:
        self.id = connection_id
        self.user = user
        self._transport = transport
        # The response's status line and headers, if they wait to leave with the first frame:
        # one system call per connect instead of two (see connection.EventStreamResponse).
        self._head = head
        self._chunked = chunked
        self._buffer_limit = buffer_limit
        # Set when the stream must end: shutdown, too slow, or the client went away.
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.slow = False
        # While history is replayed, live frames wait here, so that nothing arrives twice
        # or out of order; see ``start_replay``.
        self._pending: list[Frame] | None = None
        # Meanwhile the handler's own frames (opening, online list, history) are gathered
        # here and leave in one write: one system call per connect instead of one per frame.
        self._gathered: list[Frame] | None = None
        # The last message id the replay wrote. A live message that comes after the replay
        # with an id at or below it was written by the replay already: the replay read it from
        # the store before its publisher got round to delivering it (the publisher awaits the
        # commit, and the replay's read can run in between).
        self._replayed_through = 0
        # The session the stream was opened with (a my_chat.sessions.Session): a revocation
        # closes the streams whose session it ends.
        self.session: Any = None

    # --8<-- [start:connection-send]
    def send(self, frame: Frame | bytes) -> bool:
        """Hand one live frame to the socket. False if the connection is closed or just closed."""
        if isinstance(frame, bytes):  # a heartbeat part's; a fan-out hands in its Frame
            frame = as_frame(frame)
        if self._pending is not None:
            self._pending.append(frame)
            return not self.closed.done()
        if self.closed.done():
            return False
        if frame.message_id is not None and frame.message_id <= self._replayed_through:
            return True  # sent by the replay already
        return self.write(frame)

    def write(self, frame: Frame) -> bool:
        """Write one frame to the socket now: every frame of the stream goes out through here.

        False if the socket is gone or the client is too slow (then it is closed). It does not
        look at ``closed``: the stream's own last frames are written after it was closed.
        """
        transport = self._transport
        if self.slow or transport is None or transport.is_closing():
            return False
        if transport.get_write_buffer_size() > self._buffer_limit:
            self._close_slow()
            return False
        data = frame.chunk if self._chunked else frame.payload
        if self._head is not None:
            data, self._head = self._head + data, None
        transport.write(data)
        return True

    # --8<-- [end:connection-send]

    # --8<-- [start:replay-buffer]
    async def write_in_turn(self, frame: Frame, drain: Callable[[], Awaitable[None]]) -> None:
        """Write one of the handler's own frames (opening, replay), then wait while the socket's
        buffer is full (``drain``); raise ``ConnectionResetError`` if the socket is gone.

        During the replay they are gathered and written together, at ``finish_replay`` or
        once ``GATHER_BYTES`` are waiting (a long resume is never held whole in memory).
        Live frames never wait: they are held back until these are written.
        """
        gathered = self._gathered
        if gathered is not None:
            gathered.append(frame)
            if sum(len(f.payload) for f in gathered) < GATHER_BYTES:
                return
            self._gathered = []
            frame = joined_frame(gathered)
        if not self.write(frame):
            raise ConnectionResetError(f"the stream of client {self.id} is gone")
        await drain()

    def start_replay(self) -> None:
        """Hold live frames back until the history before them has been written."""
        self._pending = []
        self._gathered = []

    def finish_replay(self, last_replayed_id: int) -> None:
        """Write the handler's gathered frames, then the frames held back during the replay,
        minus messages the replay already sent."""
        pending, self._pending = self._pending or [], None
        gathered, self._gathered = self._gathered, None
        self._replayed_through = last_replayed_id
        if gathered and not self.write(joined_frame(gathered)):
            return
        for frame in pending:
            if frame.message_id is not None and frame.message_id <= last_replayed_id:
                continue
            # Even if the stream was closed meanwhile (a shutdown during the replay), what
            # was held back goes out first: it ends with the shutdown's `reconnect` event.
            if not self.write(frame):
                break

    # --8<-- [end:replay-buffer]

    def close(self) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    # --8<-- [start:slow]
    def _close_slow(self) -> None:
        self.slow = True
        logger.warning(
            "closing slow client=%s user=%s: %d bytes waiting",
            self.id,
            self.user,
            self._transport.get_write_buffer_size() if self._transport else 0,
        )
        # Abort, not close: a graceful close would wait for the very buffer that is full.
        if self._transport is not None:
            self._transport.abort()
        self.close()

    # --8<-- [end:slow]


@dataclass
class ManagerStats:
    connections_opened: int = 0
    connections_closed: int = 0
    slow_disconnects: int = 0
    # Frames a broadcast or push handed to a connection: one per connection reached.
    deliveries: int = 0


# --8<-- [start:indexes]
class ClientManager:
    """Every open connection, by id and by user."""

    def __init__(self) -> None:
        self._clients: dict[str, Client] = {}
        self._user_clients: dict[str, dict[str, Client]] = {}
        self.stats = ManagerStats()

    # --8<-- [end:indexes]

    # --8<-- [start:register]
    def register(self, connection: Client) -> bool:
        """Add a connection. True if it is its user's first, so the user just came online."""
        self._clients[connection.id] = connection
        devices = self._user_clients.setdefault(connection.user, {})
        devices[connection.id] = connection
        self.stats.connections_opened += 1
        return len(devices) == 1

    def unregister(self, connection: Client) -> bool:
        """Remove a connection. True if it was its user's last, so the user just went offline."""
        if self._clients.pop(connection.id, None) is None:
            return False
        self.stats.connections_closed += 1
        if connection.slow:
            self.stats.slow_disconnects += 1
        connection.close()
        devices = self._user_clients.get(connection.user)
        if devices is None:
            return False
        devices.pop(connection.id, None)
        if devices:
            return False
        del self._user_clients[connection.user]
        return True

    # --8<-- [end:register]

    # --8<-- [start:fan-out]
    def broadcast(self, frame: Frame | bytes) -> int:
        """Send to every connection; returns how many took the frame."""
        return self._send_all(self._clients.values(), frame)

    def send_to_users(self, users: Iterable[str], frame: Frame | bytes) -> int:
        """Send to every connection of each of ``users``; returns how many took the frame."""
        return self._send_all(
            (c for user in set(users) for c in self._user_clients.get(user, {}).values()), frame
        )

    def send_to_connection(self, connection_id: str, frame: Frame | bytes) -> bool:
        connection = self._clients.get(connection_id)
        return connection is not None and connection.send(frame)

    def _send_all(self, connections: Iterable[Client], frame: Frame | bytes) -> int:
        frame = as_frame(frame)
        # A slow connection only aborts inside send(); it leaves the dicts later, in its
        # handler's finally. The copy keeps this loop safe should closing ever unregister.
        sent = sum(1 for connection in list(connections) if connection.send(frame))
        self.stats.deliveries += sent
        return sent

    # --8<-- [end:fan-out]

    def connections(self) -> Iterator[Client]:
        """A snapshot of every open connection."""
        return iter(list(self._clients.values()))

    def connections_of(self, user: str) -> list[Client]:
        return list(self._user_clients.get(user, {}).values())

    def online_users(self) -> list[str]:
        return sorted(self._user_clients)

    def is_online(self, user: str) -> bool:
        return user in self._user_clients

    def __len__(self) -> int:
        return len(self._clients)

    def close_all(self, farewell: Frame | bytes | Callable[[], Frame] | None = None) -> None:
        """Say goodbye to every connection and end its stream (used on shutdown).

        ``farewell`` may be a function: then each connection gets the frame of its own call.
        """
        for connection in list(self._clients.values()):
            if callable(farewell):
                connection.send(farewell())
            elif farewell is not None:
                connection.send(farewell)
            connection.close()
