"""Exercise 3: message persistence.

Store every chat message in SQLite and read it back, so history survives restarts and a
client that reconnects with ``Last-Event-ID`` gets exactly what it missed.

- ``open`` connects with aiosqlite, switches the database to WAL with ``synchronous=NORMAL``
  (as my_chat does), and creates the ``messages`` table if it is missing. The ids come from
  SQLite (``INTEGER PRIMARY KEY AUTOINCREMENT``): they only ever grow, even after
  old rows are deleted, so they can be the SSE ``id:`` of each message.
- ``append`` stores one message and commits before it returns: once the sender hears "201",
  the message is committed. In WAL mode with ``synchronous=NORMAL`` a commit survives the
  server process being killed; only a power loss or an operating-system crash can still lose
  the last few (chapter 1 says why my_chat accepts that).
- ``append_many`` stores several messages in ONE transaction (group commit): all of them or,
  when any one fails, none of them (the error is raised). It returns them in the order given,
  each with its id; the ids grow in that order, like the ids of ``append`` called once per
  message. An empty list stores nothing and returns ``[]``.
- Every write (``append``, ``append_many``, ``prune``) runs inside
  ``write_transaction(self.db)`` from ``my_chat.transaction``: the block commits when it
  ends, and rolls back when anything in it fails. A failed write (text SQLite cannot store,
  a locked database) raises its error, and the next write works as if it had never been
  tried; without the rollback the connection stays inside the failed transaction, and later
  writes fail with "database is locked".
- ``after``, ``before`` and ``latest`` return messages in id order (oldest first), and only
  those ``viewer`` may see: the room's (``recipient IS NULL``) and private ones the viewer
  sent or received. Their ``limit`` counts only messages the viewer may see.
- ``prune(keep_count, older_than)`` deletes what retention no longer keeps: it keeps at most
  the ``keep_count`` newest messages (0: no cap), deletes every message with a timestamp
  below ``older_than`` (milliseconds; None: no age cap), and returns how many it deleted.
"""

from __future__ import annotations

from collections.abc import Sequence

import aiosqlite

from my_chat.events import Message
from my_chat.store import MAX_MESSAGE_ID
from my_chat.transaction import write_transaction

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sender TEXT NOT NULL,
    recipient TEXT,
    text TEXT NOT NULL,
    timestamp INTEGER NOT NULL
)
"""


class MessageStore:
    """Chat messages in one SQLite table."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self.db = db

    @classmethod
    async def open(cls, path: str) -> MessageStore:
        """Connect to the database at ``path`` (``":memory:"`` works too) and create the table."""
        ### BEGIN SOLUTION: connect, switch on WAL, create the table, commit
        db = await aiosqlite.connect(path)
        # WAL with synchronous=NORMAL: a commit survives the process being killed.
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")
        await db.execute(SCHEMA)
        await db.commit()
        return cls(db)
        ### END SOLUTION

    async def close(self) -> None:
        await self.db.close()

    async def append(self, sender: str, text: str, to: str | None, timestamp: int) -> Message:
        """Store one message, commit, and return it with the id SQLite gave it."""
        ### BEGIN SOLUTION: INSERT in a write_transaction; the Message from cursor.lastrowid
        async with write_transaction(self.db):
            cursor = await self.db.execute(
                "INSERT INTO messages (sender, recipient, text, timestamp) VALUES (?, ?, ?, ?)",
                (sender, to, text, timestamp),
            )
        return Message(id=cursor.lastrowid, sender=sender, to=to, text=text, timestamp=timestamp)
        ### END SOLUTION

    async def append_many(self, rows: Sequence[tuple[str, str, str | None, int]]) -> list[Message]:
        """Store ``(sender, text, to, timestamp)`` rows in one transaction; return the messages."""
        ### BEGIN SOLUTION: one write_transaction around all the INSERTs; ids in the order given
        if not rows:
            return []
        # One INSERT with a row of values per message: one trip to the database thread for
        # the whole group, however large (executemany would also work, but leaves
        # cursor.lastrowid unset and needs another trip to ask for the ids).
        values = ", ".join(["(?, ?, ?, ?)"] * len(rows))
        parameters = [v for sender, text, to, ts in rows for v in (sender, to, text, ts)]
        async with write_transaction(self.db):
            cursor = await self.db.execute(
                f"INSERT INTO messages (sender, recipient, text, timestamp) VALUES {values}",
                parameters,
            )
        # The transaction held the write lock, so nobody else inserted in between: with
        # AUTOINCREMENT each row got the id after the one before, in the order of the
        # values, and lastrowid is the last row's.
        last = cursor.lastrowid
        first = last - len(rows) + 1
        return [
            Message(id=first + n, sender=sender, to=to, text=text, timestamp=timestamp)
            for n, (sender, text, to, timestamp) in enumerate(rows)
        ]
        ### END SOLUTION

    async def after(self, last_id: int, viewer: str, limit: int) -> list[Message]:
        """Up to ``limit`` messages with an id above ``last_id`` that ``viewer`` may see."""
        ### BEGIN SOLUTION: select by id and visibility, oldest first
        rows = await self.db.execute_fetchall(
            "SELECT id, sender, recipient, text, timestamp FROM messages"
            " WHERE id > ? AND (recipient IS NULL OR recipient = ? OR sender = ?)"
            " ORDER BY id LIMIT ?",
            (last_id, viewer, viewer, limit),
        )
        return [Message(*row) for row in rows]
        ### END SOLUTION

    async def before(self, before_id: int | None, viewer: str, limit: int) -> list[Message]:
        """The ``limit`` newest messages below ``before_id`` (None: all) that ``viewer`` may
        see, oldest first."""
        ### BEGIN SOLUTION: select the newest ones first, then put them in id order
        rows = await self.db.execute_fetchall(
            "SELECT id, sender, recipient, text, timestamp FROM messages"
            " WHERE id < ? AND (recipient IS NULL OR recipient = ? OR sender = ?)"
            " ORDER BY id DESC LIMIT ?",
            (before_id if before_id is not None else MAX_MESSAGE_ID, viewer, viewer, limit),
        )
        return [Message(*row) for row in reversed(list(rows))]
        ### END SOLUTION

    async def latest(self, viewer: str, limit: int) -> list[Message]:
        """The ``limit`` newest messages ``viewer`` may see, oldest first."""
        return await self.before(None, viewer, limit)

    async def prune(self, keep_count: int, older_than: int | None) -> int:
        """Keep at most ``keep_count`` newest messages (0: no cap) and delete every message
        with a timestamp below ``older_than`` (ms; None: no age cap). Returns how many went."""
        ### BEGIN SOLUTION: two DELETEs in one write_transaction, and the number of rows deleted
        deleted = 0
        async with write_transaction(self.db):
            if keep_count > 0:
                cursor = await self.db.execute(
                    "DELETE FROM messages WHERE id <= (SELECT id FROM messages"
                    " ORDER BY id DESC LIMIT 1 OFFSET ?)",
                    (keep_count,),
                )
                deleted += cursor.rowcount
            if older_than is not None:
                cursor = await self.db.execute(
                    "DELETE FROM messages WHERE timestamp < ?", (older_than,)
                )
                deleted += cursor.rowcount
        return deleted
        ### END SOLUTION
