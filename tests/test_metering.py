"""Anonymous callers cannot grow the store: the meter's fixed-size sketch, and the per-address limit on decide."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from ipaddress import ip_network
from pathlib import Path

import pytest
import redis
from litestar import Litestar
from litestar.testing import AsyncTestClient

from supportgate.app import create_app
from supportgate.catalog.policy import Policy
from supportgate.errors import TooManyRequests
from supportgate.gate.anonymous_limit import AnonymousLimit
from supportgate.gate.metering import SKETCH_BYTES, Metering
from supportgate.services import Services
from supportgate.settings import Settings
from supportgate.store import names
from tests.conftest import FakeClock, suite_settings
from tests.gate_helpers import World, decide, decided, make_world, set_policy, view
from tests.peers import AtPeer

FLOOD = 20_000
PROXY = "10.0.0.2"
# The store keeps the sketch in one allocation, which its allocator rounds up to a size class
# (Valkey 8: 1,052,672 bytes; Redis 7.0: 1,310,720), plus the key and object header.
MEMORY_BOUND = SKETCH_BYTES * 5 // 4 + 4096


@pytest.fixture
async def world(client: AsyncTestClient[Litestar], services: Services) -> World:  # noqa: ARG001 - the app starts first
    return await make_world(services)


def meter_memory(store_url: str, site: str = "news") -> tuple[int, int]:
    """How many meter keys the site has, and the store memory they take, in bytes."""
    with redis.Redis.from_url(store_url) as plain:
        keys = list(plain.scan_iter(match=f"sg:{{site:{site}}}:meter:*", count=1000))
        return len(keys), sum(int(plain.memory_usage(key) or 0) for key in keys)


async def flood(metering: Metering, policy: Policy, ids: list[str]) -> None:
    """Meter one view for each of ``ids`` at news, 50 at a time (the pool holds that many connections)."""
    for start in range(0, len(ids), 50):
        await asyncio.gather(*(metering.count("news", policy, visitor) for visitor in ids[start : start + 50]))


@pytest.mark.usefixtures("world")
async def test_a_flood_of_visitor_ids_stays_within_one_sketch_and_real_visitors_are_still_metered(
    client: AsyncTestClient[Litestar], services: Services, clock: FakeClock, store_url: str
) -> None:
    """20,000 random visitor ids make one sketch-sized key; real visitors still get 3 free views, then the wall."""
    await set_policy(services, clock, free_views=3)
    chance = random.Random(9)
    ids = [f"{chance.getrandbits(128):032x}" for _ in range(FLOOD)]
    await flood(Metering(services.store, clock), Policy(free_views=3), ids)

    keys, used = meter_memory(store_url)
    assert keys == 1
    assert used <= MEMORY_BOUND
    with redis.Redis.from_url(store_url) as plain:
        assert plain.strlen(names.meter("news", "2026-11")) <= SKETCH_BYTES

    for n in range(20):
        visitor = f"reader-{n:04d}"
        for used_now in (1, 2, 3):
            answer = await decided(client, view(visitor=visitor), headers={"X-Forwarded-For": f"192.0.2.{n}"})
            assert (answer["reason"], answer["meter"]["used"]) == ("metered", used_now), visitor
        walled = await decided(client, view(visitor=visitor))
        assert (walled["decision"], walled["meter"]["used"]) == ("wall", 3), visitor
    assert meter_memory(store_url)[0] == 1

    clock.now = clock.now.replace(month=12, day=1, hour=0, minute=0, second=0)
    answer = await decided(client, view(visitor="reader-0000"))
    assert (answer["reason"], answer["meter"]["used"]) == ("metered", 1)


async def test_views_past_the_free_ones_add_nothing_and_the_sketch_lives_until_the_period_ends(
    services: Services, clock: FakeClock, store_url: str
) -> None:
    """A walled visitor's further views leave the sketch as it was; it expires an hour after the period."""
    metering = Metering(services.store, clock)
    policy = Policy(free_views=2)
    assert [(await metering.count("news", policy, "visitor-0001")).used for _ in range(4)] == [1, 2, 3, 3]
    with redis.Redis.from_url(store_url) as plain:
        key = names.meter("news", "2026-11")
        before = plain.get(key)
        await metering.count("news", policy, "visitor-0001")
        assert plain.get(key) == before
        left = timedelta(days=6, hours=12) + timedelta(hours=1)  # 24 Nov 12:00 to 1 Dec 00:00, plus the slack
        assert abs(plain.ttl(key) - left.total_seconds()) <= 2


