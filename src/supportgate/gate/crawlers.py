"""Crawlers that are who they say: forward-confirmed reverse DNS of the client's address, cached per address.

Anyone can send ``Googlebot`` as their User-Agent. A real Googlebot comes from an address whose
reverse (PTR) name is under ``googlebot.com`` or ``google.com`` and whose name resolves (A or
AAAA) back to that same address; a spoofer controls neither. :class:`CrawlerCheck` makes both
lookups, against the system's resolver or ``SUPPORTGATE_DNS_RESOLVER``, and keeps what it found
per address in the process: a confirmed name for :data:`VERIFIED_TTL`, a refusal for
:data:`REFUSED_TTL`, a DNS failure for :data:`FAILED_TTL`.

A page view never waits long for it: the lookups of an address run as one background task,
shared by every view from that address, and a view waits for it at most :data:`WAIT_BUDGET`, a
budget of its own beside the store's. A view the answer is too late for is decided as an ordinary
reader's, and the task goes on to fill the cache for the next one. No DNS failure is an error.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import dns.asyncresolver
import dns.exception
import dns.resolver

from supportgate.bounded import BoundedDict
from supportgate.clock import Clock

__all__ = [
    "CRAWLER_DOMAINS",
    "FAILED_TTL",
    "REFUSED_TTL",
    "VERIFIED_TTL",
    "WAIT_BUDGET",
    "CrawlerCheck",
    "crawler_domains",
]

CRAWLER_DOMAINS: Final[Mapping[str, tuple[str, ...]]] = {
    # googleusercontent.com is left out on purpose: Google Cloud customers' machines have reverse
    # names under it, so it would let anyone with a cloud VM in as Googlebot.
    "googlebot": ("googlebot.com", "google.com"),
    "bingbot": ("search.msn.com",),
    "duckduckbot": ("duckduckgo.com",),
    "applebot": ("applebot.apple.com",),
    "yandex": ("yandex.ru", "yandex.net", "yandex.com"),
    "baiduspider": ("crawl.baidu.com", "crawl.baidu.jp"),
}
"""Each crawler's name, as its User-Agent spells it (lowercased), and the domains its documentation
says its addresses' reverse names end in. A policy pattern containing the name is checked against them."""
WAIT_BUDGET: Final = 0.15
"""The most seconds a page view waits for an address's lookups, both of them; then it is decided as a reader's."""
LOOKUP_LIFETIME: Final = 2.0
"""The most seconds one DNS question (the PTR, or one name's A/AAAA) may take in the background."""
VERIFIED_TTL: Final = timedelta(days=1)
"""How long an address whose reverse name was confirmed is believed."""
REFUSED_TTL: Final = timedelta(hours=1)
"""How long an address whose reverse name is missing, foreign or not confirmed is refused without asking again."""
FAILED_TTL: Final = timedelta(minutes=1)
"""How long an address whose lookup failed (timeout, server failure) is refused before it is asked again."""
MAX_ADDRESSES: Final = 10_000
"""The most addresses whose outcome the process remembers."""
MAX_LOOKUPS: Final = 256
"""The most addresses looked up at once; a claim past that is refused without a lookup."""
MAX_NAMES: Final = 4
"""The most reverse names of one address that are confirmed forward."""

_KNOWN_DOMAINS: Final = frozenset(domain for domains in CRAWLER_DOMAINS.values() for domain in domains)
_log = logging.getLogger("supportgate.gate.crawlers")


def crawler_domains(pattern: str) -> tuple[str, ...]:
    """The documented domains of the crawler a policy's User-Agent ``pattern`` names; none for an unknown one."""
    lowered = pattern.lower()
    return tuple(domain for name, domains in CRAWLER_DOMAINS.items() if name in lowered for domain in domains)


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What an address's lookups found: its confirmed reverse names under a known crawler domain, until when."""

    names: tuple[str, ...]
    expires: datetime


