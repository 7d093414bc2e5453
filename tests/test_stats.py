"""The gate's counters (buffered, flushed, read per day) and false-positive reports."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from supportgate.gate.reports import REPORT_LIMIT
from supportgate.gate.stats import StatsBuffer
from supportgate.services import Services
from supportgate.store import EmbeddedStore, Store, connect, open_store
from tests.cluster_helpers import sync_client
from tests.conftest import EVERY_STORE, FakeClock, server_binary
from tests.gate_helpers import (
    BLOG_ORIGIN,
    NEWS_ORIGIN,
    Client,
    World,
    decided,
    flush_stats,
    make_world,
    pass_for,
    set_policy,
    view,
)

ZERO = dict.fromkeys(
    [
        "views",
        "blocked",
        "clear",
        "inconclusive",
        "walls",
        "nags",
        "supporter_unlocks",
        "metered_allows",
        "false_positive_reports",
        "rechecks",
        "allowlisted",
        "support_clicks",
        "signin_clicks",
        "nag_dismissals",
    ],
    0,
)
REPORT = {"signals": {"control": True, "network": False, "cosmetic": True}, "path": "/article"}


@pytest.fixture
async def world(client: Client, services: Services) -> World:  # noqa: ARG001 - the app starts first
    return await make_world(services)


async def stats(client: Client, world: World, **params: str) -> dict[str, Any]:
    answer = await client.get("/v1/admin/stats", params={"site": "news", **params}, headers=world.admin)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


async def test_decisions_are_counted_per_day(
    client: Client, world: World, services: Services, clock: FakeClock
) -> None:
    """After a flush, today's counters and the totals hold every view, signal and outcome."""
    await set_policy(services, clock, free_views=1)
    fan_pass = await pass_for(services, world.supporter_id)
    await decided(client, view("clear"))
    await decided(client, view("inconclusive"))
    await decided(client, view("unknown"))
    await decided(client, view(**{"pass": fan_pass}))
    await decided(client, view(visitor="visitor-0001"))
    await decided(client, view(visitor="visitor-0001"))
    await decided(client, view(site="blog"), origin=BLOG_ORIGIN)
    await set_policy(services, clock, mode="soft")
    await decided(client, view())
    flush_stats(client)

    expected = {
        **ZERO,
        "views": 7,
        "blocked": 4,
        "clear": 1,
        "inconclusive": 2,
        "walls": 1,
        "nags": 1,
        "supporter_unlocks": 1,
        "metered_allows": 1,
    }
    result = await stats(client, world)
    assert result["site"] == "news"
    assert result["days"][-1] == {"date": "2026-11-24", **expected}
    assert result["totals"] == expected
    blog = await client.get("/v1/admin/stats", params={"site": "blog"}, headers=world.admin)
    assert blog.json()["totals"]["views"] == 1


async def test_days_are_kept_apart(client: Client, world: World, clock: FakeClock) -> None:
    """Views on two UTC days land on their own day; a range covers every day in it, zeros included."""
    await decided(client, view("clear"))
    clock.advance(days=2)
    await decided(client, view("clear"))
    await decided(client, view("clear"))
    flush_stats(client)
    result = await stats(client, world, **{"from": "2026-11-23", "to": "2026-11-26"})
    assert [(d["date"], d["views"]) for d in result["days"]] == [
        ("2026-11-23", 0),
        ("2026-11-24", 1),
        ("2026-11-25", 0),
        ("2026-11-26", 2),
    ]
    assert result["totals"]["views"] == 3


