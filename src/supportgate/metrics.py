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

import os
from collections.abc import Iterator
from contextlib import contextmanager
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
    "Metrics",
    "StoreOperation",
    "store_error_kind",
    "use_multiprocess_dir",
]

MULTIPROCESS_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
"""The variable prometheus_client reads its multiprocess directory from."""
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
"""The media type of the text exposition format ``GET /metrics`` answers in."""

_FAST_BUCKETS: Final = (
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


class Metrics:
    """The metrics of one app; label children are resolved once and kept, so counting is a dict lookup.

    Args:
        registry: Where the metrics are registered; none makes one for this app alone.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True) if registry is None else registry
        r = self.registry
        self._decisions = Counter(
            "supportgate_decisions",
            "Page-view decisions, by site, decision and reason.",
            ["site", "decision", "reason"],
            registry=r,
        )
        self.decide_seconds = Histogram(
            "supportgate_decide_duration_seconds",
            "Time to answer POST /v1/decide, from the request to the answer sent (errors included).",
            buckets=_FAST_BUCKETS,
            registry=r,
        )
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
        self.store_seconds = Histogram(
            "supportgate_store_page_view_seconds",
            "Time the store took to answer one call on the page-view path (answered calls only).",
            buckets=_FAST_BUCKETS,
            registry=r,
        )
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
        self._decision_children: dict[tuple[str, str, str], Counter] = {}
        self._pass_children: dict[str, Counter] = {}

    def decision(self, site: str, decision: str, reason: str) -> None:
        """Count one decision for ``site``, a site that exists."""
        key = (site, decision, reason)
        child = self._decision_children.get(key)
        if child is None:
            child = self._decision_children[key] = self._decisions.labels(site, decision, reason)
        child.inc()

    def pass_checked(self, outcome: str) -> None:
        """Count one pass checked at decide: ``valid``, a token failure reason, or ``store_unavailable``."""
        child = self._pass_children.get(outcome)
        if child is None:
            child = self._pass_children[outcome] = self._pass_checks.labels(outcome)
        child.inc()

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
        """Every metric in the text format: of every process sharing the directory, or of this app alone."""
        directory = _multiprocess_dir()
        if directory is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]  # likewise
        return generate_latest(registry)
