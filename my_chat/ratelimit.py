"""Token buckets per key, for 429 answers: message floods, sign-up floods, password guessing.

Two kinds meet in the :class:`Limiter` protocol: :class:`RateLimiter` keeps the buckets in
this process; with ``--redis``, :class:`my_chat.redis_ratelimit.RedisRateLimiter` keeps them
in Redis, so that every process behind a load balancer spends from the same bucket.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from my_chat.config import Settings
from my_chat.errors import TooManyRequests


class Limiter(Protocol):
    """Each key may spend ``burst`` tokens at once; tokens come back at ``rate`` per second."""

    burst: int
    rate: float

    @property
    def enabled(self) -> bool: ...

    async def retry_after(self, key: str) -> float:
        """Take a token for ``key``: 0 if allowed, else the seconds until one is free."""
        ...

    async def peek(self, key: str) -> float:
        """Seconds until ``key`` may act again, without spending a token."""
        ...


class RateLimiter:
    """The buckets of this process: each key may spend ``burst`` tokens at once; tokens come
    back at ``rate`` per second."""

    def __init__(self, burst: int, rate: float, *, max_keys: int = 100_000) -> None:
        self.burst = burst
        self.rate = rate
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}

    @property
    def enabled(self) -> bool:
        return self.burst > 0 and self.rate > 0

    async def retry_after(self, key: str) -> float:
        """Take a token for ``key``: 0 if allowed, else the seconds until one is free."""
        if not self.enabled:
            return 0.0
        now = time.monotonic()
        tokens, last = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate
        if len(self._buckets) >= self.max_keys and key not in self._buckets:
            self._buckets.clear()  # bounded memory beats perfect accounting
        self._buckets[key] = (tokens - 1.0, now)
        return 0.0

    async def peek(self, key: str) -> float:
        """Seconds until ``key`` may act again, without spending a token."""
        if not self.enabled or key not in self._buckets:
            return 0.0
        tokens, last = self._buckets[key]
        tokens = min(float(self.burst), tokens + (time.monotonic() - last) * self.rate)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate


@dataclass
class RateLimits:
    """The three rate limits, of one kind: buckets in this process, or in Redis."""

    messages: Limiter
    signups: Limiter
    login_failures: Limiter

    @classmethod
    def of(cls, settings: Settings, make: Callable[[str, int, float], Limiter]) -> RateLimits:
        """The limits ``settings`` asks for, each made with ``make(name, burst, rate)``."""
        signups, failures = settings.signup_per_minute, settings.login_failures_per_minute
        return cls(
            messages=make("messages", settings.message_burst, settings.message_rate),
            signups=make("signups", signups, signups / 60),
            login_failures=make("login_failures", failures, failures / 60),
        )


async def limit(limiter: Limiter, key: str, what: str) -> None:
    """Take a token for ``key``, or refuse the request with a 429 saying when to try again."""
    wait = await limiter.retry_after(key)
    if wait > 0:
        raise TooManyRequests(
            "rate_limited",
            f"too many {what}; try again in {wait:.1f} s",
            headers={"Retry-After": str(max(1, round(wait)))},
        )
