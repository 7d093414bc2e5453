"""Importing 100,000 supporters from CSV through ``SupporterCsv`` against an embedded store.

Run with ``uv run python bench/csv_import.py [--rows N]``. It starts a private store in a
temporary directory as the CLI would (unix socket, AOF on, every batch waited on the disk with
``WAITAOF``), makes two tiers, writes a CSV file of ``--rows`` new addresses (half with an expiry,
a third with a note), and imports it through the service the HTTP route and the CLI call: first
into an empty store (all created, each with its audit entry), then the same file again (all
unchanged), then a dry run; last it exports everything back. Goal: the first import under 60 s.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import tempfile
import time
from pathlib import Path

from supportgate.catalog.audit import AuditLog
from supportgate.catalog.schemas import TierIn
from supportgate.catalog.supporter_csv import SupporterCsv
from supportgate.catalog.supporters import SupporterService
from supportgate.catalog.tiers import TierService
from supportgate.clock import utc_now
from supportgate.store import EmbeddedStore, Store, connect


def write_file(path: Path, rows: int) -> None:
    """A CSV file of ``rows`` distinct addresses over two tiers."""
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "tier", "expires_at", "note"])
        for n in range(rows):
            tier = "patron" if n % 4 == 0 else "supporter"
            expires = "2031-01-31T00:00:00Z" if n % 2 else ""
            note = f"imported from the old list, row {n}" if n % 3 == 0 else ""
            writer.writerow([f"Reader.{n}@Example.com", tier, expires, note])


async def measure(url: str, source: Path) -> list[tuple[str, float, str]]:
    """The table's rows: what ran, in how many seconds, and what it reported."""
    store = Store(connect(url))
    try:
        audit = AuditLog(store)
        supporters = SupporterService(store, audit, utc_now)
        tiers = TierService(store, audit, utc_now)
        for tier_id in ("supporter", "patron"):
            await tiers.create(
                TierIn(id=tier_id, name=tier_id.title(), entitlements=["adblock_ok"], max_devices=3), actor="bench"
            )
        service = SupporterCsv(store, supporters, audit, utc_now)
        table = []
        for label, dry_run in (("import, empty store", False), ("same file again", False), ("dry run", True)):
            with source.open("rb") as data:
                start = time.perf_counter()
                report = await service.import_file(data, actor="bench", dry_run=dry_run)
                took = time.perf_counter() - start
            said = (
                f"created {report.created}, updated {report.updated}, "
                f"unchanged {report.unchanged}, errors {len(report.errors)}"
            )
            table.append((label, took, said))
        start = time.perf_counter()
        size = rows = 0
        async for chunk in await service.export(tier=None, status=None, q=None):
            size += len(chunk)
            rows += chunk.count(b"\n")
        table.append(("export, all", time.perf_counter() - start, f"{rows - 1} rows, {size / 1e6:.1f} MB"))
        return table
    finally:
        await store.close()


def main() -> None:
    """Start a store, write the file, import it three ways, print the table and the load."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "supporters.csv"
        write_file(source, args.rows)
        print(f"{args.rows} rows, {source.stat().st_size / 1e6:.1f} MB; load before: {os.getloadavg()}")
        with EmbeddedStore(Path(scratch) / "store") as server:
            table = asyncio.run(measure(server.url, source))
    print(f"| {'step':<22} | {'seconds':>8} | {'rows/s':>9} | reported |")
    print(f"| {'-' * 22} | {'-' * 8} | {'-' * 9} | --- |")
    for label, took, said in table:
        print(f"| {label:<22} | {took:8.1f} | {args.rows / took:9,.0f} | {said} |")
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
