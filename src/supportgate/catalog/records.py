"""The one flow that adds a keyed record to the catalog: refuse a taken id, store, index, audit."""

from __future__ import annotations

from datetime import datetime

import msgspec
from redis.asyncio.client import Pipeline

from supportgate.catalog.audit import AuditLog
from supportgate.errors import Conflict
from supportgate.store import Store, begin

__all__ = ["create_record"]

_encode = msgspec.json.Encoder().encode


async def create_record(
    store: Store,
    audit: AuditLog,
    *,
    kind: str,
    record_id: str,
    record: msgspec.Struct,
    key: str,
    index: str,
    at: datetime,
    actor: str,
) -> None:
    """Store ``record`` under ``key`` and list ``record_id`` in ``index``, with a ``<kind>.create`` audit entry.

    Raises:
        Conflict: if a ``kind`` with ``record_id`` exists; nothing is written.
    """

    async def change(pipe: Pipeline) -> None:
        if await pipe.exists(key):
            raise Conflict(f"A {kind} with id {record_id!r} already exists.", existing=record_id)
        begin(pipe)
        pipe.set(key, _encode(record))
        pipe.zadd(index, {record_id: 0})
        audit.record(pipe, at=at, actor=actor, action=f"{kind}.create", target=f"{kind}:{record_id}", after=record)

    await store.atomically(change, key)
