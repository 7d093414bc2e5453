"""What a Stripe event asks of supportgate, read from Stripe's documented shapes.

Stripe's API versions put the same facts in different places: a price id is ``price.id`` on
an invoice line or subscription item (``plan.id`` on the oldest), and
``pricing.price_details.price`` on invoice lines from 2025-03-31 ("basil") on; an invoice's
subscription is ``subscription`` before basil and ``parent.subscription_details.subscription``
(``parent.subscription_item_details.subscription`` on a line) after; a subscription's period end
is ``current_period_end`` before basil and ``items.data[].current_period_end`` after. Every
reader here accepts each of them. Nothing here touches the store or the network.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import msgspec

__all__ = [
    "ENDED_STATUSES",
    "HANDLED_TYPES",
    "Intent",
    "Line",
    "Link",
    "Payment",
    "StripeEvent",
    "SubscriptionChange",
    "read_event",
]

HANDLED_TYPES: Final = (
    "checkout.session.completed",
    "invoice.paid",
    "invoice.payment_succeeded",
    "customer.subscription.updated",
    "customer.subscription.deleted",
)
"""The event types supportgate acts on; any other is answered ``handled: false`` with nothing written."""

ENDED_STATUSES: Final = frozenset({"unpaid", "canceled", "incomplete_expired"})
"""The subscription statuses after which support ends at the end of the period paid for."""

_ONE_OFF_OR_SUBSCRIPTION: Final = frozenset({"payment", "subscription"})


class EventData(msgspec.Struct):
    """``data`` of a Stripe event: the object the event is about."""

    object: dict[str, Any]


class StripeEvent(msgspec.Struct):
    """A Stripe event as it arrives (its other fields are not read)."""

    id: str
    type: str
    created: int
    data: EventData


@dataclass(frozen=True, slots=True)
class Line:
    """A price paid for and, for a subscription, the end of the period it pays (None: a one-off payment)."""

    price: str
    period_end: datetime | None


@dataclass(frozen=True, slots=True)
class Payment:
    """Money received from ``email`` for one of ``lines``: grant or extend the tier of the price."""

    email: str | None
    lines: tuple[Line, ...]
    subscription: str | None
    customer: str | None


@dataclass(frozen=True, slots=True)
class Link:
    """A paid subscription checkout whose period is not in the event: remember who pays for it, grant nothing yet."""

    email: str
    subscription: str
    customer: str | None


@dataclass(frozen=True, slots=True)
class SubscriptionChange:
    """A subscription's prices now, and when support ends if it has ended (None: it goes on)."""

    subscription: str
    customer: str | None
    prices: tuple[str, ...]
    ends_at: datetime | None


Intent = Payment | Link | SubscriptionChange
"""What an event asks for."""


def read_event(event_type: str, obj: dict[str, Any]) -> Intent | None:
    """What an event of ``event_type`` about ``obj`` asks for; None when it asks for nothing supportgate does."""
    if event_type == "checkout.session.completed":
        return _checkout(obj)
    if event_type in {"invoice.paid", "invoice.payment_succeeded"}:
        return _invoice(obj)
    if event_type in {"customer.subscription.updated", "customer.subscription.deleted"}:
        return _subscription(obj, deleted=event_type == "customer.subscription.deleted")
    return None


def _checkout(session: dict[str, Any]) -> Intent | None:
    """A completed Checkout Session, when paid: one-off grants now, a subscription waits for its invoice.

    Stripe leaves ``line_items`` out of the event; the price is read from them when present, else
    from the session's ``metadata.price_id``.
    """
    mode = _text(session, "mode")
    email = _text(session, "customer_details", "email") or _text(session, "customer_email")
    if _text(session, "payment_status") != "paid" or mode not in _ONE_OFF_OR_SUBSCRIPTION or email is None:
        return None
    customer = _ref(session, "customer")
    subscription = _ref(session, "subscription")
    prices = [price for item in _list(session, "line_items") if (price := _price(item))]
    if not prices and (named := _text(session, "metadata", "price_id")):
        prices = [named]
    if mode == "payment":
        return Payment(email, tuple(Line(price, None) for price in prices), None, customer) if prices else None
    if subscription is None:
        return None
    expanded = session.get("subscription")
    if isinstance(expanded, dict):
        period_end = _period_end(expanded)
        prices = prices or [price for item in _list(expanded, "items") if (price := _price(item))]
        if period_end is not None and prices:
            return Payment(email, tuple(Line(price, period_end) for price in prices), subscription, customer)
    return Link(email, subscription, customer)


def _invoice(invoice: dict[str, Any]) -> Payment | None:
    """A paid invoice: each line's price, paid until the line's period ends.

    A credit line (a negative amount: the unused time of the price left, when a plan changes) pays
    for nothing and is skipped.
    """
    lines = tuple(
        Line(price, _time(line, "period", "end"))
        for line in _list(invoice, "lines")
        if (price := _price(line)) and not _credit(line)
    )
    subscription = (
        _ref(invoice, "subscription")
        or _text(invoice, "parent", "subscription_details", "subscription")
        or next((found for line in _list(invoice, "lines") if (found := _line_subscription(line))), None)
    )
    if not lines:
        return None
    return Payment(_text(invoice, "customer_email"), lines, subscription, _ref(invoice, "customer"))


def _subscription(subscription: dict[str, Any], *, deleted: bool) -> SubscriptionChange | None:
    subscription_id = _text(subscription, "id")
    if subscription_id is None:
        return None
    ended = deleted or _text(subscription, "status") in ENDED_STATUSES
    ends_at = (_period_end(subscription) or _time(subscription, "ended_at")) if ended else None
    if ended and ends_at is None:
        return None
    prices = tuple(price for item in _list(subscription, "items") if (price := _price(item)))
    return SubscriptionChange(subscription_id, _ref(subscription, "customer"), prices, ends_at)


def _period_end(subscription: dict[str, Any]) -> datetime | None:
    """The end of a subscription's current period: on the subscription before basil, the latest item's after."""
    ends = [end for item in _list(subscription, "items") if (end := _time(item, "current_period_end"))]
    top = _time(subscription, "current_period_end")
    return max([*ends, *([top] if top else [])], default=None)


def _price(item: dict[str, Any]) -> str | None:
    """The price id of an invoice line, a subscription item or a Checkout line item, wherever its version puts it."""
    return _ref(item, "price") or _ref(item, "pricing", "price_details", "price") or _ref(item, "plan")


def _credit(line: dict[str, Any]) -> bool:
    amount = line.get("amount")
    return isinstance(amount, int) and amount < 0


def _line_subscription(line: dict[str, Any]) -> str | None:
    return _ref(line, "subscription") or _text(line, "parent", "subscription_item_details", "subscription")


def _at(obj: object, path: tuple[str, ...]) -> object:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _text(obj: dict[str, Any], *path: str) -> str | None:
    value = _at(obj, path)
    return value if isinstance(value, str) and value else None


def _ref(obj: dict[str, Any], *path: str) -> str | None:
    """An id Stripe sends either as a string or, expanded, as the object that has it."""
    value = _at(obj, path)
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _time(obj: dict[str, Any], *path: str) -> datetime | None:
    value = _at(obj, path)
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 253_402_300_800:
        return datetime.fromtimestamp(value, UTC)
    return None


def _list(obj: dict[str, Any], *path: str) -> list[dict[str, Any]]:
    """The items of a Stripe list object (``{"object": "list", "data": [...]}``) at ``path``."""
    value = _at(obj, (*path, "data"))
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []
