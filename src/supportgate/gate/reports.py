"""False-positive reports: readers who say the gate saw an ad blocker that is not there."""

from __future__ import annotations

from typing import Final

import msgspec

from supportgate.clock import Clock
from supportgate.gate.schemas import Report, ReportIn
from supportgate.gate.stats import StatsBuffer
from supportgate.store import Store, names
from supportgate.store.limits import RateLimit, RateLimiter

__all__ = ["REPORTS_KEPT", "REPORT_LIMIT", "ReportService"]

REPORTS_KEPT: Final = 1000
"""How many of a site's latest reports are kept for its admins."""
REPORT_LIMIT: Final = RateLimit(
    scope="report", limit=10, window_seconds=3600, what="false-positive reports from this address"
)
"""Reports one address may send per site: enough for a reader, too few to drown the rest."""

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Report).decode


class ReportService:
    """Keeps the latest false-positive reports per site and counts them."""

    def __init__(self, store: Store, stats: StatsBuffer, limiter: RateLimiter, clock: Clock) -> None:
        self._store = store
        self._stats = stats
        self._limiter = limiter
        self._clock = clock

    async def add(self, site_id: str, data: ReportIn, *, user_agent: str | None, client_ip: str) -> None:
        """Keep a report and count it in ``false_positive_reports``.

        Raises:
            TooManyRequests: if this address sent too many reports for the site this hour.
        """
        await self._limiter.hit(REPORT_LIMIT, f"{site_id}:{client_ip}")
        report = Report(
            at=self._clock(), path=data.path, user_agent=data.user_agent or user_agent or "", signals=data.signals
        )
        key = names.reports(site_id)
        async with self._store.multi(key) as pipe:
            pipe.lpush(key, _encode(report))
            pipe.ltrim(key, 0, REPORTS_KEPT - 1)
            await pipe.execute()
        self._stats.count(site_id, "false_positive_reports")

    async def latest(self, site_id: str, limit: int) -> list[Report]:
        """The site's latest ``limit`` reports, newest first."""
        raws = await self._store.redis.lrange(names.reports(site_id), 0, limit - 1)
        return [_decode(raw) for raw in raws]
