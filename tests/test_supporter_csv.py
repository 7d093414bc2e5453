"""Supporters as CSV: import and export over HTTP and from the CLI, against a real store."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from supportgate.catalog.csv_rows import EXPORT_COLUMNS, safe_cell, unescape_cell
from supportgate.catalog.schemas import SupporterIn
from supportgate.catalog.supporter_csv import IMPORT_BATCH, MAX_IMPORT_BYTES, ImportReport
from supportgate.errors import Conflict
from supportgate.services import Services
from supportgate.settings import Settings
from tests.conftest import FakeClock

Client = AsyncTestClient[Litestar]
CSV = {"Content-Type": "text/csv"}


@pytest.fixture
async def tiers(admin: Client) -> None:
    for tier_id in ("supporter", "patron"):
        answer = await admin.post(
            "/v1/admin/tiers",
            json={"id": tier_id, "name": tier_id.title(), "entitlements": ["adblock_ok"], "max_devices": 3},
        )
        assert answer.status_code == 201


async def import_csv(admin: Client, body: str, **params: str) -> dict[str, Any]:
    answer = await admin.post("/v1/admin/supporters/import", content=body.encode(), headers=CSV, params=params)
    assert answer.status_code == 200, answer.text
    report: dict[str, Any] = answer.json()
    return report


async def listed(admin: Client, **params: str) -> list[dict[str, Any]]:
    answer = await admin.get("/v1/admin/supporters", params={"limit": "200", **params})
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


async def export_rows(admin: Client, **params: str) -> list[dict[str, str]]:
    answer = await admin.get("/v1/admin/supporters/export", params=params)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(answer.text)))


async def audit_actions(admin: Client) -> list[str]:
    answer = await admin.get("/v1/admin/audit", params={"limit": "200"})
    return [entry["action"] for entry in answer.json()["items"]]


GOOD = (
    "email,tier,expires_at,note\n"
    "Reader@Example.com,supporter,2027-01-31T00:00:00Z,met at the fair\n"
    "\uff52eader2@example.com,patron,,\n"
    'formula@example.com,supporter,,=HYPERLINK("http://evil")\n'
)


@pytest.mark.usefixtures("tiers")
async def test_the_same_file_twice_changes_nothing_the_second_time(admin: Client) -> None:
    """A file imported twice creates its rows once, then reports every row unchanged and writes nothing."""
    first = await import_csv(admin, GOOD)
    assert first == {"created": 3, "updated": 0, "unchanged": 0, "errors": [], "dry_run": False}
    stored = {s["email"]: s for s in await listed(admin)}
    assert set(stored) == {"reader@example.com", "reader2@example.com", "formula@example.com"}
    assert stored["reader@example.com"]["expires_at"] == "2027-01-31T00:00:00Z"
    assert stored["reader@example.com"]["note"] == "met at the fair"
    assert stored["reader2@example.com"]["tier"] == "patron"
    actions = await audit_actions(admin)
    again = await import_csv(admin, GOOD)
    assert again == {"created": 0, "updated": 0, "unchanged": 3, "errors": [], "dry_run": False}
    assert {s["email"]: s for s in await listed(admin)} == stored
    assert await audit_actions(admin) == ["supporter.import", *actions]
    entries = (await admin.get("/v1/admin/audit", params={"limit": "1"})).json()["items"]
    assert entries[0]["actor"].startswith("admin:")  # the key that imported
    assert {k: entries[0]["after"][k] for k in ("created", "updated", "unchanged", "errors")} == {
        "created": 0,
        "updated": 0,
        "unchanged": 3,
        "errors": 0,
    }


@pytest.mark.usefixtures("tiers")
async def test_export_then_import_is_unchanged(admin: Client, clock: FakeClock) -> None:
    """An export, formulas made safe, imported back reports every row unchanged, revoked and expired ones too."""
    await import_csv(admin, GOOD)
    revoked = next(s for s in await listed(admin) if s["email"] == "reader2@example.com")
    assert (await admin.delete(f"/v1/admin/supporters/{revoked['id']}")).status_code == 204
    clock.advance(days=400)  # reader@example.com has expired by now
    rows = await export_rows(admin)
    assert list(rows[0]) == list(EXPORT_COLUMNS)
    by_email = {row["email"]: row for row in rows}
    assert by_email["formula@example.com"]["note"] == '\'=HYPERLINK("http://evil")'
    assert by_email["reader@example.com"]["status"] == "expired"
    assert by_email["reader2@example.com"]["status"] == "revoked"
    answer = await admin.get("/v1/admin/supporters/export")
    report = await import_csv(admin, answer.text)
    assert report == {"created": 0, "updated": 0, "unchanged": 3, "errors": [], "dry_run": False}
    assert next(s for s in await listed(admin) if s["email"] == "formula@example.com")["note"].startswith("=HYP")


@pytest.mark.usefixtures("tiers")
async def test_an_import_changes_what_differs(admin: Client) -> None:
    """A known address with another tier, note or status is updated in place and each change audited."""
    await import_csv(admin, GOOD)
    report = await import_csv(
        admin,
        "tier,email,note,status\n"
        "patron,reader@example.com,moved up,active\n"
        "supporter,formula@example.com,,revoked\n"
        "patron,reader2@example.com,,\n",
    )
    assert report == {"created": 0, "updated": 2, "unchanged": 1, "errors": [], "dry_run": False}
    stored = {s["email"]: s for s in await listed(admin)}
    assert stored["reader@example.com"]["tier"] == "patron"
    assert stored["reader@example.com"]["expires_at"] == "2027-01-31T00:00:00Z"  # no column: left as it was
    assert stored["reader@example.com"]["note"] == "moved up"
    assert stored["formula@example.com"]["status"] == "revoked"
    assert stored["formula@example.com"]["note"] is None
    on_patron = sorted(s["email"] for s in await listed(admin, tier="patron"))
    assert on_patron == ["reader2@example.com", "reader@example.com"]
    assert (await audit_actions(admin))[:3] == ["supporter.import", "supporter.update", "supporter.update"]


@pytest.mark.usefixtures("tiers")
async def test_an_import_racing_a_grant_makes_one_supporter(admin: Client, services: Services) -> None:
    """A grant of an address while an import of it runs: one supporter results, never two or a lost index."""
    lines = "".join(f"reader{n}@example.com,supporter\n" for n in range(IMPORT_BATCH * 2))
    source = io.BytesIO(b"email,tier\n" + lines.encode())
    results = await asyncio.gather(
        services.supporter_csv.import_file(source, actor="t"),
        *(
            services.supporters.create(SupporterIn(email=f"reader{n}@example.com", tier="patron"), actor="t")
            for n in range(0, IMPORT_BATCH * 2, 97)
        ),
        return_exceptions=True,
    )
    report = results[0]
    assert isinstance(report, ImportReport), report
    granted = [r for r in results[1:] if not isinstance(r, BaseException)]
    assert all(isinstance(r, Conflict) for r in results[1:] if isinstance(r, BaseException))
    assert report.created + len(granted) == IMPORT_BATCH * 2
    assert report.updated == len(granted)  # each granted first was then moved to the file's tier
    rows = await export_rows(admin)
    assert sorted(row["email"] for row in rows) == sorted(f"reader{n}@example.com" for n in range(IMPORT_BATCH * 2))
    assert {row["tier"] for row in rows} == {"supporter"}
    assert len(await export_rows(admin, tier="patron")) == 0


@pytest.mark.usefixtures("tiers")
async def test_bad_rows_are_reported_by_line_and_the_rest_written(admin: Client) -> None:
    """Each kind of bad row is named with its line; the good rows around them are imported."""
    body = (
        "email,tier,expires_at,note\n"
        "good1@example.com,supporter,,\n"
        "not-an-address,supporter,,\n"
        "unknown-tier@example.com,gold,,\n"
        "bad-date@example.com,supporter,next tuesday,\n"
        "no-offset@example.com,supporter,2027-01-01T00:00:00,\n"
        "past@example.com,supporter,2020-01-01T00:00:00Z,\n"
        "GOOD1@example.com,patron,,\n"
        "short@example.com,supporter\n"
        '"multi\nline@example.com",supporter,,\n'
        "good2@example.com,patron,,\n"
    )
    report = await import_csv(admin, body)
    assert (report["created"], report["updated"], report["unchanged"]) == (2, 0, 0)
    errors = {error["line"]: error["detail"] for error in report["errors"]}
    assert sorted(errors) == [3, 4, 5, 6, 7, 8, 9, 11]
    assert "'not-an-address' is not an email address" in errors[3]
    assert "no tier 'gold'" in errors[4]
    assert "'next tuesday' is not an RFC 3339 time" in errors[5]
    assert "with an offset" in errors[6]
    assert "has passed" in errors[7]
    assert "good1@example.com is on line 2 already" in errors[8]
    assert "2 cells" in errors[9]
    assert "is not an email address" in errors[11]  # a quoted cell over two lines ends on the second
    assert sorted(s["email"] for s in await listed(admin)) == ["good1@example.com", "good2@example.com"]


@pytest.mark.usefixtures("tiers")
async def test_the_documented_example_imports(admin: Client) -> None:
    """docs/examples/supporters.csv imports whole: three grants, the quoted note with its comma kept."""
    body = (Path(__file__).parent.parent / "docs" / "examples" / "supporters.csv").read_text()
    assert await import_csv(admin, body) == {"created": 3, "updated": 0, "unchanged": 0, "errors": [], "dry_run": False}
    notes = {s["email"]: s["note"] for s in await listed(admin)}
    assert notes["patron@example.com"] == "pays yearly, by invoice"


@pytest.mark.usefixtures("tiers")
async def test_a_dry_run_writes_nothing(admin: Client) -> None:
    """With dry_run=true the answer counts what would happen, and nothing is stored or audited."""
    await import_csv(admin, "email,tier\nknown@example.com,supporter\n")
    actions = await audit_actions(admin)
    report = await import_csv(
        admin,
        "email,tier\nknown@example.com,patron\nnew@example.com,supporter\nbad,supporter\n",
        dry_run="true",
    )
    assert report["dry_run"] is True
    assert (report["created"], report["updated"], report["unchanged"]) == (1, 1, 0)
    assert [error["line"] for error in report["errors"]] == [4]
    assert [(s["email"], s["tier"]) for s in await listed(admin)] == [("known@example.com", "supporter")]
    assert await audit_actions(admin) == actions


@pytest.mark.usefixtures("tiers")
async def test_more_rows_than_a_batch(admin: Client) -> None:
    """A file longer than one batch is imported whole, its errors in line order, and exported back whole."""
    count = IMPORT_BATCH * 2 + 7
    lines = [f"reader{n}@example.com,{'supporter' if n % 2 else 'patron'}" for n in range(count)]
    lines[IMPORT_BATCH + 3] = "broken,supporter"
    report = await import_csv(admin, "email,tier\n" + "\n".join(lines) + "\n")
    assert report["created"] == count - 1
    assert report["errors"] == [
        {"line": IMPORT_BATCH + 5, "detail": report["errors"][0]["detail"]},
    ]
    assert len(await export_rows(admin)) == count - 1
    assert len(await export_rows(admin, tier="patron")) == (count + 1) // 2


@pytest.mark.usefixtures("tiers")
@pytest.mark.parametrize(
    ("body", "named"),
    [
        ("email,tier,colour,size\nx@example.com,supporter,red,9\n", "'colour', 'size'"),
        ("email,expires_at\nx@example.com,\n", "tier"),
        ("tier\nsupporter\n", "email"),
        ("", "no header row"),
        ("email,tier,email\n", "email"),
    ],
)
async def test_a_bad_header_is_refused_with_nothing_written(admin: Client, body: str, named: str) -> None:
    """A header with unknown, missing or repeated columns, or none, is a 400 naming it; nothing is stored."""
    answer = await admin.post("/v1/admin/supporters/import", content=body.encode(), headers=CSV)
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert named in answer.json()["detail"]
    assert await listed(admin) == []


@pytest.mark.usefixtures("tiers")
async def test_a_file_over_the_limit_is_refused(admin: Client) -> None:
    """A body over 20 MiB is a 413 problem, and none of its rows is written."""
    row = b"reader@example.com,supporter\n"
    body = b"email,tier\n" + row * (MAX_IMPORT_BYTES // len(row) + 1)
    answer = await admin.post("/v1/admin/supporters/import", content=body, headers=CSV)
    assert answer.status_code == 413
    assert answer.headers["content-type"] == "application/problem+json"
    assert await listed(admin) == []


@pytest.mark.usefixtures("tiers")
async def test_a_file_that_is_not_utf8_is_refused(admin: Client) -> None:
    """A Latin-1 file is refused (400) before any row is written, even its good first rows."""
    body = "email,tier,note\nfirst@example.com,supporter,\nsecond@example.com,supporter,caf\xe9\n".encode("latin-1")
    answer = await admin.post("/v1/admin/supporters/import", content=body, headers=CSV)
    assert answer.status_code == 400
    assert "not UTF-8" in answer.json()["detail"]
    assert await listed(admin) == []


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", "text/csv; charset=latin-1", None])
async def test_import_takes_only_csv(admin: Client, content_type: str | None) -> None:
    """Any body not sent as text/csv (UTF-8) is a 415 problem."""
    headers = {"Content-Type": content_type} if content_type else {}
    answer = await admin.post("/v1/admin/supporters/import", content=b"email,tier\n", headers=headers)
    assert answer.status_code == 415
    assert answer.headers["content-type"] == "application/problem+json"
    assert "text/csv" in answer.json()["detail"]


async def test_import_and_export_need_an_admin_key(client: Client) -> None:
    """Without an admin key both answer 401."""
    assert (await client.get("/v1/admin/supporters/export")).status_code == 401
    answer = await client.post("/v1/admin/supporters/import", content=b"email,tier\n", headers=CSV)
    assert answer.status_code == 401


@pytest.mark.usefixtures("tiers")
async def test_export_filters_like_the_list(admin: Client) -> None:
    """Export takes the list's tier, status and q; an unknown tier is a 400 problem, not a broken file."""
    await import_csv(admin, GOOD)
    assert [row["email"] for row in await export_rows(admin, tier="patron")] == ["reader2@example.com"]
    assert [row["email"] for row in await export_rows(admin, q="fair")] == ["reader@example.com"]
    assert len(await export_rows(admin, status="active")) == 3
    assert await export_rows(admin, status="revoked") == []
    answer = await admin.get("/v1/admin/supporters/export", params={"tier": "gold"})
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("stored", "written"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("'quoted", "''quoted"),
        ("a=b", "a=b"),
    ],
)
def test_cells_that_start_a_formula_are_written_as_text(stored: str, written: str) -> None:
    """A cell a spreadsheet would run gets a leading apostrophe, and an import takes exactly that one off."""
    assert safe_cell(stored) == written
    assert unescape_cell(written) == stored


