"""Supporters as CSV over HTTP: ``POST /v1/admin/supporters/import`` and ``GET /v1/admin/supporters/export``."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from typing import Annotated, Any, Final

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, OpenAPIType, Operation, RequestBody, Schema
from litestar.params import FromQuery, QueryParameter
from litestar.response import Stream

from supportgate.catalog.api_keys import ValidKey
from supportgate.catalog.csv_rows import EXPORT_COLUMNS, IMPORT_COLUMNS
from supportgate.catalog.schemas import Slug, SupporterStatus
from supportgate.catalog.supporter_csv import MAX_IMPORT_BYTES, ImportReport, SupporterCsv
from supportgate.errors import UnsupportedMediaType
from supportgate.http.deadline import OWN_DEADLINE

__all__ = ["CSV_MEDIA_TYPE", "SupporterCsvController"]

CSV_MEDIA_TYPE: Final = "text/csv"
"""The media type of an import's body and an export's answer; ``charset=utf-8`` is the one parameter taken."""
_SPOOL_IN_MEMORY = 1024 * 1024
"""An import body larger than this waits in a temporary file, not in memory, while it is read."""
_EXAMPLE = (
    "email,tier,expires_at,note\r\n"
    "reader@example.com,supporter,2027-01-31T00:00:00Z,met at the fair\r\n"
    "patron@example.com,patron,,\r\n"
)


_EXPORT_EXAMPLE = (
    "id,email,tier,status,expires_at,note,created_at\r\n"
    "3f2a9c1be4d07a65,reader@example.com,supporter,active,2027-01-31T00:00:00Z,met at the fair,"
    "2026-11-24T12:00:00Z\r\n"
)
_IMPORT_DESCRIPTION: Final = (
    "One row per address: a new address is granted, a known one changed to match its row (the columns it "
    "has; `expires_at` and `note` left empty clear them). A row with a bad address, an unknown tier, a bad or "
    "past `expires_at` is listed in `errors` with its line and skipped; the other rows are applied. Importing "
    "the same file again changes nothing (all `unchanged`). A file whose header names an unknown column, or "
    "lacks `email` or `tier`, or that is not UTF-8, is refused (400) with nothing written. Each grant and change "
    "is in the audit log as a single one would be, and the import as a whole as `supporter.import`. No welcome "
    "mail is sent."
)
_EXPORT_DESCRIPTION: Final = (
    "Newest first: a header row, then one row per supporter, read from the store a page at a time. Cells "
    "that a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, a tab, a carriage return "
    "or `'`) are written after an apostrophe; an import takes it off again. A bad filter is a 400 problem."
)


@dataclass
class _CsvBodyOperation(Operation):
    """The import's operation: its body is CSV, which Litestar cannot infer from a handler reading a stream."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            description=(
                f"UTF-8 CSV, a header row first naming the columns in any order: {', '.join(IMPORT_COLUMNS)} "
                f"(email and tier required); the export's columns ({', '.join(EXPORT_COLUMNS)}) are taken too."
            ),
            content={
                CSV_MEDIA_TYPE: OpenAPIMediaType(
                    schema=Schema(type=OpenAPIType.STRING, max_length=MAX_IMPORT_BYTES), example=_EXAMPLE
                )
            },
        )


@dataclass
class _CsvAnswerOperation(Operation):
    """The export's operation: it answers a CSV file, which Litestar documents as an untyped stream."""

    def __post_init__(self) -> None:
        self.responses = {
            **(self.responses or {}),
            "200": OpenAPIResponse(
                description="The supporters as UTF-8 CSV, as an attachment `supporters.csv`.",
                content={
                    f"{CSV_MEDIA_TYPE}; charset=utf-8": OpenAPIMediaType(
                        schema=Schema(type=OpenAPIType.STRING), example=_EXPORT_EXAMPLE
                    )
                },
            ),
        }


def require_csv(content_type: str | None) -> None:
    """Refuse (415) a body whose ``Content-Type`` is not ``text/csv`` (``charset=utf-8`` allowed)."""
    if content_type is not None:
        media_type, _, parameters = content_type.partition(";")
        name, _, value = parameters.partition("=")
        utf8 = not parameters.strip() or (
            name.strip().lower() == "charset" and value.strip().strip('"').lower() == "utf-8"
        )
        if media_type.strip().lower() == CSV_MEDIA_TYPE and utf8:
            return
    shown = "none" if content_type is None else repr(content_type[:100])
    raise UnsupportedMediaType(
        f"Send the file as 'Content-Type: {CSV_MEDIA_TYPE}' (UTF-8); this request's Content-Type is {shown}.",
        title="Unsupported media type",
    )


class SupporterCsvController(Controller):
    """Supporters in and out as CSV files."""

    path = "/supporters"
    tags = ("admin: supporters",)

    @post(
        "/import",
        status_code=200,
        request_max_body_size=MAX_IMPORT_BYTES,
        operation_class=_CsvBodyOperation,
        description=_IMPORT_DESCRIPTION,
        opt={OWN_DEADLINE: True},
        summary="Import supporters from CSV: grant new addresses, change existing ones",
    )
    async def import_supporters(
        self,
        request: Request[ValidKey, str, Any],
        supporter_csv: NamedDependency[SupporterCsv],
        dry_run: Annotated[
            bool, QueryParameter(description="Write nothing; answer with what the import would do.")
        ] = False,
    ) -> ImportReport:
        """Spool the body, then import it through the service (the OpenAPI description says what it does)."""
        require_csv(request.headers.get("content-type"))
        # A large body goes to disk as it arrives: it is read twice (checked, then parsed), never held whole.
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY) as spool:
            async for chunk in request.stream():
                spool.write(chunk)
            return await supporter_csv.import_file(spool, actor=request.user.actor, dry_run=dry_run)

    @get(
        "/export",
        media_type=f"{CSV_MEDIA_TYPE}; charset=utf-8",
        opt={OWN_DEADLINE: True},
        operation_class=_CsvAnswerOperation,
        description=_EXPORT_DESCRIPTION,
        summary="Export supporters as CSV, with the list's filters",
    )
    async def export_supporters(
        self,
        *,
        supporter_csv: NamedDependency[SupporterCsv],
        tier: FromQuery[Slug | None] = None,
        status: FromQuery[SupporterStatus | None] = None,
        q: Annotated[str | None, QueryParameter(max_length=254, description="Part of the email or note.")] = None,
    ) -> Stream:
        """Stream the export, its first page read before the answer starts so a bad filter is still a 400."""
        rows = await supporter_csv.export(tier=tier, status=status, q=q)
        return Stream(
            rows,
            media_type=f"{CSV_MEDIA_TYPE}; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="supporters.csv"', "Cache-Control": "no-store"},
        )
