"""The decision per page view: allow, nag or wall, by the rules of docs/gate.md, in their order.

It runs on every page view of every gated site, so it is built to touch the store as little as
possible: sites and site keys come from :class:`~supportgate.gate.access.SiteAccess`'s cache,
counters are buffered (:class:`~supportgate.gate.stats.StatsBuffer`), a pass's revocation cutoff
is kept in the process while the store tracks it (:class:`~supportgate.store.tracking.TrackedReads`),
and only a cutoff not kept yet, a metered view or a claimed crawler's first DNS check waits on
anything outside the process.
"""

from __future__ import annotations

import asyncio
import ipaddress

from supportgate.errors import BadRequest, InvalidToken, StoreUnavailable, TokenFailure
from supportgate.gate.access import GatedSite, SiteAccess
from supportgate.gate.anonymous_limit import AnonymousLimit
from supportgate.gate.crawlers import CrawlerCheck
from supportgate.gate.metering import Metering
from supportgate.gate.pass_check import PassCheck
from supportgate.gate.schemas import DecideIn, Decision, DecisionValue, Meter, Reason, SupporterInfo
from supportgate.gate.stats import StatField, StatsBuffer
from supportgate.metrics import Metrics
from supportgate.store.hot_path import HotPath

__all__ = ["DecideService"]

_NOT_BLOCKED: dict[str, Reason] = {"clear": "no_adblock", "inconclusive": "inconclusive", "unknown": "inconclusive"}
_SIGNAL_FIELD: dict[str, StatField] = {
    "blocked": "blocked",
    "clear": "clear",
    "inconclusive": "inconclusive",
    "unknown": "inconclusive",
}
_DECISION_FIELD: dict[Reason, StatField] = {"supporter": "supporter_unlocks", "metered": "metered_allows"}


