"""The audit log: every admin write, written in the same transaction as the write itself.

Entries are kept for the retention the service is configured with; older ones are trimmed in
the background (:meth:`AuditLog.start`), oldest first, with their index and erasure entries.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Final, NamedTuple

import msgspec
from redis.asyncio.client import Pipeline

from supportgate.catalog.schemas import AuditEntry, AuditPage
from supportgate.clock import Clock, utc_now
from supportgate.store import Store, begin, names, stopping, text, texts
from supportgate.store.cursor import decode_cursor, encode_cursor

__all__ = ["TRIM_INTERVAL", "AuditChange", "AuditLog"]

TRIM_INTERVAL: Final = timedelta(hours=1)
"""How often a process trims the audit log of entries past their retention."""
_TRIM_BATCH = 500
_SCAN_BATCH = 500
_SCAN_LIMIT = 5000
"""How many entries one filtered audit page reads at most before it answers with what it found."""
_log = logging.getLogger("supportgate.audit")
_encode = msgspec.json.Encoder().encode
_decode_entry = msgspec.json.Decoder(AuditEntry).decode


class AuditChange(NamedTuple):
    """One change for :meth:`AuditLog.record_many`: what was done to which thing, before and after."""

    action: str
    target: str
    before: object = None
    after: object = None


class AuditLog:
    """Appends, reads and trims audit entries.

    With a ``retention``, entries older than it are deleted by :meth:`trim`; without one, they
    are kept for ever.
    """

    def __init__(self, store: Store, *, clock: Clock = utc_now, retention: timedelta | None = None) -> None:
        self._store = store
        self._clock = clock
        self._retention = retention
        self._task: asyncio.Task[None] | None = None

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

    def record_many(self, pipe: Pipeline, *, at: datetime, actor: str, changes: Sequence[AuditChange]) -> None:
        """Queue one entry per change, as :meth:`record` would, in fewer commands (a bulk import).

        The entries go in one ``HSET``; each still gets its own place in the stream and its target's set.
        """
        if not changes:
            return
        entries: dict[str, bytes] = {}
        for change in changes:
            entry_id = secrets.token_hex(8)
            entries[entry_id] = _encode(
                AuditEntry(
                    id=entry_id,
                    at=at,
                    actor=actor,
                    action=change.action,
                    target=change.target,
                    before=_plain(change.before),
                    after=_plain(change.after),
                )
            )
        pipe.hset(names.audit_entries(), mapping=entries)  # type: ignore[arg-type]
        for change, entry_id in zip(changes, entries, strict=True):
            pipe.xadd(names.audit_index(), {"entry": entry_id})
            pipe.sadd(names.audit_target(change.target), entry_id)

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

    async def page(
        self,
        *,
        limit: int,
        cursor: str | None,
        action: str | None = None,
        actor: str | None = None,
        target: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> AuditPage:
        """Entries newest first, ``limit`` at a time, those that match every filter given.

        ``action``, ``actor`` and ``target`` match exactly; ``since`` and ``until`` bound ``at``
        (both included). With filters, one call reads at most :data:`_SCAN_LIMIT` entries: a
        page may then be shorter than ``limit`` (even empty) with a ``next_cursor`` to go on.
        """
        start = f"({decode_cursor(cursor)}" if cursor else "+"
        redis = self._store.redis
        filtered = any(value is not None for value in (action, actor, target, since, until))
        batch = min(_SCAN_BATCH, max(limit * 4, 50)) if filtered else limit + 1
        found: list[AuditEntry] = []
        last_read: str | None = None
        scanned = 0
        while True:
            rows = await redis.xrevrange(names.audit_index(), max=start, min="-", count=batch) or []
            exhausted = len(rows) < batch
            ids = [text(fields[b"entry"]) if fields else "" for _, fields in rows]
            raw = await redis.hmget(names.audit_entries(), ids) if ids else []
            for (stream_id, _), blob in zip(rows, raw, strict=True):
                if len(found) == limit:
                    return AuditPage(items=found, next_cursor=encode_cursor(last_read) if last_read else None)
                last_read = text(stream_id)
                scanned += 1
                entry = _decode_entry(blob) if blob is not None else None
                if entry is not None and _matches(entry, action, actor, target, since, until):
                    found.append(entry)
            if exhausted:
                return AuditPage(items=found, next_cursor=None)
            if scanned >= _SCAN_LIMIT and last_read is not None:
                return AuditPage(items=found, next_cursor=encode_cursor(last_read))
            start = f"({last_read}"

    async def trim(self) -> int:
        """Delete the entries older than the retention, oldest first; how many went.

        The stream holds the entries in the order they were written, so the old ones are at its
        start: each batch reads from there and stops at the first entry still kept. An entry goes
        with its index entry and its place in its target's set, in one transaction.
        """
        if self._retention is None:
            return 0
        cutoff = self._clock() - self._retention
        removed = 0
        while True:
            old, read = await self._expired(cutoff)
            if old:
                await self._store.atomically(functools.partial(_delete, old))
                removed += len(old)
            if len(old) < read or read < _TRIM_BATCH:
                return removed

    async def _expired(self, cutoff: datetime) -> tuple[list[_Expired], int]:
        """The oldest batch's entries written before ``cutoff``, and how many entries were read."""
        redis = self._store.redis
        rows = await redis.xrange(names.audit_index(), min="-", max="+", count=_TRIM_BATCH) or []
        ids = [text((fields or {}).get(b"entry", b"")) for _, fields in rows]
        blobs = await redis.hmget(names.audit_entries(), ids) if ids else []
        old: list[_Expired] = []
        for (stream_id, _), entry_id, blob in zip(rows, ids, blobs, strict=True):
            entry = _decode_entry(blob) if blob is not None else None
            if entry is not None and entry.at >= cutoff:
                break
            old.append(_Expired(text(stream_id), entry_id, entry.target if entry is not None else None))
        return old, len(rows)

    async def start(self, interval: timedelta = TRIM_INTERVAL) -> None:
        """Trim now and then every ``interval`` in the background, until :meth:`stop`."""
        if self._task is None and self._retention is not None:
            self._task = asyncio.create_task(self._run(interval.total_seconds()), name="supportgate audit trim")

    async def stop(self) -> None:
        """Stop the background trimming."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self, interval: float) -> None:
        while not stopping():
            try:
                if removed := await self.trim():
                    _log.info("trimmed %d audit entries older than %s", removed, self._retention)
            except Exception:
                if stopping():
                    raise
                _log.exception("audit trim failed; trying again later")
            if not stopping():
                await asyncio.sleep(interval)


class _Expired(NamedTuple):
    """An entry past its retention: where it is in the stream, its id, and its target if known."""

    stream_id: str
    entry_id: str
    target: str | None


async def _delete(old: list[_Expired], pipe: Pipeline) -> None:
    """Queue the deletion of ``old`` entries: stream, hash and target sets."""
    begin(pipe)
    pipe.xdel(names.audit_index(), *[expired.stream_id for expired in old])
    for expired in old:
        if expired.entry_id:
            pipe.hdel(names.audit_entries(), expired.entry_id)
        if expired.target is not None:
            pipe.srem(names.audit_target(expired.target), expired.entry_id)


def _matches(
    entry: AuditEntry,
    action: str | None,
    actor: str | None,
    target: str | None,
    since: datetime | None,
    until: datetime | None,
) -> bool:
    return (
        (action is None or entry.action == action)
        and (actor is None or entry.actor == actor)
        and (target is None or entry.target == target)
        and (since is None or entry.at >= since)
        and (until is None or entry.at <= until)
    )


def _plain(value: object) -> dict[str, Any] | None:
    if value is None:
        return None
    plain = msgspec.to_builtins(value)
    return plain if isinstance(plain, dict) else {"value": plain}
