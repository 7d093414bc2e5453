"""A small in-process cache of store reads, so a page view costs no store round trip."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from datetime import timedelta
from typing import Generic, TypeVar

from supportgate.bounded import BoundedDict
from supportgate.clock import Clock
from supportgate.store import STORE_ERRORS

__all__ = ["TtlCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """Values loaded from the store, kept for ``ttl`` by the injected clock.

    When a value is stale and the store cannot be reached, the stale value is used rather than
    failing: what a site's policy was a minute ago is a better answer than none. At most
    ``max_entries`` values are kept; past that, the oldest loaded goes.
    """

    def __init__(self, clock: Clock, *, ttl: timedelta, max_entries: int = 10_000) -> None:
        self._clock = clock
        self._ttl = ttl.total_seconds()
        self._entries: BoundedDict[K, tuple[float, V]] = BoundedDict(max_entries)

    async def get(self, key: K, load: Callable[[K], Awaitable[V]]) -> V:
        """The value for ``key``, loaded with ``load`` when there is no fresh one."""
        now = self._clock().timestamp()
        entry = self._entries.get(key)
        # A clock set back makes an entry "from the future": treat it as stale, not fresh for longer.
        if entry is not None and entry[0] <= now < entry[0] + self._ttl:
            return entry[1]
        try:
            value = await load(key)
        except STORE_ERRORS:
            if entry is None:
                raise
            return entry[1]
        self._entries.put(key, (now, value))
        return value
