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
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Final, Literal, Protocol

import msgspec
from msgspec import UNSET, UnsetType
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from supportgate.catalog.audit import AuditChange, AuditLog
from supportgate.catalog.schemas import Supporter, SupporterPage, SupporterStatus
from supportgate.catalog.supporters import SupporterService, normalise_email
from supportgate.catalog.tiers import member_key
from supportgate.clock import Clock
from supportgate.errors import BadRequest
from supportgate.store import Store, begin, names, text, texts

__all__ = [
    "EXPORT_COLUMNS",
    "IMPORT_BATCH",
    "IMPORT_COLUMNS",
    "ImportReport",
    "RowError",
    "SupporterCsv",
    "safe_cell",
    "unescape_cell",
]

IMPORT_COLUMNS: Final = ("email", "tier", "expires_at", "note")
"""The columns an import reads; ``email`` and ``tier`` are required, in any order."""
EXPORT_COLUMNS: Final = ("id", "email", "tier", "status", "expires_at", "note", "created_at")
"""The columns of an export; an import takes them too (``status`` is applied, ``id`` and ``created_at`` are not)."""
IMPORT_BATCH: Final = 500
"""Rows applied per transaction (and per wait for the disk)."""
_REQUIRED: Final = ("email", "tier")
_NOTE_MAX = 2000
_EXPORT_PAGE = 200
_READ_CHUNK = 1 << 16
# Spreadsheets run a cell starting with one of these as a formula; an export writes such cells
# after an apostrophe, which spreadsheets show as text. A leading apostrophe is escaped the same
# way, so an import can strip exactly the apostrophes an export added.
_FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r", "'")
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Supporter).decode


class RowError(msgspec.Struct, kw_only=True):
    """A row of the file that was not imported, and why."""

    line: int
    """The file's line (1 is the header) on which the row ends."""
    detail: str
    """What is wrong with the row."""


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


def safe_cell(value: str) -> str:
    """``value`` as a spreadsheet shows it as text: after an apostrophe if it could start a formula."""
    return f"'{value}" if value.startswith(_FORMULA_STARTS) else value


def unescape_cell(value: str) -> str:
    """``value`` without the apostrophe :func:`safe_cell` put before it, if it has one."""
    return value[1:] if value[:1] == "'" and value[1:2] and value[1:].startswith(_FORMULA_STARTS) else value


@dataclass(slots=True)
class _Row:
    line: int
    email: str
    tier: str
    expires_at: datetime | UnsetType | None
    note: str | UnsetType | None
    status: Literal["active", "revoked"] | UnsetType


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


class _Reader(Protocol):
    line_num: int

    def __iter__(self) -> Iterator[list[str]]: ...
    def __next__(self) -> list[str]: ...


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

    async def _import(self, reader: _Reader, *, actor: str, dry_run: bool, progress: Progress | None) -> ImportReport:
        columns = _columns(reader)
        tiers = set(texts(await self._store.redis.zrange(names.tiers(), 0, -1)))
        counts = _Counts()
        errors: list[RowError] = []
        batch: list[_Row] = []
        done = 1
        for row in _rows(reader, columns, tiers, errors):
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
        self, batch: list[_Row], counts: _Counts, errors: list[RowError], *, actor: str, dry_run: bool
    ) -> None:
        """Apply one batch atomically: read what the rows' addresses hold, then write the differences."""
        now = self._clock()
        email_keys = [names.email(row.email) for row in batch]
        tier_keys = sorted({names.tier(row.tier) for row in batch})

        async def change(pipe: Redis) -> _Plan:
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
        yield _csv_lines([list(EXPORT_COLUMNS)])
        while True:
            yield _csv_lines([_export_row(supporter) for supporter in page.items])
            if page.next_cursor is None:
                return
            page = await self._supporters.page(
                tier=tier, status=status, q=q, limit=_EXPORT_PAGE, cursor=page.next_cursor
            )


def _rows(reader: _Reader, columns: dict[str, int], tiers: set[str], errors: list[RowError]) -> Iterator[_Row]:
    """The rows that pass the checks made row by row; the others are added to ``errors``."""
    seen: dict[str, int] = {}
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            errors.append(RowError(line=reader.line_num, detail=f"The row is not valid CSV: {exc}."))
            continue
        if not cells:
            continue
        try:
            row = _parse(cells, columns, reader.line_num, tiers)
        except BadRequest as exc:
            errors.append(RowError(line=reader.line_num, detail=exc.detail))
            continue
        if row.email in seen:
            errors.append(RowError(line=row.line, detail=f"email: {row.email} is on line {seen[row.email]} already."))
            continue
        seen[row.email] = row.line
        yield row


