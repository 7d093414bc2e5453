"""Funnel events (``POST /v1/sites/{site}/events``) and the stats that show them, per site and for all sites."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from supportgate.gate.events import COUNTERS, EVENT_LIMIT
from supportgate.gate.schemas import FunnelEvent
from supportgate.services import Services
from tests.conftest import FakeClock
from tests.gate_helpers import BLOG_ORIGIN, NEWS_ORIGIN, Client, World, decided, flush_stats, make_world, view

EVENTS = "/v1/sites/news/events"
BROWSER = {"Origin": NEWS_ORIGIN}


@pytest.fixture
async def world(client: Client, services: Services) -> World:  # noqa: ARG001 - the app starts first
    return await make_world(services)


async def stats(client: Client, world: World, **params: str | int) -> dict[str, Any]:
    answer = await client.get("/v1/admin/stats", params=params, headers=world.admin)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def store_keys(url: str) -> set[bytes]:
    with redis.Redis.from_url(url) as plain:
        return set(plain.keys("*"))


async def test_each_event_moves_its_counter(client: Client, world: World) -> None:
    """Every event from the site's origin is 204 with CORS, and after a flush each counter holds its count."""
    sent: dict[FunnelEvent, int] = {
        "recheck": 3,
        "allowlisted": 1,
        "support_click": 2,
        "signin_click": 1,
        "nag_dismissed": 4,
    }
    for event, times in sent.items():
        for _ in range(times):
            answer = await client.post(EVENTS, json={"event": event}, headers=BROWSER)
            assert answer.status_code == 204, answer.text
            assert answer.headers["access-control-allow-origin"] == NEWS_ORIGIN
            assert answer.headers["cache-control"] == "no-store"
    flush_stats(client)
    result = await stats(client, world, site="news")
    expected = {COUNTERS[event]: times for event, times in sent.items()}
    assert {field: result["totals"][field] for field in expected} == expected
    assert {field: result["days"][-1][field] for field in expected} == expected
    assert result["totals"]["views"] == 0


async def test_a_site_key_may_send_events(client: Client, world: World) -> None:
    """A site backend with its key needs no Origin, and its answer carries no CORS header."""
    answer = await client.post(EVENTS, json={"event": "support_click"}, headers=world.site_key())
    assert answer.status_code == 204
    assert "access-control-allow-origin" not in answer.headers
    flush_stats(client)
    assert (await stats(client, world, site="news"))["totals"]["support_clicks"] == 1


@pytest.mark.usefixtures("world")
async def test_events_follow_the_origin_rule(client: Client, store_url: str) -> None:
    """No origin or key → 401, another site's origin → 403, unknown site → 404, with nothing written."""
    before = store_keys(store_url)
    body = {"event": "recheck"}
    assert (await client.post(EVENTS, json=body)).status_code == 401
    assert (await client.post(EVENTS, json=body, headers={"Origin": BLOG_ORIGIN})).status_code == 403
    missing = await client.post("/v1/sites/nowhere/events", json=body, headers=BROWSER)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    flush_stats(client)
    assert store_keys(store_url) == before


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"event": "wall_shown"}, "$.event"),
        ({"event": "recheck", "email": "reader@example.com"}, "email"),
        ({}, "event"),
        ({"event": 1}, "$.event"),
    ],
)
@pytest.mark.usefixtures("world")
async def test_bad_events_are_400_naming_the_field(
    client: Client, store_url: str, body: dict[str, Any], named: str
) -> None:
    """An event outside the fixed set, an extra field (personal data has no place), or none at all is 400."""
    before = store_keys(store_url)
    answer = await client.post(EVENTS, json=body, headers=BROWSER)
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert named in answer.json()["detail"]
    flush_stats(client)
    assert store_keys(store_url) == before


@pytest.mark.usefixtures("world")
async def test_events_are_json_only(client: Client) -> None:
    """A form post (what a page could send without a preflight) is 415."""
    answer = await client.post(EVENTS, content=b"event=recheck", headers={**BROWSER, "Content-Type": "text/plain"})
    assert answer.status_code == 415
    assert answer.headers["content-type"].startswith("application/problem+json")


@pytest.mark.usefixtures("world")
async def test_bodies_over_4_kb_are_413(client: Client, store_url: str) -> None:
    """A body over 4,096 bytes is refused before it is read, and nothing is counted."""
    before = store_keys(store_url)
    padded = b'{"event": "recheck"' + b" " * 4096 + b"}"
    answer = await client.post(EVENTS, content=padded, headers={**BROWSER, "Content-Type": "application/json"})
    assert answer.status_code == 413
    assert answer.headers["content-type"].startswith("application/problem+json")
    flush_stats(client)
    assert store_keys(store_url) == before