class DecideService:
    """Decides per page view whether a reader sees the content, a nag or the wall."""

    def __init__(
        self,
        access: SiteAccess,
        passes: PassCheck,
        stats: StatsBuffer,
        metering: Metering,
        anonymous_limit: AnonymousLimit,
        hot: HotPath,
        crawlers: CrawlerCheck,
        metrics: Metrics | None = None,
    ) -> None:
        self._access = access
        self._passes = passes
        self._stats = stats
        self._metering = metering
        self._anonymous_limit = anonymous_limit
        self._hot = hot
        self._crawlers = crawlers
        self._metrics = metrics if metrics is not None else Metrics()

    async def decide(
        self,
        data: DecideIn,
        *,
        pass_header: str | None,
        caller_site: str | None,
        origin: str | None,
        user_agent: str | None,
        request_ip: str,
        deadline: float | None = None,
    ) -> Decision:
        """Decide on one page view by the rules of docs/gate.md, the first that applies.

        ``caller_site`` is the site of the key the caller sent, if any; ``origin`` and
        ``user_agent`` are the request's, and ``request_ip`` its client's address (behind a
        trusted proxy, the one it forwarded for). A bad pass never fails the call: the
        reader is anonymous and ``pass_error`` says why.

        Every store call of the view runs against one ``deadline`` (on the event loop's clock;
        none starts the page-view budget now), and none is retried. When the store fails or is
        too slow while a pass or the meter is checked, the reader is let through with reason
        ``store_unavailable``; a site known from before is decided on as it was.

        Raises:
            TooManyRequests: if a caller without a site key has asked too often from its address.
            BadRequest: if ``client_ip`` is no IP address, or came without a site key.
            NotFound: if there is no such site.
            Unauthorized: if the caller sent neither a site key nor an ``Origin``.
            Forbidden: if the key or the origin is another site's.
            StoreUnavailable: if the site is not known from before and the store does not answer in time.
        """
        if caller_site is None:
            self._anonymous_limit.take(request_ip)
        deadline = self._hot.deadline() if deadline is None else deadline
        client_ip = _client_ip(data.client_ip)
        gated = await self._access.site_for(data.site, caller_site=caller_site, origin=origin, deadline=deadline)
        if caller_site is None:
            if client_ip is not None:
                raise BadRequest("$.client_ip: accepted only from a caller with a site key")
            client_ip = request_ip
        elif data.user_agent is not None:
            user_agent = data.user_agent
        self._stats.count(data.site, "views", _SIGNAL_FIELD[data.adblock])

        if data.status is not None and data.status >= 400:
            return self._answer(gated, data, "allow", "not_found_page")
        if gated.is_exempt(data.path):
            return self._answer(gated, data, "allow", "exempt_path")
        token = data.pass_ or pass_header
        supporter, pass_error, store_down = (
            await self._check_pass(gated, token, deadline) if token else (None, None, False)
        )
        if supporter is not None and gated.policy.unlock_entitlement in supporter.entitlements:
            return self._answer(gated, data, "allow", "supporter", supporter=supporter)
        value, reason, meter = await self._anonymous(
            gated, data, user_agent, client_ip, store_down=store_down, deadline=deadline
        )
        return self._answer(gated, data, value, reason, supporter=supporter, pass_error=pass_error, meter=meter)

    async def _check_pass(
        self, gated: GatedSite, token: str, deadline: float
    ) -> tuple[SupporterInfo | None, TokenFailure | None, bool]:
        """Rule 2's check: the pass holder, or why the pass was refused, or whether the store failed."""
        try:
            verified = await self._passes.verify(token, gated.site.id, deadline=deadline)
        except InvalidToken as exc:
            self._metrics.pass_checked(exc.reason)
            return None, exc.reason, False
        except StoreUnavailable:
            self._metrics.pass_checked("store_unavailable")
            return None, None, True
        self._metrics.pass_checked("valid")
        return SupporterInfo(tier=verified.tier, entitlements=list(verified.entitlements)), None, False

    async def _anonymous(
        self,
        gated: GatedSite,
        data: DecideIn,
        user_agent: str | None,
        client_ip: str | None,
        *,
        store_down: bool,
        deadline: float,
    ) -> tuple[DecisionValue, Reason, Meter | None]:
        """Rules 3 to 7, for a reader with no pass that unlocks the site."""
        policy = gated.policy
        domains = gated.crawler_claim(user_agent)
        if domains is not None:  # only a view that claims to be a crawler may wait on DNS
            loop = asyncio.get_running_loop()
            started = loop.time()
            if await self._is_crawler(gated, domains, client_ip):
                return "allow", "crawler", None
            # The DNS wait has a budget of its own: it must not leave the store too little time and so
            # have it taken for down. The view waits at most the two budgets together.
            deadline += loop.time() - started
        reason = _let_through(gated, data)
        if reason is not None:
            return "allow", reason, None
        if store_down:  # the pass could not be checked: never wall on doubt
            return "allow", "store_unavailable", None
        meter = None
        if policy.free_views > 0 and data.visitor is not None:
            visitor = data.visitor
            try:
                meter = await self._hot.run(deadline, lambda: self._metering.count(gated.site.id, policy, visitor))
            except StoreUnavailable:
                return "allow", "store_unavailable", None
            if meter.used <= meter.limit:
                return "allow", "metered", meter
            meter = Meter(used=meter.limit, limit=meter.limit, resets_at=meter.resets_at)
        return ("nag" if policy.mode == "soft" else "wall"), "adblock", meter

    async def _is_crawler(self, gated: GatedSite, domains: tuple[str, ...], client_ip: str | None) -> bool:
        """Rule 3, for a User-Agent naming a crawler of ``domains``: its address in the ranges, or checked."""
        if gated.in_crawler_range(client_ip):
            return True
        if gated.policy.crawlers.verify == "user_agent":
            return not gated.crawler_networks
        return await self._crawlers.confirmed(client_ip, domains)

    def _answer(
        self,
        gated: GatedSite,
        data: DecideIn,
        decision: DecisionValue,
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
        self._metrics.decision(gated.site.id, decision, reason)
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


def _let_through(gated: GatedSite, data: DecideIn) -> Reason | None:
    """Rules 4 and 5: no ad blocker seen for sure, or a policy that is off."""
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
