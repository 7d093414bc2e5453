"""How often one client address may ask decide without a site key: a token bucket per address, in memory.

A browser needs only an ``Origin`` to call decide, and anyone can send one. The limit keeps one
address from flooding the gate (and the meter) while costing a page view no store round trip:
each process keeps a bucket per address, at most :data:`ADDRESSES` of them
(:class:`~supportgate.bounded.BoundedDict`). An IPv6 client is limited by its /64, the block one
subscriber gets. A site backend that sends its site key is trusted and not limited here.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from typing import Final

from supportgate.bounded import BoundedDict
from supportgate.clock import Clock
from supportgate.errors import TooManyRequests
from supportgate.store.limits import RateLimit

__all__ = ["ADDRESSES", "AnonymousLimit", "stated"]

ADDRESSES: Final = 65_536
"""How many addresses' buckets a process keeps; past it, the one touched longest ago is dropped (a fresh start)."""


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class AnonymousLimit:
    """At most ``per_minute`` decides a minute per client address, with bursts up to a minute's worth."""

    def __init__(self, per_minute: int, clock: Clock, *, addresses: int = ADDRESSES) -> None:
        if per_minute < 1:
            raise ValueError("the limit allows at least one decide a minute")
        self._capacity = float(per_minute)
        self._rate = per_minute / 60.0
        self._clock = clock
        self._buckets: BoundedDict[str, _Bucket] = BoundedDict(addresses)

    def take(self, address: str) -> None:
        """Count one decide from ``address``.

        Raises:
            TooManyRequests: if the address has used its allowance, with the seconds until it may again.
        """
        subject = _subject(address)
        now = self._clock().timestamp()
        bucket = self._buckets.get(subject)
        if bucket is None:
            bucket = _Bucket(self._capacity, now)
        else:
            bucket.tokens = min(self._capacity, bucket.tokens + max(now - bucket.at, 0.0) * self._rate)
            bucket.at = now
        self._buckets.put(subject, bucket)
        if bucket.tokens < 1:
            wait = math.ceil((1 - bucket.tokens) / self._rate)
            raise TooManyRequests("Too many page views from this address; try again later.", retry_after=wait)
        bucket.tokens -= 1


def stated(per_minute: int) -> RateLimit:
    """The limit of ``per_minute`` decides, as the API documentation states it (counted here, not in the store)."""
    return RateLimit(
        scope="decide-anonymous",
        limit=per_minute,
        window_seconds=60,
        what="decides without a site key from one client address (an IPv6 address's /64)",
    )


def _subject(address: str) -> str:
    """What is limited: the address, or an IPv6 address's /64."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if parsed.version == 6:
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)
