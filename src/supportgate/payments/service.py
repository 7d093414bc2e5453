"""Payments: Stripe events applied to supporters, once each, in the order Stripe made them.

Each event is one transaction over the catalog's ``{dir}`` keys (``Store.atomically``): the
event id, the subscription's last applied ``created``, the supporter, the email index and the
tier indexes change together or not at all, with the audit entry (actor ``stripe``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import msgspec
from redis.asyncio.client import Pipeline

from supportgate.catalog import stripe_links
from supportgate.catalog.audit import AuditLog
from supportgate.catalog.schemas import Supporter
from supportgate.catalog.stripe_links import Held
from supportgate.catalog.supporters import SupporterService, normalise_email
from supportgate.catalog.tiers import member_key
from supportgate.clock import Clock
from supportgate.errors import BadRequest
from supportgate.payments.events import HANDLED_TYPES, Line, Link, Payment, StripeEvent, SubscriptionChange, read_event
from supportgate.payments.schemas import Receipt
from supportgate.store import Store, begin, names, text

__all__ = ["ACTOR", "EVENT_MEMORY", "PaymentService"]

ACTOR: Final = "stripe"
"""The actor of every audit entry a Stripe event writes."""
EVENT_MEMORY: Final = timedelta(days=30)
"""How long an applied event's id is kept: Stripe stops redelivering an event after three days."""

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Supporter).decode


@dataclass(frozen=True, slots=True)
class _Outcome:
    receipt: Receipt
    before: Supporter | None = None
    after: Supporter | None = None