async def test_the_default_range_is_the_last_30_days(client: Client, world: World) -> None:
    """Without from and to, the stats cover the 30 days up to today (UTC)."""
    days = (await stats(client, world))["days"]
    assert (len(days), days[0]["date"], days[-1]["date"]) == (30, "2026-10-26", "2026-11-24")
    only_to = (await stats(client, world, to="2026-11-10"))["days"]
    assert (len(only_to), only_to[-1]["date"]) == (30, "2026-11-10")


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"from": "2026-11-24", "to": "2026-11-01"}, "from"),
        ({"from": "2025-01-01", "to": "2026-11-24"}, "400"),
        ({"from": "2026-13-01"}, "from: '2026-13-01'"),
        ({"from": "20261101"}, "from: '20261101'"),
        ({"to": "yesterday"}, "to: 'yesterday'"),
        ({"site": "Not A Site"}, "site"),
    ],
)
async def test_bad_ranges_are_400(client: Client, world: World, params: dict[str, str], named: str) -> None:
    """A range that ends before it starts, spans over 400 days, or has a bad date or site is 400."""
    answer = await client.get("/v1/admin/stats", params={"site": "news", **params}, headers=world.admin)
    assert answer.status_code == 400, answer.text
    assert named in answer.json()["detail"]


async def test_the_longest_range_is_400_days(client: Client, world: World) -> None:
    """Exactly 400 days is allowed."""
    days = (await stats(client, world, **{"from": "2025-10-21", "to": "2026-11-24"}))["days"]
    assert len(days) == 400


async def test_stats_need_an_admin_key_and_a_known_site(client: Client, world: World) -> None:
    """No admin key → 401; a site key is not an admin key; an unknown site → 404."""
    assert (await client.get("/v1/admin/stats", params={"site": "news"})).status_code == 401
    site_key = world.site_key()
    assert (await client.get("/v1/admin/stats", params={"site": "news"}, headers=site_key)).status_code == 401
    missing = await client.get("/v1/admin/stats", params={"site": "nowhere"}, headers=world.admin)
    assert missing.status_code == 404


# False-positive reports


async def test_reports_are_counted_and_listed(client: Client, world: World, clock: FakeClock) -> None:
    """A report from the site's origin is accepted (202, CORS), counted, and listed newest first for admins."""
    sent = await client.post(
        "/v1/sites/news/reports", json=REPORT, headers={"Origin": NEWS_ORIGIN, "User-Agent": "Firefox/140"}
    )
    assert sent.status_code == 202, sent.text
    assert sent.headers["access-control-allow-origin"] == NEWS_ORIGIN
    clock.advance(minutes=1)
    later = {**REPORT, "path": "/other", "user_agent": "Chrome/141"}
    assert (await client.post("/v1/sites/news/reports", json=later, headers=world.site_key())).status_code == 202
    flush_stats(client)
    assert (await stats(client, world))["totals"]["false_positive_reports"] == 2

    listed = await client.get("/v1/admin/sites/news/reports", headers=world.admin)
    assert listed.status_code == 200
    items = listed.json()["items"]
    assert [(r["path"], r["user_agent"]) for r in items] == [("/other", "Chrome/141"), ("/article", "Firefox/140")]
    assert items[1] == {**REPORT, "at": "2026-11-24T12:00:00Z", "user_agent": "Firefox/140"}
    limited = await client.get("/v1/admin/sites/news/reports", params={"limit": 1}, headers=world.admin)
    assert len(limited.json()["items"]) == 1


@pytest.mark.usefixtures("world")
async def test_reports_follow_the_origin_rule(client: Client) -> None:
    """Reports need the site's origin or key; others get 401/403, unknown sites 404, bad bodies 400."""
    post = client.post
    assert (await post("/v1/sites/news/reports", json=REPORT)).status_code == 401
    assert (await post("/v1/sites/news/reports", json=REPORT, headers={"Origin": BLOG_ORIGIN})).status_code == 403
    assert (await post("/v1/sites/nowhere/reports", json=REPORT, headers={"Origin": NEWS_ORIGIN})).status_code == 404
    bad = await post("/v1/sites/news/reports", json={**REPORT, "path": "x"}, headers={"Origin": NEWS_ORIGIN})
    assert bad.status_code == 400
    assert "$.path" in bad.json()["detail"]
    preflight = await client.options("/v1/sites/news/reports", headers={"Origin": NEWS_ORIGIN})
    assert (preflight.status_code, preflight.headers["access-control-allow-origin"]) == (204, NEWS_ORIGIN)
    refused = await client.options("/v1/sites/news/reports", headers={"Origin": BLOG_ORIGIN})
    assert refused.status_code == 403
    assert "access-control-allow-origin" not in refused.headers


