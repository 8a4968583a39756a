"""Messages in Redis, shared by every my_chat process that uses the same Redis.

:class:`RedisMessageStore` is a :class:`~my_chat.store.MessageStore`, like the SQLite store of
exercise 3, so the handlers do not know which one they talk to. It borrows the Redis client
that :func:`~my_chat.redis_client.connect` opened and the broker closes.

The messages live in one Redis stream, ``my_chat:messages``. An entry's stream id is
``<message id>-0``, so the stream is ordered by message id, ``XRANGE`` answers "everything
after id N" for a reconnecting client, and the same stream is the bus that carries new
messages to every process (see :mod:`my_chat.redis_broker`).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence

from redis.asyncio import Redis
from redis.exceptions import NoScriptError, RedisError

from my_chat.errors import ApiError
from my_chat.events import Message
from my_chat.redis_client import load_script

logger = logging.getLogger("my_chat")

MESSAGES_KEY = "my_chat:messages"
# The second stream: events without an id (pushes, broadcasts, presence changes, revocations).
EVENTS_KEY = "my_chat:events"
EVENTS_MAXLEN = 10_000
MESSAGE_ID_KEY = "my_chat:message_id"
APPEND_TOKEN_PREFIX = "my_chat:append:"

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


# Taking the next id and adding the entry in one step; see the script's header.
APPEND_SCRIPT = load_script("append")


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
    """Chat messages in the Redis stream ``my_chat:messages``, ids from ``my_chat:message_id``."""

    def __init__(self, redis: Redis, retention_count: int) -> None:
        self.redis = redis
        self.retention_count = retention_count
        self._append = redis.register_script(APPEND_SCRIPT)

    async def close(self) -> None:
        return None  # the broker closes the Redis client

    def _append_call(
        self, sender: str, text: str, to: str | None, timestamp: int
    ) -> tuple[list[str], list[str | int]]:
        """The KEYS and ARGV of append.lua for one message, with a fresh request token."""
        token = APPEND_TOKEN_PREFIX + secrets.token_hex(16)
        keys = [MESSAGE_ID_KEY, MESSAGES_KEY, token]
        args: list[str | int] = [
            max(self.retention_count, 0),
            REQUEST_TOKEN_TTL_SECONDS,
            sender,
            text,
            timestamp,
            to or "",
        ]
        return keys, args

    async def append(self, sender: str, text: str, to: str | None, timestamp: int) -> Message:
        keys, args = self._append_call(sender, text, to, timestamp)
        try:
            message_id = await self._append(keys=keys, args=args)
        except RedisError as error:
            raise RedisUnavailable("storing the message", error) from error
        return Message(id=int(message_id), sender=sender, to=to, text=text, timestamp=timestamp)

    async def append_pipelined(
        self, rows: Sequence[tuple[str, str, str | None, int]]
    ) -> list[Message | Exception]:
        """Group commit in Redis: ``append`` for each ``(sender, text, to, timestamp)`` row,
        sent as one pipeline (one round trip, and one fsync for all with ``appendfsync
        always``). Redis runs the scripts in the order sent, so the ids grow in row order.

        Each row has its own outcome, a message or the error of its script: a pipeline is
        not a transaction, and one failed script leaves the others stored. An error that
        stops the whole pipeline (Redis unreachable) is raised as ``RedisUnavailable``.
        """
        calls = [self._append_call(*row) for row in rows]
        try:
            replies = await self._evalsha_all(calls)
            if any(isinstance(reply, NoScriptError) for reply in replies):
                # Redis restarted or flushed its scripts: load it once and send again. The
                # request tokens make the second run of a script that did run harmless.
                await self.redis.script_load(APPEND_SCRIPT)
                replies = await self._evalsha_all(calls)
        except RedisError as error:
            raise RedisUnavailable("storing the messages", error) from error
        return [
            RedisUnavailable("storing the message", reply)
            if isinstance(reply, Exception)
            else Message(id=int(reply), sender=sender, to=to, text=text, timestamp=timestamp)
            for reply, (sender, text, to, timestamp) in zip(replies, rows, strict=True)
        ]

    async def _evalsha_all(self, calls: list[tuple[list, list]]) -> list:
        # EVALSHA by hand: a pipeline given the Script object would first ask SCRIPT EXISTS,
        # one more round trip for every group.
        sha = self._append.sha  # SHA-1 of the script, worked out locally
        async with self.redis.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                pipe.evalsha(sha, len(keys), *keys, *args)
            return await pipe.execute(raise_on_error=False)

    async def after(self, last_id: int, viewer: str, limit: int) -> list[Message]:
        return await self._scan(f"({stream_entry_id(last_id)}", "+", viewer, limit, reverse=False)

    async def before(self, before_id: int | None, viewer: str, limit: int) -> list[Message]:
        stop = f"({stream_entry_id(before_id)}" if before_id is not None else "+"
        return list(reversed(await self._scan(stop, "-", viewer, limit, reverse=True)))

    async def latest(self, viewer: str, limit: int) -> list[Message]:
        return await self.before(None, viewer, limit)

    async def _scan(
        self, start: str, end: str, viewer: str, limit: int, *, reverse: bool
    ) -> list[Message]:
        """The first ``limit`` messages ``viewer`` may see from ``start`` towards ``end``,
        read ``SCAN_PAGE`` entries at a time (newest first when ``reverse``)."""
        found: list[Message] = []
        while len(found) < limit:
            entries = await self._range(start, end, SCAN_PAGE, reverse=reverse)
            found += [m for m in entries if visible_to(m, viewer)]
            if len(entries) < SCAN_PAGE:
                break
            start = f"({stream_entry_id(entries[-1].id)}"
        return found[:limit]

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
