"""The store as the per-page-view path uses it: one deadline per view, no retries, no waiting on a failed store.

A page view must never wait for the store longer than its budget (``SUPPORTGATE_DECIDE_DEADLINE_MS``):
a site's page that asks the gate waits for the answer. Every store call a view makes runs
against the view's one deadline, and once a call has failed or run out of time the store is
taken for down for a moment (``cooldown``), so the next thousand views answer at once instead
of each waiting for the deadline.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from supportgate.errors import StoreUnavailable
from supportgate.store.client import STORE_ERRORS

__all__ = ["HotPath"]

T = TypeVar("T")
_log = logging.getLogger("supportgate.store")


class HotPath:
    """Runs the per-page-view path's store calls under a deadline, and skips them while the store is down."""

    def __init__(self, *, budget: float, cooldown: float = 1.0) -> None:
        if budget <= 0 or cooldown < 0:
            raise ValueError("the budget must be positive and the cooldown not negative")
        self._budget = budget
        self._cooldown = cooldown
        self._down_until = 0.0
        self._probing = False

    @property
    def budget(self) -> float:
        """Seconds one page view may spend waiting on the store, all its calls together."""
        return self._budget

    def deadline(self) -> float:
        """The deadline of a page view starting now, on the event loop's clock."""
        return asyncio.get_running_loop().time() + self._budget

    def available(self) -> bool:
        """Whether the store is worth asking: no call failed within the cooldown, and none is probing it."""
        return not self._probing and asyncio.get_running_loop().time() >= self._down_until

    def failed(self) -> None:
        """Take the store for down until the cooldown has passed."""
        if self._down_until == 0:
            _log.warning("store unavailable on the page-view path; answering without it for %.1f s", self._cooldown)
        self._down_until = asyncio.get_running_loop().time() + self._cooldown

    async def within(self, deadline: float | None, call: Callable[[], Awaitable[T]]) -> T:
        """The result of ``call()``, bounded by ``deadline`` (None: none), whether or not the store is taken for down.

        For work that reads the store only now and then (a key set reload) and must run even
        while the store is away; a failure here does not take the store for down.

        Raises:
            StoreUnavailable: when the call fails on the store or runs past the deadline.
        """
        try:
            async with asyncio.timeout_at(deadline):
                return await call()
        except (TimeoutError, *STORE_ERRORS) as exc:
            raise StoreUnavailable from exc

    async def run(self, deadline: float | None, call: Callable[[], Awaitable[T]]) -> T:
        """The result of ``call()``, if the store answers before ``deadline`` (None: a fresh budget).

        Raises:
            StoreUnavailable: at once while the store is taken for down, or when the call fails
                on the store or runs past the deadline (the store is then taken for down).
        """
        if not self.available():
            raise StoreUnavailable
        # After a failure, the first call past the cooldown probes the store alone.
        probe = self._down_until > 0
        self._probing = probe
        try:
            async with asyncio.timeout_at(self.deadline() if deadline is None else deadline):
                result = await call()
        except (TimeoutError, *STORE_ERRORS) as exc:
            self.failed()
            raise StoreUnavailable from exc
        finally:
            if probe:
                self._probing = False
        if probe:
            self._down_until = 0.0
            _log.info("store available again on the page-view path")
        return result
