"""The rate limits in Redis: one bucket per key for every process (``--redis``).

With the buckets in each process, N processes behind a load balancer let a client send N
times the limit, and a restart hands every client a full bucket. Here each check is one
call of ``redis_scripts/rate_limit.lua``, which refills, takes and stores the bucket in one
step on Redis's clock. Keys are ``my_chat:rate:<limit>:<key>``, and each expires once its
bucket is full again.
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.exceptions import RedisError

from my_chat.redis_client import load_script
from my_chat.redis_store import RedisUnavailable

RATE_KEY_PREFIX = "my_chat:rate:"

RATE_LIMIT_SCRIPT = load_script("rate_limit")


class RedisRateLimiter:
    """Each key may spend ``burst`` tokens at once; tokens come back at ``rate`` per second,
    counted in Redis for every process."""

    def __init__(self, redis: Redis, name: str, burst: int, rate: float) -> None:
        self.burst = burst
        self.rate = rate
        self._prefix = f"{RATE_KEY_PREFIX}{name}:"
        self._script = redis.register_script(RATE_LIMIT_SCRIPT)

    @property
    def enabled(self) -> bool:
        return self.burst > 0 and self.rate > 0

    async def retry_after(self, key: str) -> float:
        """Take a token for ``key``: 0 if allowed, else the seconds until one is free."""
        return await self._call(key, take=True)

    async def peek(self, key: str) -> float:
        """Seconds until ``key`` may act again, without spending a token."""
        return await self._call(key, take=False)

    async def _call(self, key: str, *, take: bool) -> float:
        if not self.enabled:
            return 0.0
        try:
            wait_ms = await self._script(
                keys=[self._prefix + key], args=[self.burst, repr(self.rate), int(take)]
            )
        except RedisError as error:
            raise RedisUnavailable("checking the rate limit", error) from error
        return int(wait_ms) / 1000
