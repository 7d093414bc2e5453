"""API keys: admin keys and site keys. A key is shown once; only its SHA-256 is stored.

A key reads ``sga_<id>_<secret>`` (admin) or ``sgs_<id>_<secret>`` (site): the id finds the
record in one lookup, the secret is compared in constant time.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
from datetime import datetime, timedelta
from typing import Final, Literal

import msgspec
from redis.asyncio.client import Pipeline

from supportgate.bounded import BoundedDict
from supportgate.catalog.audit import AuditLog
from supportgate.catalog.schemas import KeyCreated, KeyInfo
from supportgate.clock import Clock
from supportgate.errors import Conflict, NotFound
from supportgate.store import STORE_ERRORS, Store, begin, names, text

__all__ = ["USE_RESOLUTION", "ApiKeys", "ValidKey", "drop_site_keys", "site_key_ids"]

USE_RESOLUTION: Final = timedelta(minutes=1)
"""A key's ``last_used_at`` is written at most once per key in this time, by each process."""
_USE_MEMORY = 10_000
_log = logging.getLogger("supportgate.api_keys")

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
        # When this process last wrote each key's use, and the writes under way (kept until done).
        self._use_written: BoundedDict[str, datetime] = BoundedDict(_USE_MEMORY)
        self._use_writes: set[asyncio.Task[None]] = set()

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
        self._note_use(kind, key_id)
        return ValidKey(id=key_id, name=stored.name, site=stored.site)

    def _note_use(self, kind: Kind, key_id: str) -> None:
        """Write that a key was used now, in the background, at most once per :data:`USE_RESOLUTION`.

        The caller never waits for it (a page view's key check is on the page-view budget), and
        a write that fails is let go: the next use in a minute writes again.
        """
        now = self._clock()
        field = f"{kind}:{key_id}"
        written = self._use_written.get(field)
        if written is not None and now - written < USE_RESOLUTION:
            return
        self._use_written.put(field, now)
        task = asyncio.get_running_loop().create_task(self._write_use(field, now))
        self._use_writes.add(task)
        task.add_done_callback(self._use_writes.discard)

    async def _write_use(self, field: str, at: datetime) -> None:
        try:
            await self._store.redis.hset(names.key_last_used(), field, at.isoformat())
        except STORE_ERRORS:
            _log.debug("could not note a key's use; the next use tries again")
            self._use_written.put(field, at - USE_RESOLUTION)

    async def settle(self) -> None:
        """Wait for the use notes under way (tests, and shutting down)."""
        while self._use_writes:
            await asyncio.gather(*list(self._use_writes), return_exceptions=True)

    async def list(self, kind: Kind, *, site: str | None = None) -> list[KeyInfo]:
        """The keys of ``kind`` (of one site, for site keys), oldest first; never a secret or hash.

        Raises:
            NotFound: if ``site`` is given and there is no such site.
        """
        redis = self._store.redis
        async with redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(_HASH_KEY[kind])
            pipe.hgetall(names.key_last_used())
            pipe.exists(names.site(site) if site is not None else names.admin_keys())
            stored, used, site_exists = await pipe.execute()
        if site is not None and not site_exists:
            raise NotFound(f"There is no site {site!r}.")
        last_used = {text(field): text(at) for field, at in used.items()}
        keys = []
        for raw_id, raw in stored.items():
            key_id, record = text(raw_id), _decode(raw)
            if site is not None and record.site != site:
                continue
            seen = last_used.get(f"{kind}:{key_id}")
            keys.append(
                KeyInfo(
                    id=key_id,
                    name=record.name,
                    created_at=datetime.fromisoformat(record.created_at),
                    last_used_at=datetime.fromisoformat(seen) if seen else None,
                )
            )
        return sorted(keys, key=lambda key: (key.created_at, key.id))

    async def revoke(self, kind: Kind, key_id: str, *, actor: str, site: str | None = None) -> None:
        """Remove one key; from then on it answers 401 (site keys: once the gate's cache lets it go).

        Raises:
            NotFound: if there is no such key (of this site, for site keys), or no such site.
            Conflict: if it is the last admin key: without one, no one could use the admin API.
        """
        hash_key = _HASH_KEY[kind]
        now = self._clock()

        async def change(pipe: Pipeline) -> None:
            if site is not None and not await pipe.exists(names.site(site)):
                raise NotFound(f"There is no site {site!r}.")
            raw = await pipe.hget(hash_key, key_id)
            record = _decode(raw) if raw is not None else None
            if record is None or record.site != site:
                where = f" of site {site!r}" if site is not None else ""
                raise NotFound(f"There is no {kind} key {key_id!r}{where}.")
            if kind == "admin" and await pipe.hlen(hash_key) <= 1:
                raise Conflict(
                    "This is the last admin key, and without one no one could use the admin API: "
                    "make another first ('supportgate admin create-key'), then revoke this one."
                )
            begin(pipe)
            pipe.hdel(hash_key, key_id)
            pipe.hdel(names.key_last_used(), f"{kind}:{key_id}")
            audited = {"id": key_id, "name": record.name, "kind": kind, **({"site": site} if site else {})}
            target = f"site:{site}" if site else f"admin-key:{key_id}"
            self._audit.record(pipe, at=now, actor=actor, action=f"{kind}-key.revoke", target=target, before=audited)

        await self._store.atomically(change, hash_key, *([names.site(site)] if site else []))


async def site_key_ids(pipe: Pipeline, site: str) -> list[str]:
    """The ids of a site's keys, read through ``pipe`` (call while watching, before ``begin``)."""
    stored = await pipe.hgetall(names.site_keys())
    return [text(kid) for kid, raw in stored.items() if _decode(raw).site == site]


def drop_site_keys(pipe: Pipeline, key_ids: list[str]) -> None:
    """Queue the removal of site keys and their use notes (pipeline inside MULTI)."""
    if key_ids:
        pipe.hdel(names.site_keys(), *key_ids)
        pipe.hdel(names.key_last_used(), *[f"site:{kid}" for kid in key_ids])