@pytest.mark.usefixtures("world")
async def test_reports_are_rate_limited_per_address(client: Client) -> None:
    """One address may send a site only so many reports an hour; then 429 with Retry-After."""
    headers = {"Origin": NEWS_ORIGIN}
    for _ in range(REPORT_LIMIT.limit):
        assert (await client.post("/v1/sites/news/reports", json=REPORT, headers=headers)).status_code == 202
    refused = await client.post("/v1/sites/news/reports", json=REPORT, headers=headers)
    assert refused.status_code == 429
    assert "retry-after" in refused.headers


async def test_listing_reports_needs_an_admin_key(client: Client, world: World) -> None:
    """The reports list is for admins, and 404 for an unknown site."""
    assert (await client.get("/v1/admin/sites/news/reports")).status_code == 401
    assert (await client.get("/v1/admin/sites/nowhere/reports", headers=world.admin)).status_code == 404


# The buffer itself


def stored_counts(url: str, site: str, day: str) -> dict[str, int]:
    with sync_client(url) as plain:
        raw: dict[bytes, bytes] = plain.hgetall(f"sg:{{site:{site}}}:stats:{day}")  # type: ignore[assignment]
    return {name.decode(): int(value) for name, value in raw.items()}


@EVERY_STORE
async def test_a_flush_adds_to_what_is_stored(store_url: str, clock: FakeClock) -> None:
    """Counts are added with HINCRBY, so two flushes (or two workers) sum, and the hash expires in ~400 days."""
    store = await open_store(store_url)
    try:
        buffer = StatsBuffer(store, clock)
        buffer.count("news", "views", "blocked")
        await buffer.flush()
        other_worker = StatsBuffer(store, clock)
        other_worker.count("news", "views")
        await other_worker.flush()
        assert stored_counts(store_url, "news", "2026-11-24") == {"views": 2, "blocked": 1}
        ttl = await store.redis.ttl("sg:{site:news}:stats:2026-11-24")
        assert 399 * 86400 < ttl <= 400 * 86400
    finally:
        await store.close()


@EVERY_STORE
async def test_stop_flushes_what_is_left(store_url: str, clock: FakeClock) -> None:
    """Stopping the buffer (app shutdown) flushes its counts."""
    store = await open_store(store_url)
    try:
        buffer = StatsBuffer(store, clock, interval=3600)
        await buffer.start()
        buffer.count("news", "walls")
        await buffer.stop()
        assert stored_counts(store_url, "news", "2026-11-24") == {"walls": 1}
    finally:
        await store.close()


async def test_a_failed_flush_keeps_the_counts(
    tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """While the store is down, flushes fail with one warning and keep the counts; the next good flush sends them."""
    server = EmbeddedStore(tmp_path / "data", binary=server_binary("valkey"))
    server.start()
    store = Store(connect(server.url, timeout=0.5))
    try:
        buffer = StatsBuffer(store, clock)
        buffer.count("news", "views")
        server.stop()
        await buffer.flush()
        buffer.count("news", "views")
        await buffer.flush()
        assert [r.levelname for r in caplog.records if "stats flush failed" in r.message] == ["WARNING"]
        server.start()
        await buffer.flush()
        assert stored_counts(server.url, "news", "2026-11-24") == {"views": 2}
    finally:
        await store.close()
        server.stop()


async def test_the_kept_counts_are_bounded(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    """Past max_pending counters, a failing buffer drops the oldest days' counts, with a warning."""
    store = Store(connect("unix:///nonexistent/supportgate-test.sock", timeout=0.2))
    try:
        buffer = StatsBuffer(store, clock, max_pending=2)
        for _ in range(3):
            buffer.count("news", "views")
            clock.advance(days=1)
        await buffer.flush()
        assert sorted(day for _, day, _ in buffer._pending) == ["2026-11-25", "2026-11-26"]
        assert any("dropped 1 counts" in r.message for r in caplog.records)
        assert date(2026, 11, 27) == clock.now.date()
    finally:
        await store.close()
