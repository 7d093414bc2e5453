"""Rotating the signing keys, from the admin API or the CLI, with the audit entry that records it."""

from __future__ import annotations

from datetime import timedelta

import msgspec
from redis.asyncio.client import Pipeline

from supportgate.catalog.audit import AuditLog
from supportgate.catalog.tiers import TierService
from supportgate.clock import Clock
from supportgate.store import Store, begin
from supportgate.tokens.lifetimes import ACCESS_LIFETIME
from supportgate.tokens.signing_keys import KeyState, SigningKeys

__all__ = ["KeyRotation", "KeySet"]


class KeySet(msgspec.Struct):
    """The signing keys: ``next`` (published, not signing yet), ``active`` (signing), ``retiring``."""

    keys: list[KeyState]


class KeyRotation:
    """Rotates signing keys, keeping retired ones published as long as any token they signed lives."""

    def __init__(self, store: Store, keys: SigningKeys, tiers: TierService, audit: AuditLog, clock: Clock) -> None:
        self._store = store
        self._keys = keys
        self._tiers = tiers
        self._audit = audit
        self._clock = clock

    async def describe(self) -> KeySet:
        """The key set as it stands."""
        return KeySet(keys=await self._keys.describe())

    async def rotate(self, *, force: bool, actor: str) -> KeySet:
        """Promote the published ``next`` key to signing; refuse if it is too new, unless ``force``."""
        longest = max([ACCESS_LIFETIME, *(timedelta(seconds=t.pass_ttl_seconds) for t in await self._tiers.list())])
        before = await self._keys.describe()
        after = await self._keys.rotate(longest, force=force)
        now = self._clock()

        async def change(pipe: Pipeline) -> None:
            begin(pipe)
            self._audit.record(
                pipe,
                at=now,
                actor=actor,
                action="signing-keys.rotate",
                target="signing-keys",
                before=KeySet(keys=before),
                after=KeySet(keys=after),
            )

        await self._store.atomically(change)
        return KeySet(keys=after)
