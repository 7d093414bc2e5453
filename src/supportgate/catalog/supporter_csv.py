"""Supporters as CSV: a file of grants imported in batches, and the list written out as CSV.

An import reads the whole file once to check it is UTF-8 and to count its lines, then parses it
row by row. Rows are applied in batches of :data:`IMPORT_BATCH`: one transaction and one wait for
the disk per batch, not per row. A row that breaks a rule is reported with its line and skipped;
the others are written. Importing the same file again changes nothing.
"""

from __future__ import annotations

import codecs
import csv
import io
import secrets
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Final

import msgspec
from msgspec import UNSET
from redis.asyncio.client import Pipeline

from supportgate.catalog.audit import AuditChange, AuditLog
from supportgate.catalog.csv_rows import (
    EXPORT_COLUMNS,
    Reader,
    Row,
    RowError,
    csv_lines,
    export_row,
    format_time,
    read_columns,
    read_rows,
)
from supportgate.catalog.schemas import Supporter, SupporterPage, SupporterStatus
from supportgate.catalog.supporters import SupporterService
from supportgate.catalog.tiers import member_key
from supportgate.clock import Clock
from supportgate.errors import BadRequest
from supportgate.store import Client, Store, begin, names, text, texts

__all__ = ["IMPORT_BATCH", "MAX_IMPORT_BYTES", "ImportReport", "SupporterCsv"]

MAX_IMPORT_BYTES: Final = 20 * 1024 * 1024
"""The largest import read, by the API and the console alike (about 200,000 rows); larger ones get 413."""
IMPORT_BATCH: Final = 500
"""Rows applied per transaction (and per wait for the disk)."""
_EXPORT_PAGE = 200
_READ_CHUNK = 1 << 16
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Supporter).decode


class ImportReport(msgspec.Struct, kw_only=True):
    """What an import did, or with ``dry_run`` would do."""

    created: int
    """Rows whose address had no supporter: granted."""
    updated: int
    """Rows that changed an existing supporter's tier, expiry, note or status."""
    unchanged: int
    """Rows that match what is stored already."""
    errors: list[RowError]
    """Rows not imported, each with its line and what is wrong; the other rows were applied."""
    dry_run: bool
    """True when nothing was written: the counts say what the import would do."""


