"""The supporters' CSV format: its columns, rows read and checked one by one, rows written safely.

Reading knows nothing of the store but the tiers that exist; :mod:`supportgate.catalog.supporter_csv`
applies the rows. Cells that a spreadsheet would run as a formula are written as text.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal, Protocol

import msgspec
from msgspec import UNSET, UnsetType

from supportgate.catalog.schemas import Supporter
from supportgate.catalog.supporters import normalise_email
from supportgate.errors import BadRequest

__all__ = [
    "EXPORT_COLUMNS",
    "IMPORT_COLUMNS",
    "Reader",
    "Row",
    "RowError",
    "csv_lines",
    "export_row",
    "format_time",
    "read_columns",
    "read_rows",
    "safe_cell",
    "unescape_cell",
]

IMPORT_COLUMNS: Final = ("email", "tier", "expires_at", "note")
"""The columns an import reads; ``email`` and ``tier`` are required, in any order."""
EXPORT_COLUMNS: Final = ("id", "email", "tier", "status", "expires_at", "note", "created_at")
"""The columns of an export; an import takes them too (``status`` is applied, ``id`` and ``created_at`` are not)."""
_REQUIRED: Final = ("email", "tier")
_NOTE_MAX = 2000  # as SupporterIn's note
# Spreadsheets run a cell starting with one of these as a formula; an export writes such cells
# after an apostrophe, which spreadsheets show as text. A leading apostrophe is escaped the same
# way, so an import can strip exactly the apostrophes an export added.
_FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r", "'")


class RowError(msgspec.Struct, kw_only=True):
    """A row of the file that was not imported, and why."""

    line: int
    """The file's line (1 is the header) on which the row ends."""
    detail: str
    """What is wrong with the row."""


def safe_cell(value: str) -> str:
    """``value`` as a spreadsheet shows it as text: after an apostrophe if it could start a formula."""
    return f"'{value}" if value.startswith(_FORMULA_STARTS) else value


def unescape_cell(value: str) -> str:
    """``value`` without the apostrophe :func:`safe_cell` put before it, if it has one."""
    return value[1:] if value[:1] == "'" and value[1:2] and value[1:].startswith(_FORMULA_STARTS) else value


@dataclass(slots=True)
class Row:
    """One data row, checked: a normalised address, a tier that exists, and the optional columns it has."""

    line: int
    email: str
    tier: str
    expires_at: datetime | UnsetType | None
    note: str | UnsetType | None
    status: Literal["active", "revoked"] | UnsetType


class Reader(Protocol):
    """What :func:`csv.reader` gives: rows, and the line the last one ended on."""

    line_num: int

    def __iter__(self) -> Iterator[list[str]]: ...
    def __next__(self) -> list[str]: ...


def read_rows(reader: Reader, columns: dict[str, int], tiers: set[str], errors: list[RowError]) -> Iterator[Row]:
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


def csv_lines(rows: list[list[str]]) -> bytes:
    """``rows`` as UTF-8 CSV lines (CRLF, quoted where RFC 4180 needs it)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode()


def export_row(supporter: Supporter) -> list[str]:
    """A supporter's cells in :data:`EXPORT_COLUMNS` order, each safe for spreadsheets."""
    cells = [
        supporter.id,
        supporter.email,
        supporter.tier,
        supporter.status,
        format_time(supporter.expires_at) if supporter.expires_at else "",
        supporter.note or "",
        format_time(supporter.created_at),
    ]
    return [safe_cell(cell) for cell in cells]


def format_time(value: datetime) -> str:
    """A time as the export writes it: RFC 3339, ``Z`` for UTC."""
    return value.isoformat().replace("+00:00", "Z")


def read_columns(reader: Iterator[list[str]]) -> dict[str, int]:
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


def _parse(cells: list[str], columns: dict[str, int], line: int, tiers: set[str]) -> Row:
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
    return Row(line=line, email=email, tier=tier, expires_at=expires_at, note=note, status=status)


def _parse_time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise BadRequest(f"expires_at: {value!r} is not an RFC 3339 time with an offset, such as 2027-01-31T00:00:00Z.")
    return parsed
