"""The gate's wire contract: the decision per page view, false-positive reports, and the counters."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Final, Literal

import msgspec

from supportgate.catalog.schemas import Slug
from supportgate.errors import TokenFailure
from supportgate.languages import LanguageTag

__all__ = [
    "ADBLOCK_COOKIE",
    "COOKIE_SIGNALS",
    "PASS_HEADER",
    "AdblockSignal",
    "Counters",
    "DecideIn",
    "Decision",
    "DecisionValue",
    "EventIn",
    "FunnelEvent",
    "Meter",
    "Reason",
    "Report",
    "ReportIn",
    "SiteAbout",
    "Stats",
    "StatsDay",
    "SupporterInfo",
]

AdblockSignal = Literal["blocked", "clear", "inconclusive", "unknown"]
"""What detection found; ``unknown`` means it did not run."""
ADBLOCK_COOKIE: Final = "sg_adblock"
"""The cookie ``gate.js`` keeps its last detection result in, for a server that decides (docs/gate.md)."""
COOKIE_SIGNALS: Final[dict[str, AdblockSignal]] = {
    "blocked": "blocked",
    "clear": "clear",
    "inconclusive": "inconclusive",
}
"""The values of :data:`ADBLOCK_COOKIE`; anything else, or no cookie, is ``unknown``."""
PASS_HEADER: Final = "supportgate-pass"  # noqa: S105 - a header name, not a secret
"""The request header the extension sends a supporter's pass in, to the site's own origin only."""
DecisionValue = Literal["allow", "nag", "wall"]
"""A decision's ``decision``: show the content, a dismissible nag, or the wall."""
Reason = Literal[
    "not_found_page",
    "exempt_path",
    "supporter",
    "crawler",
    "no_adblock",
    "inconclusive",
    "policy_off",
    "store_unavailable",
    "metered",
    "adblock",
]
"""Why the gate decided as it did: the rule that applied (docs/gate.md)."""
PagePath = Annotated[
    str, msgspec.Meta(pattern=r"^/", max_length=2000, description="The page's path, starting with '/'.")
]
Visitor = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[A-Za-z0-9_-]{8,64}$", description="A stable, random, first-party visitor id, for metering."
    ),
]
UserAgent = Annotated[str, msgspec.Meta(max_length=512)]
SignalName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_]{1,32}$")]
SignalValue = bool | Annotated[str, msgspec.Meta(max_length=64)] | None


class DecideIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One page view to decide on."""

    site: Slug
    """The site's id."""
    path: PagePath
    """The page's path; exempt paths are matched on it, without its query string."""
    adblock: AdblockSignal
    """What detection found."""
    pass_: Annotated[str, msgspec.Meta(max_length=4096)] | None = msgspec.field(default=None, name="pass")
    """A supporter pass; it may come as the ``Supportgate-Pass`` header instead (the body wins)."""
    visitor: Visitor | None = None
    """A stable, random, first-party visitor id; without one there is no metering."""
    user_agent: UserAgent | None = None
    """The reader's User-Agent, for server-side callers; otherwise the request's is used."""
    client_ip: Annotated[str, msgspec.Meta(max_length=45)] | None = None
    """The reader's IP address; accepted only with a site key."""
    lang: LanguageTag | None = None
    """The reader's language, passed on in ``interstitial_url``."""
    status: Annotated[int, msgspec.Meta(ge=100, le=599)] | None = None
    """The page's HTTP status: 4xx and 5xx pages are never gated."""


class SupporterInfo(msgspec.Struct, kw_only=True):
    """What a valid pass says about its holder."""

    tier: str
    """The supporter's tier id."""
    entitlements: list[str]
    """The tier's entitlements."""


class Meter(msgspec.Struct, kw_only=True):
    """Free views of a visitor who blocks ads, in the current period."""

    used: int
    """Free views used this period (at most ``limit``)."""
    limit: int
    """Free views per period (the policy's ``free_views``)."""
    resets_at: datetime
    """When the next period starts (UTC midnight of the next day, ISO week or month)."""


