"""Phase 3, step 4: clean-up that survives cancellation, in ``finally``.

A chat server runs one coroutine per connected client. That coroutine can end three ways:
the server cancels it (shutting down), the client goes away (writing fails), or a bug
raises. Whatever happens, the client must leave the room, or the room keeps sending to a
ghost. Go writes ``defer room.Leave(name)``; Python writes ``try: ... finally:``.

``Room`` (given) hands each member a queue of lines. Write
``serve_member(room, name, writer)``:

- It joins the room as ``name`` and writes every line from its queue to ``writer``,
  ending each with ``\\n`` and awaiting ``writer.drain()``, in order.
- **Cancelled**: it leaves the room, closes the writer, and the ``CancelledError`` goes
  on up (never swallow it: the code that cancelled the task waits for it).
- **The client is gone** (writing or draining raises ``ConnectionError``): it leaves the
  room, closes the writer and returns normally; a gone client is not an error.
- Any other error: it leaves the room, closes the writer, and the error goes on up.
"""

# Generated from solutions/p3_cleanup.py by tools/make_exercises.py —
# edit this file, it is yours.

from __future__ import annotations

import asyncio


class Room:
    """Members by name, each with a queue of lines to send."""

    def __init__(self) -> None:
        self.members: dict[str, asyncio.Queue[str]] = {}

    def join(self, name: str) -> asyncio.Queue[str]:
        queue: asyncio.Queue[str] = asyncio.Queue()
        self.members[name] = queue
        return queue

    def leave(self, name: str) -> None:
        self.members.pop(name, None)

    def say(self, line: str) -> None:
        for queue in self.members.values():
            queue.put_nowait(line)


async def serve_member(room: Room, name: str, writer: asyncio.StreamWriter) -> None:
    """Send ``name`` every line said in ``room`` until cancelled or the client is gone."""
    # TODO: join; loop get/write/drain; ConnectionError returns; finally leave+close
    raise NotImplementedError("TODO: serve_member() in exercises/p3_cleanup.py")