class PaymentService:
    """Applies Stripe events: grants, extends, moves and ends supporters' support."""

    def __init__(
        self,
        store: Store,
        audit: AuditLog,
        supporters: SupporterService,
        clock: Clock,
        *,
        grace: timedelta,
        one_off: timedelta,
    ) -> None:
        self._store = store
        self._audit = audit
        self._supporters = supporters
        self._clock = clock
        self._grace = grace
        self._one_off = one_off

    async def apply(self, event: StripeEvent) -> Receipt:
        """Apply ``event`` once; a redelivery, an older event, or one about nothing known writes nothing."""
        if event.type not in HANDLED_TYPES:
            return _unchanged(f"{event.type} is not an event supportgate acts on.")
        intent = read_event(event.type, event.data.object)
        if intent is None:
            return _unchanged("The event asks for nothing supportgate does (not paid, or no price).")
        email = None if isinstance(intent, SubscriptionChange) else intent.email
        try:
            address = normalise_email(email) if email else None
        except BadRequest:
            return _unchanged("The event's email address is not one supportgate can grant to.")
        outcome = await self._store.atomically(
            lambda pipe: self._change(pipe, event, intent, address), *_watched(event, intent, address)
        )
        if outcome.after is not None:
            if outcome.before is None:
                await self._supporters.welcome(outcome.after)
            else:
                await self._supporters.announce(outcome.before, outcome.after)
        return outcome.receipt

    async def _change(
        self, pipe: Pipeline, event: StripeEvent, intent: Payment | Link | SubscriptionChange, address: str | None
    ) -> _Outcome:
        if await pipe.exists(names.stripe_event(event.id)):
            return _Outcome(_unchanged("This event was applied already; nothing changed."))
        subscription = intent.subscription
        known: dict[str, str] = {}
        if subscription:
            stored = await pipe.hgetall(names.stripe_subscription(subscription))
            known = {text(field): text(value) for field, value in stored.items()}
        if int(known.get("applied", "0")) > event.created:
            return _Outcome(_unchanged("A newer event about this subscription was applied; this one is older."))
        supporter = await self._holder(pipe, address, known.get("supporter"), intent.customer)
        links = await stripe_links.held(
            pipe, subscription=subscription, customer=intent.customer, subscription_holder=known.get("supporter")
        )
        if isinstance(intent, Link):
            return await self._link(pipe, event, links, supporter)
        if isinstance(intent, Payment):
            return await self._pay(pipe, event, intent, links, address, supporter)
        return await self._subscription_changed(pipe, event, intent, links, supporter)

    async def _holder(
        self, pipe: Pipeline, address: str | None, by_subscription: str | None, customer: str | None
    ) -> Supporter | None:
        """The supporter the event is about: by address, else by the subscription, else by the customer."""
        supporter_id = None
        if address:
            supporter_id = await pipe.get(names.email(address))
        if supporter_id is None and by_subscription:
            supporter_id = by_subscription
        if supporter_id is None and customer:
            supporter_id = await pipe.get(names.stripe_customer(customer))
        if supporter_id is None:
            return None
        key = names.supporter(text(supporter_id))
        await pipe.watch(key)
        raw = await pipe.get(key)
        return _decode(raw) if raw is not None else None

    async def _link(self, pipe: Pipeline, event: StripeEvent, links: Held, supporter: Supporter | None) -> _Outcome:
        if supporter is None:
            return _Outcome(_unchanged("No supporter has this address yet; the subscription's invoice grants."))
        begin(pipe)
        self._remember(pipe, event, supporter.id, links, changed=False)
        self._audit.record(
            pipe,
            at=self._clock(),
            actor=ACTOR,
            action="supporter.stripe-link",
            target=f"supporter:{supporter.id}",
            after={"stripe_event": _about(event), "subscription": links.subscription, "customer": links.customer},
        )
        return _Outcome(_applied("The subscription is linked to its supporter."))

    async def _pay(
        self,
        pipe: Pipeline,
        event: StripeEvent,
        intent: Payment,
        links: Held,
        address: str | None,
        supporter: Supporter | None,
    ) -> _Outcome:
        tiers = await pipe.mget([names.stripe_price(line.price) for line in intent.lines])
        paid = [(line, text(tier)) for line, tier in zip(intent.lines, tiers, strict=True) if tier is not None]
        if not paid:
            return _Outcome(_unchanged("No tier has the price paid for; nothing changed."))
        # The line paying for the latest period counts; of lines ending together, the last one.
        _, line, tier = max(
            ((index, line, tier) for index, (line, tier) in enumerate(paid)),
            key=lambda found: (found[1].period_end.timestamp() if found[1].period_end else 0, found[0]),
        )
        now = self._clock()
        if supporter is None:
            if address is None:
                return _Outcome(_unchanged("The payment names no email address to grant to."))
            return self._grant(pipe, event, links, address, tier, self._paid_until(line, None, now), now)
        until = None if supporter.expires_at is None else self._paid_until(line, supporter.expires_at, now)
        return self._change_supporter(pipe, event, supporter, tier=tier, expires_at=until, links=links)

    def _paid_until(self, line: Line, current: datetime | None, now: datetime) -> datetime:
        """The end of support a payment gives: period end plus grace, or one-off days past now or ``current``."""
        if line.period_end is not None:
            end = line.period_end + self._grace
            return max(end, current) if current else end
        return max(now, current or now) + self._one_off

    def _grant(
        self,
        pipe: Pipeline,
        event: StripeEvent,
        links: Held,
        address: str,
        tier: str,
        until: datetime,
        now: datetime,
    ) -> _Outcome:
        if until <= now:
            return _Outcome(_unchanged("The period paid for is over; nothing granted."))
        supporter = Supporter(
            id=secrets.token_hex(8),
            email=address,
            tier=tier,
            status="active",
            expires_at=until,
            created_at=now,
            updated_at=now,
        )
        member = member_key(now, supporter.id)
        begin(pipe)
        pipe.set(names.supporter(supporter.id), _encode(supporter))
        pipe.set(names.email(address), supporter.id)
        pipe.zadd(names.supporters(), {member: 0})
        pipe.zadd(names.tier_members(tier), {member: 0})
        self._remember(pipe, event, supporter.id, links, changed=True)
        self._audit.record(
            pipe,
            at=now,
            actor=ACTOR,
            action="supporter.create",
            target=f"supporter:{supporter.id}",
            after=_with_event(supporter, event),
        )
        return _Outcome(_applied(f"Granted tier {tier!r}."), None, supporter)

    async def _subscription_changed(
        self,
        pipe: Pipeline,
        event: StripeEvent,
        intent: SubscriptionChange,
        links: Held,
        supporter: Supporter | None,
    ) -> _Outcome:
        if supporter is None:
            return _Outcome(_unchanged("No supporter pays through this subscription; nothing changed."))
        tiers = await pipe.mget([names.stripe_price(price) for price in intent.prices]) if intent.prices else []
        tier = next((text(found) for found in tiers if found is not None), supporter.tier)
        expires_at = intent.ends_at if intent.ends_at is not None else supporter.expires_at
        return self._change_supporter(pipe, event, supporter, tier=tier, expires_at=expires_at, links=links)

    def _change_supporter(
        self,
        pipe: Pipeline,
        event: StripeEvent,
        before: Supporter,
        *,
        tier: str,
        expires_at: datetime | None,
        links: Held,
    ) -> _Outcome:
        now = self._clock()
        after = msgspec.structs.replace(before, tier=tier, expires_at=expires_at, updated_at=now)
        changed = (after.tier, after.expires_at) != (before.tier, before.expires_at)
        begin(pipe)
        self._remember(pipe, event, before.id, links, changed=changed)
        if not changed:
            return _Outcome(_unchanged("The supporter already has what the event says."))
        pipe.set(names.supporter(before.id), _encode(after))
        if after.tier != before.tier:
            member = member_key(before.created_at, before.id)
            pipe.zrem(names.tier_members(before.tier), member)
            pipe.zadd(names.tier_members(after.tier), {member: 0})
        self._audit.record(
            pipe,
            at=now,
            actor=ACTOR,
            action="supporter.update",
            target=f"supporter:{before.id}",
            before=before,
            after=_with_event(after, event),
        )
        return _Outcome(_applied(_said(before, after)), before, after)

    def _remember(
        self,
        pipe: Pipeline,
        event: StripeEvent,
        supporter_id: str,
        links: Held,
        *,
        changed: bool,
    ) -> None:
        """Queue the event's id, and which supporter its subscription and customer pay for, with their index.

        The supporter's index of their links (``catalog/stripe_links.py``) is what erasure deletes them by.
        Only an event that ``changed`` the supporter sets the subscription's order: one that changed
        nothing (a link, a repeat) must not make an older event that does change something look stale.
        """
        pipe.set(names.stripe_event(event.id), event.type, ex=EVENT_MEMORY)
        if links.subscription:
            pipe.hset(
                names.stripe_subscription(links.subscription),
                mapping={"supporter": supporter_id, **({"applied": str(event.created)} if changed else {})},
            )
        if links.customer:
            pipe.set(names.stripe_customer(links.customer), supporter_id)
        stripe_links.relink(pipe, links, supporter_id)


