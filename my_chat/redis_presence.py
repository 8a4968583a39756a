"""Who is online, across every my_chat process that shares one Redis.

Each process keeps a hash ``my_chat:online:<process id>``: user -> connections on that
process, and its entry in the sorted set ``my_chat:processes`` with a deadline (Redis time)
that it pushes forward every ``ttl / 3`` seconds. A user is online if a process whose
deadline has not passed lists them. ``presence`` events come from Lua scripts that change
the hash and decide, in the same step, whether the user just came online or went offline
*anywhere*, so a user on two processes who closes one of them stays online, and two
processes never both announce the same change. The scripts add those events to the events
stream, and every process's broker reader turns them into presence frames. A process killed
with ``kill -9`` stops pushing its deadline; its users drop out of the list when the
deadline passes, and the next process that checks (each one does, every ``ttl / 3``
seconds) removes its hash and announces offline the users who are not online elsewhere. The
ttl is the ``presence_ttl`` setting (``--presence-ttl``, ``MY_CHAT_PRESENCE_TTL``; 15 s).

As in one process (:class:`~my_chat.presence.PresenceBatcher`), a user whose last stream here
closes stays listed, as ``grace``, for the grace period, so a reconnection to this process or
to another one announces nothing; and the users whose streams opened or closed are reported
together, once per presence window, in one script call.

The scripts read keys they were not given in ``KEYS`` (each process's hash), which is fine
for one Redis server but not for Redis Cluster.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from my_chat.client_manager import ClientManager
from my_chat.config import Settings
from my_chat.presence import PresenceBatcher
from my_chat.redis_client import load_script
from my_chat.redis_store import EVENTS_KEY, EVENTS_MAXLEN, RedisUnavailable

logger = logging.getLogger("my_chat")

PROCESSES_KEY = "my_chat:processes"
ONLINE_PREFIX = "my_chat:online:"

PRESENCE_SCRIPT = load_script("presence", common=True)
REAP_SCRIPT = load_script("reap", common=True)
ONLINE_SCRIPT = load_script("online", common=True)


class RedisPresence:
    """Presence for several processes: report this process's users, read everyone's."""

    def __init__(self, redis: Redis, manager: ClientManager, settings: Settings) -> None:
        self.redis = redis
        self.manager = manager
        self.ttl = settings.presence_ttl
        self.process_id = uuid.uuid4().hex
        # Reports go out one at a time, so Redis sees them in the order they happened.
        self._lock = asyncio.Lock()
        # Grace period and batching, as in LocalPresence: one report per window, and a user
        # in their grace period is reported as 'grace' (still online, no connection here).
        self.batcher = PresenceBatcher(
            settings.presence_grace, settings.presence_window, self._report_batch
        )
        self._reports: set[asyncio.Task] = set()
        self._out_of_date = False
        self._loop: asyncio.Task | None = None
        self._presence = redis.register_script(PRESENCE_SCRIPT)
        self._reap = redis.register_script(REAP_SCRIPT)
        self._online = redis.register_script(ONLINE_SCRIPT)
        # The online-list read that the streams asking now will share (see online_snapshot).
        self._next_read: asyncio.Future[list[str]] | None = None
        self._read_turn = asyncio.Lock()
        self._reads: set[asyncio.Task] = set()

    async def start(self) -> None:
        await self._report(mode="replace")
        self._loop = asyncio.create_task(self._keep_alive(), name="redis-presence")

    async def stop(self) -> None:
        self.batcher.close()
        tasks = [*self._reports, *self._reads, *([self._loop] if self._loop is not None else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            async with asyncio.timeout(2):
                await self._report(mode="leave")
        except (RedisError, OSError, TimeoutError):
            pass  # the others notice when our deadline passes

    async def user_online(self, user: str) -> None:
        self.batcher.came_online(user)

    async def user_offline(self, user: str) -> None:
        self.batcher.went_offline(user)

    async def online_snapshot(self, viewer: str) -> list[str]:
        """The list a new stream starts from; the viewer's own report may still be on its way.

        Streams that open together share one read: in a connect storm, thousands of streams
        each asking Redis would queue on the connection pool. A stream only joins a read that
        has not started yet, so the list it gets was read after it was registered, and the
        presence frames it receives from then on are changes to that list.
        """
        if self._next_read is None:
            self._next_read = asyncio.get_running_loop().create_future()
            task = asyncio.create_task(self._read_online(self._next_read), name="online-read")
            self._reads.add(task)
            task.add_done_callback(self._reads.discard)
        # Shielded: a stream that goes away must not cancel the read the others wait for.
        return sorted({*await asyncio.shield(self._next_read), viewer})

    async def _read_online(self, result: asyncio.Future[list[str]]) -> None:
        async with self._read_turn:  # one read at a time; whoever comes meanwhile, the next
            if self._next_read is result:
                self._next_read = None  # from here on, new streams wait for a later read
            try:
                result.set_result(await self.online_users())
            except asyncio.CancelledError:
                result.cancel()  # stopping: the streams waiting for it are told, not left
                raise
            except Exception as error:
                result.set_exception(error)
                result.exception()  # retrieved: every stream that waited may be gone

    async def online_users(self) -> list[str]:
        try:
            names = await self._online(keys=[PROCESSES_KEY], args=[ONLINE_PREFIX])
        except RedisError as error:
            raise RedisUnavailable("listing who is online", error) from error
        return [name.decode() for name in names]

    def _report_batch(self, users: list[str]) -> None:
        task = asyncio.create_task(self._report(users=users), name="presence-report")
        self._reports.add(task)
        task.add_done_callback(self._reports.discard)

    def _connections_to_report(self, user: str) -> str | int:
        count = len(self.manager.connections_of(user))
        return "grace" if count == 0 and self.batcher.leaving(user) else count

    async def _report(self, users: Iterable[str] = (), mode: str = "set") -> None:
        """Tell Redis how many connections these users (all users, unless mode is 'set') have
        here. A failure is logged, not raised: the next periodic report puts it right.

        After a failure, single-user reports are skipped until a periodic one gets through:
        while Redis is down, streams must open and close without waiting for it in turn.
        """
        if mode == "set" and self._out_of_date:
            return
        async with self._lock:
            if mode == "replace":
                users = {*self.manager.online_users(), *self.batcher.all_leaving()}
            counts: list[str | int] = []
            for user in users:
                counts += [user, self._connections_to_report(user)]
            try:
                await self._presence(
                    keys=[PROCESSES_KEY, EVENTS_KEY],
                    args=[
                        ONLINE_PREFIX,
                        self.process_id,
                        int(self.ttl * 1000),
                        EVENTS_MAXLEN,
                        mode,
                        *counts,
                    ],
                )
            except RedisError as error:
                if mode == "leave":
                    raise
                if not self._out_of_date:
                    logger.warning("could not share who is online (%s); retrying soon", error)
                self._out_of_date = True
            else:
                if mode == "replace" and self._out_of_date:
                    logger.info("who is online here is shared again")
                    self._out_of_date = False

    async def _keep_alive(self) -> None:
        """Push our deadline forward, report our users, and retire processes that died."""
        while True:
            await asyncio.sleep(self.ttl / 3)
            await self._report(mode="replace")
            try:
                retired = await self._reap(
                    keys=[PROCESSES_KEY, EVENTS_KEY], args=[ONLINE_PREFIX, EVENTS_MAXLEN]
                )
            except RedisError:
                continue
            if retired:
                logger.info("%d my_chat process(es) stopped reporting: retired", retired)