@pytest.mark.usefixtures("world")
async def test_the_preflight_allows_only_the_sites_origins(client: Client) -> None:
    """The CORS preflight answers the site's origins with POST and Content-Type allowed; others get 403."""
    allowed = await client.options(
        EVENTS,
        headers={**BROWSER, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"},
    )
    assert (allowed.status_code, allowed.headers["access-control-allow-origin"]) == (204, NEWS_ORIGIN)
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert "content-type" in allowed.headers["access-control-allow-headers"].lower()
    refused = await client.options(EVENTS, headers={"Origin": BLOG_ORIGIN})
    assert refused.status_code == 403
    assert "access-control-allow-origin" not in refused.headers
    assert (await client.options(EVENTS)).status_code == 403


async def test_events_are_rate_limited_per_address_and_site(client: Client, world: World, store_url: str) -> None:
    """Past the hour's allowance an address gets 429 with Retry-After and the counter stops; other sites are apart."""
    for _ in range(EVENT_LIMIT.limit):
        assert (await client.post(EVENTS, json={"event": "recheck"}, headers=BROWSER)).status_code == 204
    refused = await client.post(EVENTS, json={"event": "recheck"}, headers=BROWSER)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0
    blog = await client.post("/v1/sites/blog/events", json={"event": "recheck"}, headers={"Origin": BLOG_ORIGIN})
    assert blog.status_code == 204
    flush_stats(client)
    assert (await stats(client, world, site="news"))["totals"]["rechecks"] == EVENT_LIMIT.limit
    stats_keys = {key for key in store_keys(store_url) if b":stats:" in key}
    assert stats_keys == {b"sg:{site:news}:stats:2026-11-24", b"sg:{site:blog}:stats:2026-11-24"}


async def test_stats_for_all_sites_are_the_sums(client: Client, world: World) -> None:
    """Without a site, the stats sum every site's counters per day and in total, with site null."""
    await decided(client, view("clear"))
    await decided(client, view("blocked", site="blog"), origin=BLOG_ORIGIN)
    await client.post(EVENTS, json={"event": "recheck"}, headers=BROWSER)
    await client.post("/v1/sites/blog/events", json={"event": "recheck"}, headers={"Origin": BLOG_ORIGIN})
    await client.post("/v1/sites/blog/events", json={"event": "allowlisted"}, headers={"Origin": BLOG_ORIGIN})
    flush_stats(client)
    result = await stats(client, world)
    assert result["site"] is None
    totals = result["totals"]
    assert (totals["views"], totals["clear"], totals["blocked"]) == (2, 1, 1)
    assert (totals["rechecks"], totals["allowlisted"]) == (2, 1)
    assert result["days"][-1]["rechecks"] == 2
    assert len(result["days"]) == 30


@pytest.mark.parametrize("days", [7, 30, 90])
async def test_the_consoles_views_are_one_parameter(client: Client, world: World, clock: FakeClock, days: int) -> None:
    """``days=7|30|90`` covers that many days up to today (or up to ``to``), per site and for all sites."""
    await client.post(EVENTS, json={"event": "signin_click"}, headers=BROWSER)
    clock.advance(days=days)
    await client.post(EVENTS, json={"event": "signin_click"}, headers=BROWSER)
    flush_stats(client)
    for params in ({"site": "news"}, {}):
        result = await stats(client, world, days=days, **params)
        assert len(result["days"]) == days
        assert result["days"][-1]["date"] == clock.now.date().isoformat()
        assert result["totals"]["signin_clicks"] == 1
    ending = await stats(client, world, days=days, to="2026-11-24")
    assert (len(ending["days"]), ending["days"][-1]["date"]) == (days, "2026-11-24")
    assert ending["totals"]["signin_clicks"] == 1


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"days": 0}, "days"),
        ({"days": 401}, "days"),
        ({"days": 7, "from": "2026-11-01"}, "from, days"),
    ],
)
async def test_bad_day_counts_are_400(client: Client, world: World, params: dict[str, Any], named: str) -> None:
    """A day count outside 1..400, or given with from, is 400 naming it."""
    answer = await client.get("/v1/admin/stats", params=params, headers=world.admin)
    assert answer.status_code == 400, answer.text
    assert named in answer.json()["detail"]


async def test_the_document_states_the_route_and_the_new_stats(client: Client) -> None:
    """The OpenAPI document has the events route's 204, its problems and limits, and the stats' days and null site."""
    document = (await client.get("/schema/openapi.json")).json()
    events = document["paths"]["/v1/sites/{site}/events"]["post"]
    assert {"204", "400", "401", "403", "404", "413", "415", "429"} <= set(events["responses"])
    assert EVENT_LIMIT.describe() in events["description"]
    assert "a body of at most 4096 bytes" in events["description"]
    schemas = document["components"]["schemas"]
    assert schemas["EventIn"]["additionalProperties"] is False
    assert set(schemas["EventIn"]["properties"]["event"]["enum"]) == set(COUNTERS)
    assert set(COUNTERS.values()) <= set(schemas["Counters"]["properties"])
    stats_params = {p["name"]: p for p in document["paths"]["/v1/admin/stats"]["get"]["parameters"]}
    assert (stats_params["days"]["schema"]["minimum"], stats_params["days"]["schema"]["maximum"]) == (1, 400)
    assert not stats_params["site"].get("required", False)
