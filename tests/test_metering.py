"""Anonymous callers cannot grow the store: the meter's fixed-size sketch."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

import pytest
import redis
from litestar import Litestar
from litestar.testing import AsyncTestClient

from supportgate.catalog.policy import Policy
from supportgate.gate.metering import SKETCH_BYTES, Metering
from supportgate.services import Services
from supportgate.store import names
from tests.conftest import FakeClock
from tests.gate_helpers import World, decided, make_world, set_policy, view

FLOOD = 20_000
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
            answer = await decided(client, view(visitor=visitor))
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
