"""The Redis broker: several my_chat processes, one chat.

``python -m my_chat --redis redis://127.0.0.1:6379/0`` (or ``MY_CHAT_REDIS_URL``) swaps the
in-process :class:`~my_chat.broker.LocalBroker` for this one. Every process that names the
same Redis serves the same chat: the same accounts, the same message ids and history, the
same online list. A load balancer can send each request to any of them.

How a message travels
---------------------
``POST /api/messages`` on process A runs one Lua script in Redis that takes the next id
(``INCR my_chat:message_id``) and appends the message to the stream ``my_chat:messages``
with that id as its stream id (``XADD ... <id>-0``). The answer ``201`` is sent only after
the script succeeded: with ``appendonly yes`` and ``appendfsync always`` the message is then
on Redis's disk. A does **not** hand the message to its own streams. Every process, A
included, runs one reader task that waits on the stream (``XREAD BLOCK``) from the last
entry it delivered, and delivers what comes back, in stream order, through the same path as
``LocalBroker.deliver``. A message therefore reaches each process once, by one road: a
process that also delivered "its own" messages directly would show them twice, once
directly and once from Redis.

Why a stream and not pub/sub
----------------------------
Redis pub/sub forgets: a subscriber whose connection drops misses everything published
until it resubscribes, and nothing tells it what it missed. A stream keeps its entries, so
the reader simply asks again from the last id it delivered, and Redis answers with exactly
what came after it: nothing lost, nothing twice. The same stream is the shared history
(:class:`~my_chat.redis_store.RedisMessageStore`), so ``Last-Event-ID`` works whichever
process a client reconnects to: the ids are Redis's, not one process's. One stream read
serves every client of the process, over one connection, however many streams are open.

Events without an id
--------------------
Pushed events, broadcasts and presence changes are not stored; they go through a second,
capped stream, ``my_chat:events`` (about 10,000 entries), read by the same ``XREAD``. After
a reconnection the reader gets the ones it missed as well, late rather than never.

Who is online
-------------
Each process keeps a hash ``my_chat:online:<process id>``: user -> connections on that
process, and its entry in the sorted set ``my_chat:processes`` with a deadline (Redis time)
that it pushes forward every ``ttl / 3`` seconds. A user is online if a process whose
deadline has not passed lists them. ``presence`` events come from Lua scripts that change
the hash and decide, in the same step, whether the user just came online or went offline
*anywhere*, so a user on two processes who closes one of them stays online, and two
processes never both announce the same change. A process killed with ``kill -9`` stops
pushing its deadline; its users drop out of the list when the deadline passes, and the next
process that checks (each one does, every ``ttl / 3`` seconds) removes its hash and sends
``presence`` offline for the users who are not online elsewhere. The ttl is
``MY_CHAT_PRESENCE_TTL`` seconds (default 15).

As in one process (:class:`~my_chat.broker.PresenceBatcher`), a user whose last stream here
closes stays listed, as ``grace``, for the grace period, so a reconnection to this process or
to another one announces nothing; and the users whose streams opened or closed are reported
together, once per presence window, in one script call.

What ``queued`` means here
--------------------------
The push API answers ``{"queued": N}``. With one process, N is the number of connections
the frame was handed to. With Redis, the process that takes the request cannot see other
processes' sockets, so N is counted in Redis, in the same script that adds the event to the
bus: the connections that the addressed users (everybody, for a broadcast) had **on all
live processes** at that moment, as the processes last reported them. A user's first and
last connection are reported within a presence window; how many more devices they have is
refreshed every ``ttl / 3`` seconds. Accepted, not delivered: as in the single process, a
client may still go away before it reads the event.

When Redis goes away
--------------------
``POST /api/messages`` and the push API answer ``503`` with a JSON error (after a few
quick retries) and nothing is acknowledged that is not in Redis. Open streams stay open;
the reader reconnects with backoff and continues from its last delivered id, so they get
everything that was acknowledged, in id order, when Redis is back. Without a reachable
Redis at start-up, ``python -m my_chat`` prints one line and exits with status 2.

The scripts read keys they were not given in ``KEYS`` (each process's hash), which is fine
for one Redis server but not for Redis Cluster.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import time
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.exceptions import RedisError

from my_chat.broker import MAX_GROUP, PresenceBatcher, Row, mark_retrieved
from my_chat.client_manager import ClientManager
from my_chat.config import Settings
from my_chat.errors import StartupError
from my_chat.events import Frame, Message, message_frame, presence_frame
from my_chat.history import LatestWindow
from my_chat.parts import Parts
from my_chat.redis_store import (
    MESSAGES_KEY,
    REQUEST_TOKEN_TTL_SECONDS,
    RedisAccountStore,
    RedisMessageStore,
    RedisUnavailable,
    message_from_entry,
)

if TYPE_CHECKING:
    from my_chat.sessions import Revocations

logger = logging.getLogger("my_chat")

EVENTS_KEY = "my_chat:events"
EVENTS_MAXLEN = 10_000
PROCESSES_KEY = "my_chat:processes"
ONLINE_PREFIX = "my_chat:online:"
PUSH_TOKEN_PREFIX = "my_chat:push:"

READ_BLOCK_MS = 5000
READ_COUNT = 1000
DEFAULT_PRESENCE_TTL = 15.0
# How long POST /api/messages waits to see its message come back from Redis (see publish).
LOCAL_DELIVERY_WAIT = 2.0

_MESSAGES = MESSAGES_KEY.encode()

# Shared by the scripts below: Redis's clock, the processes whose deadline is ahead, and
# the online list they make up.
_LUA_COMMON = """
local function now_ms()
    local clock = redis.call('TIME')
    return tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
