"""One write transaction on an aiosqlite connection: committed whole, or rolled back whole.

Why this exists: Python's ``sqlite3`` opens a transaction by itself before an INSERT, UPDATE
or DELETE, and leaves it open when that statement fails. A store that catches the error (or
lets it fly up to a 500) without rolling back keeps the database's write lock, and every
later write, from any connection, waits for it and fails with "database is locked".

``write_transaction`` makes the rule hard to forget: whatever happens inside the block (an
``IntegrityError``, text SQLite cannot encode, a cancelled request), the block's writes are
rolled back and the lock is released before the error goes on. One connection is shared by
every request, so the blocks on one connection take turns: a rollback must never take
another request's writes with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator

import aiosqlite

_turns: weakref.WeakKeyDictionary[aiosqlite.Connection, asyncio.Lock] = weakref.WeakKeyDictionary()


# --8<-- [start:write-transaction]
@contextlib.asynccontextmanager
async def write_transaction(db: aiosqlite.Connection) -> AsyncIterator[aiosqlite.Connection]:
    """``async with write_transaction(db):`` runs the block's writes as one transaction.

    ``BEGIN IMMEDIATE`` takes the write lock at the start (waiting up to the connection's
    busy timeout), so the block never fails half-way for want of it. Leaving the block
    normally commits; leaving it with any exception, cancellation included, rolls back.
    """
    turn = _turns.setdefault(db, asyncio.Lock())
    async with turn:
        await db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            await db.commit()
        except BaseException:
            # Shielded: even a cancelled caller must not leave the transaction open. The
            # rollback is queued on the connection's thread after the block's statements.
            await asyncio.shield(_rollback(db))
            raise


# --8<-- [end:write-transaction]


async def _rollback(db: aiosqlite.Connection) -> None:
    with contextlib.suppress(Exception):  # the connection may already be closed
        await db.rollback()
