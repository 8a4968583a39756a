"""The Redis broker: several my_chat processes, one chat.

``python -m my_chat --redis redis://127.0.0.1:6379/0`` (or ``MY_CHAT_REDIS_URL``) swaps the
in-process :class:`~my_chat.broker.LocalBroker` for this one (and the stores and presence for
their Redis kinds: see :func:`my_chat.server.open_services`). Every process that names the
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
entry it delivered, and delivers what comes back, in stream order, through the same function
as ``LocalBroker`` (:func:`my_chat.broker.deliver`). A message therefore reaches each process
once, by one road: a process that also delivered "its own" messages directly would show them
twice, once directly and once from Redis.

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
Not the broker's business: :class:`~my_chat.redis_presence.RedisPresence` keeps the list in
Redis, and its scripts add ``presence`` events to the events stream, which this reader turns
into presence frames like any other event.

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

The push script reads keys it was not given in ``KEYS`` (each process's hash of who is
online), which is fine for one Redis server but not for Redis Cluster.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from my_chat.broker import GroupCommit, Pending, deliver
from my_chat.client_manager import ClientManager
from my_chat.events import Frame, Message, presence_frame
from my_chat.history import LatestWindow
from my_chat.parts import Parts
from my_chat.redis_client import READ_BLOCK_MS, RedisClients, load_script
from my_chat.redis_presence import ONLINE_PREFIX, PROCESSES_KEY
from my_chat.redis_store import (
    EVENTS_KEY,
    EVENTS_MAXLEN,
    MESSAGES_KEY,
    REQUEST_TOKEN_TTL_SECONDS,
    RedisMessageStore,
    RedisUnavailable,
    message_from_entry,
)

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from my_chat.sessions import Revocations

logger = logging.getLogger("my_chat")

PUSH_TOKEN_PREFIX = "my_chat:push:"

READ_COUNT = 1000
# How long POST /api/messages waits to see its message come back from Redis (see publish).
LOCAL_DELIVERY_WAIT = 2.0

_MESSAGES = MESSAGES_KEY.encode()

PUSH_SCRIPT = load_script("push", common=True)

# Revocations: kept in Redis for processes that start later, and announced on the events
# stream so that every running process applies them (and closes its streams) at once.
REVOKED_TOKENS_KEY = "my_chat:revoked_tokens"  # sorted set: token id -> expiry (ms)
GENERATIONS_KEY = "my_chat:token_generations"  # hash: username -> generation
REVOKE_TOKEN_SCRIPT = load_script("revoke_token")
REVOKE_USER_SCRIPT = load_script("revoke_user")


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


def entry_number(entry_id: bytes | str) -> int:
    """The message id in a stream id ``<id>-0``."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.split("-", 1)[0])


class RedisBroker:
    """The broker for several processes: publish through Redis, deliver what Redis sends."""

    def __init__(
        self,
        clients: RedisClients,
        store: RedisMessageStore,
        manager: ClientManager,
        parts: Parts,
    ) -> None:
        self.clients = clients  # the broker closes them, last (see close)
        self.redis = clients.commands
        self.listener = clients.listener
        self.store = store
        self.manager = manager
        self.parts = parts
        self.messages_accepted = 0
        # The reader's position in each stream, and the last message it delivered.
        self._message_position = "0-0"
        self._event_position = "0-0"
        self.delivered_message_id = 0
        self._waiting_publishers: list[tuple[int, asyncio.Future[None]]] = []
        # Group commit (see publish): one pipeline per group of appends.
        self.group = GroupCommit(self._append_group, name="redis-append")
        # The history block fresh streams share (set by the server; see history.LatestWindow).
        self.latest_window: LatestWindow | None = None
        self._reader: asyncio.Task | None = None
        # Set by my_chat.sessions: the reader applies other processes' revocations there.
        self.revocations: Revocations | None = None
        self._push = self.redis.register_script(PUSH_SCRIPT)

    async def start(self) -> None:
        """Start reading where the streams end now: older messages are history, not news."""
        self._message_position = await self._stream_end(MESSAGES_KEY)
        self._event_position = await self._stream_end(EVENTS_KEY)
        self.delivered_message_id = entry_number(self._message_position)
        self._reader = asyncio.create_task(self._read_loop(), name="redis-reader")

    async def stop(self) -> None:
        await self.group.drain()  # the appends already queued are sent and answered
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        for waiting in self._waiting_publishers:
            waiting[1].cancel()

    async def close(self) -> None:
        """Close the Redis connections, once presence has said goodbye through them too."""
        await self.clients.close()

    def replay_upto(self) -> int | None:
        """The last message the reader delivered here: anything newer is on its way to the
        streams, a new one included, so a replay must not send it too."""
        return self.delivered_message_id

    async def _stream_end(self, key: str) -> str:
        last = await self.redis.xrevrange(key, "+", "-", count=1)
        return last[0][0].decode() if last else "0-0"

    # --8<-- [start:publish]
    async def publish(self, sender: str, text: str, to: str | None) -> Message:
        # Group commit, as LocalBroker: one task sends the appends, and what arrives while
        # a pipeline is in flight goes together in the next one. Redis's scripts give the
        # ids, in the order sent; the reader delivers in stream order.
        # Shielded: once Redis has the message, finish even if the sender hangs up.
        message = await asyncio.shield(self.group.add(sender, text, to))
        # No self.deliver(message) here: the reader delivers it when it comes back from
        # Redis, like every other process's messages. Waiting for that keeps the rule of
        # the single process: when the sender hears 201, this process's streams have it.
        await self._delivered_here(message.id)
        return message

    # --8<-- [end:publish]

    async def _append_group(self, group: list[Pending]) -> None:
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
                deliver(message, self.manager, self.parts, self.latest_window)
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
