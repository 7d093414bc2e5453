"""The store as the per-page-view path uses it: one deadline per view, no retries, no waiting on a failed store.

A page view must never wait for the store longer than its budget (``SUPPORTGATE_DECIDE_DEADLINE_MS``):
a site's page that asks the gate waits for the answer. Every store call a view makes runs
against the view's one deadline. Once the store is taken for down (a call failed, ran out of
time, or the store went silent), it stays down for at least ``cooldown``:

- every call still waiting on it stops waiting at once, so the views in flight when the store
  hung do not each sit out their own deadline;
- the views that follow answer at once, without asking it;
- no view probes it: one background probe (``probe``, a PING) waits on the store alone, and the
  page-view path asks the store again once the probe has been answered and the cooldown is over.

A store that hangs is noticed before any deadline runs out: when a call has waited ``silence``
and the store has answered no call on this path since that call was made, the store is taken
for down. A live store answers something within that time while calls are waiting on it; a
frozen one answers nothing.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from supportgate.errors import StoreUnavailable
from supportgate.metrics import Metrics
from supportgate.store.client import STORE_ERRORS

__all__ = ["HotPath"]

T = TypeVar("T")
_log = logging.getLogger("supportgate.store")


class HotPath:
    """Runs the per-page-view path's store calls under a deadline, and skips them while the store is down.

    Args:
        budget: Seconds one page view may wait on the store, all its calls together.
        probe: A call that asks the store whether it answers (``Store.ping``); made only while the
            store is taken for down, by one background task.
        cooldown: The least time the store is taken for down after a failure; also the longest
            a probe waits and the pace of probes that fail at once.
        silence: How long a call may wait while the store answers nothing on this path before
            the store is taken for down; by default half the budget.
        metrics: Where the calls' times and failures are counted, if anywhere.
    """

    def __init__(
        self,
        *,
        budget: float,
        probe: Callable[[], Awaitable[object]],
        cooldown: float = 1.0,
        silence: float | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        silence = budget / 2 if silence is None else silence
        if budget <= 0 or cooldown <= 0 or not 0 < silence <= budget:
            raise ValueError("the budget and the cooldown must be positive, the silence positive and within the budget")
        self._budget = budget
        self._probe = probe
        self._cooldown = cooldown
        self._silence = silence
        self._metrics = metrics
        self._down = False
        self._down_since = 0.0
        self._answered_at = float("-inf")
        self._waiting: dict[asyncio.Future[None], float] = {}
        self._abandoned: set[asyncio.Future[Any]] = set()
        self._loads_waited: set[asyncio.Future[None]] = set()
        self._watchdog: asyncio.TimerHandle | None = None
        self._prober: asyncio.Task[None] | None = None

    @property
    def budget(self) -> float:
        """Seconds one page view may spend waiting on the store, all its calls together."""
        return self._budget

    def deadline(self) -> float:
        """The deadline of a page view starting now, on the event loop's clock."""
        return asyncio.get_running_loop().time() + self._budget

    def available(self) -> bool:
        """Whether the store is worth asking: it is not taken for down."""
        return not self._down

    def failed(self) -> None:
        """Take the store for down: every call waiting on it stops, and a probe watches for its return."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        if not self._down:
            _log.warning("store unavailable on the page-view path; answering without it for %.1f s+", self._cooldown)
            self._down = True
            self._down_since = now
            self._prober = loop.create_task(self._probe_until_answered(), name="supportgate store probe")
        for given_up in [*self._waiting, *self._loads_waited]:
            _settle(given_up, None)

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
            self._count_error(exc if isinstance(exc, STORE_ERRORS) else "deadline")
            raise StoreUnavailable from exc

    async def run(self, deadline: float | None, call: Callable[[], Awaitable[T]]) -> T:
        """The result of ``call()``, if the store answers before ``deadline`` (None: a fresh budget).

        Raises:
            StoreUnavailable: at once while the store is taken for down; when the call fails on the
                store, runs past the deadline or the store goes silent (the store is then taken
                for down); or when another call took the store for down while this one waited.
        """
        if self._down:
            raise StoreUnavailable
        loop = asyncio.get_running_loop()
        started = loop.time()
        # The call runs as a task of its own, and the view waits for it, for the deadline, or for
        # the store to be taken for down, whichever comes first. The view does not wait for the
        # call to wind up: the store client may take its time over a cancelled connection.
        work = asyncio.ensure_future(call())
        given_up = loop.create_future()
        work.add_done_callback(functools.partial(_settle, given_up))
        expiry = loop.call_at(started + self._budget if deadline is None else deadline, _settle, given_up, None)
        self._waiting[given_up] = started
        if self._watchdog is None:
            self._watchdog = loop.call_at(started + self._silence, self._watch, started + self._silence)
        try:
            await given_up
        finally:
            del self._waiting[given_up]
            expiry.cancel()
            if not work.done():
                work.cancel()
                self._abandoned.add(work)
                work.add_done_callback(self._forget)
        if not work.done() or work.cancelled():
            if not self._down:  # its own deadline ran out, rather than another call taking the store for down
                self._count_error("deadline")
            self.failed()
            raise StoreUnavailable
        error = work.exception()
        if error is None:
            self._answered_at = answered = loop.time()
            if self._metrics is not None:
                self._metrics.store_time.observe(answered - started)
            return work.result()
        if isinstance(error, STORE_ERRORS):
            self._count_error(error)
            self.failed()
            raise StoreUnavailable from error
        raise error

    async def wait_for(self, deadline: float | None, load: asyncio.Future[T]) -> T:
        """The result of a shared ``load`` (a cache's), until ``deadline`` or until the store is taken for down.

        The load goes on when the wait ends (others may wait for it); it does not count as a call
        of this path, so neither its failure nor its slowness takes the store for down.

        Raises:
            StoreUnavailable: at once while the store is taken for down, or when the wait ends
                before the load does.
            Exception: what the load raised.
        """
        if self._down:
            raise StoreUnavailable
        loop = asyncio.get_running_loop()
        given_up = loop.create_future()
        settle = functools.partial(_settle, given_up)
        load.add_done_callback(settle)
        expiry = loop.call_at(deadline, _settle, given_up, None) if deadline is not None else None
        self._loads_waited.add(given_up)
        try:
            await given_up
        finally:
            self._loads_waited.discard(given_up)
            load.remove_done_callback(settle)
            if expiry is not None:
                expiry.cancel()
        if not load.done():
            raise StoreUnavailable
        return load.result()

    async def stop(self) -> None:
        """Stop watching and probing (the app is stopping)."""
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self._prober is not None:
            self._prober.cancel()
            await asyncio.gather(self._prober, return_exceptions=True)
            self._prober = None
        for work in list(self._abandoned):
            work.cancel()
        await asyncio.gather(*self._abandoned, return_exceptions=True)

    def _count_error(self, error: BaseException | str) -> None:
        if self._metrics is not None:
            self._metrics.store_error("page_view", error)

    def _forget(self, work: asyncio.Future[Any]) -> None:
        """Drop a call no view waits for any more, once it has ended (its outcome read, so never logged)."""
        self._abandoned.discard(work)
        if not work.cancelled():
            work.exception()

    def _watch(self, due: float) -> None:
        """Take the store for down if it has answered nothing for ``silence`` while calls wait on it."""
        self._watchdog = None
        if self._down or not self._waiting:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        if now - due > self._silence / 2:
            # This process was busy itself, so what the store sent may be unread: read it first.
            again = now + self._silence / 4
        else:
            quiet_since = max(self._answered_at, min(self._waiting.values()))
            if now - quiet_since >= self._silence:
                _log.warning("the store answered nothing for %.0f ms on the page-view path", (now - quiet_since) * 1000)
                self._count_error("silence")
                self.failed()
                return
            again = quiet_since + self._silence
        self._watchdog = loop.call_at(again, self._watch, again)

    async def _probe_until_answered(self) -> None:
        """Probe the store, one probe at a time, until it answers once the cooldown is over; then ask it again."""
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                async with asyncio.timeout(self._cooldown):
                    await self._probe()
            except Exception:  # noqa: BLE001 - any failure is the store still away; the probe goes on
                await asyncio.sleep(max(started + self._cooldown - loop.time(), 0))
                continue
            early = self._down_since + self._cooldown - loop.time()
            if early <= 0:
                break
            await asyncio.sleep(early)  # an answer from before the cooldown's end is too old to go by
        self._down = False
        self._answered_at = loop.time()
        self._prober = None
        _log.info("store available again on the page-view path")


def _settle(given_up: asyncio.Future[None], _: object) -> None:
    """Stop a view's wait for the store (its call ended, its deadline came, or the store was taken for down)."""
    if not given_up.done():
        given_up.set_result(None)
