"""Supporters: who has support status, on which tier, until when."""

from __future__ import annotations

import secrets
import unicodedata
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from email_validator import EmailNotValidError, validate_email
from redis.asyncio.client import Pipeline

from supportgate.catalog import stripe_links
from supportgate.catalog.audit import AuditLog
from supportgate.catalog.schemas import Supporter, SupporterIn, SupporterPage, SupporterPatch, SupporterStatus
from supportgate.catalog.tiers import member_key
from supportgate.clock import Clock
from supportgate.errors import BadRequest, Conflict, NotFound
from supportgate.store import Store, begin, names, text, texts
from supportgate.store.cursor import decode_cursor, encode_cursor

__all__ = ["SupporterService", "normalise_email"]

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Supporter).decode
# A filtered listing reads at most this many index entries per request, so a rare filter
# costs a bounded amount; the page may then be short, with a cursor to go on.
_SCAN_BUDGET = 2000
_BATCH = 200


Listener = Callable[[Supporter, Supporter | None], Awaitable[None]]
"""Told ``(before, after)`` once a change to a supporter is stored; ``after`` is None once forgotten."""


def normalise_email(address: str, *, field: str = "email") -> str:
    """The canonical form of an address (NFKC, IDNA domain, lowercase); BadRequest if it is not one.

    NFKC first, so that compatibility forms (U+FF52, a fullwidth r) are the same address as what they
    stand for: one person, one supporter, one sign-in.
    """
    try:
        valid = validate_email(unicodedata.normalize("NFKC", address.strip()), check_deliverability=False)
    except EmailNotValidError as exc:
        raise BadRequest(f"{field}: {address!r} is not an email address ({exc})") from None
    return valid.normalized.lower()


