"""The service's Prometheus metrics: one :class:`Metrics` per app, shared by every process of ``serve``.

Every label value comes from a closed set the code defines (a decision's reason, a problem's
slug, a store error's kind) or from a site that exists (a decision is counted once the site was
found), so the number of series stays bounded; nothing about a reader is ever a label.

With several Granian workers each process counts for itself into files in one directory
(prometheus_client's multiprocess mode) and a scrape of any worker sums them:
:func:`use_multiprocess_dir` prepares the directory before the workers start. Without it (tests,
one process) each app counts into a registry of its own.
"""

from __future__ import annotations

import asyncio
import logging
import os
from bisect import bisect_left
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Final, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess, values
from redis.exceptions import BusyLoadingError, OutOfMemoryError, ReadOnlyError
from redis.exceptions import ConnectionError as StoreConnectionError
from redis.exceptions import TimeoutError as StoreTimeoutError

from supportgate.errors import Problem

__all__ = [
    "CONTENT_TYPE",
    "MULTIPROCESS_ENV",
    "PAGE_VIEW_BUCKETS",
    "Metrics",
    "StoreOperation",
    "Timings",
    "store_error_kind",
    "use_multiprocess_dir",
]

_log = logging.getLogger("supportgate.metrics")

MULTIPROCESS_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
"""The variable prometheus_client reads its multiprocess directory from."""
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
"""The media type of the text exposition format ``GET /metrics`` answers in."""

PAGE_VIEW_BUCKETS: Final = (
    0.0005,
    0.001,
    0.0015,
    0.002,
    0.003,
    0.004,
    0.005,
    0.0075,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)
"""Seconds: fine-grained under 10 ms, where a page view's answer should be."""

StoreOperation = Literal["page_view", "write"]
"""Where a store error was met: ``page_view`` (decide's calls) or ``write`` (a transaction or durable write)."""


def store_error_kind(error: BaseException) -> str:
    """One word for a store error: ``timeout``, ``read_only``, ``out_of_memory``, ``loading``, ``connection``….

    Loading is checked before connection: the client's loading error is a kind of its connection error.
    """
    if isinstance(error, StoreTimeoutError | TimeoutError):
        return "timeout"
    if isinstance(error, ReadOnlyError):
        return "read_only"
    if isinstance(error, OutOfMemoryError):
        return "out_of_memory"
    if isinstance(error, BusyLoadingError):
        return "loading"
    if isinstance(error, StoreConnectionError | OSError):
        return "connection"
    return "other"


def use_multiprocess_dir(directory: Path) -> Path:
    """Make ``directory`` the metrics directory of the processes started from now on, emptied of old counts.

    Called once by ``serve`` and ``demo`` before the Granian workers start; the workers inherit
    the environment and, being forked, this process's choice of value class.
    """
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink(missing_ok=True)
    os.environ[MULTIPROCESS_ENV] = str(directory)
    # prometheus_client picks its value class when first imported, which the CLI did before the
    # directory was known: pick again, so the metrics the workers make count into files.
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated
    return directory


def _multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROCESS_ENV) or None


class Timings:
    """A histogram the page-view path observes into plain Python numbers; :meth:`flush` adds them to it.

    prometheus_client's own ``observe`` takes a lock per value and, with several processes, writes
    a memory-mapped file: 10 to 30 µs a page view on the machine of bench/README.md, a good part
    of decide itself. Here an observation is a bisect and two additions.
    """

    def __init__(self, histogram: Histogram, buckets: tuple[float, ...]) -> None:
        self._histogram = histogram
        self._bounds = buckets
        self._counts = [0] * (len(buckets) + 1)  # the last one is +Inf
        self._sum = 0.0

    def observe(self, seconds: float) -> None:
        """Note one duration: into the first bucket whose bound it does not exceed, as Prometheus counts."""
        self._counts[bisect_left(self._bounds, seconds)] += 1
        self._sum += seconds

    def flush(self) -> None:
        """Add what was observed since the last flush to the histogram."""
        counts, total = self._counts, self._sum
        if not any(counts):
            return
        self._counts, self._sum = [0] * len(counts), 0.0
        # The histogram's own values, one per bucket and one for the sum (what its observe adds to):
        # a bulk add that prometheus_client has no public call for. tests/test_metrics.py checks
        # the buckets and the sum a scrape shows.
        buckets = self._histogram._buckets  # noqa: SLF001
        for bucket, n in zip(buckets, counts, strict=True):
            if n:
                bucket.inc(n)
        self._histogram._sum.inc(total)  # noqa: SLF001


