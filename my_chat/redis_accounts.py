"""Accounts in Redis, shared by every my_chat process that uses the same Redis.

:class:`RedisAccountStore` is an :class:`~my_chat.accounts.AccountStore`, like the SQLite
one, so the handlers do not know which one they talk to. It borrows the Redis client that
:func:`~my_chat.redis_client.connect` opened and the broker closes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets

from redis.asyncio import Redis
from redis.exceptions import RedisError

from my_chat.accounts import (
    _DUMMY_HASH,
    UsernameTaken,
    hash_password,
    name_skeleton,
    password_matches,
)
from my_chat.redis_client import load_script
from my_chat.redis_store import RedisUnavailable

logger = logging.getLogger("my_chat")

ACCOUNTS_KEY = "my_chat:accounts"
SKELETONS_KEY = "my_chat:account_skeletons"
JWT_SECRET_KEY = "my_chat:jwt_secret"

# Creates an account only if neither its name nor its look-alike skeleton is taken.
CREATE_ACCOUNT_SCRIPT = load_script("create_account")


class RedisAccountStore:
    """Accounts in the hash ``my_chat:accounts``: lowercased name -> JSON with the name as typed.

    ``my_chat:account_skeletons`` maps each name's look-alike skeleton
    (:func:`~my_chat.accounts.name_skeleton`) to the lowercased name that holds it.
    """

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._create = redis.register_script(CREATE_ACCOUNT_SCRIPT)

    async def add_missing_skeletons(self) -> None:
        """Give accounts made before skeletons existed theirs (see the SQLite store)."""
        try:
            names = {name.decode() for name in await self.redis.hkeys(ACCOUNTS_KEY)}
            holders = await self.redis.hgetall(SKELETONS_KEY)
            missing = sorted(names - {holder.decode() for holder in holders.values()})
            if not missing:
                return
            async with self.redis.pipeline(transaction=False) as pipe:
                for name in missing:
                    pipe.hsetnx(SKELETONS_KEY, name_skeleton(name), name)
                added = await pipe.execute()
        except RedisError as error:
            raise RedisUnavailable("checking the account names", error) from error
        clashes = [name for name, was_added in zip(missing, added, strict=True) if not was_added]
        if clashes:
            logger.warning(
                "accounts whose names look like an older account's (both kept): %s",
                ", ".join(clashes),
            )

    async def close(self) -> None:
        return None  # the broker closes the Redis client

    async def create(self, username: str, password: str, created_ms: int) -> None:
        password_hash = await asyncio.to_thread(hash_password, password)
        record = json.dumps(
            {"username": username, "password_hash": password_hash, "created": created_ms}
        )
        try:
            added = await self._create(
                keys=[ACCOUNTS_KEY, SKELETONS_KEY],
                args=[username.lower(), name_skeleton(username), record],
            )
        except RedisError as error:
            raise RedisUnavailable("creating the account", error) from error
        if not added:
            raise UsernameTaken(username)

    async def check_password(self, username: str, password: str) -> str | None:
        """The account's username as stored, if the password is right; else None."""
        record = await self._record(username)
        stored_name = record["username"] if record else None
        stored_hash = record["password_hash"] if record else _DUMMY_HASH
        matches = await asyncio.to_thread(password_matches, password, stored_hash)
        return stored_name if matches and stored_name is not None else None

    async def canonical_name(self, username: str) -> str | None:
        """The username as stored (names are unique regardless of case), or None."""
        record = await self._record(username)
        return record["username"] if record else None

    async def _record(self, username: str) -> dict | None:
        try:
            raw = await self.redis.hget(ACCOUNTS_KEY, username.lower())
        except RedisError as error:
            raise RedisUnavailable("looking up the account", error) from error
        return json.loads(raw) if raw is not None else None

    async def set_password(self, username: str, password: str) -> None:
        """Store a new password hash for an existing account (a password change)."""
        record = await self._record(username)
        if record is None:
            return
        record["password_hash"] = await asyncio.to_thread(hash_password, password)
        try:
            await self.redis.hset(ACCOUNTS_KEY, username.lower(), json.dumps(record))
        except RedisError as error:
            raise RedisUnavailable("changing the password", error) from error


async def shared_secret(redis: Redis, key: str = JWT_SECRET_KEY) -> str:
    """The secret every process on this Redis shares, made by whichever process asks first.

    ``SET NX`` stores a new random secret only if none is there, in one step, so two
    processes starting at once still end up with the same one.
    """
    await redis.set(key, secrets.token_urlsafe(32), nx=True)
    value = await redis.get(key)
    return value.decode()
