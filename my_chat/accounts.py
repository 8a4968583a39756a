"""Accounts: usernames and password hashes, in SQLite (``SqliteAccountStore``) by default.

``AccountStore`` is the interface; :class:`~my_chat.redis_accounts.RedisAccountStore` is the
other kind, for processes that share the chat through Redis.

Passwords are hashed with scrypt (salted, deliberately slow and memory-hard), in a worker
thread so that a sign-in never stalls the event loop and the streams it serves.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import secrets
import sqlite3
from typing import Protocol

import aiosqlite

from my_chat.transaction import write_transaction

logger = logging.getLogger("my_chat")

USERNAME_PATTERN = re.compile(r"[A-Za-z0-9_.\-]{1,32}")
MIN_PASSWORD, MAX_PASSWORD = 8, 256

# scrypt cost: n=2**14, r=8 takes tens of milliseconds and 16 MiB per hash.
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "maxmem": 64 * 1024 * 1024, "dklen": 32}


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def password_matches(password: str, stored: str) -> bool:
    _, salt_hex, digest_hex = stored.split("$")
    candidate = hash_password(password, bytes.fromhex(salt_hex)).split("$")[2]
    return hmac.compare_digest(candidate, digest_hex)


# A hash to check against when the user does not exist, so timing does not reveal names.
_DUMMY_HASH = hash_password("no such user, still hashed")


class UsernameTaken(Exception):
    pass


# --8<-- [start:skeleton]
# Letters and digits that ordinary fonts draw alike: I (capital i), l and 1; O and 0.
_LOOK_ALIKES = str.maketrans({"i": "l", "1": "l", "0": "o"})


def name_skeleton(username: str) -> str:
    """The key of every name that looks like ``username``: ``aIice``, ``alice`` and
    ``ALICE`` all give ``allce``. Two accounts may not share one, so nobody can register a
    name that passes for someone else's on the page."""
    return username.lower().translate(_LOOK_ALIKES)


# --8<-- [end:skeleton]


class AccountStore(Protocol):
    async def create(self, username: str, password: str, created_ms: int) -> None:
        """Add an account; ``UsernameTaken`` if the name, or one that looks like it, is taken."""

    async def check_password(self, username: str, password: str) -> str | None:
        """The account's username as stored, if the password is right; else None."""

    async def canonical_name(self, username: str) -> str | None:
        """The username as stored (names are unique regardless of case), or None."""

    async def set_password(self, username: str, password: str) -> None:
        """Store a new password hash for an existing account (a password change)."""

    async def close(self) -> None: ...


class SqliteAccountStore:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self.db = db

    @classmethod
    async def open(cls, path: str) -> SqliteAccountStore:
        db = await aiosqlite.connect(path)
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute(
            "CREATE TABLE IF NOT EXISTS accounts ("
            " username TEXT PRIMARY KEY COLLATE NOCASE,"
            " password_hash TEXT NOT NULL,"
            " created INTEGER NOT NULL)"
        )
        # One row per account: its name's skeleton, which no other account may share.
        await db.execute(
            "CREATE TABLE IF NOT EXISTS account_skeletons ("
            " skeleton TEXT PRIMARY KEY, username TEXT NOT NULL COLLATE NOCASE)"
        )
        await db.commit()
        store = cls(db)
        await store._add_missing_skeletons()
        return store

    async def _add_missing_skeletons(self) -> None:
        """Give accounts made before skeletons existed theirs.

        Two old accounts that already look alike both keep working (neither user can be
        renamed from here); the warning names them, and no third one can join them.
        """
        rows = await self.db.execute_fetchall(
            "SELECT username FROM accounts WHERE username NOT IN"
            " (SELECT username FROM account_skeletons)"
        )
        if not rows:
            return
        clashes = []
        async with write_transaction(self.db):
            for (username,) in rows:
                cursor = await self.db.execute(
                    "INSERT OR IGNORE INTO account_skeletons (skeleton, username) VALUES (?, ?)",
                    (name_skeleton(username), username),
                )
                if cursor.rowcount == 0:
                    clashes.append(username)
        if clashes:
            logger.warning(
                "accounts whose names look like an older account's (both kept): %s",
                ", ".join(sorted(clashes)),
            )

    async def close(self) -> None:
        await self.db.close()

    async def create(self, username: str, password: str, created_ms: int) -> None:
        password_hash = await asyncio.to_thread(hash_password, password)
        try:
            # Both rows or neither: a name whose skeleton is taken rolls the account back.
            async with write_transaction(self.db):
                await self.db.execute(
                    "INSERT INTO accounts (username, password_hash, created) VALUES (?, ?, ?)",
                    (username, password_hash, created_ms),
                )
                await self.db.execute(
                    "INSERT INTO account_skeletons (skeleton, username) VALUES (?, ?)",
                    (name_skeleton(username), username),
                )
        except sqlite3.IntegrityError:
            raise UsernameTaken(username) from None

    async def check_password(self, username: str, password: str) -> str | None:
        """The account's username as stored, if the password is right; else None."""
        rows = await self.db.execute_fetchall(
            "SELECT username, password_hash FROM accounts WHERE username = ?", (username,)
        )
        stored_name, stored_hash = rows[0] if rows else (None, _DUMMY_HASH)
        matches = await asyncio.to_thread(password_matches, password, stored_hash)
        return stored_name if matches and stored_name is not None else None

    async def canonical_name(self, username: str) -> str | None:
        """The username as stored (names are unique regardless of case), or None."""
        rows = await self.db.execute_fetchall(
            "SELECT username FROM accounts WHERE username = ?", (username,)
        )
        return rows[0][0] if rows else None

    async def set_password(self, username: str, password: str) -> None:
        """Store a new password hash for an existing account (a password change)."""
        password_hash = await asyncio.to_thread(hash_password, password)
        async with write_transaction(self.db):
            await self.db.execute(
                "UPDATE accounts SET password_hash = ? WHERE username = ?",
                (password_hash, username),
            )