# The anonymous limit


@pytest.fixture
def settings(store_url: str, tmp_path: Path) -> Settings:
    """Settings that trust the proxy at 10.0.0.2, with a page-view budget a loaded machine meets."""
    return suite_settings(store_url, tmp_path, trusted_proxies=(ip_network("10.0.0.0/8"),))


@pytest.fixture
def app(settings: Settings, clock: FakeClock) -> AtPeer:
    """The app reached through the trusted proxy."""
    return AtPeer(create_app(settings, clock=clock), PROXY)


@pytest.fixture
async def limited(settings: Settings, clock: FakeClock) -> AsyncIterator[AsyncTestClient[AtPeer]]:
    """A client of an app that lets an address ask 5 anonymous decides a minute."""
    app = AtPeer(create_app(replace(settings, anonymous_decides_per_minute=5), clock=clock), PROXY)
    async with AsyncTestClient(app) as test_client:
        yield test_client


async def from_address(client: AsyncTestClient[AtPeer], address: str, **headers: str) -> int:
    """The status of one anonymous decide forwarded for ``address``."""
    answer = await decide(client, view("clear"), headers={"X-Forwarded-For": address, **headers})
    return answer.status_code


async def test_anonymous_decides_past_the_limit_get_429_with_retry_after_per_address(
    limited: AsyncTestClient[AtPeer], services: Services, clock: FakeClock
) -> None:
    """The sixth decide in a minute from one address is a 429 problem saying when to retry; other addresses go on."""
    await make_world(services)
    assert [await from_address(limited, "198.51.100.7") for _ in range(5)] == [200] * 5
    refused = await decide(limited, view("clear"), headers={"X-Forwarded-For": "198.51.100.7"})
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.headers["retry-after"] == "12"
    assert await from_address(limited, "198.51.100.8") == 200
    schema = (await limited.get("/schema/openapi.json")).json()
    assert "429" in schema["paths"]["/v1/decide"]["post"]["responses"]
    clock.advance(seconds=12)
    assert await from_address(limited, "198.51.100.7") == 200
    assert await from_address(limited, "198.51.100.7") == 429


async def test_a_caller_with_a_site_key_is_never_limited(limited: AsyncTestClient[AtPeer], services: Services) -> None:
    """A site backend sending its key decides as often as it likes from one address."""
    world = await make_world(services)
    for _ in range(20):
        answer = await decide(limited, view("clear"), origin=None, headers=world.site_key())
        assert answer.status_code == 200
    assert await from_address(limited, PROXY) == 200


def test_an_ipv6_client_is_limited_by_its_slash_64(clock: FakeClock) -> None:
    """Addresses in one /64 share a bucket; another /64 has its own."""
    limit = AnonymousLimit(2, clock)
    limit.take("2001:db8:1:2::1")
    limit.take("2001:db8:1:2::ffff")
    with pytest.raises(TooManyRequests):
        limit.take("2001:db8:1:2:abcd::9")
    limit.take("2001:db8:1:3::1")


def test_the_limit_keeps_a_bounded_number_of_addresses(clock: FakeClock) -> None:
    """Past its size the oldest address is forgotten, so a flood of addresses cannot grow the process."""
    limit = AnonymousLimit(1, clock, addresses=3)
    for n in range(100):
        limit.take(f"192.0.2.{n}")
    assert len(limit._buckets) == 3
    limit.take("192.0.2.0")


def test_the_anonymous_limit_is_a_setting() -> None:
    """SUPPORTGATE_ANONYMOUS_DECIDES_PER_MINUTE sets it; 300 a minute by default."""
    assert Settings().anonymous_decides_per_minute == 300
    found = Settings.from_env({"SUPPORTGATE_ANONYMOUS_DECIDES_PER_MINUTE": "60"})
    assert found.anonymous_decides_per_minute == 60
