"""Phase 4, step 2: broadcast and send-to-users.

With the registry of step 1 (do it first), sending is choosing connections. ``SocketConnection``
(given) wraps the server side of one client's TCP connection: ``send(frame)`` writes the
bytes and returns ``True``, or returns ``False`` when the connection is already closed.

Write two functions, each returning **how many connections accepted** the frame (those whose
``send`` returned ``True``):

- ``broadcast(registry, frame)`` sends ``frame`` to every registered connection.
- ``send_to_users(registry, users, frame)`` sends it to every connection of each user named
  in ``users`` (all their devices). A user with no connection is skipped; a user named
  twice still gets the frame **once** per connection.
- A closed connection (``send`` returns ``False``) is skipped and not counted, and the
  others still get the frame.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from .p4_registry import Registry


class SocketConnection:
    """One client's connection; ``send`` never waits (asyncio buffers what the kernel can't)."""

    def __init__(self, id: str, user: str, writer: asyncio.StreamWriter) -> None:
        self.id = id
        self.user = user
        self.writer = writer
        self.closed = False

    def send(self, frame: bytes) -> bool:
        if self.closed or self.writer.transport.is_closing():
            return False
        self.writer.write(frame)
        return True

    def close(self) -> None:
        self.closed = True
        self.writer.transport.abort()


def broadcast(registry: Registry, frame: bytes) -> int:
    """Send ``frame`` to every connection; how many accepted it."""
    ### BEGIN SOLUTION: send to registry.connections(), count the True answers
    return sum(1 for connection in registry.connections() if connection.send(frame))
    ### END SOLUTION


def send_to_users(registry: Registry, users: Iterable[str], frame: bytes) -> int:
    """Send ``frame`` to every connection of the named users, once each; how many accepted."""
    ### BEGIN SOLUTION: each distinct user once, every one of their connections
    sent = 0
    for user in dict.fromkeys(users):
        for connection in registry.connections_of(user):
            if connection.send(frame):
                sent += 1
    return sent
    ### END SOLUTION
