"""Funnel events: what readers did after the wall or a nag, counted per site and day, nothing else kept."""

from __future__ import annotations

from typing import Final

from supportgate.gate.schemas import FunnelEvent
from supportgate.gate.stats import StatField, StatsBuffer
from supportgate.store.limits import RateLimit, RateLimiter

__all__ = ["COUNTERS", "EVENT_LIMIT", "EventService"]

COUNTERS: Final[dict[FunnelEvent, StatField]] = {
    "recheck": "rechecks",
    "allowlisted": "allowlisted",
    "support_click": "support_clicks",
    "signin_click": "signin_clicks",
    "nag_dismissed": "nag_dismissals",
}
"""The stats counter each event adds one to."""
EVENT_LIMIT: Final = RateLimit(scope="event", limit=60, window_seconds=3600, what="funnel events from this address")
"""Events one address may send per site: far more than a reader's clicks, too few to skew a day's counts."""


class EventService:
    """Counts funnel events in the stats buffer: a fixed set of counters per site and day, so the store cannot grow."""

    def __init__(self, stats: StatsBuffer, limiter: RateLimiter) -> None:
        self._stats = stats
        self._limiter = limiter

    async def add(self, site_id: str, event: FunnelEvent, *, client_ip: str) -> None:
        """Count ``event`` for the site today; the address is only counted against the limit, never kept.

        Raises:
            TooManyRequests: if this address sent too many events for the site this hour.
        """
        await self._limiter.hit(EVENT_LIMIT, f"{site_id}:{client_ip}")
        self._stats.count(site_id, COUNTERS[event])