class CrawlerCheck:
    """Whether an address's forward-confirmed reverse name is under a crawler's domain, from a per-address cache.

    Args:
        clock: The source of "now", for the cache's ages.
        resolver: The DNS server (address, port) to ask; None: the system's resolver.
        budget: The most seconds a view waits for a lookup.
    """

    def __init__(self, clock: Clock, *, resolver: tuple[str, int] | None = None, budget: float = WAIT_BUDGET) -> None:
        self._clock = clock
        self._budget = budget
        self._resolver = _resolver(resolver)
        self._known: BoundedDict[str, _Outcome] = BoundedDict(MAX_ADDRESSES)
        self._lookups: dict[str, asyncio.Task[_Outcome]] = {}
        self._failing = False

    async def confirmed(self, ip: str | None, domains: tuple[str, ...]) -> bool:
        """Whether ``ip``'s reverse name ends in one of ``domains`` and resolves back to ``ip``.

        Waits for DNS at most the budget: an answer not there by then, a DNS failure, or no
        address at all is a no.
        """
        if not domains or ip is None:
            return False
        try:
            address = str(ipaddress.ip_address(ip))
        except ValueError:
            return False
        names = await self._names(address)
        return any(_under(name, domain) for name in names for domain in domains)

    async def stop(self) -> None:
        """Cancel the lookups under way (the app is stopping)."""
        lookups = list(self._lookups.values())
        for lookup in lookups:
            lookup.cancel()
        await asyncio.gather(*lookups, return_exceptions=True)

    async def _names(self, address: str) -> tuple[str, ...]:
        known = self._known.get(address)
        if known is not None and known.expires > self._clock():
            return known.names
        lookup = self._lookups.get(address)
        if lookup is None:
            if self._resolver is None or len(self._lookups) >= MAX_LOOKUPS:
                return ()
            lookup = asyncio.create_task(self._look_up(self._resolver, address), name="supportgate crawler lookup")
            self._lookups[address] = lookup
            lookup.add_done_callback(lambda done: self._settled(address, done))
        # asyncio.wait leaves the lookup running when the wait ends: it fills the cache for the next view.
        done, _ = await asyncio.wait({lookup}, timeout=self._budget)
        return lookup.result().names if done and not lookup.cancelled() else ()

    def _settled(self, address: str, lookup: asyncio.Task[_Outcome]) -> None:
        self._lookups.pop(address, None)
        if not lookup.cancelled():
            self._known.put(address, lookup.result())

    async def _look_up(self, resolver: dns.asyncresolver.Resolver, address: str) -> _Outcome:
        """The address's confirmed names, never an exception: a failure is remembered for a short while."""
        try:
            outcome = await self._forward_confirmed(resolver, address)
        except dns.exception.DNSException as exc:
            if not self._failing:  # once, not per address: a resolver that is away fails them all
                _log.warning("crawler DNS checks fail, claims are refused until they work: %s", exc)
            self._failing = True
        except Exception:  # noqa: BLE001 - a lookup must never fail a page view; it is logged and refused
            _log.exception("crawler check of %s failed unexpectedly", address)
        else:
            if self._failing:
                _log.info("crawler DNS checks work again")
            self._failing = False
            return outcome
        return _Outcome((), self._clock() + FAILED_TTL)

    async def _forward_confirmed(self, resolver: dns.asyncresolver.Resolver, address: str) -> _Outcome:
        try:
            answer = await resolver.resolve_address(address, lifetime=LOOKUP_LIFETIME)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return _Outcome((), self._clock() + REFUSED_TTL)
        names = [_plain(record.to_text()) for record in answer]
        candidates = [name for name in names if any(_under(name, domain) for domain in _KNOWN_DOMAINS)]
        candidates = candidates[:MAX_NAMES]
        rdtype = "AAAA" if isinstance(ipaddress.ip_address(address), ipaddress.IPv6Address) else "A"
        found = await asyncio.gather(
            *(_resolves_to(resolver, name, rdtype, address) for name in candidates), return_exceptions=True
        )
        confirmed = tuple(name for name, result in zip(candidates, found, strict=True) if result is True)
        if confirmed:
            return _Outcome(confirmed, self._clock() + VERIFIED_TTL)
        failure = next((result for result in found if isinstance(result, BaseException)), None)
        if failure is not None:
            raise failure
        return _Outcome((), self._clock() + REFUSED_TTL)


async def _resolves_to(resolver: dns.asyncresolver.Resolver, name: str, rdtype: str, address: str) -> bool:
    """Whether ``name``'s A or AAAA records hold ``address``; a name that does not exist holds none."""
    try:
        answer = await resolver.resolve(name + ".", rdtype, lifetime=LOOKUP_LIFETIME)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return False
    wanted = ipaddress.ip_address(address)
    return any(ipaddress.ip_address(record.to_text()) == wanted for record in answer)


def _resolver(server: tuple[str, int] | None) -> dns.asyncresolver.Resolver | None:
    """A resolver asking ``server``, or the system's; None (every claim refused) when the system has none."""
    if server is None:
        try:
            return dns.asyncresolver.Resolver()
        except dns.resolver.NoResolverConfiguration:
            _log.warning("no DNS resolver is configured: crawlers are let through only from their ip_ranges")
            return None
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = [server[0]]
    resolver.port = server[1]
    return resolver


def _plain(name: str) -> str:
    """A DNS name lowercased, without its root dot."""
    return name.lower().rstrip(".")


def _under(name: str, domain: str) -> bool:
    """Whether ``name`` is ``domain`` or a name in it: ``crawl-1.googlebot.com``, not ``evilgooglebot.com``."""
    return name == domain or name.endswith("." + domain)