@dataclass(slots=True)
class _Counts:
    """The rows an import has applied so far."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass(slots=True)
class _Plan:
    """What one batch does: the supporters it grants and changes, and the rows it refuses."""

    created: list[Supporter] = field(default_factory=list)
    changed: list[tuple[Supporter, Supporter]] = field(default_factory=list)
    unchanged: int = 0
    refused: list[RowError] = field(default_factory=list)


Progress = Callable[[int], None]
"""Told how many more data lines have been dealt with."""


class SupporterCsv:
    """Imports supporters from CSV and exports them to it, through the supporters' own rules."""

    def __init__(self, store: Store, supporters: SupporterService, audit: AuditLog, clock: Clock) -> None:
        self._store = store
        self._supporters = supporters
        self._audit = audit
        self._clock = clock

    @staticmethod
    def count_lines(source: IO[bytes]) -> int:
        """The lines of a seekable binary file after its header; BadRequest if it is not UTF-8. Rewinds it."""
        decoder = codecs.getincrementaldecoder("utf-8")()
        lines = 0
        offset = 0
        last = b""
        source.seek(0)
        while chunk := source.read(_READ_CHUNK):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                raise BadRequest(
                    f"The file is not UTF-8: byte {offset + exc.start} is {chunk[exc.start : exc.start + 1]!r}.",
                    title="Invalid request",
                ) from None
            offset += len(chunk)
            lines += chunk.count(b"\n")
            last = chunk
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise BadRequest("The file is not UTF-8: it ends inside a character.", title="Invalid request") from None
        source.seek(0)
        if offset and not last.endswith(b"\n"):
            lines += 1
        return max(lines - 1, 0)

    async def import_file(
        self, source: IO[bytes], *, actor: str, dry_run: bool = False, progress: Progress | None = None
    ) -> ImportReport:
        """Import the CSV in ``source`` (seekable, UTF-8, a header row first); with ``dry_run``, write nothing.

        Raises:
            BadRequest: before anything is written, if the file is not UTF-8 or its header names an
                unknown column, misses ``email`` or ``tier``, or is not there.
        """
        self.count_lines(source)
        wrapper = io.TextIOWrapper(source, encoding="utf-8-sig", newline="")
        try:
            return await self._import(csv.reader(wrapper, strict=True), actor=actor, dry_run=dry_run, progress=progress)
        finally:
            wrapper.detach()  # the caller's file stays open: it closes it

    async def _import(self, reader: Reader, *, actor: str, dry_run: bool, progress: Progress | None) -> ImportReport:
        columns = read_columns(reader)
        tiers = set(texts(await self._store.redis.zrange(names.tiers(), 0, -1)))
        counts = _Counts()
        errors: list[RowError] = []
        batch: list[Row] = []
        done = 1
        for row in read_rows(reader, columns, tiers, errors):
            batch.append(row)
            if len(batch) == IMPORT_BATCH:
                await self._apply(batch, counts, errors, actor=actor, dry_run=dry_run)
                batch = []
                if progress is not None:
                    progress(reader.line_num - done)
                    done = reader.line_num
        if batch:
            await self._apply(batch, counts, errors, actor=actor, dry_run=dry_run)
        if progress is not None:
            progress(reader.line_num - done)
        errors.sort(key=lambda error: error.line)
        report = ImportReport(
            created=counts.created, updated=counts.updated, unchanged=counts.unchanged, errors=errors, dry_run=dry_run
        )
        if not dry_run:
            await self._record_import(report, actor=actor)
        return report

    async def _apply(
        self, batch: list[Row], counts: _Counts, errors: list[RowError], *, actor: str, dry_run: bool
    ) -> None:
        """Apply one batch atomically: read what the rows' addresses hold, then write the differences."""
        now = self._clock()
        email_keys = [names.email(row.email) for row in batch]
        tier_keys = sorted({names.tier(row.tier) for row in batch})

        async def change(pipe: Client) -> _Plan:
            # In a dry run ``pipe`` is the plain client; otherwise a pipeline in immediate mode: these
            # reads see the store as it is while the keys are watched.
            ids = [None if raw is None else text(raw) for raw in await pipe.mget(email_keys)]
            held = [supporter_id for supporter_id in ids if supporter_id is not None]
            if held and isinstance(pipe, Pipeline):
                await pipe.watch(*(names.supporter(supporter_id) for supporter_id in held))
            records = dict(zip(held, await pipe.mget([names.supporter(i) for i in held]) if held else [], strict=True))
            gone = {key for key in tier_keys if not await pipe.exists(key)}
            plan = _plan(batch, ids, records, gone, now)
            if isinstance(pipe, Pipeline) and (plan.created or plan.changed):
                begin(pipe)
                self._queue(pipe, plan.created, plan.changed, actor=actor, at=now)
            return plan

        if dry_run:
            plan = await change(self._store.redis)
        else:
            plan = await self._store.atomically(change, *email_keys, *tier_keys)
            for before, after in plan.changed:
                await self._supporters.announce(before, after)
        counts.created += len(plan.created)
        counts.updated += len(plan.changed)
        counts.unchanged += plan.unchanged
        errors.extend(plan.refused)

    def _queue(
        self,
        pipe: Pipeline,
        created: Sequence[Supporter],
        changed: Sequence[tuple[Supporter, Supporter]],
        *,
        actor: str,
        at: datetime,
    ) -> None:
        """Queue a batch's writes and an audit entry for each, as a single grant or change writes them.

        The same keys as :meth:`SupporterService.create` and ``update`` write, in as few commands as
        the batch allows: one ``MSET`` for the records and addresses, one ``ZADD`` per index.
        """
        records: dict[str, bytes | str] = {}
        joined: dict[str, dict[str, int]] = {names.supporters(): {}}
        left: dict[str, list[str]] = {}
        audited: list[AuditChange] = []
        for supporter in created:
            member = member_key(supporter.created_at, supporter.id)
            records[names.supporter(supporter.id)] = _encode(supporter)
            records[names.email(supporter.email)] = supporter.id
            joined[names.supporters()][member] = 0
            joined.setdefault(names.tier_members(supporter.tier), {})[member] = 0
            audited.append(AuditChange("supporter.create", _target(supporter.id), after=supporter))
        for before, after in changed:
            records[names.supporter(after.id)] = _encode(after)
            if after.tier != before.tier:
                member = member_key(before.created_at, before.id)
                left.setdefault(names.tier_members(before.tier), []).append(member)
                joined.setdefault(names.tier_members(after.tier), {})[member] = 0
            audited.append(AuditChange("supporter.update", _target(after.id), before=before, after=after))
        pipe.mset(records)
        for index, members in left.items():
            pipe.zrem(index, *members)
        for index, scores in joined.items():
            if scores:
                pipe.zadd(index, scores)
        self._audit.record_many(pipe, at=at, actor=actor, changes=audited)

    async def _record_import(self, report: ImportReport, *, actor: str) -> None:
        """One audit entry for the whole import: its counts and the lines it refused."""
        now = self._clock()
        summary = {
            "created": report.created,
            "updated": report.updated,
            "unchanged": report.unchanged,
            "errors": len(report.errors),
            "error_lines": [error.line for error in report.errors[:100]],
        }

        async def change(pipe: Pipeline) -> None:
            begin(pipe)
            self._audit.record(
                pipe, at=now, actor=actor, action="supporter.import", target="supporters:import", after=summary
            )

        await self._store.atomically(change)

    async def export(self, *, tier: str | None, status: SupporterStatus | None, q: str | None) -> AsyncIterator[bytes]:
        """The supporters the list would show, as CSV (a header row, then one row each), a page at a time.

        The first page is read before this returns, so a bad filter is a BadRequest here and not
        an error in the middle of the file.
        """
        first = await self._supporters.page(tier=tier, status=status, q=q, limit=_EXPORT_PAGE, cursor=None)
        return self._pages(first, tier=tier, status=status, q=q)

    async def _pages(
        self, page: SupporterPage, *, tier: str | None, status: SupporterStatus | None, q: str | None
    ) -> AsyncIterator[bytes]:
        yield csv_lines([list(EXPORT_COLUMNS)])
        while True:
            yield csv_lines([export_row(supporter) for supporter in page.items])
            if page.next_cursor is None:
                return
            page = await self._supporters.page(
                tier=tier, status=status, q=q, limit=_EXPORT_PAGE, cursor=page.next_cursor
            )


