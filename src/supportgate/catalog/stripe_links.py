"""Which supporter each Stripe subscription and customer pays for, and each supporter's index of them.

A Stripe event that names a supporter links its subscription (``names.stripe_subscription``, a hash
with ``supporter``) and its customer (``names.stripe_customer``) to them, and in the same
transaction lists both in the supporter's index (``names.stripe_links``, members
``subscription:<id>`` and ``customer:<id>``); a link that moves to another supporter leaves the
former one's index. Erasure reads the index (:func:`linked`) and deletes the links with the rest
of the person (:func:`drop`), in its one transaction: every key here is under the catalog's
``{dir}`` tag, like the supporter's own, so that is one slot on a cluster too.

Links written before the index existed are indexed once (:func:`index_unindexed_links`): each
erasure runs it before its transaction until one has been through them all, and only then goes by
the index alone.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from redis.asyncio.client import Pipeline

from supportgate.catalog.audit import AuditLog
from supportgate.store import Store, begin, names, text, texts

__all__ = ["Held", "drop", "held", "index_unindexed_links", "linked", "relink"]

_SUBSCRIPTION: Final = "subscription"
_CUSTOMER: Final = "customer"


@dataclass(frozen=True, slots=True)
class Held:
    """An event's subscription and customer, and whom each is linked to before the event (index member → id)."""

    subscription: str | None
    customer: str | None
    holders: dict[str, str]


async def held(
    pipe: Pipeline, *, subscription: str | None, customer: str | None, subscription_holder: str | None
) -> Held:
    """Read whom the customer is linked to (the subscription's holder the caller read already).

    The caller watches both link keys: a link changed meanwhile runs its transaction again.
    """
    holders: dict[str, str] = {}
    if subscription and subscription_holder:
        holders[_member(_SUBSCRIPTION, subscription)] = subscription_holder
    if customer:
        holder = await pipe.get(names.stripe_customer(customer))
        if holder is not None:
            holders[_member(_CUSTOMER, customer)] = text(holder)
    return Held(subscription, customer, holders)


def relink(pipe: Pipeline, links: Held, supporter_id: str) -> None:
    """Queue the index side of linking ``links`` to ``supporter_id``: theirs gains them, a former holder's loses them.

    The caller queues the links themselves in the same transaction.
    """
    members = [
        _member(kind, stripe_id)
        for kind, stripe_id in ((_SUBSCRIPTION, links.subscription), (_CUSTOMER, links.customer))
        if stripe_id
    ]
    if not members:
        return
    pipe.sadd(names.stripe_links(supporter_id), *members)
    for member in members:
        former = links.holders.get(member)
        if former is not None and former != supporter_id:
            pipe.srem(names.stripe_links(former), member)


async def linked(pipe: Pipeline, supporter_id: str) -> list[str]:
    """The keys of the links that name ``supporter_id``, read (and watched) before the transaction's writes."""
    index = names.stripe_links(supporter_id)
    await pipe.watch(index)
    keys = []
    for member in sorted(texts(await pipe.smembers(index))):
        key = _key(member)
        if key is None:
            continue
        await pipe.watch(key)
        if await _holder(pipe, key) == supporter_id:
            keys.append(key)
    return keys


def drop(pipe: Pipeline, supporter_id: str, keys: list[str]) -> None:
    """Queue the deletion of a supporter's links (from :func:`linked`) and of their index."""
    pipe.delete(names.stripe_links(supporter_id), *keys)


async def index_unindexed_links(store: Store, audit: AuditLog, *, actor: str, at: datetime) -> None:
    """Once per store: index every link written before the index existed; delete those whose supporter is gone.

    A link whose supporter is gone was left by an erasure from before the index: it names an erased
    person, so it goes. Each link is one transaction watching it and its supporter, so a payment or
    an erasure meanwhile is seen. The SCAN is bounded to the two link prefixes and runs until it
    has been through them once (``names.stripe_links_indexed``, set with an audit entry
    ``stripe.links-indexed`` counting what was done, when it did anything); from then on, every
    link is written with its index entry.
    """
    redis = store.redis
    if await redis.exists(names.stripe_links_indexed()):
        return
    found: list[str] = []
    for pattern in (names.stripe_subscription("*"), names.stripe_customer("*")):
        found.extend([text(key) async for key in redis.scan_iter(match=pattern, count=1000)])
    counts = {"indexed": 0, "dropped": 0}
    for key in found:
        done_with = await store.atomically(functools.partial(_index_one, key=key), key)
        if done_with is not None:
            counts[done_with] += 1

    async def done(pipe: Pipeline) -> None:
        begin(pipe)
        pipe.set(names.stripe_links_indexed(), at.isoformat())
        if any(counts.values()):
            audit.record(pipe, at=at, actor=actor, action="stripe.links-indexed", target="stripe", after=counts)

    await store.atomically(done, names.stripe_links_indexed())


async def _index_one(pipe: Pipeline, *, key: str) -> str | None:
    """Index one link under its supporter (``indexed``), or delete it if they are gone (``dropped``)."""
    member = _member_of(key)
    holder = await _holder(pipe, key)
    if member is None or holder is None:
        return None
    supporter_key = names.supporter(holder)
    await pipe.watch(supporter_key)
    exists = await pipe.exists(supporter_key)
    begin(pipe)
    if exists:
        pipe.sadd(names.stripe_links(holder), member)
        return "indexed"
    pipe.delete(key)
    return "dropped"


async def _holder(pipe: Pipeline, key: str) -> str | None:
    """The supporter id a link key names: a subscription's ``supporter`` field, a customer's value."""
    if key.startswith(names.stripe_subscription("")):
        found = await pipe.hget(key, "supporter")
    else:
        found = await pipe.get(key)
    return text(found) if found is not None else None


def _member(kind: str, stripe_id: str) -> str:
    return f"{kind}:{stripe_id}"


def _key(member: str) -> str | None:
    kind, _, stripe_id = member.partition(":")
    if kind == _SUBSCRIPTION:
        return names.stripe_subscription(stripe_id)
    if kind == _CUSTOMER:
        return names.stripe_customer(stripe_id)
    return None


def _member_of(key: str) -> str | None:
    for kind, prefix in ((_SUBSCRIPTION, names.stripe_subscription("")), (_CUSTOMER, names.stripe_customer(""))):
        if key.startswith(prefix):
            return _member(kind, key.removeprefix(prefix))
    return None