class Metrics:
    """The metrics of one app.

    What every page view counts (decisions, pass checks, decide and store times) is kept in plain
    Python numbers and added to the Prometheus metrics by :meth:`flush`, every second while the
    app runs (:meth:`start`) and before each scrape; the rest is counted as it happens.

    Args:
        registry: Where the metrics are registered; none makes one for this app alone.
        interval: Seconds between flushes of the page-view counts.
    """

    def __init__(self, registry: CollectorRegistry | None = None, *, interval: float = 1.0) -> None:
        self.registry = CollectorRegistry(auto_describe=True) if registry is None else registry
        r = self.registry
        self._decisions = Counter(
            "supportgate_decisions",
            "Page-view decisions, by site, decision and reason.",
            ["site", "decision", "reason"],
            registry=r,
        )
        self.decide_time = Timings(
            Histogram(
                "supportgate_decide_duration_seconds",
                "Time to answer POST /v1/decide, from the request to the answer sent (errors included).",
                buckets=PAGE_VIEW_BUCKETS,
                registry=r,
            ),
            PAGE_VIEW_BUCKETS,
        )
        """Decide's answer times."""
        self._pass_checks = Counter(
            "supportgate_pass_checks",
            "Passes checked at decide, by outcome: valid, a token failure reason, or store_unavailable.",
            ["outcome"],
            registry=r,
        )
        self._signin = Counter(
            "supportgate_signin",
            "Sign-in steps (code_request, code_verify, activation), by outcome: ok, the problem's slug, or error.",
            ["step", "outcome"],
            registry=r,
        )
        self._refresh = Counter(
            "supportgate_refreshes",
            "Refresh-token exchanges, by outcome: ok, the problem's slug, or error.",
            ["outcome"],
            registry=r,
        )
        self._store_errors = Counter(
            "supportgate_store_errors",
            "Store calls that failed, by operation (page_view, write) and kind.",
            ["operation", "kind"],
            registry=r,
        )
        self.store_time = Timings(
            Histogram(
                "supportgate_store_page_view_seconds",
                "Time the store took to answer one call on the page-view path (answered calls only).",
                buckets=PAGE_VIEW_BUCKETS,
                registry=r,
            ),
            PAGE_VIEW_BUCKETS,
        )
        """The store's answer times on the page-view path."""
        self._mail_queue = Gauge(
            "supportgate_mail_queue_depth",
            "Mails waiting in the store, by state (queued, retrying); read when scraped.",
            ["state"],
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self._stats_backlog = Gauge(
            "supportgate_stats_backlog",
            "Page-view counts kept in process memory after the last flush to the store (summed over live processes).",
            registry=r,
            multiprocess_mode="livesum",
        )
        self._interval = interval
        self._decisions_seen: dict[tuple[str, str, str], int] = {}
        self._passes_seen: dict[str, int] = {}
        self._children: dict[tuple[Counter, tuple[str, ...]], Counter] = {}
        self._task: asyncio.Task[None] | None = None

    def decision(self, site: str, decision: str, reason: str) -> None:
        """Count one decision for ``site``, a site that exists."""
        seen = self._decisions_seen
        key = (site, decision, reason)
        seen[key] = seen.get(key, 0) + 1

    def pass_checked(self, outcome: str) -> None:
        """Count one pass checked at decide: ``valid``, a token failure reason, or ``store_unavailable``."""
        seen = self._passes_seen
        seen[outcome] = seen.get(outcome, 0) + 1

    def flush(self) -> None:
        """Add the page-view counts and times kept since the last flush to the Prometheus metrics."""
        decisions, self._decisions_seen = self._decisions_seen, {}
        passes, self._passes_seen = self._passes_seen, {}
        for labels, n in decisions.items():
            self._child(self._decisions, labels).inc(n)
        for outcome, n in passes.items():
            self._child(self._pass_checks, (outcome,)).inc(n)
        self.decide_time.flush()
        self.store_time.flush()

    def _child(self, counter: Counter, labels: tuple[str, ...]) -> Counter:
        """``counter``'s child for ``labels``, resolved once."""
        key = (counter, labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = counter.labels(*labels)
        return child

    async def start(self) -> None:
        """Flush every ``interval`` seconds in the background, until :meth:`stop`."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="supportgate metrics flush")

    async def stop(self) -> None:
        """Stop the background flushes and flush what is left."""
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.flush()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - the loop must outlive any one failure, which it logs
                _log.exception("metrics flush failed")

    @contextmanager
    def signin(self, step: str) -> Iterator[None]:
        """Count the sign-in ``step`` run inside: ``ok``, the slug of the problem it raised, or ``error``."""
        with self._outcome(self._signin, step):
            yield

    @contextmanager
    def refresh(self) -> Iterator[None]:
        """Count the refresh run inside: ``ok``, the slug of the problem it raised, or ``error``."""
        with self._outcome(self._refresh):
            yield

    @staticmethod
    @contextmanager
    def _outcome(counter: Counter, *labels: str) -> Iterator[None]:
        try:
            yield
        except Problem as problem:
            counter.labels(*labels, problem.slug).inc()
            raise
        except Exception:
            counter.labels(*labels, "error").inc()  # a store failure (503) or a fault (500)
            raise
        counter.labels(*labels, "ok").inc()

    def store_error(self, operation: StoreOperation, error: BaseException | str) -> None:
        """Count a failed store call; ``error`` is what it raised, or a kind (``deadline``, ``silence``)."""
        kind = error if isinstance(error, str) else store_error_kind(error)
        self._store_errors.labels(operation, kind).inc()

    def mail_queue(self, queued: int, retrying: int) -> None:
        """Note the mail queue's depth, as just read from the store."""
        self._mail_queue.labels("queued").set(queued)
        self._mail_queue.labels("retrying").set(retrying)

    def stats_backlog(self, counts: int) -> None:
        """Note the page-view counts this process still holds after a flush."""
        self._stats_backlog.set(counts)

    def process_stopped(self) -> None:
        """This process stops: its live gauges leave the sums (its counters stay counted)."""
        directory = _multiprocess_dir()
        if directory is not None:
            multiprocess.mark_process_dead(os.getpid(), directory)  # type: ignore[no-untyped-call]  # likewise
        else:
            self._stats_backlog.set(0)

    def exposition(self) -> bytes:
        """Every metric in the text format: of every process sharing the directory, or of this app alone.

        This process's page-view counts are flushed first; other processes' are at most ``interval`` old.
        """
        self.flush()
        directory = _multiprocess_dir()
        if directory is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]  # likewise
        return generate_latest(registry)