class SupporterService:
    """Grants, changes, lists, revokes and erases supporters."""

    def __init__(self, store: Store, audit: AuditLog, clock: Clock) -> None:
        self._store = store
        self._audit = audit
        self._clock = clock
        self._listeners: list[Listener] = []
        self._grant_listeners: list[Callable[[Supporter], Awaitable[None]]] = []

    def on_grant(self, listener: Callable[[Supporter], Awaitable[None]]) -> None:
        """Have ``listener`` told of every new grant made with ``notify`` (the welcome mail)."""
        self._grant_listeners.append(listener)

    def subscribe(self, listener: Listener) -> None:
        """Have ``listener`` told of every stored change to a supporter (sessions and passes follow)."""
        self._listeners.append(listener)

    async def _changed(self, before: Supporter, after: Supporter | None) -> None:
        for listener in self._listeners:
            await listener(before, after)

    async def announce(self, before: Supporter, after: Supporter) -> None:
        """Tell the listeners of a change stored by another writer (an import), as of now."""
        await self._changed(self._view(before), self._view(after))

    async def welcome(self, supporter: Supporter) -> None:
        """Tell the grant listeners of a new grant stored by another writer (a payment): the welcome mail."""
        for listener in self._grant_listeners:
            await listener(supporter)

    async def note(self, supporter_id: str, *, action: str, actor: str, detail: object = None) -> None:
        """Add an audit entry about a supporter without changing them (an activation code, a sign-out)."""
        now = self._clock()

        async def change(pipe: Pipeline) -> None:
            begin(pipe)
            self._audit.record(pipe, at=now, actor=actor, action=action, target=_target(supporter_id), after=detail)

        await self._store.atomically(change)

    async def create(self, data: SupporterIn, *, actor: str) -> Supporter:
        """Grant support to an address; Conflict naming the holder if it already has it."""
        email = normalise_email(data.email)
        now = self._clock()
        if data.expires_at is not None and data.expires_at <= now:
            raise BadRequest(
                f"expires_at: {data.expires_at.isoformat()} has passed already; "
                "a grant must end in the future (or leave expires_at out for no end)."
            )
        supporter = Supporter(
            id=secrets.token_hex(8),
            email=email,
            tier=data.tier,
            status="active",
            expires_at=data.expires_at,
            created_at=now,
            updated_at=now,
            note=data.note,
        )
        email_key, tier_key = names.email(email), names.tier(data.tier)

        async def change(pipe: Pipeline) -> Supporter:
            await _require_tier(pipe, data.tier)
            await _require_free_email(pipe, email)
            member = member_key(now, supporter.id)
            begin(pipe)
            pipe.set(names.supporter(supporter.id), _encode(supporter))
            pipe.set(email_key, supporter.id)
            pipe.zadd(names.supporters(), {member: 0})
            pipe.zadd(names.tier_members(data.tier), {member: 0})
            self._audit.record(
                pipe, at=now, actor=actor, action="supporter.create", target=_target(supporter.id), after=supporter
            )
            return supporter

        created = await self._store.atomically(change, email_key, tier_key)
        if data.notify:
            for listener in self._grant_listeners:
                await listener(created)
        return created

    async def get(self, supporter_id: str) -> Supporter:
        """One supporter; NotFound if there is none."""
        raw = await self._store.redis.get(names.supporter(supporter_id))
        if raw is None:
            raise NotFound(f"There is no supporter {supporter_id!r}.")
        return self._view(_decode(raw))

    async def find_by_email(self, address: str) -> Supporter | None:
        """The supporter holding an address, if any.

        The store does the same work either way (two reads), so how long this takes does not
        tell whether an address belongs to a supporter.
        """
        redis = self._store.redis
        supporter_id = await redis.get(names.email(normalise_email(address)))
        raw = await redis.get(names.supporter(text(supporter_id) if supporter_id else "-"))
        return self._view(_decode(raw)) if raw is not None and supporter_id else None

    async def update(self, supporter_id: str, patch: SupporterPatch, *, actor: str) -> Supporter:
        """Change the fields given in ``patch``; moving tier or address moves the indexes too."""
        key = names.supporter(supporter_id)
        new_email = normalise_email(patch.email) if isinstance(patch.email, str) else None
        now = self._clock()
        watched = [key]
        if new_email:
            watched.append(names.email(new_email))
        if isinstance(patch.tier, str):
            watched.append(names.tier(patch.tier))

        async def change(pipe: Pipeline) -> tuple[Supporter, Supporter]:
            before = await _read(pipe, supporter_id)
            changes: dict[str, Any] = {
                f: v for f in patch.__struct_fields__ if (v := getattr(patch, f)) is not msgspec.UNSET
            }
            if new_email and new_email != before.email:
                await _require_free_email(pipe, new_email)
                changes["email"] = new_email
            else:
                changes.pop("email", None)
            if "tier" in changes and changes["tier"] != before.tier:
                await _require_tier(pipe, changes["tier"])
            after = msgspec.structs.replace(before, **changes, updated_at=now)
            member = member_key(before.created_at, supporter_id)
            begin(pipe)
            pipe.set(key, _encode(after))
            if after.email != before.email:
                pipe.delete(names.email(before.email))
                pipe.set(names.email(after.email), supporter_id)
            if after.tier != before.tier:
                pipe.zrem(names.tier_members(before.tier), member)
                pipe.zadd(names.tier_members(after.tier), {member: 0})
            self._audit.record(
                pipe,
                at=now,
                actor=actor,
                action="supporter.update",
                target=_target(supporter_id),
                before=before,
                after=after,
            )
            return before, after

        before, after = await self._store.atomically(change, *watched)
        await self._changed(self._view(before), self._view(after))
        return self._view(after)

    async def revoke(self, supporter_id: str, *, actor: str) -> None:
        """End a supporter's status; the record stays, marked ``revoked``."""
        await self.update(supporter_id, SupporterPatch(status="revoked"), actor=actor)

    async def forget(self, supporter_id: str, *, actor: str) -> None:
        """Erase everything stored about the person (a GDPR erasure request).

        The record, its address and index entries go, and the Stripe subscriptions and customers
        linked to it (``stripe_links``), in the same transaction: all are ``{dir}`` keys, one slot.
        Audit entries about it keep only the id.
        """
        key = names.supporter(supporter_id)
        target = _target(supporter_id)
        now = self._clock()
        erased = {"id": supporter_id, "erased": True}
        await stripe_links.index_unindexed_links(self._store, self._audit, actor=actor, at=now)

        async def change(pipe: Pipeline) -> Supporter:
            before = await _read(pipe, supporter_id)
            await pipe.watch(names.audit_target(target))
            rewrites = await self._audit.redactions(pipe, target, erased)
            links = await stripe_links.linked(pipe, supporter_id)
            member = member_key(before.created_at, supporter_id)
            begin(pipe)
            pipe.delete(key)
            pipe.delete(names.email(before.email))
            stripe_links.drop(pipe, supporter_id, links)
            pipe.zrem(names.supporters(), member)
            pipe.zrem(names.tier_members(before.tier), member)
            self._audit.rewrite(pipe, rewrites)
            self._audit.record(pipe, at=now, actor=actor, action="supporter.forget", target=target, after=erased)
            return before

        before = await self._store.atomically(change, key)
        await self._changed(before, None)

    async def page(
        self,
        *,
        tier: str | None,
        status: SupporterStatus | None,
        q: str | None,
        limit: int,
        cursor: str | None,
    ) -> SupporterPage:
        """Supporters newest first, filtered; stable while supporters are added meanwhile."""
        redis = self._store.redis
        if tier is not None and not await redis.exists(names.tier(tier)):
            raise BadRequest(f"tier: there is no tier {tier!r}.")
        index = names.tier_members(tier) if tier else names.supporters()
        needle = q.strip().lower() if q else None
        start = f"({decode_cursor(cursor)}" if cursor else "+"
        items: list[Supporter] = []
        last: str | None = None
        scanned = 0
        exhausted = False
        while len(items) < limit and scanned < _SCAN_BUDGET:
            members = texts(await redis.zrange(index, start, "-", desc=True, bylex=True, offset=0, num=_BATCH))
            if not members:
                exhausted = True
                break
            records = await redis.mget([names.supporter(m.split(":", 1)[1]) for m in members])
            for member, raw in zip(members, records, strict=True):
                scanned += 1
                last = member
                if raw is None:
                    continue
                supporter = self._view(_decode(raw))
                if status and supporter.status != status:
                    continue
                if needle and needle not in supporter.email and needle not in (supporter.note or "").lower():
                    continue
                items.append(supporter)
                if len(items) == limit:
                    break
            start = f"({last}"
        if not exhausted and last is not None:
            exhausted = not await redis.zrange(index, f"({last}", "-", desc=True, bylex=True, offset=0, num=1)
        return SupporterPage(items=items, next_cursor=None if exhausted or last is None else encode_cursor(last))

    def _view(self, supporter: Supporter) -> Supporter:
        """The supporter as of now: an active one past ``expires_at`` reads ``expired``."""
        if supporter.status == "active" and supporter.expires_at and supporter.expires_at <= self._clock():
            return msgspec.structs.replace(supporter, status="expired")
        return supporter


def _target(supporter_id: str) -> str:
    return f"supporter:{supporter_id}"


async def _read(pipe: Pipeline, supporter_id: str) -> Supporter:
    raw = await pipe.get(names.supporter(supporter_id))
    if raw is None:
        raise NotFound(f"There is no supporter {supporter_id!r}.")
    return _decode(raw)


async def _require_tier(pipe: Pipeline, tier_id: str) -> None:
    if not await pipe.exists(names.tier(tier_id)):
        raise BadRequest(f"tier: there is no tier {tier_id!r}; create it first or pick an existing one.")


async def _require_free_email(pipe: Pipeline, email: str) -> None:
    holder = await pipe.get(names.email(email))
    if holder is not None:
        existing = text(holder)
        raise Conflict(
            f"{email} is already a supporter ({existing}); change that supporter instead.",
            existing_supporter=existing,
        )
