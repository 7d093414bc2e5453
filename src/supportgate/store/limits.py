"""Fixed-window rate limits, counted in the store so every worker shares them."""

from __future__ import annotations

import math

import msgspec

from supportgate.clock import Clock
from supportgate.errors import TooManyRequests
from supportgate.store import names
from supportgate.store.client import Store

__all__ = ["RateLimit", "RateLimiter"]


class RateLimit(msgspec.Struct, frozen=True):
    """At most ``limit`` hits per ``window_seconds`` for one subject of one scope."""

    scope: str
    """What is limited, e.g. ``code-request-ip``."""
    limit: int
    """Hits allowed per window."""
    window_seconds: int
    """Length of a window."""
    what: str
    """What the 429 says was limited, e.g. "sign-in codes for this address"."""

    def describe(self) -> str:
        """The limit in words, as the API's documentation states it: "at most 5 … every hour"."""
        return f"at most {self.limit} {self.what} every {_duration(self.window_seconds)}"


class RateLimiter:
    """Counts hits and refuses those over a limit with 429 and ``Retry-After``."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def hit(self, limit: RateLimit, subject: str) -> None:
        """Count one hit of ``subject``; raise TooManyRequests once it is over the limit."""
        now = self._clock().timestamp()
        window = int(now // limit.window_seconds)
        key = names.rate(limit.scope, subject, window)
        async with self._store.multi(key) as pipe:
            pipe.incr(key)
            pipe.expire(key, limit.window_seconds + 60)
            count, _ = await pipe.execute()
        if count > limit.limit:
            retry_after = math.ceil((window + 1) * limit.window_seconds - now)
            raise TooManyRequests(
                f"Too many {limit.what}: at most {limit.limit} every {_duration(limit.window_seconds)}. "
                f"Try again in {_wait(retry_after)}.",
                retry_after=retry_after,
            )

    async def seen(self, limit: RateLimit, subject: str) -> bool:
        """Whether ``subject`` was counted against ``limit`` in this window or the one before."""
        window = int(self._clock().timestamp() // limit.window_seconds)
        keys = (names.rate(limit.scope, subject, window), names.rate(limit.scope, subject, window - 1))
        return bool(await self._store.redis.exists(*keys))  # one hash tag: the subject's


def _duration(seconds: int) -> str:
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return "hour" if hours == 1 else f"{hours} hours"
    if seconds % 60 == 0:
        minutes = seconds // 60
        return "minute" if minutes == 1 else f"{minutes} minutes"
    return f"{seconds} seconds"


def _wait(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} seconds"
    minutes = math.ceil(seconds / 60)
    return "a minute" if minutes == 1 else f"{minutes} minutes"
