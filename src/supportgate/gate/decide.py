"""The decision per page view: allow, nag or wall, by the rules of docs/gate.md, in their order.

It runs on every page view of every gated site, so it is built to touch the store as little as
possible: sites and site keys are cached in the process for :data:`CACHE_TTL`, counters are
buffered (:class:`~supportgate.gate.stats.StatsBuffer`), and only a pass (its revocation cutoff)
or a metered view costs a round trip.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import logging
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final

from supportgate.admin.keys import ApiKeys
from supportgate.admin.schemas import Site
from supportgate.admin.sites import SiteService
from supportgate.clock import Clock
from supportgate.errors import BadRequest, Forbidden, InvalidToken, NotFound, Unauthorized
from supportgate.errors_base import TokenFailure
from supportgate.gate.cache import STORE_ERRORS, TtlCache
from supportgate.gate.policy import Policy
from supportgate.gate.schemas import DecideIn, Decision, Meter, Reason, SupporterInfo, Verdict
from supportgate.gate.stats import StatField, StatsBuffer
from supportgate.readers.passes import PassService
from supportgate.store import Store, keys

__all__ = ["CACHE_TTL", "DecideService", "GatedSite"]

CACHE_TTL: Final = timedelta(seconds=5)
"""How long a process keeps a site (its origins and policy) and a site key's check: changes
made by an admin reach every decision within this time."""

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_log = logging.getLogger("supportgate.gate")
_METER_SLACK = timedelta(hours=1)
_NOT_BLOCKED: dict[str, Reason] = {"clear": "no_adblock", "inconclusive": "inconclusive", "unknown": "inconclusive"}
_SIGNAL_FIELD: dict[str, StatField] = {
    "blocked": "blocked",
    "clear": "clear",
    "inconclusive": "inconclusive",
    "unknown": "inconclusive",
}
_DECISION_FIELD: dict[Reason, StatField] = {"supporter": "supporter_unlocks", "metered": "metered_allows"}


@dataclass(frozen=True, slots=True)
class GatedSite:
    """A site with its policy prepared for deciding: globs compiled, crawler rules parsed."""

    site: Site
    """The site as stored."""
    origins: frozenset[str]
    """Its origins, canonical, as browsers send them in ``Origin``."""
    exempt: re.Pattern[str] | None
    """All exempt path globs as one anchored pattern, or None when there are none."""
    crawler_agents: tuple[str, ...]
    """Crawler User-Agent substrings, lowercased."""
    crawler_networks: tuple[IpNetwork, ...]
    """Ranges a crawler must come from; empty trusts the User-Agent alone."""
    interstitial_url: str
    """The wall's URL, without ``lang``."""

    @classmethod
    def prepare(cls, site: Site, *, public_url: str) -> GatedSite:
        """Compile ``site``'s policy for :meth:`DecideService.decide`."""
        policy = site.policy
        globs = [f"(?:{fnmatch.translate(glob)})" for glob in policy.exempt_paths]
        return cls(
            site=site,
            origins=frozenset(site.origins),
            exempt=re.compile("|".join(globs)) if globs else None,
            crawler_agents=tuple(agent.lower() for agent in policy.crawlers.user_agents),
            crawler_networks=tuple(ipaddress.ip_network(cidr, strict=False) for cidr in policy.crawlers.ip_ranges),
            interstitial_url=f"{public_url}/v1/sites/{site.id}/interstitial",
        )

    @property
    def policy(self) -> Policy:
        """The site's gate policy."""
        return self.site.policy

    def is_exempt(self, path: str) -> bool:
        """Whether ``path`` (its query string aside) matches one of the exempt globs as a whole."""
        return self.exempt is not None and self.exempt.match(path.partition("?")[0]) is not None

    def is_crawler(self, user_agent: str | None, ip: str | None) -> bool:
        """Whether the User-Agent names a crawler and, when ranges are set, the IP is in one."""
        if not user_agent:
            return False
        agent = user_agent.lower()
        if not any(pattern in agent for pattern in self.crawler_agents):
            return False
        if not self.crawler_networks:
            return True
        try:
            address = ipaddress.ip_address(ip or "")
        except ValueError:
            return False
        return any(address in network for network in self.crawler_networks)