def _plan(
    batch: list[_Row], ids: list[str | None], records: Mapping[str, object], gone: set[str], now: datetime
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


def _csv_lines(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode()


def _export_row(supporter: Supporter) -> list[str]:
    cells = [
        supporter.id,
        supporter.email,
        supporter.tier,
        supporter.status,
        _time(supporter.expires_at) if supporter.expires_at else "",
        supporter.note or "",
        _time(supporter.created_at),
    ]
    return [safe_cell(cell) for cell in cells]


def _time(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _columns(reader: Iterator[list[str]]) -> dict[str, int]:
    """Each known column's index in the header row; BadRequest naming what is wrong with it."""
    try:
        header = next(reader)
    except StopIteration:
        header = []
    except csv.Error as exc:
        raise BadRequest(f"The header row is not valid CSV: {exc}.", title="Invalid request") from None
    names_given = [cell.strip().lower() for cell in header]
    if not any(names_given):
        raise BadRequest(
            f"The file has no header row: its first line must name the columns, such as {','.join(IMPORT_COLUMNS)}.",
            title="Invalid request",
        )
    unknown = [name for name in names_given if name not in EXPORT_COLUMNS]
    if unknown:
        raise BadRequest(
            f"Unknown column(s) {', '.join(repr(n) for n in unknown)}; the columns are "
            f"{', '.join(EXPORT_COLUMNS)} ({', '.join(_REQUIRED)} required).",
            title="Invalid request",
        )
    twice = sorted({name for name in names_given if names_given.count(name) > 1})
    if twice:
        raise BadRequest(f"Column(s) {', '.join(twice)} appear more than once.", title="Invalid request")
    missing = [name for name in _REQUIRED if name not in names_given]
    if missing:
        raise BadRequest(f"The header row lacks the column(s) {', '.join(missing)}.", title="Invalid request")
    return {name: index for index, name in enumerate(names_given)}


def _parse(cells: list[str], columns: dict[str, int], line: int, tiers: set[str]) -> _Row:
    """One data row, checked on its own; BadRequest naming the first bad cell."""
    if len(cells) != len(columns):
        raise BadRequest(f"The row has {len(cells)} cells; the header names {len(columns)} columns.")

    def cell(name: str) -> str | None:
        index = columns.get(name)
        return None if index is None else unescape_cell(cells[index].strip())

    email = normalise_email(cell("email") or "")
    tier = cell("tier") or ""
    if tier not in tiers:
        raise BadRequest(f"tier: there is no tier {tier!r}; create it first or pick an existing one.")
    expires_text = cell("expires_at")
    expires_at: datetime | UnsetType | None = UNSET
    if expires_text is not None:
        expires_at = _parse_time(expires_text) if expires_text else None
    note_text = cell("note")
    note: str | UnsetType | None = UNSET
    if note_text is not None:
        if len(note_text) > _NOTE_MAX:
            raise BadRequest(f"note: {len(note_text)} characters; at most {_NOTE_MAX}.")
        note = note_text or None
    status_text = cell("status")
    status: Literal["active", "revoked"] | UnsetType = UNSET
    if status_text:
        if status_text not in {"active", "expired", "revoked"}:
            raise BadRequest(f"status: {status_text!r} is none of active, expired, revoked.")
        # "expired" is how an export shows an active supporter past expires_at: stored, it is active.
        status = "revoked" if status_text == "revoked" else "active"
    return _Row(line=line, email=email, tier=tier, expires_at=expires_at, note=note, status=status)


def _parse_time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise BadRequest(f"expires_at: {value!r} is not an RFC 3339 time with an offset, such as 2027-01-31T00:00:00Z.")
    return parsed


def _merge(before: Supporter | None, row: _Row, now: datetime) -> Supporter | None:
    """The supporter ``row`` asks for, given what is stored; None if that is what is stored already."""
    expires_at = None if row.expires_at is UNSET and before is None else row.expires_at
    if isinstance(expires_at, datetime) and expires_at <= now and (before is None or expires_at != before.expires_at):
        raise BadRequest(f"expires_at: {_time(expires_at)} has passed; a grant must end in the future.")
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