end
local function live_processes(processes, now)
    return redis.call('ZRANGEBYSCORE', processes, now, '+inf')
end
local function json_list(items)
    if #items == 0 then return '[]' end
    return cjson.encode(items)
end
local function online_list(prefix, processes, now)
    local seen, names = {}, {}
    for _, process in ipairs(live_processes(processes, now)) do
        for _, user in ipairs(redis.call('HKEYS', prefix .. process)) do
            if not seen[user] then
                seen[user] = true
                names[#names + 1] = user
            end
        end
    end
    table.sort(names)
    return names, seen
end
local function announce(events, maxlen, user, online, names)
    redis.call('XADD', events, 'MAXLEN', '~', maxlen, '*', 'kind', 'presence',
        'user', user, 'online', online, 'users', json_list(names))
end
"""

# --8<-- [start:presence-script]
# KEYS: processes, events. ARGV: prefix, this process, ttl ms, events maxlen, mode, then
# user, connections, user, connections, ... Modes: 'set' reports those users only,
# 'replace' reports every user of this process, 'leave' removes the process. Connections
# 'grace' lists a user whose last stream here closed less than the grace period ago.
PRESENCE_SCRIPT = (
    _LUA_COMMON
    + """
local processes, events = KEYS[1], KEYS[2]
local prefix, me, ttl, maxlen, mode = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local now = now_ms()
local mine = prefix .. me
local others = {}
for _, process in ipairs(live_processes(processes, now)) do
    if process ~= me then others[#others + 1] = prefix .. process end
end
local function elsewhere(user)
    for _, key in ipairs(others) do
        if redis.call('HEXISTS', key, user) == 1 then return true end
    end
    return false
end
-- Were this process's users counted as online until now? Not if its deadline had passed.
local deadline = redis.call('ZSCORE', processes, me)
local counted = deadline ~= false and tonumber(deadline) >= now
local wanted = {}
for i = 6, #ARGV, 2 do wanted[ARGV[i]] = ARGV[i + 1] end
local known = redis.call('HGETALL', mine)
for i = 1, #known, 2 do
    local user = known[i]
    if wanted[user] == nil then
        if mode ~= 'set' then
            wanted[user] = '0'
        elseif not counted then
            wanted[user] = known[i + 1]  -- coming back to life: all of them count again
        end
    end
end
local changes = {}
for user, count in pairs(wanted) do
    -- 'grace': no connection here, but still online until the grace period is over.
    local grace = count == 'grace'
    if grace then count = '0' end
    local online_now = mode ~= 'leave' and (grace or tonumber(count) > 0)
    if not elsewhere(user) then
        local online_before = counted and redis.call('HEXISTS', mine, user) == 1
        if online_before ~= online_now then changes[#changes + 1] = {user, online_now} end
    end
    if online_now then
        redis.call('HSET', mine, user, count)
    else
        redis.call('HDEL', mine, user)
    end
end
if mode == 'leave' then
    redis.call('DEL', mine)
    redis.call('ZREM', processes, me)
else
    redis.call('ZADD', processes, now + ttl, me)
    redis.call('PEXPIRE', mine, ttl * 10)
end
if #changes > 0 then
    local names = online_list(prefix, processes, now)
    for _, change in ipairs(changes) do
        announce(events, maxlen, change[1], change[2] and '1' or '0', names)
    end
end
return #changes
"""
)
# --8<-- [end:presence-script]

# KEYS: processes, events. ARGV: prefix, events maxlen. Returns how many processes it removed.
REAP_SCRIPT = (
    _LUA_COMMON
    + """
local processes, events, prefix, maxlen = KEYS[1], KEYS[2], ARGV[1], ARGV[2]
local now = now_ms()
local dead = redis.call('ZRANGEBYSCORE', processes, '-inf', '(' .. now)
if #dead == 0 then return 0 end
local gone = {}
for _, process in ipairs(dead) do
    for _, user in ipairs(redis.call('HKEYS', prefix .. process)) do gone[user] = true end
    redis.call('DEL', prefix .. process)
    redis.call('ZREM', processes, process)
end
local names, online = online_list(prefix, processes, now)
for user in pairs(gone) do
    if not online[user] then announce(events, maxlen, user, '0', names) end
end
return #dead
"""
)

# KEYS: processes. ARGV: prefix. Returns the sorted online list.
ONLINE_SCRIPT = (
    _LUA_COMMON
    + """
local names = online_list(ARGV[1], KEYS[1], now_ms())
return names
"""
)

# KEYS: processes, events, request token. ARGV: prefix, events maxlen, token ttl, kind
# ('push' or 'broadcast'), frame, users as JSON. Returns "queued" (see the module docstring).
PUSH_SCRIPT = (
    _LUA_COMMON
    + """
local processes, events, token = KEYS[1], KEYS[2], KEYS[3]
local prefix, maxlen, token_ttl, kind, frame = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local done = redis.call('GET', token)
if done then return tonumber(done) end
local queued = 0
local users = cjson.decode(ARGV[6])
local unique, seen = {}, {}
for _, user in ipairs(users) do
    if not seen[user] then
        seen[user] = true
        unique[#unique + 1] = user
    end
end
for _, process in ipairs(live_processes(processes, now_ms())) do
    local key = prefix .. process
    if kind == 'broadcast' then
        for _, count in ipairs(redis.call('HVALS', key)) do queued = queued + tonumber(count) end
    else
        for _, user in ipairs(unique) do
            local count = redis.call('HGET', key, user)
            if count then queued = queued + tonumber(count) end
        end
    end
end
redis.call('XADD', events, 'MAXLEN', '~', maxlen, '*', 'kind', kind, 'frame', frame,
    'users', ARGV[6])
redis.call('SET', token, queued, 'EX', token_ttl)
return queued
"""
)


# --8<-- [start:revocation-scripts]
# Revocations: kept in Redis for processes that start later, and announced on the events
# stream so that every running process applies them (and closes its streams) at once.
REVOKED_TOKENS_KEY = "my_chat:revoked_tokens"  # sorted set: token id -> expiry (ms)
GENERATIONS_KEY = "my_chat:token_generations"  # hash: username -> generation

# KEYS: revoked tokens, events. ARGV: token id, expiry ms, user, events maxlen.
REVOKE_TOKEN_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'kind', 'revoke', 'user', ARGV[3],
    'token', ARGV[1], 'expires', ARGV[2])
return 1
"""

# KEYS: generations, events. ARGV: user, events maxlen. Returns the new generation.
REVOKE_USER_SCRIPT = """
local generation = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'kind', 'revoke_all',
    'user', ARGV[1], 'generation', generation)
return generation
"""
# --8<-- [end:revocation-scripts]


class RedisRevocations:
    """The revocation store of :mod:`my_chat.sessions`, in Redis (shared by every process)."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._revoke_token = redis.register_script(REVOKE_TOKEN_SCRIPT)
        self._revoke_user = redis.register_script(REVOKE_USER_SCRIPT)

    async def load(self, now: float) -> tuple[dict[str, float], dict[str, int]]:
        revoked = await self.redis.zrangebyscore(
            REVOKED_TOKENS_KEY, int(now * 1000), "+inf", withscores=True
        )
        generations = await self.redis.hgetall(GENERATIONS_KEY)
        return (
            {token.decode(): score / 1000 for token, score in revoked},
            {user.decode(): int(value) for user, value in generations.items()},
        )

    async def revoke_token(self, user: str, token_id: str, expires: float) -> None:
        try:
            await self._revoke_token(
                keys=[REVOKED_TOKENS_KEY, EVENTS_KEY],
                args=[token_id, int(expires * 1000), user, EVENTS_MAXLEN],
            )
        except RedisError as error:
            raise RedisUnavailable("signing out", error) from error

    async def revoke_user(self, user: str) -> int:
        try:
            generation = await self._revoke_user(
                keys=[GENERATIONS_KEY, EVENTS_KEY], args=[user, EVENTS_MAXLEN]
            )
        except RedisError as error:
            raise RedisUnavailable("signing out everywhere", error) from error
        return int(generation)

    async def close(self) -> None:
        return None  # the broker owns the Redis client


def presence_ttl_from_env() -> float:
    raw = os.environ.get("MY_CHAT_PRESENCE_TTL", "")
    if not raw:
        return DEFAULT_PRESENCE_TTL
    try:
        ttl = float(raw)
    except ValueError:
        ttl = 0.0
    if not ttl > 0:
        raise StartupError(f"MY_CHAT_PRESENCE_TTL must be a number of seconds above 0: {raw!r}")
    return ttl


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def entry_number(entry_id: bytes | str) -> int:
    """The message id in a stream id ``<id>-0``."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.split("-", 1)[0])


class RedisBroker:
    """The broker for several processes: publish through Redis, deliver what Redis sends."""

    def __init__(
        self,
        redis: Redis,
        listener: Redis,
        settings: Settings,
        manager: ClientManager,
        parts: Parts,
        presence_ttl: float,
    ) -> None:
        self.redis = redis  # commands, from a pool
        self.listener = listener  # one connection, for the XREAD loop only
        self.settings = settings
        self.manager = manager
        self.parts = parts
        self.presence_ttl = presence_ttl
        self.process_id = uuid.uuid4().hex
        self.store = RedisMessageStore(redis, settings.retention_count)
        self.accounts = RedisAccountStore(redis)
        self.messages_accepted = 0
        # The reader's position in each stream, and the last message it delivered.
        self._message_position = "0-0"
        self._event_position = "0-0"
        self.delivered_message_id = 0
        self.store.replay_limit = lambda: self.delivered_message_id
        self._waiting_publishers: list[tuple[int, asyncio.Future[None]]] = []
        # Group commit (see publish): appends waiting for the next pipeline, and its task.
        self._queued: list[tuple[Row, asyncio.Future[Message]]] = []
        self._appender: asyncio.Task[None] | None = None
        # The history block fresh streams share (set by the server; see history.LatestWindow).
        self.latest_window: LatestWindow | None = None
        # Presence reports go out one at a time, so Redis sees them in the order they happened.
        self._presence_lock = asyncio.Lock()
        # Grace period and batching, as in LocalBroker: one report per window, and a user in
        # their grace period is reported as 'grace' (still online, no connection here).
        self.presence = PresenceBatcher(
            settings.presence_grace, settings.presence_window, self._report_batch
        )
        self._reports: set[asyncio.Task] = set()
        self._presence_out_of_date = False
        self._tasks: list[asyncio.Task] = []
        # Set by my_chat.sessions: the reader applies other processes' revocations there.
        self.revocations: Revocations | None = None
        self._presence = redis.register_script(PRESENCE_SCRIPT)
        self._reap = redis.register_script(REAP_SCRIPT)
        self._online = redis.register_script(ONLINE_SCRIPT)
        self._push = redis.register_script(PUSH_SCRIPT)

    # --8<-- [start:connect]
    @classmethod
    async def connect(cls, settings: Settings, manager: ClientManager, parts: Parts) -> RedisBroker:
        """Connect to ``settings.redis_url``; ``StartupError`` if Redis does not answer."""
        url = settings.redis_url or ""
        presence_ttl = presence_ttl_from_env()
        try:
            # A few quick retries: a broken pooled connection after a Redis restart is
            # replaced without the request failing. Every script is safe to run twice.
            redis = Redis.from_url(
                url,
                socket_connect_timeout=2,
                socket_timeout=5,
                retry=Retry(ExponentialWithJitterBackoff(base=0.02, cap=0.25), retries=3),
            )
            # The reader reconnects by itself (see _read_loop), so no retries here.
            listener = Redis.from_url(
                url,
                single_connection_client=True,
                socket_connect_timeout=2,
                socket_timeout=READ_BLOCK_MS / 1000 + 5,
                retry=Retry(NoBackoff(), 0),
            )
        except ValueError as error:
            raise StartupError(f"--redis {redacted(url)!r} is not a Redis URL: {error}") from None
        try:
            await redis.ping()
        except (RedisError, OSError) as error:
            await redis.aclose()
            await listener.aclose()
            reason = str(error).rstrip(".")
            raise StartupError(
                f"cannot reach Redis at {redacted(url)}: {reason}. Start redis-server there, "
                "or run without --redis for the single-process mode."
            ) from None
        logger.info("sharing the chat through Redis at %s", redacted(url))
        return cls(redis, listener, settings, manager, parts, presence_ttl)

    # --8<-- [end:connect]

    async def start(self) -> None:
        """Start reading where the streams end now: older messages are history, not news."""
        self._message_position = await self._stream_end(MESSAGES_KEY)
        self._event_position = await self._stream_end(EVENTS_KEY)
        self.delivered_message_id = entry_number(self._message_position)
        await self._report_presence(mode="replace")
        self._tasks = [
            asyncio.create_task(self._read_loop(), name="redis-reader"),
            asyncio.create_task(self._presence_loop(), name="redis-presence"),
        ]

    async def stop(self) -> None:
        if self._appender is not None:  # the appends already queued are sent and answered
            await asyncio.shield(self._appender)
        self.presence.close()
        for task in [*self._tasks, *self._reports]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._reports, return_exceptions=True)
        try:
            async with asyncio.timeout(2):
                await self._report_presence(mode="leave")
        except (RedisError, OSError, TimeoutError):
            pass  # the others notice when our deadline passes
        for waiting in self._waiting_publishers:
            waiting[1].cancel()
        await self.listener.aclose()
        await self.redis.aclose()

    async def _stream_end(self, key: str) -> str:
        last = await self.redis.xrevrange(key, "+", "-", count=1)
        return last[0][0].decode() if last else "0-0"

    # --8<-- [start:publish]
    async def publish(self, sender: str, text: str, to: str | None) -> Message:
        # Group commit, as LocalBroker: one task sends the appends, and what arrives while
        # a pipeline is in flight goes together in the next one. Redis's scripts give the
        # ids, in the order sent; the reader delivers in stream order.
        future = asyncio.get_running_loop().create_future()
        future.add_done_callback(mark_retrieved)
        self._queued.append(((sender, text, to, int(time.time() * 1000)), future))
        if self._appender is None:
            self._appender = asyncio.create_task(self._append_queued(), name="redis-append")
        # Shielded: once Redis has the message, finish even if the sender hangs up.
        message = await asyncio.shield(future)
        # No self.deliver(message) here: the reader delivers it when it comes back from
        # Redis, like every other process's messages. Waiting for that keeps the rule of
        # the single process: when the sender hears 201, this process's streams have it.
        await self._delivered_here(message.id)
        return message

    # --8<-- [end:publish]

    async def _append_queued(self) -> None:
        try:
            while self._queued:
                group = self._queued[:MAX_GROUP]
                del self._queued[:MAX_GROUP]
                await self._append_group(group)
        finally:
            self._appender = None
            for _, future in self._queued:  # only if the appender itself was cancelled
                future.cancel()
            self._queued.clear()

    async def _append_group(self, group: list[tuple[Row, asyncio.Future[Message]]]) -> None:
        outcomes: list[Message | Exception]
        if len(group) == 1:
            row = group[0][0]
            try:
                outcomes = [await self.store.append(*row)]
            except Exception as error:
                outcomes = [error]
        else:
            try:
                outcomes = await self.store.append_pipelined([row for row, _ in group])
            except Exception:
                # The pipeline as a whole failed (a text Redis's client cannot encode, or
                # Redis gone): one at a time, so each sender hears its own outcome.
                for item in group:
                    await self._append_group([item])
                return
        for (_, future), outcome in zip(group, outcomes, strict=True):
            if isinstance(outcome, Exception):
                if not future.done():
                    future.set_exception(outcome)
                continue
            self.messages_accepted += 1
            if not future.done():
                future.set_result(outcome)

    async def _delivered_here(self, message_id: int) -> None:
        if self.delivered_message_id >= message_id:
            return
        waiting = (message_id, asyncio.get_running_loop().create_future())
        self._waiting_publishers.append(waiting)
        try:
            async with asyncio.timeout(LOCAL_DELIVERY_WAIT):
                await waiting[1]
        except TimeoutError:
            pass  # stored in Redis all the same; the reader will catch up
        finally:
            self._waiting_publishers.remove(waiting)

    def deliver(self, message: Message) -> int:
        """Hand a message that came from Redis to this process's streams (as LocalBroker)."""
        if self.latest_window is not None:
            self.latest_window.delivered(message)
        frame = message_frame(message)
        audience = self.parts.private.audience(message) if message.to is not None else None
        if audience is None:
            return self.manager.broadcast(frame)
        return self.manager.send_to_users(audience, frame)

    # --8<-- [start:reader]
    async def _read_loop(self) -> None:
        """The one reader of this process: deliver every entry of both streams, in order."""
        lost_at: float | None = None
        backoff = 0.05
        while True:
            try:
                if lost_at is not None:
                    await self._check_not_rewound()
                reply = await self.listener.xread(
                    {MESSAGES_KEY: self._message_position, EVENTS_KEY: self._event_position},
                    count=READ_COUNT,
                    block=READ_BLOCK_MS,
                )
            except (RedisError, OSError) as error:
                if lost_at is None:
                    lost_at = time.monotonic()
                    logger.warning("lost the connection to Redis (%s); reconnecting", error)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
                continue
            if lost_at is not None:
                logger.info(
                    "reconnected to Redis after %.1f s; continuing after message %d",
                    time.monotonic() - lost_at,
                    self.delivered_message_id,
                )
                lost_at, backoff = None, 0.05
                await self._reload_revocations()
            for stream, entries in reply or []:
                if stream == _MESSAGES:
                    self._deliver_messages(entries)
                else:
                    self._deliver_events(entries)

    def _deliver_messages(self, entries) -> None:
        for entry_id, fields in entries:
            message = message_from_entry(entry_id, fields)
            try:
                self.deliver(message)
            except Exception:  # one bad entry (or a learner's audience()) must not stop the rest
                logger.exception("could not deliver message %d", message.id)
            self._message_position = entry_id.decode()
            self.delivered_message_id = message.id
        for message_id, future in self._waiting_publishers:
            if message_id <= self.delivered_message_id and not future.done():
                future.set_result(None)

    # --8<-- [end:reader]

    def _deliver_events(self, entries) -> None:
        # Presence changes that come in one read go out in one write per stream.
        presence: list[tuple[str, bool]] = []
        for entry_id, fields in entries:
            self._event_position = entry_id.decode()
            try:
                kind = fields[b"kind"]
                if kind == b"presence":
                    presence.append((fields[b"user"].decode(), fields[b"online"] == b"1"))
                    continue
                if presence:
                    self.manager.broadcast(presence_frame(presence))
                    presence = []
                if kind == b"broadcast":
                    self.manager.broadcast(Frame(fields[b"frame"]))
                elif kind == b"push":
                    users = json.loads(fields[b"users"])
                    self.manager.send_to_users(users, Frame(fields[b"frame"]))
                elif kind == b"revoke" and self.revocations is not None:
                    self.revocations.token_revoked(
                        fields[b"user"].decode(),
                        fields[b"token"].decode(),
                        int(fields[b"expires"]) / 1000,
                    )
                elif kind == b"revoke_all" and self.revocations is not None:
                    self.revocations.generation_reached(
                        fields[b"user"].decode(), int(fields[b"generation"])
                    )
            except Exception:
                logger.exception("could not deliver event %s", entry_id)
        if presence:
            self.manager.broadcast(presence_frame(presence))

    async def _reload_revocations(self) -> None:
        """After an outage, in case the capped events stream dropped revocations meanwhile."""
        if self.revocations is None:
            return
        try:
            self.revocations.load(*await RedisRevocations(self.redis).load(time.time()))
        except RedisError as error:
            logger.warning("could not reload the revoked sessions (%s)", error)

    async def _check_not_rewound(self) -> None:
        """After an outage: if Redis came back with fewer messages, it lost data."""
        end = await self._stream_end(MESSAGES_KEY)
        if entry_number(end) < self.delivered_message_id:
            logger.error(
                "Redis came back without messages up to %d (its stream ends at %s): it lost "
                "data. Run it with appendonly yes. Continuing from its end.",
                self.delivered_message_id,
                end,
            )
            self._message_position = end
            self.delivered_message_id = entry_number(end)
        events_end = await self._stream_end(EVENTS_KEY)
        if entry_number(events_end) < entry_number(self._event_position):
            self._event_position = events_end

    async def push(self, users: Iterable[str], frame: Frame) -> int:
        return await self._push_event("push", list(users), frame.payload)

    async def broadcast(self, frame: Frame) -> int:
        return await self._push_event("broadcast", [], frame.payload)

    async def _push_event(self, kind: str, users: list[str], frame: bytes) -> int:
        token = PUSH_TOKEN_PREFIX + secrets.token_hex(16)
        try:
            queued = await self._push(
                keys=[PROCESSES_KEY, EVENTS_KEY, token],
                args=[
                    ONLINE_PREFIX,
                    EVENTS_MAXLEN,
                    REQUEST_TOKEN_TTL_SECONDS,
                    kind,
                    frame,
                    json.dumps(users),
                ],
            )
        except RedisError as error:
            raise RedisUnavailable(f"the {kind}", error) from error
        return int(queued)

    async def user_online(self, user: str) -> None:
        self.presence.came_online(user)

    async def user_offline(self, user: str) -> None:
        self.presence.went_offline(user)

    def _report_batch(self, users: list[str]) -> None:
        task = asyncio.create_task(self._report_presence(users=users), name="presence-report")
        self._reports.add(task)
        task.add_done_callback(self._reports.discard)

    def _connections_to_report(self, user: str) -> str | int:
        count = len(self.manager.connections_of(user))
        return "grace" if count == 0 and self.presence.leaving(user) else count

    async def _report_presence(self, users: Iterable[str] = (), mode: str = "set") -> None:
        """Tell Redis how many connections these users (all users, unless mode is 'set') have
        here. A failure is logged, not raised: the next periodic report puts it right.

        After a failure, single-user reports are skipped until a periodic one gets through:
        while Redis is down, streams must open and close without waiting for it in turn.
        """
        if mode == "set" and self._presence_out_of_date:
            return
        async with self._presence_lock:
            if mode == "replace":
                users = {*self.manager.online_users(), *self.presence.all_leaving()}
            counts: list[str | int] = []
            for user in users:
                counts += [user, self._connections_to_report(user)]
            try:
                await self._presence(
                    keys=[PROCESSES_KEY, EVENTS_KEY],
                    args=[
                        ONLINE_PREFIX,
                        self.process_id,
                        int(self.presence_ttl * 1000),
                        EVENTS_MAXLEN,
                        mode,
                        *counts,
                    ],
                )
            except RedisError as error:
                if mode == "leave":
                    raise
                if not self._presence_out_of_date:
                    logger.warning("could not share who is online (%s); retrying soon", error)
                self._presence_out_of_date = True
            else:
                if mode == "replace" and self._presence_out_of_date:
                    logger.info("who is online here is shared again")
                    self._presence_out_of_date = False

    async def _presence_loop(self) -> None:
        """Push our deadline forward, report our users, and retire processes that died."""
        while True:
            await asyncio.sleep(self.presence_ttl / 3)
            await self._report_presence(mode="replace")
            try:
                retired = await self._reap(
                    keys=[PROCESSES_KEY, EVENTS_KEY], args=[ONLINE_PREFIX, EVENTS_MAXLEN]
                )
            except RedisError:
                continue
            if retired:
                logger.info("%d my_chat process(es) stopped reporting: retired", retired)

    async def online_snapshot(self, viewer: str) -> list[str]:
        """The list a new stream starts from; the viewer's own report may still be on its way."""
        return sorted({*await self.online_users(), viewer})

    async def online_users(self) -> list[str]:
        try:
            names = await self._online(keys=[PROCESSES_KEY], args=[ONLINE_PREFIX])
        except RedisError as error:
            raise RedisUnavailable("listing who is online", error) from error
        return [name.decode() for name in names]
