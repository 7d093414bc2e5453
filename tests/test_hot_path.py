"""The per-page-view path and a slow or frozen store: one deadline, failures shared, one probe, stale values kept."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest
import redis

from supportgate.errors import SettingsError, StoreUnavailable
from supportgate.gate.cache import TtlCache
from supportgate.settings import Settings
from supportgate.store import EmbeddedStore, Store, connect
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


class Probe:
    """Counts the probes made through it, and how many were ever in flight at once."""

    def __init__(self, ping: Callable[[], Awaitable[bool]]) -> None:
        self._ping = ping
        self.calls = 0
        self.in_flight = 0
        self.most_at_once = 0

    async def __call__(self) -> bool:
        """Ping, counted."""
        self.calls += 1
        self.in_flight += 1
        self.most_at_once = max(self.most_at_once, self.in_flight)
        try:
            return await self._ping()
        finally:
            self.in_flight -= 1


class Down:
    """A stand-in for ``Store.ping``: no answer until ``back`` is set."""

    def __init__(self) -> None:
        self.back = asyncio.Event()

    async def __call__(self) -> bool:
        """Answer once the store is back."""
        await self.back.wait()
        return True


class StoreCalls:
    """Store calls the test makes through the hot path, counted: some hang, some answer, some are refused."""

    def __init__(self) -> None:
        self.made: list[str] = []

    async def hangs(self) -> str:
        """A call the store never answers."""
        self.made.append("hangs")
        await asyncio.Event().wait()
        return "never"

    async def answers(self) -> str:
        """A call the store answers at once."""
        self.made.append("answers")
        return "yes"

    async def refused(self) -> str:
        """A call the store refuses (connection error)."""
        self.made.append("refused")
        raise redis.exceptions.ConnectionError


async def until_available(hot: HotPath) -> None:
    async with asyncio.timeout(30):  # a guard against a hang, not a measure
        while not hot.available():
            await asyncio.sleep(0.001)


async def test_the_hot_path_stops_asking_a_store_that_just_failed() -> None:
    """A call past the deadline fails as StoreUnavailable; for the cooldown after it, calls fail at once unmade."""
    hot = HotPath(budget=0.05, cooldown=60, probe=Down())
    store = StoreCalls()
    assert await hot.run(None, store.answers) == "yes"
    with pytest.raises(StoreUnavailable):
        await hot.run(hot.deadline(), store.hangs)
    assert not hot.available()
    for _ in range(1000):
        with pytest.raises(StoreUnavailable):
            await hot.run(None, store.answers)
    assert store.made == ["answers", "hangs"]
    await hot.stop()


async def test_a_store_error_on_the_hot_path_is_store_unavailable() -> None:
    """A store error raised by the call becomes StoreUnavailable, and the store is taken for down."""
    hot = HotPath(budget=1, cooldown=60, probe=Down())
    with pytest.raises(StoreUnavailable):
        await hot.run(None, StoreCalls().refused)
    assert not hot.available()
    await hot.stop()


async def test_the_first_failure_releases_every_call_waiting_on_the_store() -> None:
    """When one call fails, the calls still waiting on the store stop at once: none sits out its own deadline."""
    hot = HotPath(budget=3600, silence=3600, cooldown=60, probe=Down())
    store = StoreCalls()
    waiting = [asyncio.create_task(hot.run(None, store.hangs)) for _ in range(100)]
    for _ in range(3):  # the views start, then their calls
        await asyncio.sleep(0)
    assert len(store.made) == 100
    with pytest.raises(StoreUnavailable):
        await hot.run(None, store.refused)
    async with asyncio.timeout(30):  # without the release they would wait an hour
        answers = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(answer, StoreUnavailable) for answer in answers)
    await hot.stop()


async def test_a_silent_store_is_taken_for_down_before_the_deadline_and_probed_alone() -> None:
    """Calls that hear nothing from the store for ``silence`` all stop; while it is down only a probe asks it."""
    down = Down()
    probe = Probe(down)
    hot = HotPath(budget=3600, silence=0.01, cooldown=0.01, probe=probe)
    store = StoreCalls()
    waiting = [asyncio.create_task(hot.run(None, store.hangs)) for _ in range(100)]
    async with asyncio.timeout(30):  # the deadline is an hour: only the silence can end them
        answers = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(answer, StoreUnavailable) for answer in answers)
    for _ in range(1000):
        with pytest.raises(StoreUnavailable):
            await hot.run(None, store.answers)
        await asyncio.sleep(0)
    assert store.made == ["hangs"] * 100
    assert probe.calls >= 1
    assert probe.most_at_once == 1
    down.back.set()
    await until_available(hot)
    assert await hot.run(None, store.answers) == "yes"
    await hot.stop()


async def test_a_store_that_keeps_answering_is_not_taken_for_down_for_one_slow_call() -> None:
    """Silence means no answer to any call: one slow call while others are answered is left to its deadline."""
    hot = HotPath(budget=3600, silence=0.2, probe=Down())
    slow_done = asyncio.Event()

    async def slow() -> str:
        await slow_done.wait()
        return "slow"

    store = StoreCalls()
    waiting = asyncio.create_task(hot.run(None, slow))
    for _ in range(60):  # well over the silence, answered all along
        assert await hot.run(None, store.answers) == "yes"
        await asyncio.sleep(0.01)
    slow_done.set()
    assert await waiting == "slow"
    assert hot.available()
    await hot.stop()


async def test_a_frozen_store_costs_one_wave_of_calls_and_one_probe_at_a_time(own_store: EmbeddedStore) -> None:
    """With a real store frozen (SIGSTOP), the calls in flight stop together; after that only a probe reaches it."""
    store = Store(connect(own_store.url, timeout=60))
    probe = Probe(store.ping)
    hot = HotPath(budget=30, silence=0.05, cooldown=0.2, probe=probe)
    reached = 0

    async def incr() -> int:
        nonlocal reached
        reached += 1
        return int(await store.redis.incr("views"))

    assert await hot.run(None, incr) == 1
    assert own_store.pid is not None
    os.kill(own_store.pid, signal.SIGSTOP)
    try:
        first = [asyncio.create_task(hot.run(None, incr)) for _ in range(50)]
        async with asyncio.timeout(20):  # the deadline is 30 s and the socket timeout 60 s
            answers = await asyncio.gather(*first, return_exceptions=True)
        assert all(isinstance(answer, StoreUnavailable) for answer in answers)
        assert reached == 51
        for _ in range(20):
            later = await asyncio.gather(*(hot.run(None, incr) for _ in range(100)), return_exceptions=True)
            assert all(isinstance(answer, StoreUnavailable) for answer in later)
            await asyncio.sleep(0.01)
        assert reached == 51  # 2,000 views while it was frozen, and not one asked the store
        assert probe.calls >= 1
    finally:
        os.kill(own_store.pid, signal.SIGCONT)
    await until_available(hot)
    assert probe.most_at_once == 1
    assert await hot.run(None, incr) >= 2
    await hot.stop()
    await store.close()


async def test_the_caches_do_not_load_while_the_store_is_taken_for_down() -> None:
    """While the store is taken for down, a stale value serves and a missing one is unavailable; nothing loads."""
    clock = FakeClock()
    hot = HotPath(budget=3600, cooldown=60, probe=Down())
    cache: TtlCache[str, str] = TtlCache(clock, ttl=5 * SECOND, hot=hot)
    loads: list[str] = []

    async def load(key: str) -> str:
        loads.append(key)
        return key.upper()

    assert await cache.get("news", load) == "NEWS"
    hot.failed()
    clock.advance(seconds=60)
    assert await cache.get("news", load) == "NEWS"
    with pytest.raises(StoreUnavailable):
        await cache.get("blog", load)
    assert loads == ["news"]
    await hot.stop()


async def test_a_view_waiting_for_a_cache_load_is_released_when_the_store_is_taken_for_down() -> None:
    """A view waiting (within a far deadline) for a hung reload gets the stale value as soon as the store is down."""
    clock = FakeClock()
    hot = HotPath(budget=3600, cooldown=60, probe=Down())
    cache: TtlCache[str, str] = TtlCache(clock, ttl=5 * SECOND, hot=hot)

    async def fresh(key: str) -> str:
        return f"old {key}"

    async def hung(key: str) -> str:
        await asyncio.Event().wait()
        return f"new {key}"

    assert await cache.get("news", fresh) == "old news"
    assert await cache.get("blog", fresh) == "old blog"
    clock.advance(seconds=5)
    stale = asyncio.create_task(cache.get("news", hung, deadline=hot.deadline()))
    missing = asyncio.create_task(cache.get("sport", hung, deadline=hot.deadline()))
    await asyncio.sleep(0)
    assert not stale.done()
    assert not missing.done()
    hot.failed()
    async with asyncio.timeout(30):  # the deadline is an hour: only taking the store for down ends the waits
        assert await stale == "old news"
        with pytest.raises(StoreUnavailable):
            await missing
    await hot.stop()


def test_the_page_view_deadline_is_a_setting_below_the_store_timeout() -> None:
    """SUPPORTGATE_DECIDE_DEADLINE_MS sets the page-view budget; it must be a whole number below the store timeout."""
    assert Settings.from_env({}).decide_deadline_seconds == 0.1
    assert Settings.from_env({"SUPPORTGATE_DECIDE_DEADLINE_MS": "250"}).decide_deadline_seconds == 0.25
    with pytest.raises(SettingsError, match="SUPPORTGATE_DECIDE_DEADLINE_MS must be a whole number"):
        Settings.from_env({"SUPPORTGATE_DECIDE_DEADLINE_MS": "0.1"})
    with pytest.raises(SettingsError, match="DECIDE_DEADLINE_MS must be below"):
        Settings.from_env({"SUPPORTGATE_DECIDE_DEADLINE_MS": "2000", "SUPPORTGATE_STORE_TIMEOUT_SECONDS": "1"})
