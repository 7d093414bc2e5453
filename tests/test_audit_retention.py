"""The audit log keeps entries for SUPPORTGATE_AUDIT_RETENTION_DAYS and trims older ones, index and sets included."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
import redis
from litestar.testing import AsyncTestClient
from redis.asyncio.client import Pipeline

from supportgate.app import create_app
from supportgate.catalog.schemas import SiteIn, SupporterIn, TierIn
from supportgate.errors import SettingsError
from supportgate.services import Services
from supportgate.settings import Settings
from supportgate.store import begin, names
from tests.conftest import FakeClock

RETENTION = timedelta(days=400)


async def stored(services: Services) -> tuple[int, set[str], dict[str, set[str]]]:
    """The stream's length, the ids in the entries hash, and the members of each target's set."""
    redis_ = services.store.redis
    length = await redis_.xlen(names.audit_index())
    entries = {key.decode() for key in await redis_.hkeys(names.audit_entries())}
    prefix = names.audit_target("")
    targets = {
        key.decode().removeprefix(prefix): {member.decode() for member in await redis_.smembers(key)}
        async for key in redis_.scan_iter(match=prefix + "*")
    }
    return length, entries, targets


async def make_history(services: Services, clock: FakeClock) -> str:
    """A tier and a supporter now, and a site 200 days later; the supporter's id."""
    tier = TierIn(id="supporter", name="S", entitlements=["adblock_ok"], max_devices=2)
    await services.tiers.create(tier, actor="t")
    supporter = await services.supporters.create(SupporterIn(email="a@example.com", tier="supporter"), actor="t")
    clock.advance(days=200)
    await services.sites.create(SiteIn(id="news", name="News", origins=["https://news.example"]), actor="t")
    return supporter.id


async def test_entries_past_the_retention_are_trimmed(services: Services, clock: FakeClock) -> None:
    """Once older than 400 days an entry goes from the stream, the entries hash and its target's set; others stay."""
    supporter_id = await make_history(services, clock)
    assert (await stored(services))[0] == 3
    clock.advance(days=200)
    assert await services.audit.trim() == 0
    assert (await stored(services))[0] == 3

    clock.advance(seconds=1)
    assert await services.audit.trim() == 2
    length, entries, targets = await stored(services)
    page = await services.audit.page(limit=10, cursor=None)
    assert [entry.action for entry in page.items] == ["site.create"]
    assert (length, entries) == (1, {page.items[0].id})
    assert targets == {"site:news": {page.items[0].id}}
    assert f"supporter:{supporter_id}" not in targets
    assert await services.audit.trim() == 0

    await services.supporters.forget(supporter_id, actor="t")
    assert [entry.action for entry in (await services.audit.page(limit=10, cursor=None)).items] == [
        "supporter.forget",
        "site.create",
    ]


async def test_trimming_goes_through_many_batches(services: Services, clock: FakeClock) -> None:
    """More old entries than one batch are all trimmed in one call, oldest first, up to the first one kept."""

    async def change(pipe: Pipeline) -> None:
        begin(pipe)
        for n in range(1200):
            services.audit.record(pipe, at=clock(), actor="t", action="supporter.note", target=f"supporter:s{n}")

    await services.store.atomically(change)
    clock.advance(days=1)
    await services.supporters.note("kept", action="supporter.note", actor="t")
    clock.advance(days=400)
    assert await services.audit.trim() == 1200
    length, entries, targets = await stored(services)
    assert (length, len(entries), list(targets)) == (1, 1, ["supporter:kept"])


async def test_without_a_retention_nothing_is_trimmed(services: Services, clock: FakeClock) -> None:
    """An audit log built without a retention keeps every entry."""
    await make_history(services, clock)
    clock.advance(days=10_000)
    kept = type(services.audit)(services.store, clock=clock)
    assert await kept.trim() == 0
    assert (await stored(services))[0] == 3


async def test_the_app_trims_when_it_starts(services: Services, settings: Settings, clock: FakeClock) -> None:
    """A starting app trims the audit log in the background, with the retention from its settings."""
    await make_history(services, clock)
    clock.advance(days=10)
    short = Settings(redis_url=settings.redis_url, data_dir=settings.data_dir, audit_retention_days=100)
    async with AsyncTestClient(create_app(short, clock=clock)):
        assert settings.redis_url is not None
        with redis.Redis.from_url(settings.redis_url) as store:
            for _ in range(500):
                if store.xlen(names.audit_index()) == 1:
                    break
                await asyncio.sleep(0.01)
            assert store.xlen(names.audit_index()) == 1


@pytest.mark.parametrize("raw", ["0", "-1", "ten", "1.5", "36501"])
def test_a_bad_retention_is_refused(raw: str) -> None:
    """SUPPORTGATE_AUDIT_RETENTION_DAYS must be a whole number of days from 1 to 36500; the error names it."""
    with pytest.raises(SettingsError, match="SUPPORTGATE_AUDIT_RETENTION_DAYS"):
        Settings.from_env({"SUPPORTGATE_AUDIT_RETENTION_DAYS": raw})


def test_the_retention_defaults_to_400_days() -> None:
    """Without the variable entries are kept 400 days; with it, as many as it says."""
    assert Settings.from_env({}).audit_retention == RETENTION
    assert Settings.from_env({"SUPPORTGATE_AUDIT_RETENTION_DAYS": "30"}).audit_retention == timedelta(days=30)
