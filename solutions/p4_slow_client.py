"""Phase 4, step 3: closing a slow client.

``send`` never waits: when a client reads slower than the server writes, asyncio keeps the
bytes the kernel cannot take in the transport's write buffer, and that buffer grows without
limit: one stalled phone can eat the server's memory. The guide's gateway gives each client
a bounded channel and drops the client when it is full. Here the bound is on the write
buffer. Write ``BoundedConnection.send(frame) -> bool``:

- On an open connection it writes the frame and returns ``True`` ...
- ... unless, after writing, ``self.writer.transport.get_write_buffer_size()`` is above
  ``self.max_buffer``: then the client is too slow. Close the connection (``close()``,
  which aborts the transport), set ``self.too_slow = True``, call ``self.on_slow(self)``
  (the server passes ``registry.unregister``) exactly once, and return ``False``.
- On a closed connection it writes nothing and returns ``False``; it never raises.
- The other clients are not affected: a fast client keeps getting every frame.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from .p4_broadcast import SocketConnection


class BoundedConnection(SocketConnection):
    def __init__(
        self,
        id: str,
        user: str,
        writer: asyncio.StreamWriter,
        *,
        max_buffer: int,
        on_slow: Callable[[BoundedConnection], Any],
    ) -> None:
        super().__init__(id, user, writer)
        self.max_buffer = max_buffer
        self.on_slow = on_slow
        self.too_slow = False

    def send(self, frame: bytes) -> bool:
        """Write ``frame``; close the connection instead when the client cannot keep up."""
        ### BEGIN SOLUTION: refuse when closed; write; over the limit: close, flag, on_slow once
        if self.closed or self.writer.transport.is_closing():
            return False
        self.writer.write(frame)
        if self.writer.transport.get_write_buffer_size() <= self.max_buffer:
            return True
        self.close()
        self.too_slow = True
        self.on_slow(self)
        return False
        ### END SOLUTION
