"""A small in-process cache of store reads, so a page view costs no store round trip."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Hashable
from datetime import timedelta
from typing import Generic, TypeVar

from supportgate.bounded import BoundedDict
from supportgate.clock import Clock
from supportgate.errors import StoreUnavailable
from supportgate.store import STORE_ERRORS
from supportgate.store.hot_path import HotPath

__all__ = ["TtlCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """Values loaded from the store, kept for ``ttl`` by the injected clock.

    When a value is stale and the store cannot be reached, the stale value is used rather than
    failing: what a site's policy was a minute ago is a better answer than none. At most
    ``max_entries`` values are kept; past that, the oldest loaded goes.

    A key is loaded by one call at a time, however many views ask for it meanwhile: the view
    that starts the load waits for it, no longer than its own deadline; the others take the
    stale value while there is one, or wait for the same load. A load that failed on the store
    is remembered for ``failure_ttl``: until then the key is not loaded again, so a store that
    is away costs the views that follow nothing. With the page-view path's ``hot``
    (:class:`~supportgate.store.hot_path.HotPath`), nothing is loaded while it takes the store for
    down, and a view waiting for a load stops waiting as soon as it does.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        ttl: timedelta,
        max_entries: int = 10_000,
        failure_ttl: timedelta = timedelta(seconds=1),
        hot: HotPath | None = None,
    ) -> None:
        self._clock = clock
        self._hot = hot
        self._ttl = ttl.total_seconds()
        self._failure_ttl = failure_ttl.total_seconds()
        self._entries: BoundedDict[K, tuple[float, V]] = BoundedDict(max_entries)
        self._failed: BoundedDict[K, float] = BoundedDict(max_entries)
        self._loading: dict[K, asyncio.Future[V]] = {}

    async def get(self, key: K, load: Callable[[K], Awaitable[V]], *, deadline: float | None = None) -> V:
        """The value for ``key``, loaded with ``load`` when there is no fresh one.

        ``deadline`` (on the event loop's clock) bounds the wait for a load; the load itself
        goes on for the views that come after.

        Raises:
            StoreUnavailable: if there is no value, and the last load failed within ``failure_ttl``,
                the store is taken for down, or this load ran past ``deadline``.
            Exception: what ``load`` raised, when there is no value to fall back on.
        """
        now = self._clock().timestamp()
        entry = self._entries.get(key)
        # A clock set back makes an entry "from the future": treat it as stale, not fresh for longer.
        if entry is not None and _within(entry[0], now, self._ttl):
            return entry[1]
        failed_at = self._failed.get(key)
        if (failed_at is not None and _within(failed_at, now, self._failure_ttl)) or not self._store_available():
            if entry is not None:
                return entry[1]
            raise StoreUnavailable
        loading = self._loading.get(key)
        if loading is not None and entry is not None:
            return entry[1]  # another view is reloading it: this one need not wait
        if loading is None:
            loading = asyncio.ensure_future(load(key))
            self._loading[key] = loading
            loading.add_done_callback(functools.partial(self._loaded, key, now))
        try:
            if self._hot is not None:
                return await self._hot.wait_for(deadline, loading)
            async with asyncio.timeout_at(deadline):
                return await asyncio.shield(loading)
        except (TimeoutError, StoreUnavailable, *STORE_ERRORS) as exc:
            self._failed.put(key, now)
            if entry is not None:
                return entry[1]
            if isinstance(exc, TimeoutError):
                raise StoreUnavailable from exc
            raise

    def _store_available(self) -> bool:
        return self._hot is None or self._hot.available()

    def peek(self, key: K) -> V | None:
        """The value held for ``key``, fresh or stale, without loading it."""
        entry = self._entries.get(key)
        return None if entry is None else entry[1]

    def _loaded(self, key: K, started: float, loading: asyncio.Future[V]) -> None:
        self._loading.pop(key, None)
        if loading.cancelled():
            return
        error = loading.exception()
        if error is None:
            self._entries.put(key, (started, loading.result()))
            self._failed.pop(key)
        elif isinstance(error, STORE_ERRORS):
            self._failed.put(key, self._clock().timestamp())


def _within(since: float, now: float, seconds: float) -> bool:
    return since <= now < since + seconds
