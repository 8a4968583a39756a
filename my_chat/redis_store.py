"""Messages and accounts in Redis, shared by every my_chat process that uses the same Redis.

:class:`RedisMessageStore` has the interface of the SQLite ``MessageStore`` of exercise 3, and
:class:`RedisAccountStore` that of :class:`my_chat.accounts.AccountStore`, so the handlers do
not know which one they talk to. Both borrow the Redis client of the
:class:`~my_chat.redis_broker.RedisBroker`, which opens and closes it.

The messages live in one Redis stream, ``my_chat:messages``. An entry's stream id is
``<message id>-0``, so the stream is ordered by message id, ``XRANGE`` answers "everything
after id N" for a reconnecting client, and the same stream is the bus that carries new
messages to every process (see :mod:`my_chat.redis_broker`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from my_chat.accounts import (
    _DUMMY_HASH,
    UsernameTaken,
    hash_password,
    name_skeleton,
    password_matches,
)
from my_chat.errors import ApiError
from my_chat.events import Message

logger = logging.getLogger("my_chat")

MESSAGES_KEY = "my_chat:messages"
MESSAGE_ID_KEY = "my_chat:message_id"
APPEND_TOKEN_PREFIX = "my_chat:append:"
ACCOUNTS_KEY = "my_chat:accounts"
SKELETONS_KEY = "my_chat:account_skeletons"
JWT_SECRET_KEY = "my_chat:jwt_secret"

# How many stream entries one XRANGE reads while looking for messages a viewer may see.
SCAN_PAGE = 500
# How long Redis remembers that an append (or a push) already ran; see APPEND_SCRIPT.
REQUEST_TOKEN_TTL_SECONDS = 60


class RedisUnavailable(ApiError):
    """Redis did not answer: the request cannot be served now, but may be retried."""

    status = 503

    def __init__(self, what: str, error: Exception) -> None:
        super().__init__(
            "redis_unavailable",
            f"{what} failed because Redis is not reachable ({error}); try again shortly",
            headers={"Retry-After": "1"},
        )


# --8<-- [start:append-script]
# One script, so that taking the next id and adding the entry are one step: no other process
# can add id 8 while this one still holds id 7, and the stream is always in id order.
# The request token makes the script safe to send twice (redis-py retries a command when the
# connection breaks, even if Redis had already run it): the second run returns the first id.
APPEND_SCRIPT = """
local done = redis.call('GET', KEYS[3])
if done then return tonumber(done) end
local id = redis.call('INCR', KEYS[1])
local top = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)[1]
if top then
    local top_id = tonumber(string.match(top[1], '^(%d+)'))
    if top_id >= id then  -- the counter was lost but the stream was not: continue after it
        id = top_id + 1
        redis.call('SET', KEYS[1], id)
    end