def _plan(
    batch: list[Row], ids: list[str | None], records: Mapping[str, object], gone: set[str], now: datetime
) -> _Plan:
    """Sort a batch's rows into grants, changes, rows that change nothing and rows refused."""
    plan = _Plan()
    for row, supporter_id in zip(batch, ids, strict=True):
        raw = records.get(supporter_id) if supporter_id is not None else None
        before = _decode(raw) if isinstance(raw, bytes) else None
        if names.tier(row.tier) in gone:
            plan.refused.append(RowError(line=row.line, detail=f"tier: there is no tier {row.tier!r}."))
            continue
        try:
            after = _merge(before, row, now)
        except BadRequest as exc:
            plan.refused.append(RowError(line=row.line, detail=exc.detail))
            continue
        if after is None:
            plan.unchanged += 1
        elif before is None:
            plan.created.append(after)
        else:
            plan.changed.append((before, after))
    return plan


def _merge(before: Supporter | None, row: Row, now: datetime) -> Supporter | None:
    """The supporter ``row`` asks for, given what is stored; None if that is what is stored already."""
    expires_at = None if row.expires_at is UNSET and before is None else row.expires_at
    if isinstance(expires_at, datetime) and expires_at <= now and (before is None or expires_at != before.expires_at):
        raise BadRequest(f"expires_at: {format_time(expires_at)} has passed; a grant must end in the future.")
    if before is None:
        return Supporter(
            id=secrets.token_hex(8),
            email=row.email,
            tier=row.tier,
            status="active" if row.status is UNSET else row.status,
            expires_at=expires_at if isinstance(expires_at, datetime) else None,
            created_at=now,
            updated_at=now,
            note=None if row.note is UNSET else row.note,
        )
    changes: dict[str, object] = {}
    if row.tier != before.tier:
        changes["tier"] = row.tier
    if row.expires_at is not UNSET and row.expires_at != before.expires_at:
        changes["expires_at"] = row.expires_at
    if row.note is not UNSET and row.note != before.note:
        changes["note"] = row.note
    if row.status is not UNSET and row.status != before.status:
        changes["status"] = row.status
    return msgspec.structs.replace(before, **changes, updated_at=now) if changes else None


def _target(supporter_id: str) -> str:
    return f"supporter:{supporter_id}"
