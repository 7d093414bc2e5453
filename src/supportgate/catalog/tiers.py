"""Supporter tiers: what a supporter on each is entitled to."""

from __future__ import annotations

from datetime import datetime

import msgspec
from redis.asyncio.client import Pipeline

from supportgate.catalog.audit import AuditLog
from supportgate.catalog.records import create_record
from supportgate.catalog.schemas import Site, Supporter, Tier, TierIn, TierPatch, TierWritten
from supportgate.clock import Clock
from supportgate.errors import BadRequest, Conflict, NotFound
from supportgate.store import Store, begin, names, text, texts

__all__ = ["TierService", "member_key", "with_warnings"]

_encode = msgspec.json.Encoder().encode
_decode_tier = msgspec.json.Decoder(Tier).decode
_decode_supporter = msgspec.json.Decoder(Supporter).decode


def member_key(created_at: datetime, supporter_id: str) -> str:
    """The index member of a supporter: sorts by creation time, then id."""
    return f"{int(created_at.timestamp() * 1000):013d}:{supporter_id}"


def with_warnings(tier: Tier, sites: list[Site]) -> TierWritten:
    """``tier`` with a warning when, while there are sites, none of them unlocks with its entitlements.

    Such a tier is allowed (the site may come later, or its policy change), but it is usually a
    typo (``no_wall`` for ``adblock_ok``): its supporters would still see every wall.
    """
    warnings = []
    unlocking = sorted({site.policy.unlock_entitlement for site in sites})
    if unlocking and not set(tier.entitlements) & set(unlocking):
        warnings.append(
            f"entitlements: none of {tier.entitlements!r} unlocks a site: each site's policy.unlock_entitlement "
            f"is one of {unlocking!r}, so this tier's supporters still see every wall."
        )
    return TierWritten(**msgspec.structs.asdict(tier), warnings=warnings)


