"""POST /v1/decide: every rule and reason in order, passes, metering, crawlers, who may call, errors."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import redis

from supportgate.app import create_app
from supportgate.catalog.schemas import SitePatch
from supportgate.gate.cache import TtlCache
from supportgate.gate.controllers import MAX_DECIDE_BYTES
from supportgate.services import Services
from supportgate.settings import Settings
from supportgate.store import EmbeddedStore
from tests.conftest import EVERY_STORE, FakeClock
from tests.gate_helpers import (
    BLOG_ORIGIN,
    NEWS_ORIGIN,
    Client,
    World,
    decide,
    decided,
    make_world,
    pass_for,
    set_policy,
    view,
)
from tests.tokens_helpers import MASTER_MATERIAL

INTERSTITIAL = "http://127.0.0.1:8000/v1/sites/news/interstitial"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


@pytest.fixture
async def world(client: Client, services: Services) -> World:  # noqa: ARG001 - the app starts first
    return await make_world(services)


@pytest.fixture
async def fan_pass(world: World, services: Services) -> str:
    """A valid pass for news of a supporter whose tier carries adblock_ok."""
    return await pass_for(services, world.supporter_id)


# Rule 1: error pages and exempt paths


@pytest.mark.usefixtures("world")
async def test_error_pages_are_never_gated(client: Client) -> None:
    """A 404 or 500 page is allowed with reason not_found_page, whatever detection found."""
    for status in (404, 500):
        assert await decided(client, view(status=status)) == {"decision": "allow", "reason": "not_found_page"}
    assert (await decided(client, view(status=200)))["decision"] == "wall"


@pytest.mark.usefixtures("world")
async def test_exempt_paths_match_whole_paths_as_globs(client: Client, services: Services, clock: FakeClock) -> None:
    """Exempt globs match the whole path (query aside): /legal/* covers /legal/terms, not /legal or /about/team."""
    await set_policy(services, clock, exempt_paths=["/about", "/legal/*"])
    for path in ("/about", "/about?ref=nav", "/legal/terms", "/legal/a/b"):
        assert (await decided(client, view(path=path)))["reason"] == "exempt_path", path
    for path in ("/legal", "/about/team", "/x/about"):
        assert (await decided(client, view(path=path)))["decision"] == "wall", path


@pytest.mark.usefixtures("world")
async def test_an_exempt_path_beats_a_bad_pass(client: Client, services: Services, clock: FakeClock) -> None:
    """On an exempt path the pass is not even looked at: no pass_error."""
    await set_policy(services, clock, exempt_paths=["/about"])
    answer = await decided(client, view(path="/about", **{"pass": "forged"}))
    assert answer == {"decision": "allow", "reason": "exempt_path"}


# Rule 2: passes


@EVERY_STORE
async def test_a_valid_pass_in_the_body_unlocks(client: Client, fan_pass: str) -> None:
    """A valid pass with the site's entitlement allows, naming the tier and entitlements."""
    answer = await decided(client, view(**{"pass": fan_pass}))
    assert answer == {
        "decision": "allow",
        "reason": "supporter",
        "supporter": {"tier": "supporter", "entitlements": ["adblock_ok"]},
    }


async def test_a_valid_pass_in_the_header_unlocks(client: Client, world: World, fan_pass: str) -> None:
    """A server-side caller may send the pass as the Supportgate-Pass header."""
    headers = {**world.site_key(), "Supportgate-Pass": fan_pass}
    answer = await decided(client, view(), origin=None, headers=headers)
    assert answer["reason"] == "supporter"


async def test_a_valid_pass_beats_a_crawler(client: Client, fan_pass: str) -> None:
    """Rule 2 comes before rule 3: a supporter with a crawler's User-Agent is a supporter."""
    answer = await decided(client, view(**{"pass": fan_pass}), headers={"User-Agent": GOOGLEBOT})
    assert answer["reason"] == "supporter"


async def test_a_pass_without_the_entitlement_is_anonymous(client: Client, world: World, services: Services) -> None:
    """A valid pass of a tier without adblock_ok is shown as the supporter but unlocks nothing."""
    token = await pass_for(services, world.newsletter_reader_id)
    answer = await decided(client, view(**{"pass": token}))
    assert answer["decision"] == "wall"
    assert answer["supporter"] == {"tier": "reader", "entitlements": ["newsletter"]}
    assert "pass_error" not in answer


async def test_the_unlocking_entitlement_is_the_sites(
    client: Client, world: World, services: Services, clock: FakeClock
) -> None:
    """A site that unlocks on `newsletter` lets its newsletter readers in."""
    await set_policy(services, clock, unlock_entitlement="newsletter")
    token = await pass_for(services, world.newsletter_reader_id)
    assert (await decided(client, view(**{"pass": token})))["reason"] == "supporter"


@EVERY_STORE
async def test_bad_passes_are_anonymous_with_the_reason(
    client: Client, world: World, services: Services, clock: FakeClock, fan_pass: str
) -> None:
    """Forged, tampered, other-site, revoked and expired passes give 200, the anonymous decision and pass_error."""
    blog_pass = await pass_for(services, world.supporter_id, "blog")
    head, payload, signature = fan_pass.split(".")
    tampered = f"{head}.{payload}.{signature[:-4]}{'AAAA' if signature[-4:] != 'AAAA' else 'BBBB'}"
    for token, reason in (
        ("not-a-pass", "malformed"),
        (tampered, "bad_signature"),
        (blog_pass, "wrong_audience"),
    ):
        answer = await decided(client, view(**{"pass": token}))
        assert (answer["decision"], answer["reason"], answer.get("pass_error")) == ("wall", "adblock", reason)
        assert "supporter" not in answer
    clear = await decided(client, view("clear", **{"pass": "not-a-pass"}))
    assert (clear["reason"], clear["pass_error"]) == ("no_adblock", "malformed")

    await services.sessions.end_all(world.supporter_id)
    assert (await decided(client, view(**{"pass": fan_pass})))["pass_error"] == "revoked"

    fresh = await pass_for(services, world.supporter_id)
    clock.advance(minutes=11)
    assert (await decided(client, view(**{"pass": fresh})))["pass_error"] == "expired"


@EVERY_STORE
async def test_a_remembered_pass_is_still_refused_once_revoked_or_expired(
    client: Client, world: World, services: Services, clock: FakeClock
) -> None:
    """A pass seen before skips its signature check, never its revocation cutoff or its expiry."""
    token = await pass_for(services, world.supporter_id)
    for _ in range(2):
        assert (await decided(client, view(**{"pass": token})))["reason"] == "supporter"
    await services.sessions.end_all(world.supporter_id)
    assert (await decided(client, view(**{"pass": token})))["pass_error"] == "revoked"
    later = await pass_for(services, world.supporter_id)
    assert (await decided(client, view(**{"pass": later})))["reason"] == "supporter"
    clock.advance(minutes=11)
    assert (await decided(client, view(**{"pass": later})))["pass_error"] == "expired"


async def test_the_body_pass_wins_over_the_header(client: Client, world: World, fan_pass: str) -> None:
    """With a pass in both, the body's is checked."""
    headers = {**world.site_key(), "Supportgate-Pass": "not-a-pass"}
    answer = await decided(client, view(**{"pass": fan_pass}), origin=None, headers=headers)
    assert answer["reason"] == "supporter"


# Rule 3: crawlers


@pytest.mark.usefixtures("world")
async def test_crawlers_by_user_agent(client: Client, services: Services, clock: FakeClock) -> None:
    """By default a crawler's User-Agent alone is not enough; with verify: user_agent it is (any case)."""
    assert (await decided(client, view(), headers={"User-Agent": GOOGLEBOT}))["reason"] == "adblock"
    await set_policy(services, clock, crawlers={"verify": "user_agent"})
    assert (await decided(client, view(), headers={"User-Agent": GOOGLEBOT}))["reason"] == "crawler"
    assert (await decided(client, view(), headers={"User-Agent": "x BINGBOT/2.0"}))["reason"] == "crawler"
    assert (await decided(client, view(), headers={"User-Agent": "Mozilla/5.0 Firefox/140"}))["reason"] == "adblock"


async def test_crawlers_by_user_agent_and_ip_range(
    client: Client, world: World, services: Services, clock: FakeClock
) -> None:
    """Trusting User-Agents with IP ranges set, a crawler User-Agent from outside them, or from no address, is none."""
    crawlers = {"user_agents": ["Googlebot"], "ip_ranges": ["66.249.64.0/19"], "verify": "user_agent"}
    await set_policy(services, clock, crawlers=crawlers)
    key = world.site_key()
    inside = view(user_agent=GOOGLEBOT, client_ip="66.249.66.1")
    outside = view(user_agent=GOOGLEBOT, client_ip="203.0.113.9")
    assert (await decided(client, inside, origin=None, headers=key))["reason"] == "crawler"
    assert (await decided(client, outside, origin=None, headers=key))["reason"] == "adblock"
    assert (await decided(client, view(user_agent=GOOGLEBOT), origin=None, headers=key))["reason"] == "adblock"
    from_browser = await decided(client, view(), headers={"User-Agent": GOOGLEBOT})
    assert from_browser["reason"] == "adblock"


@pytest.mark.usefixtures("world")
async def test_a_browser_cannot_claim_a_user_agent_in_the_body(client: Client) -> None:
    """Browser calls use the request's User-Agent; the body's is for server-side callers."""
    answer = await decided(client, view(user_agent=GOOGLEBOT), headers={"User-Agent": "Mozilla/5.0 Firefox/140"})
    assert answer["reason"] == "adblock"


# Rule 4: no wall on doubt


@pytest.mark.parametrize(
    ("adblock", "reason"), [("clear", "no_adblock"), ("inconclusive", "inconclusive"), ("unknown", "inconclusive")]
)
@pytest.mark.usefixtures("world")
async def test_no_wall_unless_blocked(client: Client, adblock: str, reason: str) -> None:
    """Only `blocked` can lead to a wall: clear is no_adblock, inconclusive and unknown are inconclusive."""
    assert await decided(client, view(adblock, visitor="visitor-0001")) == {"decision": "allow", "reason": reason}


# Rules 5 to 7: policy and metering


@pytest.mark.usefixtures("world")
async def test_policy_off_allows(client: Client, services: Services, clock: FakeClock) -> None:
    """A site whose policy is off lets a reader who blocks ads through."""
    await set_policy(services, clock, mode="off")
    assert await decided(client, view()) == {"decision": "allow", "reason": "policy_off"}


@EVERY_STORE
@pytest.mark.usefixtures("world")
async def test_soft_nags_and_hard_walls(client: Client, services: Services, clock: FakeClock) -> None:
    """Hard mode walls, soft mode nags; both point at the interstitial in the reader's language."""
    assert await decided(client, view(lang="de-AT")) == {
        "decision": "wall",
        "reason": "adblock",
        "interstitial_url": f"{INTERSTITIAL}?lang=de-AT",
    }
    await set_policy(services, clock, mode="soft")
    assert await decided(client, view()) == {"decision": "nag", "reason": "adblock", "interstitial_url": INTERSTITIAL}


@EVERY_STORE
@pytest.mark.usefixtures("world")
async def test_metering_gives_free_views_per_visitor(client: Client, services: Services, clock: FakeClock) -> None:
    """Each visitor gets free_views metered allows a month, then the wall; the meter says when it resets."""
    await set_policy(services, clock, free_views=2)
    meter = {"limit": 2, "resets_at": "2026-12-01T00:00:00Z"}
    first = await decided(client, view(visitor="visitor-0001"))
    assert first == {"decision": "allow", "reason": "metered", "meter": {"used": 1, **meter}}
    assert (await decided(client, view(visitor="visitor-0001")))["meter"]["used"] == 2
    walled = await decided(client, view(visitor="visitor-0001"))
    assert (walled["decision"], walled["meter"]) == ("wall", {"used": 2, **meter})
    assert (await decided(client, view(visitor="visitor-0002")))["reason"] == "metered"
    assert "meter" not in await decided(client, view())

    clock.now = clock.now.replace(month=12, day=1, hour=0, minute=0, second=0)
    assert (await decided(client, view(visitor="visitor-0001")))["meter"]["used"] == 1


@pytest.mark.usefixtures("world")
async def test_views_that_are_not_walled_use_no_free_views(
    client: Client, services: Services, clock: FakeClock
) -> None:
    """Only a view that would be nagged or walled counts against the meter."""
    await set_policy(services, clock, free_views=1)
    await decided(client, view("clear", visitor="visitor-0001"))
    await decided(client, view("inconclusive", visitor="visitor-0001"))
    assert (await decided(client, view(visitor="visitor-0001")))["meter"]["used"] == 1


@pytest.mark.parametrize(
    ("period", "resets_at", "next_period"),
    [
        ("day", "2026-11-25T00:00:00Z", {"days": 1}),
        ("week", "2026-11-30T00:00:00Z", {"days": 6}),
        ("month", "2026-12-01T00:00:00Z", {"days": 7}),
    ],
)
@pytest.mark.usefixtures("world")
async def test_meter_periods_reset_at_the_next_period(
    client: Client, services: Services, clock: FakeClock, period: str, resets_at: str, next_period: dict[str, float]
) -> None:
    """Days, ISO weeks (Monday) and months reset at UTC midnight of the next one; in between the count stays."""
    await set_policy(services, clock, free_views=1, meter_period=period)
    first = await decided(client, view(visitor="visitor-0001"))
    assert first["meter"]["resets_at"] == resets_at
    assert (await decided(client, view(visitor="visitor-0001")))["decision"] == "wall"
    clock.advance(**next_period)
    again = await decided(client, view(visitor="visitor-0001"))
    assert (again["reason"], again["meter"]["used"]) == ("metered", 1)


# Who may call


async def test_callers_need_a_key_or_an_origin(client: Client, world: World) -> None:
    """No key and no Origin → 401; an unknown key → 401; another site's key or origin → 403."""
    assert (await decide(client, view(), origin=None)).status_code == 401
    bad_key = {"Authorization": "Bearer sgs_000000000000_nope"}
    assert (await decide(client, view(), origin=None, headers=bad_key)).status_code == 401
    assert (await decide(client, view(), origin=None, headers=world.site_key("blog"))).status_code == 403
    assert (await decide(client, view(), origin=BLOG_ORIGIN)).status_code == 403
    assert (await decide(client, view(), origin="https://evil.example")).status_code == 403
    admin_key = await decide(client, view(), origin=None, headers=world.admin)
    assert admin_key.status_code == 401
    assert admin_key.headers["content-type"] == "application/problem+json"


async def test_a_site_key_caller_gets_no_cors(client: Client, world: World) -> None:
    """A site key is enough on its own, and the answer has no Access-Control-Allow-Origin."""
    answer = await decide(client, view("clear"), origin=None, headers=world.site_key())
    assert answer.status_code == 200
    assert "access-control-allow-origin" not in answer.headers


@pytest.mark.usefixtures("world")
async def test_configured_origins_get_cors_without_credentials(client: Client) -> None:
    """A browser on the site's origin gets its origin back in ACAO, Vary: Origin, no credentials, no-store."""
    answer = await decide(client, view("clear"))
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == NEWS_ORIGIN
    assert "Origin" in answer.headers["vary"]
    assert "access-control-allow-credentials" not in answer.headers
    assert answer.headers["cache-control"] == "no-store"


@pytest.mark.usefixtures("world")
async def test_preflight_is_answered_for_configured_origins_only(client: Client) -> None:
    """OPTIONS /v1/decide gets CORS headers for any site's origin, and 403 without them for others."""
    asked = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    for origin in (NEWS_ORIGIN, BLOG_ORIGIN):
        answer = await client.options("/v1/decide", headers={"Origin": origin, **asked})
        assert answer.status_code == 204
        assert answer.headers["access-control-allow-origin"] == origin
        assert "POST" in answer.headers["access-control-allow-methods"]
        assert "content-type" in answer.headers["access-control-allow-headers"].lower()
        assert "access-control-allow-credentials" not in answer.headers
    refused = await client.options("/v1/decide", headers={"Origin": "https://evil.example", **asked})
    assert refused.status_code == 403
    assert "access-control-allow-origin" not in refused.headers


@pytest.mark.usefixtures("world")
async def test_a_text_plain_body_cannot_skip_the_preflight(client: Client) -> None:
    """A body sent as text/plain (a CORS request without a preflight) is refused with 415, even from a site's origin."""
    body = b'{"site": "news", "path": "/", "adblock": "clear"}'
    headers = {"Origin": NEWS_ORIGIN, "Content-Type": "text/plain"}
    answer = await client.post("/v1/decide", content=body, headers=headers)
    assert answer.status_code == 415, answer.text
    assert answer.headers["content-type"] == "application/problem+json"


# Errors


async def test_unknown_site_is_404(client: Client, world: World) -> None:
    """A site that does not exist is 404 for a browser and for a key caller."""
    assert (await decide(client, view(site="nowhere"))).status_code == 404
    assert (await decide(client, view(site="nowhere"), origin=None, headers=world.site_key())).status_code == 404


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"site": "News!"}, "$.site"),
        ({"path": "article"}, "$.path"),
        ({"path": "/" + "a" * 2000}, "$.path"),
        ({"adblock": "maybe"}, "$.adblock"),
        ({"adblock": None}, "$.adblock"),
        ({"pass": 3}, "$.pass"),
        ({"visitor": "short"}, "$.visitor"),
        ({"visitor": "has spaces in it"}, "$.visitor"),
        ({"user_agent": "x" * 513}, "$.user_agent"),
        ({"lang": "english please"}, "$.lang"),
        ({"status": 99}, "$.status"),
        ({"status": "404"}, "$.status"),
        ({"extra": 1}, "extra"),
    ],
)
@pytest.mark.usefixtures("world")
async def test_bad_fields_are_400_naming_them(client: Client, change: dict[str, Any], field: str) -> None:
    """Each bad field is refused with 400 problem+json whose detail names it."""
    answer = await decide(client, {**view(), **change})
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert field in answer.json()["detail"]


@pytest.mark.usefixtures("world")
async def test_a_missing_field_is_400(client: Client) -> None:
    """site, path and adblock are required."""
    for name in ("site", "path", "adblock"):
        body = view()
        del body[name]
        answer = await decide(client, body)
        assert answer.status_code == 400
        assert name in answer.json()["detail"]


async def test_client_ip_needs_a_site_key_and_an_address(client: Client, world: World) -> None:
    """client_ip from a browser, or one that is not an address, is 400 naming it."""
    from_browser = await decide(client, view(client_ip="203.0.113.9"))
    assert from_browser.status_code == 400
    assert "$.client_ip" in from_browser.json()["detail"]
    not_an_ip = await decide(client, view(client_ip="example.com"), origin=None, headers=world.site_key())
    assert not_an_ip.status_code == 400
    assert "$.client_ip" in not_an_ip.json()["detail"]


@pytest.mark.usefixtures("world")
async def test_bodies_over_4_kb_are_413(client: Client) -> None:
    """A decide body over 4 KB is refused with 413 problem+json before it is parsed."""
    body = view(user_agent="x" * 400, **{"pass": "p" * (MAX_DECIDE_BYTES - 100)})
    answer = await decide(client, body)
    assert answer.status_code == 413
    assert answer.headers["content-type"] == "application/problem+json"


# Cost and caching


def command_calls(store_url: str, *names: str) -> int:
    """How many times the store has run these commands since it started."""
    with redis.Redis.from_url(store_url) as plain:
        stats: dict[str, Any] = plain.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in names)


async def test_store_round_trips_per_view(client: Client, store_url: str, fan_pass: str) -> None:
    """Once the site is cached, an anonymous view reads nothing from the store and a view with a pass one key."""
    await decided(client, view("clear"))
    reads = ("get", "hget", "mget", "hgetall", "incr", "exists")
    before = command_calls(store_url, *reads)
    for _ in range(5):
        assert (await decided(client, view("clear")))["reason"] == "no_adblock"
    assert command_calls(store_url, *reads) == before
    assert (await decided(client, view(**{"pass": fan_pass})))["reason"] == "supporter"
    assert command_calls(store_url, *reads) == before + 1


@pytest.mark.usefixtures("world")
async def test_policy_changes_apply_within_the_cache_ttl(client: Client, services: Services, clock: FakeClock) -> None:
    """A cached policy is used for up to 5 seconds after an admin changes it, and not after."""
    assert (await decided(client, view()))["decision"] == "wall"
    await services.sites.update("news", SitePatch(policy={"mode": "off"}), actor="tests")
    clock.advance(seconds=4)
    assert (await decided(client, view()))["decision"] == "wall"
    clock.advance(seconds=1)
    assert (await decided(client, view()))["reason"] == "policy_off"


# The store failing


async def test_store_down_lets_readers_through(
    own_store: EmbeddedStore, own_services: Services, clock: FakeClock
) -> None:
    """With the store gone, a view whose pass or meter cannot be checked is allowed as store_unavailable."""
    world = await make_world(own_services)
    await set_policy(own_services, clock, free_views=3)
    fan_pass = await pass_for(own_services, world.supporter_id)
    async with Client(
        create_app(
            Settings(redis_url=own_store.url, store_timeout_seconds=0.5, master_key=MASTER_MATERIAL), clock=clock
        )
    ) as app:
        assert (await decided(app, view(**{"pass": fan_pass})))["reason"] == "supporter"
        own_store.stop()
        with_pass = await decided(app, view(**{"pass": fan_pass}))
        assert with_pass == {"decision": "allow", "reason": "store_unavailable"}
        metered = await decided(app, view(visitor="visitor-0001"))
        assert metered == {"decision": "allow", "reason": "store_unavailable"}
        assert (await decided(app, view("clear")))["reason"] == "no_adblock"
        assert (await decided(app, view(**{"pass": "not-a-pass"})))["pass_error"] == "malformed"
        clock.advance(seconds=10)
        assert (await decided(app, view("clear")))["reason"] == "no_adblock"
        assert (await decide(app, view(site="blog"), origin=BLOG_ORIGIN)).status_code == 503


async def test_the_cache_keeps_values_for_the_ttl_and_serves_stale_ones_while_the_store_is_down() -> None:
    """A value is reloaded after the TTL; when reloading fails on the store, the stale value is used."""
    clock = FakeClock()
    cache: TtlCache[str, int] = TtlCache(clock, ttl=timedelta(seconds=5), max_entries=2)
    loads: list[str] = []

    async def load(key: str) -> int:
        loads.append(key)
        return len(loads)

    async def down(_: str) -> int:
        raise redis.exceptions.ConnectionError

    assert [await cache.get("a", load), await cache.get("a", load)] == [1, 1]
    clock.advance(seconds=5)
    assert await cache.get("a", load) == 2
    clock.advance(seconds=5)
    assert await cache.get("a", down) == 2
    with pytest.raises(redis.exceptions.ConnectionError):
        await cache.get("b", down)
    clock.advance(seconds=-60)
    assert await cache.get("a", load) == 3


async def test_the_cache_drops_the_oldest_value_when_full() -> None:
    """Past max_entries the first value loaded goes, so a flood of unknown keys costs O(1) each."""
    clock = FakeClock()
    cache: TtlCache[str, str] = TtlCache(clock, ttl=timedelta(seconds=5), max_entries=2)
    loads: list[str] = []

    async def load(key: str) -> str:
        loads.append(key)
        return key

    for key in ("a", "b", "c", "b", "a"):
        await cache.get(key, load)
    assert loads == ["a", "b", "c", "a"]
