"""Per-site, per-day counters: counted in the process, added to the store about once a second.

A page view must not pay a store round trip for its statistics, so :class:`StatsBuffer` adds
counts up in memory and a background task sends them with ``HINCRBY`` in one pipeline. Every
worker keeps its own buffer; the store sums them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Final, Literal, get_args

from redis.exceptions import RedisError

from supportgate.clock import Clock
from supportgate.errors import BadRequest
from supportgate.gate.schemas import Counters, Stats, StatsDay
from supportgate.metrics import Metrics
from supportgate.store import Store, names, stopping, text

__all__ = ["MAX_RANGE_DAYS", "RETENTION", "StatField", "StatsBuffer"]

StatField = Literal[
    "views",
    "blocked",
    "clear",
    "inconclusive",
    "walls",
    "nags",
    "supporter_unlocks",
    "metered_allows",
    "false_positive_reports",
    "rechecks",
    "allowlisted",
    "support_clicks",
    "signin_clicks",
    "nag_dismissals",
]
"""The name of one counter: a field of :class:`~supportgate.gate.schemas.Counters`, spelt again for the type checker."""
RETENTION: Final = timedelta(days=400)
"""How long a day's counters are kept in the store."""
MAX_RANGE_DAYS: Final = 400
"""The most days one stats read may span."""
DEFAULT_RANGE_DAYS: Final = 30
"""The days a stats read spans when it gives no start."""

_FIELDS: Final = Counters.__struct_fields__
if set(get_args(StatField)) != set(_FIELDS):  # the wire's Counters is the source; the Literal must follow it
    raise RuntimeError(f"StatField {get_args(StatField)} does not name the fields of Counters {_FIELDS}")
_log = logging.getLogger("supportgate.gate.stats")


class StatsBuffer:
    """Counts page views per site and UTC day in memory and flushes them to the store.

    A flush that fails keeps its counts for the next one, up to ``max_pending`` counters; past
    that, the oldest days' counts are dropped, with a warning. A flush cut off half-way may add
    part of its counts twice when it is retried.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        interval: float = 1.0,
        max_pending: int = 100_000,
        metrics: Metrics | None = None,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._clock = clock
        self._interval = interval
        self._max_pending = max_pending
        self._pending: dict[tuple[str, str, StatField], int] = {}
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    def count(self, site: str, *fields: StatField) -> None:
        """Add one to each of ``fields`` of ``site`` today; no store round trip."""
        day = self._clock().date().isoformat()
        pending = self._pending
        for field in fields:
            key = (site, day, field)
            pending[key] = pending.get(key, 0) + 1

    async def flush(self) -> None:
        """Add the counts so far to the store; on failure keep them for the next flush."""
        try:
            await self._flush()
        finally:
            if self._metrics is not None:
                self._metrics.stats_backlog(sum(self._pending.values()))

    async def _flush(self) -> None:
        async with self._lock:
            batch, self._pending = self._pending, {}
            if not batch:
                return
            ttl = int(RETENTION.total_seconds())
            try:
                # Not one transaction: sites have their own hash tags, so on a cluster their
                # hashes may live on different nodes.
                async with self._store.redis.pipeline(transaction=False) as pipe:
                    hashes: set[str] = set()
                    for (site, day, field), n in batch.items():
                        key = names.stats(site, day)
                        pipe.hincrby(key, field, n)
                        hashes.add(key)
                    for key in hashes:
                        pipe.expire(key, ttl)
                    await pipe.execute()
            except (RedisError, OSError) as exc:
                self._keep(batch)
                if not self._failing:
                    _log.warning("stats flush failed, keeping the counts for the next try: %s", exc)
                self._failing = True
                return
            if self._failing:
                _log.info("stats flush works again")
            self._failing = False

    async def start(self) -> None:
        """Flush about every ``interval`` seconds in the background, until :meth:`stop`."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="supportgate stats flush")

    async def stop(self) -> None:
        """Stop the background flushes and flush what is left."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    async def read(self, site: str, from_date: date | None = None, to_date: date | None = None) -> Stats:
        """The counters of ``site`` per day from ``from_date`` to ``to_date``, both included.

        ``to_date`` defaults to today (UTC) and ``from_date`` to 29 days before ``to_date``.
        Counts still in some process's memory (up to a second's) are not in it yet.

        Raises:
            BadRequest: if the range ends before it starts or spans more than 400 days.
        """
        dates = self._dates(from_date, to_date)
        days, totals = await self._sums([site], dates)
        return Stats(site=site, days=days, totals=totals)

    async def read_all(self, sites: Sequence[str], from_date: date | None = None, to_date: date | None = None) -> Stats:
        """The counters of ``sites`` summed, per day and in total, over the range :meth:`read` takes.

        Raises:
            BadRequest: if the range ends before it starts or spans more than 400 days.
        """
        dates = self._dates(from_date, to_date)
        days, totals = await self._sums(sites, dates)
        return Stats(site=None, days=days, totals=totals)

    def today(self) -> date:
        """Today, UTC: the last day a read spans by default."""
        return self._clock().date()

    def _dates(self, from_date: date | None, to_date: date | None) -> list[date]:
        to_date = to_date or self.today()
        from_date = from_date or to_date - timedelta(days=DEFAULT_RANGE_DAYS - 1)
        if from_date > to_date:
            raise BadRequest(f"from: {from_date} is after to: {to_date}")
        span = (to_date - from_date).days + 1
        if span > MAX_RANGE_DAYS:
            raise BadRequest(f"from, to: the range spans {span} days; at most {MAX_RANGE_DAYS} are kept")
        return [from_date + timedelta(days=n) for n in range(span)]

    async def _sums(self, sites: Sequence[str], dates: list[date]) -> tuple[list[StatsDay], Counters]:
        sums = [dict.fromkeys(_FIELDS, 0) for _ in dates]
        if sites:
            async with self._store.redis.pipeline(transaction=False) as pipe:
                for site in sites:
                    for day in dates:
                        pipe.hgetall(names.stats(site, day.isoformat()))
                replies = await pipe.execute()
            for n, reply in enumerate(replies):
                day_sums = sums[n % len(dates)]
                for field, count in _counts(reply).items():
                    day_sums[field] += count
        days = [StatsDay(date=day, **counts) for day, counts in zip(dates, sums, strict=True)]
        totals = Counters(**{field: sum(counts[field] for counts in sums) for field in _FIELDS})
        return days, totals

    async def _run(self) -> None:
        while not stopping():
            await asyncio.sleep(self._interval)
            try:
                await self.flush()
            except Exception:  # noqa: BLE001 - the loop must outlive any one failure, which it logs
                _log.exception("stats flush failed unexpectedly")

    def _keep(self, batch: dict[tuple[str, str, StatField], int]) -> None:
        pending = self._pending
        for key, n in batch.items():
            pending[key] = pending.get(key, 0) + n
        excess = len(pending) - self._max_pending
        if excess > 0:
            doomed = sorted(pending, key=lambda k: k[1])[:excess]
            dropped = sum(pending.pop(key) for key in doomed)
            _log.warning("stats buffer is full: dropped %d counts of the oldest days", dropped)


def _counts(reply: dict[bytes, bytes]) -> dict[str, int]:
    counts = {text(name): int(value) for name, value in reply.items()}
    return {name: n for name, n in counts.items() if name in _FIELDS}
