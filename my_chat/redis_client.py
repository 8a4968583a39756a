"""The Redis connections of a process that shares the chat, and the Lua scripts they run.

:func:`connect` opens both connections once at start-up, for every Redis backend of
:func:`my_chat.server.open_services`: the store, the accounts, presence and the broker.
The broker owns them and closes them last, in its ``close``.

Each Lua script is a file in ``my_chat/redis_scripts/`` (shipped with the package); its
header names its ``KEYS`` and ``ARGV``. :func:`load_script` reads one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib.resources import files
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.exceptions import RedisError

from my_chat.errors import StartupError

logger = logging.getLogger("my_chat")

# How long the reader's XREAD waits for news before it asks again.
READ_BLOCK_MS = 5000
# Connections in a process's pool for commands, and how long a command waits for one.
POOL_CONNECTIONS = 100
POOL_WAIT_S = 5.0


def load_script(name: str, *, common: bool = False) -> str:
    """The Lua script ``redis_scripts/<name>.lua``; with ``common``, ``common.lua`` first."""
    scripts = files("my_chat") / "redis_scripts"
    text = (scripts / f"{name}.lua").read_text(encoding="utf-8")
    if common:
        text = (scripts / "common.lua").read_text(encoding="utf-8") + text
    return text


@dataclass
class RedisClients:
    commands: Redis  # from a pool, for every command
    listener: Redis  # one connection, for the broker's XREAD loop only

    async def close(self) -> None:
        await self.listener.aclose()
        await self.commands.aclose()


# --8<-- [start:connect]
async def connect(url: str) -> RedisClients:
    """Connect to Redis at ``url``; ``StartupError`` if it does not answer."""
    try:
        # A few quick retries: a broken pooled connection after a Redis restart is
        # replaced without the request failing. Every script is safe to run twice.
        # A bounded pool where a command waits for a free connection: redis-py's default
        # pool refuses the 101st command in flight (MaxConnectionsError), and a connect
        # storm has hundreds in flight. POOL_WAIT_S bounds the wait; then it is an error.
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=POOL_CONNECTIONS,
            timeout=POOL_WAIT_S,
            socket_connect_timeout=2,
            socket_timeout=5,
            retry=Retry(ExponentialWithJitterBackoff(base=0.02, cap=0.25), retries=3),
        )
        redis = Redis.from_pool(pool)  # the client owns the pool and closes it
        # The reader reconnects by itself (see RedisBroker._read_loop), so no retries here.
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
    return RedisClients(redis, listener)


# --8<-- [end:connect]


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