class DecideService:
    """Decides per page view whether a reader sees the content, a nag or the wall."""

    def __init__(
        self,
        sites: SiteService,
        api_keys: ApiKeys,
        passes: PassService,
        stats: StatsBuffer,
        store: Store,
        clock: Clock,
        *,
        public_url: str,
    ) -> None:
        self._sites = sites
        self._api_keys = api_keys
        self._passes = passes
        self._stats = stats
        self._store = store
        self._clock = clock
        self._public_url = public_url
        self._site_cache: TtlCache[str, GatedSite | None] = TtlCache(clock, ttl=CACHE_TTL)
        self._key_cache: TtlCache[str, str | None] = TtlCache(clock, ttl=CACHE_TTL)
        self._origin_cache: TtlCache[str, frozenset[str]] = TtlCache(clock, ttl=CACHE_TTL, max_entries=1)

    async def key_site(self, presented: str) -> str:
        """The site a presented site key belongs to.

        Raises:
            Unauthorized: if it is not a valid site key.
        """
        site = await self._key_cache.get(presented, self._load_key)
        if site is None:
            raise Unauthorized("The site key is not valid: it is unknown, revoked or mistyped.")
        return site

    async def site_for(self, site_id: str, *, caller_site: str | None, origin: str | None) -> GatedSite:
        """The site ``site_id``, if the caller may ask about it.

        A caller with a site key (``caller_site``) may ask about its own site; a browser without
        one, from one of the site's origins.

        Raises:
            NotFound: if there is no such site.
            Unauthorized: if the caller sent neither a site key nor an ``Origin``.
            Forbidden: if the key or the origin is another site's.
        """
        if caller_site is None and origin is None:
            raise Unauthorized(
                "Send a site key ('Authorization: Bearer sgs_…') or call from one of the site's origins."
            )
        gated = await self._site_cache.get(site_id, self._load_site)
        if gated is None:
            raise NotFound(f"There is no site {site_id!r}.")
        if caller_site is not None:
            if caller_site != site_id:
                raise Forbidden(f"This site key is for another site, not {site_id!r}.")
        elif origin not in gated.origins:
            raise Forbidden(f"The origin {origin!r} is not one of site {site_id!r}'s origins.")
        return gated

    async def origin_known(self, origin: str) -> bool:
        """Whether ``origin`` is one of any site's origins (for CORS preflights, which name no site)."""
        return origin in await self._origin_cache.get("", self._load_origins)

    async def decide(
        self,
        data: DecideIn,
        *,
        pass_header: str | None,
        caller_site: str | None,
        origin: str | None,
        user_agent: str | None,
        peer_ip: str,
    ) -> Decision:
        """Decide on one page view by the rules of docs/gate.md, the first that applies.

        ``caller_site`` is the site of the key the caller sent, if any; ``origin``,
        ``user_agent`` and ``peer_ip`` are the request's. A bad pass never fails the call: the
        reader is anonymous and ``pass_error`` says why. When the store fails while a pass or
        the meter is checked, the reader is let through with reason ``store_unavailable``.

        Raises:
            BadRequest: if ``client_ip`` is no IP address, or came without a site key.
            NotFound: if there is no such site.
            Unauthorized: if the caller sent neither a site key nor an ``Origin``.
            Forbidden: if the key or the origin is another site's.
        """
        client_ip = _client_ip(data.client_ip)
        gated = await self.site_for(data.site, caller_site=caller_site, origin=origin)
        if caller_site is None:
            if client_ip is not None:
                raise BadRequest("$.client_ip: accepted only from a caller with a site key")
            client_ip = peer_ip
        elif data.user_agent is not None:
            user_agent = data.user_agent
        self._stats.count(data.site, "views", _SIGNAL_FIELD[data.adblock])

        if data.status is not None and data.status >= 400:
            return self._answer(gated, data, "allow", "not_found_page")
        if gated.is_exempt(data.path):
            return self._answer(gated, data, "allow", "exempt_path")
        token = data.pass_ or pass_header
        supporter, pass_error, store_down = await self._check_pass(gated, token) if token else (None, None, False)
        if supporter is not None and gated.policy.unlock_entitlement in supporter.entitlements:
            return self._answer(gated, data, "allow", "supporter", supporter=supporter)
        verdict, reason, meter = await self._anonymous(gated, data, user_agent, client_ip, store_down=store_down)
        return self._answer(gated, data, verdict, reason, supporter=supporter, pass_error=pass_error, meter=meter)

    async def _check_pass(self, gated: GatedSite, token: str) -> tuple[SupporterInfo | None, TokenFailure | None, bool]:
        """Rule 2's check: the pass holder, or why the pass was refused, or whether the store failed."""
        try:
            verified = await self._passes.verify(token, gated.site.id)
        except InvalidToken as exc:
            return None, exc.reason, False
        except STORE_ERRORS as exc:
            _log.warning("store unavailable while checking a pass for %s: %s", gated.site.id, exc)
            return None, None, True
        return SupporterInfo(tier=verified.tier, entitlements=list(verified.entitlements)), None, False

    async def _anonymous(
        self, gated: GatedSite, data: DecideIn, user_agent: str | None, client_ip: str | None, *, store_down: bool
    ) -> tuple[Verdict, Reason, Meter | None]:
        """Rules 3 to 7, for a reader with no pass that unlocks the site."""
        policy = gated.policy
        reason = _let_through(gated, data, user_agent, client_ip)
        if reason is not None:
            return "allow", reason, None
        if store_down:  # the pass could not be checked: never wall on doubt
            return "allow", "store_unavailable", None
        meter = None
        if policy.free_views > 0 and data.visitor is not None:
            try:
                meter = await self._meter(gated.site.id, policy, data.visitor)
            except STORE_ERRORS as exc:
                _log.warning("store unavailable while metering for %s: %s", gated.site.id, exc)
                return "allow", "store_unavailable", None
            if meter.used <= meter.limit:
                return "allow", "metered", meter
            meter = Meter(used=meter.limit, limit=meter.limit, resets_at=meter.resets_at)
        return ("nag" if policy.mode == "soft" else "wall"), "adblock", meter

    def _answer(
        self,
        gated: GatedSite,
        data: DecideIn,
        decision: Verdict,
        reason: Reason,
        *,
        supporter: SupporterInfo | None = None,
        pass_error: TokenFailure | None = None,
        meter: Meter | None = None,
    ) -> Decision:
        interstitial = None
        if decision == "wall":
            self._stats.count(data.site, "walls")
        elif decision == "nag":
            self._stats.count(data.site, "nags")
        elif reason in _DECISION_FIELD:
            self._stats.count(data.site, _DECISION_FIELD[reason])
        if decision != "allow":
            interstitial = gated.interstitial_url + (f"?lang={data.lang}" if data.lang else "")
        return Decision(
            decision=decision,
            reason=reason,
            supporter=supporter,
            meter=meter,
            pass_error=pass_error,
            interstitial_url=interstitial,
        )

    async def _meter(self, site_id: str, policy: Policy, visitor: str) -> Meter:
        """Count one view of ``visitor`` against this period's free views; ``used`` may pass ``limit``."""
        now = self._clock()
        period, resets_at = _period(now.astimezone(UTC).date(), policy.meter_period)
        key = keys.meter(site_id, period, visitor)
        ttl = int((resets_at - now + _METER_SLACK).total_seconds())
        async with self._store.redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, max(ttl, 1))
            used, _ = await pipe.execute()
        return Meter(used=int(used), limit=policy.free_views, resets_at=resets_at)

    async def _load_site(self, site_id: str) -> GatedSite | None:
        try:
            site = await self._sites.get(site_id)
        except NotFound:
            return None
        return GatedSite.prepare(site, public_url=self._public_url)

    async def _load_key(self, presented: str) -> str | None:
        key = await self._api_keys.check("site", presented)
        return key.site if key is not None else None

    async def _load_origins(self, _: str) -> frozenset[str]:
        return frozenset(origin for site in await self._sites.list() for origin in site.origins)


def _let_through(gated: GatedSite, data: DecideIn, user_agent: str | None, client_ip: str | None) -> Reason | None:
    """Rules 3 to 5: a crawler, no ad blocker seen for sure, or a policy that is off."""
    if gated.is_crawler(user_agent, client_ip):
        return "crawler"
    if data.adblock != "blocked":
        return _NOT_BLOCKED[data.adblock]
    if gated.policy.mode == "off":
        return "policy_off"
    return None


def _client_ip(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise BadRequest(f"$.client_ip: {value!r} is not an IPv4 or IPv6 address") from None


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
