"""Who may ask the gate about a site: site keys, the site's origins, and the site prepared for deciding.

Every page view comes through here, so sites, site keys and the set of all origins are kept in
the process for :data:`CACHE_TTL` (:class:`~supportgate.gate.cache.TtlCache`): an admin's change
reaches every decision within that time, and a page view costs no store round trip for them.
Each method takes the view's deadline (:class:`~supportgate.store.hot_path.HotPath`); none
means a fresh page-view budget. While the store is away, what was cached keeps serving.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from supportgate.catalog.api_keys import ApiKeys
from supportgate.catalog.policy import Policy, gate_base
from supportgate.catalog.schemas import Site
from supportgate.catalog.sites import SiteService
from supportgate.clock import Clock
from supportgate.errors import Forbidden, NotFound, StoreUnavailable, Unauthorized
from supportgate.gate.cache import TtlCache
from supportgate.gate.crawlers import crawler_domains
from supportgate.store.hot_path import HotPath

__all__ = ["CACHE_TTL", "GatedSite", "SiteAccess"]

CACHE_TTL: Final = timedelta(seconds=5)
"""How long a process keeps a site (its origins and policy) and a site key's check: changes
made by an admin reach every decision within this time."""

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


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
    crawler_domains: tuple[tuple[str, ...], ...]
    """For each of ``crawler_agents``, the domains its crawler's reverse DNS names end in (none: unknown crawler)."""
    crawler_networks: tuple[IpNetwork, ...]
    """Ranges whose claimed crawlers are let through without a DNS check."""
    interstitial_url: str
    """The wall's URL, without ``lang``: on the site's first-party URL when its policy has one."""

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
            crawler_domains=tuple(crawler_domains(agent) for agent in policy.crawlers.user_agents),
            crawler_networks=tuple(ipaddress.ip_network(cidr, strict=False) for cidr in policy.crawlers.ip_ranges),
            interstitial_url=f"{gate_base(policy, public_url)}/v1/sites/{site.id}/interstitial",
        )

    @property
    def policy(self) -> Policy:
        """The site's gate policy."""
        return self.site.policy

    def is_exempt(self, path: str) -> bool:
        """Whether ``path`` (its query string aside) matches one of the exempt globs as a whole."""
        return self.exempt is not None and self.exempt.match(path.partition("?")[0]) is not None

    def crawler_claim(self, user_agent: str | None) -> tuple[str, ...] | None:
        """The domains to check when the User-Agent names a crawler (empty: none known), None when it names none."""
        if not user_agent:
            return None
        agent = user_agent.lower()
        matched = [n for n, pattern in enumerate(self.crawler_agents) if pattern in agent]
        if not matched:
            return None
        return tuple(dict.fromkeys(domain for n in matched for domain in self.crawler_domains[n]))

    def in_crawler_range(self, ip: str | None) -> bool:
        """Whether ``ip`` is in one of the policy's crawler ranges."""
        if not self.crawler_networks:
            return False
        try:
            address = ipaddress.ip_address(ip or "")
        except ValueError:
            return False
        return any(address in network for network in self.crawler_networks)


class SiteAccess:
    """Checks site keys and origins against the sites, from an in-process cache."""

    def __init__(self, sites: SiteService, api_keys: ApiKeys, hot: HotPath, clock: Clock, *, public_url: str) -> None:
        self._sites = sites
        self._api_keys = api_keys
        self._hot = hot
        self._public_url = public_url
        # While the page-view path takes the store for down, what is cached serves without a reload.
        self._site_cache: TtlCache[str, GatedSite | None] = TtlCache(clock, ttl=CACHE_TTL, hot=hot)
        self._key_cache: TtlCache[str, str | None] = TtlCache(clock, ttl=CACHE_TTL, hot=hot)
        self._origin_cache: TtlCache[str, frozenset[str]] = TtlCache(clock, ttl=CACHE_TTL, max_entries=1, hot=hot)

    async def caller_site(self, presented: str | None, *, deadline: float | None = None) -> str | None:
        """The site of a presented site key, None when none was presented.

        Raises:
            Unauthorized: if it is not a valid site key.
            StoreUnavailable: if the key is not cached and the store does not answer in time.
        """
        return None if presented is None else await self.key_site(presented, deadline=deadline)

    async def key_site(self, presented: str, *, deadline: float | None = None) -> str:
        """The site a presented site key belongs to.

        Raises:
            Unauthorized: if it is not a valid site key.
            StoreUnavailable: if the key is not cached and the store does not answer in time.
        """
        site = await self._key_cache.get(presented, self._load_key, deadline=self._deadline(deadline))
        if site is None:
            raise Unauthorized("The site key is not valid: it is unknown, revoked or mistyped.")
        return site

    async def site_for(
        self, site_id: str, *, caller_site: str | None, origin: str | None, deadline: float | None = None
    ) -> GatedSite:
        """The site ``site_id``, if the caller may ask about it.

        A caller with a site key (``caller_site``) may ask about its own site; a browser without
        one, from one of the site's origins.

        Raises:
            NotFound: if there is no such site.
            Unauthorized: if the caller sent neither a site key nor an ``Origin``.
            Forbidden: if the key or the origin is another site's.
            StoreUnavailable: if the site is not cached and the store does not answer in time.
        """
        if caller_site is None and origin is None:
            raise Unauthorized(
                "Send a site key ('Authorization: Bearer sgs_…') or call from one of the site's origins."
            )
        gated = await self._site_cache.get(site_id, self._load_site, deadline=self._deadline(deadline))
        if gated is None:
            raise NotFound(f"There is no site {site_id!r}.")
        if caller_site is not None:
            if caller_site != site_id:
                raise Forbidden(f"This site key is for another site, not {site_id!r}.")
        elif origin not in gated.origins:
            raise Forbidden(f"The origin {origin!r} is not one of site {site_id!r}'s origins.")
        return gated

    async def origin_known(self, origin: str, *, deadline: float | None = None) -> bool:
        """Whether ``origin`` is one of any site's origins (for CORS preflights, which name no site).

        Raises:
            StoreUnavailable: if the origins are not cached and the store does not answer in time.
        """
        return origin in await self._origin_cache.get("", self._load_origins, deadline=self._deadline(deadline))

    async def current(self, site_id: str, *, deadline: float | None = None) -> Site:
        """The site as stored now, for what browsers load (gate.js, the wall); as cached while the store is away.

        Raises:
            NotFound: if there is no such site.
            StoreUnavailable: if the store does not answer in time and the site is not cached.
        """
        try:
            return await self._hot.run(self._deadline(deadline), lambda: self._sites.get(site_id))
        except StoreUnavailable:
            cached = self._site_cache.peek(site_id)
            if cached is None:
                raise
            return cached.site

    def _deadline(self, deadline: float | None) -> float:
        return self._hot.deadline() if deadline is None else deadline

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
