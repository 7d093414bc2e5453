"""The audit log: every admin write, written in the same transaction as the write itself."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

import msgspec
from redis.asyncio.client import Pipeline

from supportgate.catalog.schemas import AuditEntry, AuditPage
from supportgate.store import Store, names, text, texts
from supportgate.store.cursor import decode_cursor, encode_cursor

__all__ = ["AuditLog"]

_encode = msgspec.json.Encoder().encode
_decode_entry = msgspec.json.Decoder(AuditEntry).decode


class AuditLog:
    """Appends and reads audit entries."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def record(
        self,
        pipe: Pipeline,
        *,
        at: datetime,
        actor: str,
        action: str,
        target: str,
        before: object = None,
        after: object = None,
    ) -> None:
        """Queue an entry on a pipeline that is inside MULTI, so it lands with the change.

        The stream gives the order (assigned by the store, so simultaneous writes still sort);
        the entry itself lives in a hash so that an erasure can rewrite it.
        """
        entry_id = secrets.token_hex(8)
        entry = AuditEntry(
            id=entry_id,
            at=at,
            actor=actor,
            action=action,
            target=target,
            before=_plain(before),
            after=_plain(after),
        )
        pipe.hset(names.audit_entries(), entry_id, _encode(entry))
        pipe.xadd(names.audit_index(), {"entry": entry_id})
        pipe.sadd(names.audit_target(target), entry_id)

    async def redactions(self, pipe: Pipeline, target: str, replacement: dict[str, Any]) -> dict[str, bytes]:
        """Read every entry about ``target`` and return it with ``before``/``after`` replaced.

        Call while watching, before ``begin(pipe)``; then queue the result with :meth:`rewrite`.
        """
        entry_ids = texts(await pipe.smembers(names.audit_target(target)))
        raw = await pipe.hmget(names.audit_entries(), entry_ids) if entry_ids else []
        return {
            entry_id: _encode(msgspec.structs.replace(_decode_entry(blob), before=replacement, after=replacement))
            for entry_id, blob in zip(entry_ids, raw, strict=True)
            if blob is not None
        }

    @staticmethod
    def rewrite(pipe: Pipeline, entries: dict[str, bytes]) -> None:
        """Queue rewritten entries (pipeline inside MULTI)."""
        if entries:
            pipe.hset(names.audit_entries(), mapping=entries)  # type: ignore[arg-type]

    async def page(self, *, limit: int, cursor: str | None) -> AuditPage:
        """Entries newest first, ``limit`` at a time."""
        start = f"({decode_cursor(cursor)}" if cursor else "+"
        redis = self._store.redis
        rows = await redis.xrevrange(names.audit_index(), max=start, min="-", count=limit + 1) or []
        more = len(rows) > limit
        stream_ids = [text(stream_id) for stream_id, _ in rows[:limit]]
        ids = [text(fields[b"entry"]) for _, fields in rows[:limit] if fields]
        raw = await redis.hmget(names.audit_entries(), ids) if ids else []
        items = [_decode_entry(blob) for blob in raw if blob is not None]
        return AuditPage(items=items, next_cursor=encode_cursor(stream_ids[-1]) if more else None)


def _plain(value: object) -> dict[str, Any] | None:
    if value is None:
        return None
    plain = msgspec.to_builtins(value)
    return plain if isinstance(plain, dict) else {"value": plain}
