"""Rule 6's meter: each visitor's free views this period, in a fixed amount of store memory per site.

Callers choose their visitor ids, so a key per visitor would let anyone grow the store (which
runs ``noeviction``) without bound. Instead each site and period has one Count-Min sketch: a
string of ``DEPTH`` rows of ``WIDTH`` 16-bit counters, :data:`SKETCH_BYTES` in all, however
many ids callers send. A visitor has one counter per row, chosen by a hash; its count is the
least of them. Another visitor can only share counters, never take from them, so a collision
can only make a count higher: a reader may meet the wall a view early, never later than the
policy says. docs/gate.md gives the odds.

A view is counted with conservative update (only the visitor's least counters go up), and not
at all once the visitor has used every free view: a walled visitor's further views, and a flood
of views for one id, add nothing.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta
from typing import Final

from supportgate.catalog.policy import Policy
from supportgate.clock import Clock
from supportgate.gate.schemas import Meter
from supportgate.store import Store, names

__all__ = ["DEPTH", "SKETCH_BYTES", "WIDTH", "Metering"]

WIDTH: Final = 1 << 16
"""Counters per row of a sketch: a 16-bit hash picks one."""
DEPTH: Final = 8
"""Rows per sketch: a visitor's count is over-counted only if all of its counters are shared."""
SKETCH_BYTES: Final = WIDTH * DEPTH * 2
"""The store memory of one site's meter for one period (u16 counters): 1 MiB."""
_SLACK: Final = timedelta(hours=1)

# KEYS[1]: the sketch. ARGV[1]: seconds to keep it; ARGV[2]: the free views; ARGV[3]: the sketch's
# bytes; ARGV[4..]: the visitor's counter in each row. Returns the visitor's count with this view.
_COUNT = """
local get = {}
for i = 4, #ARGV do
  get[#get + 1] = 'GET'; get[#get + 1] = 'u16'; get[#get + 1] = '#' .. ARGV[i]
end
local counts = redis.call('BITFIELD', KEYS[1], unpack(get))
local least = counts[1]
for i = 2, #counts do
  if counts[i] < least then least = counts[i] end
end
if least < tonumber(ARGV[2]) then
  if redis.call('EXISTS', KEYS[1]) == 0 then
    -- Made whole at once: a string grown by writes past its end takes up to twice its length.
    redis.call('SETRANGE', KEYS[1], ARGV[3] - 1, '\0')
  end
  local incr = {'OVERFLOW', 'SAT'}
  for i = 1, #counts do
    if counts[i] == least then
      incr[#incr + 1] = 'INCRBY'; incr[#incr + 1] = 'u16'; incr[#incr + 1] = '#' .. ARGV[i + 3]
      incr[#incr + 1] = 1
    end
  end
  redis.call('BITFIELD', KEYS[1], unpack(incr))
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return least + 1
"""


class Metering:
    """Counts a visitor's metered views per site and period, in one fixed-size sketch each."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._clock = clock
        self._count = store.redis.register_script(_COUNT)

    async def count(self, site_id: str, policy: Policy, visitor: str) -> Meter:
        """Count one view of ``visitor``; ``used`` passes ``limit`` (by one) once the free views are gone."""
        now = self._clock()
        period, resets_at = _period(now.astimezone(UTC).date(), policy.meter_period)
        ttl = max(int((resets_at - now + _SLACK).total_seconds()), 1)
        used = await self._count(
            keys=[names.meter(site_id, period)],
            args=[ttl, policy.free_views, SKETCH_BYTES, *_counters(site_id, period, visitor)],
        )
        return Meter(used=int(used), limit=policy.free_views, resets_at=resets_at)


def _counters(site_id: str, period: str, visitor: str) -> list[int]:
    """The visitor's counter in each row, as indexes of u16 counters into the sketch.

    The site and period go into the hash, so two visitors who collide at one site this period
    do not collide again in the next.
    """
    digest = hashlib.blake2b(f"{site_id}\0{period}\0{visitor}".encode(), digest_size=2 * DEPTH).digest()
    return [row * WIDTH + int.from_bytes(digest[2 * row : 2 * row + 2], "big") for row in range(DEPTH)]


def _period(day: date, period: str) -> tuple[str, datetime]:
    """The name of the metering period ``day`` is in, and when the next one starts (UTC)."""
    if period == "day":
        name, start = day.isoformat(), day + timedelta(days=1)
    elif period == "week":
        year, week, weekday = day.isocalendar()
        name, start = f"{year}-W{week:02d}", day + timedelta(days=8 - weekday)
    else:
        name = f"{day.year}-{day.month:02d}"
        start = date(day.year + 1, 1, 1) if day.month == 12 else date(day.year, day.month + 1, 1)
    return name, datetime(start.year, start.month, start.day, tzinfo=UTC)