def _watched(event: StripeEvent, intent: Payment | Link | SubscriptionChange, address: str | None) -> list[str]:
    keys = [names.stripe_event(event.id)]
    if intent.subscription:
        keys.append(names.stripe_subscription(intent.subscription))
    if intent.customer:
        keys.append(names.stripe_customer(intent.customer))
    if address:
        keys.append(names.email(address))
    prices = [line.price for line in intent.lines] if isinstance(intent, Payment) else []
    if isinstance(intent, SubscriptionChange):
        prices = list(intent.prices)
    keys.extend(names.stripe_price(price) for price in prices)
    return keys


def _unchanged(why: str) -> Receipt:
    return Receipt(received=True, handled=False, detail=why)


def _applied(what: str) -> Receipt:
    return Receipt(received=True, handled=True, detail=what)


def _about(event: StripeEvent) -> dict[str, str]:
    return {"id": event.id, "type": event.type}


def _with_event(supporter: Supporter, event: StripeEvent) -> dict[str, Any]:
    """The supporter as the audit shows it, with the event that changed it (its id and type, nothing of the card)."""
    plain: dict[str, Any] = msgspec.to_builtins(supporter)
    return {**plain, "stripe_event": _about(event)}


def _said(before: Supporter, after: Supporter) -> str:
    parts = []
    if after.tier != before.tier:
        parts.append(f"moved to tier {after.tier!r}")
    if after.expires_at != before.expires_at:
        parts.append(f"support ends {after.expires_at.isoformat() if after.expires_at else 'never'}")
    return f"The supporter was {' and '.join(parts)}." if parts else "Nothing changed."