end
local args = {KEYS[2]}
if tonumber(ARGV[1]) > 0 then
    for _, word in ipairs({'MAXLEN', '~', ARGV[1]}) do args[#args + 1] = word end
end
for _, word in ipairs({id .. '-0', 'from', ARGV[3], 'text', ARGV[4], 'ts', ARGV[5]}) do
    args[#args + 1] = word
end
if ARGV[6] ~= '' then
    args[#args + 1] = 'to'
    args[#args + 1] = ARGV[6]
end
redis.call('XADD', unpack(args))
redis.call('SET', KEYS[3], id, 'EX', ARGV[2])
return id
"""
# --8<-- [end:append-script]


def stream_entry_id(message_id: int) -> str:
    return f"{message_id}-0"


def message_from_entry(entry_id: bytes, fields: dict[bytes, bytes]) -> Message:
    to = fields.get(b"to")
    return Message(
        id=int(entry_id.split(b"-", 1)[0]),
        sender=fields[b"from"].decode(),
        to=to.decode() if to is not None else None,
        text=fields[b"text"].decode(),
        timestamp=int(fields[b"ts"]),
    )


def visible_to(message: Message, viewer: str) -> bool:
    return message.to is None or viewer in (message.sender, message.to)


class RedisMessageStore:
    """Chat messages in the Redis stream ``my_chat:messages``, ids from ``my_chat:message_id``.

    ``replay_limit``, when set, is the id of the last message this process has delivered to
    its streams: ``after`` and ``latest`` (what a connecting client is replayed) stop there.
    Anything newer is still on its way through the broker's reader, which will hand it to the
    new connection too, so a message is never replayed *and* delivered live.
    """

    def __init__(self, redis: Redis, retention_count: int) -> None:
        self.redis = redis
        self.retention_count = retention_count
        self.replay_limit: Callable[[], int] | None = None
        self._append = redis.register_script(APPEND_SCRIPT)

    async def close(self) -> None:
        return None  # the broker owns the Redis client

    async def append(self, sender: str, text: str, to: str | None, timestamp: int) -> Message:
        token = APPEND_TOKEN_PREFIX + secrets.token_hex(16)
        try:
            message_id = await self._append(
                keys=[MESSAGE_ID_KEY, MESSAGES_KEY, token],
                args=[
                    max(self.retention_count, 0),
                    REQUEST_TOKEN_TTL_SECONDS,
                    sender,
                    text,
                    timestamp,
                    to or "",
                ],
            )
        except RedisError as error:
            raise RedisUnavailable("storing the message", error) from error
        return Message(id=int(message_id), sender=sender, to=to, text=text, timestamp=timestamp)

    async def after(self, last_id: int, viewer: str, limit: int) -> list[Message]:
        end = self.replay_limit() if self.replay_limit is not None else None
        if end is not None and end <= last_id:
            return []
        found: list[Message] = []
        start = f"({stream_entry_id(last_id)}"
        stop = stream_entry_id(end) if end is not None else "+"
        while len(found) < limit:
            entries = await self._range(start, stop, SCAN_PAGE, reverse=False)
            found += [m for m in entries if visible_to(m, viewer)]
            if len(entries) < SCAN_PAGE:
                break
            start = f"({stream_entry_id(entries[-1].id)}"
        return found[:limit]

    async def before(self, before_id: int | None, viewer: str, limit: int) -> list[Message]:
        return await self._newest(
            f"({stream_entry_id(before_id)}" if before_id is not None else "+", viewer, limit
        )

    async def latest(self, viewer: str, limit: int) -> list[Message]:
        end = self.replay_limit() if self.replay_limit is not None else None
        return await self._newest(stream_entry_id(end) if end is not None else "+", viewer, limit)

    async def _newest(self, stop: str, viewer: str, limit: int) -> list[Message]:
        found: list[Message] = []
        while len(found) < limit:
            entries = await self._range(stop, "-", SCAN_PAGE, reverse=True)
            found += [m for m in entries if visible_to(m, viewer)]
            if len(entries) < SCAN_PAGE:
                break
            stop = f"({stream_entry_id(entries[-1].id)}"
        return list(reversed(found[:limit]))

    async def _range(self, start: str, stop: str, count: int, *, reverse: bool) -> list[Message]:
        try:
            if reverse:
                entries = await self.redis.xrevrange(MESSAGES_KEY, start, stop, count=count)
            else:
                entries = await self.redis.xrange(MESSAGES_KEY, start, stop, count=count)
        except RedisError as error:
            raise RedisUnavailable("reading the history", error) from error
        return [message_from_entry(entry_id, fields) for entry_id, fields in entries]

    async def prune(self, keep_count: int, older_than: int | None) -> int:
        """Trim to ``keep_count`` entries (0: no cap), then drop the old ones at the front.

        Age is checked from the oldest entry on and stops at the first young one: timestamps
        come from each process's clock, so a stray older one behind it waits for the next
        sweep or the count cap. Every process sweeps; trimming twice is harmless.
        """
        deleted = 0
        try:
            if keep_count > 0:
                deleted += await self.redis.xtrim(
                    MESSAGES_KEY, maxlen=keep_count, approximate=False
                )
            while older_than is not None:
                entries = await self.redis.xrange(MESSAGES_KEY, "-", "+", count=SCAN_PAGE)
                old = 0
                for _, fields in entries:
                    if int(fields[b"ts"]) >= older_than:
                        break
                    old += 1
                if old == 0:
                    break
                if old < len(entries):
                    first_kept = entries[old][0]
                else:
                    last_id = int(entries[-1][0].split(b"-", 1)[0])
                    first_kept = stream_entry_id(last_id + 1).encode()
                deleted += await self.redis.xtrim(MESSAGES_KEY, minid=first_kept, approximate=False)
                if old < len(entries):
                    break
        except RedisError as error:
            logger.warning("retention: Redis did not answer (%s); trying again later", error)
        return deleted


# Creates an account only if neither its lowercased name nor its look-alike skeleton is
# taken, all in one step: two processes signing up "alice" and "aIice" at the same moment
# cannot both succeed. The script writes nothing until every check has passed.
CREATE_ACCOUNT_SCRIPT = """
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then return 0 end
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[3]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
return 1
"""


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
        return None  # the broker owns the Redis client

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
