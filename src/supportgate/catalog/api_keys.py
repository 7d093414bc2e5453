"""API keys: admin keys and site keys. A key is shown once; only its SHA-256 is stored.

A key reads ``sga_<id>_<secret>`` (admin) or ``sgs_<id>_<secret>`` (site): the id finds the
record in one lookup, the secret is compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Literal

import msgspec
from redis.asyncio.client import Pipeline

from supportgate.catalog.audit import AuditLog
from supportgate.catalog.schemas import KeyCreated
from supportgate.clock import Clock
from supportgate.errors import NotFound
from supportgate.store import Store, begin, names, text

__all__ = ["ApiKeys", "ValidKey"]

Kind = Literal["admin", "site"]
_PREFIX: dict[Kind, str] = {"admin": "sga", "site": "sgs"}
_HASH_KEY: dict[Kind, str] = {"admin": names.admin_keys(), "site": names.site_keys()}


class _StoredApiKey(msgspec.Struct):
    name: str
    hash: str
    created_at: str
    site: str | None = None


class ValidKey(msgspec.Struct, frozen=True):
    """A key that checked out: its id, the name it was made with, and its site (site keys)."""

    id: str
    name: str
    site: str | None = None

    @property
    def actor(self) -> str:
        """The audit log's name for whoever used this key."""
        return f"{'site' if self.site else 'admin'}:{self.name}"


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(_StoredApiKey).decode


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKeys:
    """Makes and checks admin and site keys."""

    def __init__(self, store: Store, audit: AuditLog, clock: Clock) -> None:
        self._store = store
        self._audit = audit
        self._clock = clock

    async def create(self, kind: Kind, *, name: str, actor: str, site: str | None = None) -> KeyCreated:
        """Make a key; the returned ``key`` is the only time its secret is seen."""
        key_id = secrets.token_hex(6)
        secret = secrets.token_hex(24)
        now = self._clock()
        stored = _StoredApiKey(name=name, hash=_digest(secret), created_at=now.isoformat(), site=site)
        created = KeyCreated(id=key_id, name=name, key=f"{_PREFIX[kind]}_{key_id}_{secret}", created_at=now, site=site)
        watched = [names.site(site)] if site else []

        async def change(pipe: Pipeline) -> KeyCreated:
            if site is not None and not await pipe.exists(names.site(site)):
                raise NotFound(f"There is no site {site!r}.")
            begin(pipe)
            pipe.hset(_HASH_KEY[kind], key_id, _encode(stored))
            target = f"site:{site}" if site else f"admin-key:{key_id}"
            audited = {"id": key_id, "name": name, "kind": kind}
            self._audit.record(pipe, at=now, actor=actor, action=f"{kind}-key.create", target=target, after=audited)
            return created

        return await self._store.atomically(change, *watched)

    async def revoke_named(self, kind: Kind, name: str, *, actor: str) -> int:
        """Remove every key of ``kind`` with this name; return how many went."""
        hash_key = _HASH_KEY[kind]
        now = self._clock()

        async def change(pipe: Pipeline) -> int:
            stored = await pipe.hgetall(hash_key)
            doomed = [text(kid) for kid, raw in stored.items() if _decode(raw).name == name]
            begin(pipe)
            for key_id in doomed:
                pipe.hdel(hash_key, key_id)
                audited = {"id": key_id, "name": name, "kind": kind}
                self._audit.record(
                    pipe,
                    at=now,
                    actor=actor,
                    action=f"{kind}-key.revoke",
                    target=f"{kind}-key:{key_id}",
                    before=audited,
                )
            return len(doomed)

        return await self._store.atomically(change, hash_key)

    async def check(self, kind: Kind, presented: str) -> ValidKey | None:
        """The key record behind a presented key of ``kind``, or None if it is not a valid one."""
        prefix, _, rest = presented.partition("_")
        key_id, _, secret = rest.partition("_")
        if prefix != _PREFIX[kind] or not key_id or not secret or len(presented) > 200:
            return None
        raw = await self._store.redis.hget(_HASH_KEY[kind], key_id)
        if raw is None:
            return None
        stored = _decode(raw)
        if not hmac.compare_digest(stored.hash, _digest(secret)):
            return None
        return ValidKey(id=key_id, name=stored.name, site=stored.site)