def run_cli(*args: str, settings: Settings) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SUPPORTGATE_REDIS_URL": settings.redis_url or "",
        "SUPPORTGATE_DATA_DIR": str(settings.data_dir),
    }
    return subprocess.run(
        [sys.executable, "-m", "supportgate", "supporters", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.usefixtures("tiers")
async def test_cli_import_and_export(admin: Client, settings: Settings, services: Services, tmp_path: Path) -> None:
    """`supporters import` (dry run, then for real, then again) and `supporters export --out` go through the store."""
    source = tmp_path / "in.csv"
    source.write_text(GOOD + "bad,supporter,,\n")
    dry = run_cli("import", str(source), "--dry-run", settings=settings)
    assert dry.returncode == 1, dry.stderr
    assert "would create 3, would update 0, unchanged 0, errors 1" in dry.stdout
    assert "line 5:" in dry.stderr
    assert await listed(admin) == []
    done = run_cli("import", str(source), settings=settings)
    assert "created 3, updated 0, unchanged 0, errors 1" in done.stdout
    assert len(await listed(admin)) == 3
    out = tmp_path / "out.csv"
    exported = run_cli("export", "--out", str(out), "--tier", "supporter", settings=settings)
    assert exported.returncode == 0, exported.stderr
    rows = list(csv.DictReader(out.open()))
    assert sorted(row["email"] for row in rows) == ["formula@example.com", "reader@example.com"]
    again = run_cli("import", str(out), settings=settings)
    assert again.returncode == 0, again.stderr
    assert "created 0, updated 0, unchanged 2, errors 0" in again.stdout
    source.write_text("email,colour\n")
    refused = run_cli("import", str(source), settings=settings)
    assert refused.returncode == 2
    assert "'colour'" in refused.stderr
    assert (await services.supporters.find_by_email("reader@example.com")) is not None