class Decision(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The answer for one page view. Fields that do not apply are left out, never ``null``."""

    decision: DecisionValue
    """Show the content, a dismissible nag, or the wall."""
    reason: Reason
    """The rule that decided."""
    supporter: SupporterInfo | None = None
    """The pass holder's tier and entitlements, when a valid pass came."""
    meter: Meter | None = None
    """The visitor's free views, when metering applied."""
    pass_error: TokenFailure | None = None
    """Why the pass that came was refused (``expired``, ``wrong_audience``, ``revoked``…)."""
    interstitial_url: str | None = None
    """Where the wall's markup is, for ``wall`` and ``nag``."""


class ReportIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A reader says the gate saw an ad blocker that is not there."""

    signals: Annotated[dict[SignalName, SignalValue], msgspec.Meta(max_length=16)]
    """What each detection probe found (``control``, ``network``, ``cosmetic``)."""
    path: PagePath
    """The page's path."""
    user_agent: UserAgent | None = None
    """The reader's User-Agent; the request's when absent."""


FunnelEvent = Literal["recheck", "allowlisted", "support_click", "signin_click", "nag_dismissed"]
"""What a reader did after the wall or a nag, as gate.js reports it (docs/gate.md)."""


class EventIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One step of the funnel after the wall: nothing about the reader, only what happened."""

    event: FunnelEvent
    """What the reader did: ``recheck``, ``allowlisted``, ``support_click``, ``signin_click`` or ``nag_dismissed``."""


class Report(msgspec.Struct, kw_only=True):
    """A false-positive report as kept for admins."""

    at: datetime
    """When it came."""
    path: str
    """The page's path."""
    user_agent: str
    """The reader's User-Agent."""
    signals: dict[str, SignalValue]
    """What each detection probe found."""


class Counters(msgspec.Struct, kw_only=True):
    """A site's page-view counters over some days."""

    views: int = 0
    """Decisions answered."""
    blocked: int = 0
    """Views whose detection said ``blocked``."""
    clear: int = 0
    """Views whose detection said ``clear``."""
    inconclusive: int = 0
    """Views whose detection said ``inconclusive`` or ``unknown``."""
    walls: int = 0
    """Views answered ``wall``."""
    nags: int = 0
    """Views answered ``nag``."""
    supporter_unlocks: int = 0
    """Views allowed for a supporter's pass."""
    metered_allows: int = 0
    """Views allowed as a free view of the meter."""
    false_positive_reports: int = 0
    """Readers who said they block no ads when told they did."""
    rechecks: int = 0
    """Times a reader pressed "check again" on the wall or a nag."""
    allowlisted: int = 0
    """Re-checks that came back clear: the reader allowlisted the site and the wall went."""
    support_clicks: int = 0
    """Times a reader followed "become a supporter"."""
    signin_clicks: int = 0
    """Times a reader pressed "sign in with the extension"."""
    nag_dismissals: int = 0
    """Nags a reader closed."""


class StatsDay(Counters, kw_only=True):
    """One UTC day's counters."""

    date: date
    """The day."""


class Stats(msgspec.Struct, kw_only=True):
    """A site's counters, or all sites' summed, per day and in total over a range of days."""

    site: str | None
    """The site's id; null for the sums over all sites."""
    days: list[StatsDay]
    """Every day of the range, oldest first, with zeros where nothing happened."""
    totals: Counters
    """The sums over the range."""


class SiteAbout(msgspec.Struct, kw_only=True):
    """What a reader's browser may know of a site: how to name it, its logo, where to support it."""

    id: str
    """The site's id, as gate.js and passes name it."""
    name: str
    """The site's name, for people: "The Daily Demo"."""
    logo_url: str | None
    """An http(s) URL of the site's logo, or null."""
    support_url: str | None
    """Where a reader becomes a supporter, or null."""
