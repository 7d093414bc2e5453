"""The per-page-view path and a slow store: one deadline, one load at a time, failures remembered, stale values kept."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
import redis

from supportgate.errors import SettingsError, StoreUnavailable
from supportgate.gate.cache import TtlCache
from supportgate.settings import Settings
from supportgate.store.hot_path import HotPath
from tests.conftest import FakeClock

SECOND = timedelta(seconds=1)


def soon(seconds: float = 0.05) -> float:
    return asyncio.get_running_loop().time() + seconds


async def test_one_load_serves_every_view_that_asks_meanwhile() -> None:
    """A hundred views asking for the same missing key cause one load, and all get its value."""
    cache: TtlCache[str, str] = TtlCache(FakeClock(), ttl=5 * SECOND)
    release = asyncio.Event()
    loads: list[str] = []

    async def load(key: str) -> str:
        loads.append(key)
        await release.wait()
        return key.upper()

    views = [asyncio.create_task(cache.get("news", load)) for _ in range(100)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*views) == ["NEWS"] * 100
    assert loads == ["news"]


async def test_a_failed_load_is_remembered_briefly() -> None:
    """After a load fails on the store, the key is not loaded again until failure_ttl has passed."""
    clock = FakeClock()
    cache: TtlCache[str, str] = TtlCache(clock, ttl=5 * SECOND, failure_ttl=SECOND)
    calls: list[str] = []

    async def down(key: str) -> str:
        calls.append(key)
        raise redis.exceptions.TimeoutError

    async def up(key: str) -> str:
        calls.append(key)
        return key

    with pytest.raises(redis.exceptions.TimeoutError):
        await cache.get("news", down)
    for _ in range(1000):
        with pytest.raises(StoreUnavailable):
            await cache.get("news", up)
    assert calls == ["news"]
    clock.advance(seconds=1)
    assert await cache.get("news", up) == "news"
    assert calls == ["news", "news"]


async def test_a_view_waits_for_a_load_no_longer_than_its_deadline() -> None:
    """A load that hangs costs a view its deadline, then StoreUnavailable, or the stale value when there is one."""
    clock = FakeClock()
    cache: TtlCache[str, str] = TtlCache(clock, ttl=5 * SECOND)
    hang = asyncio.Event()

    async def fresh(key: str) -> str:
        return f"old {key}"

    async def hung(key: str) -> str:
        await hang.wait()
        return f"new {key}"

    assert await cache.get("news", fresh) == "old news"
    clock.advance(seconds=5)
    assert await cache.get("news", hung, deadline=soon()) == "old news"
    with pytest.raises(StoreUnavailable):
        await cache.get("blog", hung, deadline=soon())
    hang.set()
    await asyncio.sleep(0)
    clock.advance(seconds=1)
    assert await cache.get("blog", hung, deadline=soon()) == "new blog"


async def test_the_hot_path_stops_asking_a_store_that_just_failed() -> None:
    """A call past the deadline fails as StoreUnavailable; for the cooldown after it, calls fail at once unmade."""
    hot = HotPath(budget=0.05, cooldown=60)
    made: list[str] = []

    async def hangs() -> str:
        made.append("hangs")
        await asyncio.Event().wait()
        return "never"

    async def answers() -> str:
        made.append("answers")
        return "yes"

    assert await hot.run(None, answers) == "yes"
    with pytest.raises(StoreUnavailable):
        await hot.run(hot.deadline(), hangs)
    assert not hot.available()
    for _ in range(1000):
        with pytest.raises(StoreUnavailable):
            await hot.run(None, answers)
    assert made == ["answers", "hangs"]


async def test_a_store_error_on_the_hot_path_is_store_unavailable() -> None:
    """A store error raised by the call becomes StoreUnavailable, and the store is taken for down."""
    hot = HotPath(budget=1, cooldown=60)

    async def refused() -> str:
        raise redis.exceptions.ConnectionError

    with pytest.raises(StoreUnavailable):
        await hot.run(None, refused)
    assert not hot.available()


def test_the_page_view_deadline_is_a_setting_below_the_store_timeout() -> None:
    """SUPPORTGATE_DECIDE_DEADLINE_MS sets the page-view budget; it must be a whole number below the store timeout."""
    assert Settings.from_env({}).decide_deadline_seconds == 0.1
    assert Settings.from_env({"SUPPORTGATE_DECIDE_DEADLINE_MS": "250"}).decide_deadline_seconds == 0.25
    with pytest.raises(SettingsError, match="SUPPORTGATE_DECIDE_DEADLINE_MS must be a whole number"):
        Settings.from_env({"SUPPORTGATE_DECIDE_DEADLINE_MS": "0.1"})
    with pytest.raises(SettingsError, match="DECIDE_DEADLINE_MS must be below"):
        Settings.from_env({"SUPPORTGATE_DECIDE_DEADLINE_MS": "2000", "SUPPORTGATE_STORE_TIMEOUT_SECONDS": "1"})