class TierService:
    """Creates, reads, changes and removes tiers."""

    def __init__(self, store: Store, audit: AuditLog, clock: Clock) -> None:
        self._store = store
        self._audit = audit
        self._clock = clock

    async def create(self, data: TierIn, *, actor: str) -> Tier:
        """Add a tier; Conflict if the id is taken, or one of its Stripe prices is another tier's."""
        now = self._clock()
        tier = Tier(
            id=data.id,
            name=data.name,
            description=data.description,
            entitlements=_unique(data.entitlements),
            max_devices=data.max_devices,
            pass_ttl_seconds=data.pass_ttl_seconds,
            created_at=now,
            updated_at=now,
            stripe_price_ids=_unique(data.stripe_price_ids),
        )
        if not tier.stripe_price_ids:
            await create_record(
                self._store,
                self._audit,
                kind="tier",
                record_id=data.id,
                record=tier,
                key=names.tier(data.id),
                index=names.tiers(),
                at=now,
                actor=actor,
            )
            return tier
        key = names.tier(data.id)
        price_keys = [names.stripe_price(price) for price in tier.stripe_price_ids]

        async def change(pipe: Pipeline) -> None:
            if await pipe.exists(key):
                raise Conflict(f"A tier with id {data.id!r} already exists.", existing=data.id)
            await _require_free_prices(pipe, data.id, tier.stripe_price_ids)
            begin(pipe)
            pipe.set(key, _encode(tier))
            pipe.zadd(names.tiers(), {data.id: 0})
            for price_key in price_keys:
                pipe.set(price_key, data.id)
            self._audit.record(pipe, at=now, actor=actor, action="tier.create", target=f"tier:{data.id}", after=tier)

        await self._store.atomically(change, key, *price_keys)
        return tier

    async def get(self, tier_id: str) -> Tier:
        """One tier with its supporter count; NotFound if there is none."""
        redis = self._store.redis
        async with redis.pipeline(transaction=False) as pipe:
            pipe.get(names.tier(tier_id))
            pipe.zcard(names.tier_members(tier_id))
            raw, count = await pipe.execute()
        if raw is None:
            raise NotFound(f"There is no tier {tier_id!r}.")
        return msgspec.structs.replace(_decode_tier(raw), supporters=count)

    async def list(self) -> list[Tier]:
        """Every tier, by id."""
        redis = self._store.redis
        ids = texts(await redis.zrange(names.tiers(), 0, -1))
        if not ids:
            return []
        async with redis.pipeline(transaction=False) as pipe:
            for tier_id in ids:
                pipe.get(names.tier(tier_id))
                pipe.zcard(names.tier_members(tier_id))
            replies = await pipe.execute()
        return [
            msgspec.structs.replace(_decode_tier(raw), supporters=count)
            for raw, count in zip(replies[::2], replies[1::2], strict=True)
            if raw is not None
        ]

    async def exists(self, tier_id: str) -> bool:
        """Whether a tier with this id exists."""
        return bool(await self._store.redis.exists(names.tier(tier_id)))

    async def update(self, tier_id: str, patch: TierPatch, *, actor: str) -> Tier:
        """Change the fields given in ``patch``."""
        key = names.tier(tier_id)
        now = self._clock()
        prices = _unique(patch.stripe_price_ids) if isinstance(patch.stripe_price_ids, list) else None
        price_keys = [names.stripe_price(price) for price in prices or ()]

        async def change(pipe: Pipeline) -> Tier:
            before = await _read(pipe, tier_id)
            changes = {f: v for f in patch.__struct_fields__ if (v := getattr(patch, f)) is not msgspec.UNSET}
            if "entitlements" in changes:
                changes["entitlements"] = _unique(changes["entitlements"])
            if prices is not None:
                changes["stripe_price_ids"] = prices
                await _require_free_prices(pipe, tier_id, prices)
            after = msgspec.structs.replace(before, **changes, updated_at=now)
            begin(pipe)
            pipe.set(key, _encode(after))
            for price in set(before.stripe_price_ids) - set(after.stripe_price_ids):
                pipe.delete(names.stripe_price(price))
            for price in after.stripe_price_ids:
                pipe.set(names.stripe_price(price), tier_id)
            self._audit.record(
                pipe, at=now, actor=actor, action="tier.update", target=f"tier:{tier_id}", before=before, after=after
            )
            return after

        tier = await self._store.atomically(change, key, *price_keys)
        return msgspec.structs.replace(tier, supporters=await self._store.redis.zcard(names.tier_members(tier_id)))

    async def delete(self, tier_id: str, *, move_to: str | None, actor: str) -> None:
        """Remove a tier; with ``move_to``, first move its supporters there, in the same step."""
        if move_to == tier_id:
            raise BadRequest(f"move_to: cannot move supporters to the tier being deleted ({tier_id!r}).")
        members_key = names.tier_members(tier_id)
        watched = [names.tier(tier_id), members_key]
        if move_to is not None:
            watched += [names.tier(move_to), names.tier_members(move_to)]
        now = self._clock()

        async def change(pipe: Pipeline) -> None:
            before = await _read(pipe, tier_id)
            if move_to is not None and not await pipe.exists(names.tier(move_to)):
                raise BadRequest(f"move_to: there is no tier {move_to!r} to move the supporters to.")
            members = texts(await pipe.zrange(members_key, 0, -1))
            if members and move_to is None:
                raise Conflict(
                    f"Tier {tier_id!r} still has {len(members)} supporter(s); "
                    "move them first or pass ?move_to=<tier> to move them as it is deleted.",
                    supporters=len(members),
                )
            supporter_keys = [names.supporter(m.split(":", 1)[1]) for m in members]
            if supporter_keys:
                await pipe.watch(*supporter_keys)
            records = await pipe.mget(supporter_keys) if supporter_keys else []
            begin(pipe)
            for skey, raw in zip(supporter_keys, records, strict=True):
                if raw is not None:
                    pipe.set(
                        skey, _encode(msgspec.structs.replace(_decode_supporter(raw), tier=move_to, updated_at=now))
                    )
            if members and move_to is not None:
                pipe.zadd(names.tier_members(move_to), dict.fromkeys(members, 0))
            pipe.delete(names.tier(tier_id), members_key, *map(names.stripe_price, before.stripe_price_ids))
            pipe.zrem(names.tiers(), tier_id)
            self._audit.record(
                pipe,
                at=now,
                actor=actor,
                action="tier.delete",
                target=f"tier:{tier_id}",
                before=before,
                after={"moved_supporters": len(members), "move_to": move_to} if members else None,
            )

        await self._store.atomically(change, *watched)


async def _read(pipe: Pipeline, tier_id: str) -> Tier:
    raw = await pipe.get(names.tier(tier_id))
    if raw is None:
        raise NotFound(f"There is no tier {tier_id!r}.")
    return _decode_tier(raw)


async def _require_free_prices(pipe: Pipeline, tier_id: str, prices: list[str]) -> None:
    """Conflict naming the first of ``prices`` that another tier has; call while watching their keys."""
    if not prices:
        return
    holders = await pipe.mget([names.stripe_price(price) for price in prices])
    for price, holder in zip(prices, holders, strict=True):
        if holder is not None and text(holder) != tier_id:
            raise Conflict(
                f"stripe_price_ids: the Stripe price {price!r} already grants tier {text(holder)!r}; "
                "a price grants one tier at most, so remove it there first.",
                price=price,
                tier=text(holder),
            )


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
