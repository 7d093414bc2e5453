"""The store failing: the app says so with 503, and acknowledged writes survive a crash."""

from __future__ import annotations

import asyncio
import os
import signal
import time

from litestar import Litestar
from litestar.testing import AsyncTestClient

from supportgate.app import create_app
from supportgate.catalog.api_keys import ApiKeys
from supportgate.catalog.audit import AuditLog
from supportgate.mail import mailer_for
from supportgate.mail_queue import MailQueue
from supportgate.services import Services
from supportgate.settings import Settings
from supportgate.store import EmbeddedStore, Store, connect
from tests.conftest import FakeClock
from tests.gate_helpers import decided, make_world, pass_for, set_policy, view
from tests.tokens_helpers import MASTER_KEY, MASTER_MATERIAL

Client = AsyncTestClient[Litestar]
TIER = {"id": "supporter", "name": "Supporter", "entitlements": ["adblock_ok"], "max_devices": 3}
PATRON = {**TIER, "id": "patron", "name": "Patron"}


async def admin_client(url: str, clock: FakeClock, timeout: float = 2.0) -> tuple[Client, str]:
    settings = Settings(redis_url=url, store_timeout_seconds=timeout, master_key=MASTER_MATERIAL)
    store = Store(connect(url))
    key = (await ApiKeys(store, AuditLog(store), clock).create("admin", name="t", actor="t")).key
    await store.close()
    app = create_app(settings, clock=clock)
    return AsyncTestClient(app), key


async def test_acknowledged_writes_survive_kill_9(own_store: EmbeddedStore, clock: FakeClock) -> None:
    """Every write the API acknowledged is there after the store is killed with SIGKILL and restarted."""
    client, key = await admin_client(own_store.url, clock)
    headers = {"Authorization": f"Bearer {key}"}
    async with client:
        await client.post("/v1/admin/tiers", json=TIER, headers=headers)
        emails = [f"r{n}@example.com" for n in range(30)]
        for email in emails:
            answer = await client.post(
                "/v1/admin/supporters", json={"email": email, "tier": "supporter"}, headers=headers
            )
            assert answer.status_code == 201
    own_store.kill()
    own_store.start()
    client, _ = await admin_client(own_store.url, clock)
    async with client:
        listed = await client.get("/v1/admin/supporters", params={"limit": 100}, headers=headers)
        assert sorted(s["email"] for s in listed.json()["items"]) == sorted(emails)


async def test_store_down_is_503_not_500(own_store: EmbeddedStore, clock: FakeClock) -> None:
    """With the store stopped, admin calls and /readyz answer 503 problem+json; /healthz stays 200."""
    client, key = await admin_client(own_store.url, clock)
    async with client:
        own_store.stop()
        answer = await client.get("/v1/admin/tiers", headers={"Authorization": f"Bearer {key}"})
        assert answer.status_code == 503
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.headers["retry-after"] == "1"
        assert "Traceback" not in answer.text
        assert (await client.get("/readyz")).status_code == 503
        assert (await client.get("/healthz")).status_code == 200


async def test_hung_store_times_out_as_503(own_store: EmbeddedStore, clock: FakeClock) -> None:
    """A store that stops answering (SIGSTOP) gives 503 after the store timeout, not a hang or a 500."""
    client, key = await admin_client(own_store.url, clock, timeout=0.5)
    async with client:
        assert (await client.get("/readyz")).status_code == 200
        assert own_store.pid is not None
        os.kill(own_store.pid, signal.SIGSTOP)
        try:
            answer = await client.get("/v1/admin/tiers", headers={"Authorization": f"Bearer {key}"})
            assert answer.status_code == 503
            assert answer.headers["content-type"] == "application/problem+json"
            assert (await client.get("/readyz")).status_code == 503
        finally:
            os.kill(own_store.pid, signal.SIGCONT)


async def test_a_frozen_store_hangs_no_page_view_and_no_write(own_store: EmbeddedStore, clock: FakeClock) -> None:
    """With the store frozen under load, views answer store_unavailable at once, writes 503 in time; all recovers."""
    # The load comes from one address, past the anonymous limit of a real one.
    settings = Settings(
        redis_url=own_store.url,
        store_timeout_seconds=0.5,
        master_key=MASTER_MATERIAL,
        anonymous_decides_per_minute=10_000,
    )
    store = Store(connect(own_store.url))
    services = Services.build(store, settings, MailQueue(store, mailer_for(settings)), MASTER_KEY, clock)
    world = await make_world(services)
    await set_policy(services, clock, free_views=1)
    fan_pass = await pass_for(services, world.supporter_id)
    await store.close()
    assert own_store.pid is not None
    async with AsyncTestClient(create_app(settings, clock=clock)) as client:
        assert (await decided(client, view(**{"pass": fan_pass})))["reason"] == "supporter"
        os.kill(own_store.pid, signal.SIGSTOP)
        try:
            clock.advance(seconds=60)  # the cached site is stale now: it must keep serving
            views = [view(**{"pass": fan_pass}), *(view(visitor=f"visitor-{n:04d}") for n in range(150))] * 2
            answers = await asyncio.gather(*(decided(client, body) for body in views))
            # A pass whose cutoff the process keeps (the store tracked it till it froze) needs no store.
            seen = [("pass" in body, (a["decision"], a["reason"])) for body, a in zip(views, answers, strict=True)]
            kept_or_not = {("allow", "store_unavailable"), ("allow", "supporter")}
            assert {got for with_pass, got in seen if with_pass} <= kept_or_not
            assert {got for with_pass, got in seen if not with_pass} == {("allow", "store_unavailable")}
            for body in views[:20]:
                started = time.monotonic()
                reason = (await decided(client, body))["reason"]
                assert reason == "store_unavailable" or ("pass" in body and reason == "supporter")
                assert time.monotonic() - started < settings.store_timeout_seconds / 2
            started = time.monotonic()
            refused = await client.post("/v1/admin/tiers", json=PATRON, headers=world.admin)
            waited = time.monotonic() - started
            assert refused.status_code == 503, refused.text
            assert refused.headers["retry-after"] == "1"
            assert waited < settings.store_timeout_seconds * 1.5
        finally:
            os.kill(own_store.pid, signal.SIGCONT)
        deadline = time.monotonic() + 10
        # A metered view needs the store (a pass may not: its cutoff may be kept in the process).
        while (await decided(client, view(visitor="visitor-new1")))["reason"] != "metered":
            assert time.monotonic() < deadline, "decide did not recover after the store came back"
            await asyncio.sleep(0.1)
        assert (await decided(client, view(**{"pass": fan_pass})))["reason"] == "supporter"
        assert (await client.post("/v1/admin/tiers", json=PATRON, headers=world.admin)).status_code == 201


async def test_a_full_store_lets_views_through_and_refuses_writes_with_503(
    own_store: EmbeddedStore, clock: FakeClock
) -> None:
    """A store at its memory limit (noeviction) refuses writes: metered views pass as store_unavailable, writes 503."""
    settings = Settings(redis_url=own_store.url, master_key=MASTER_MATERIAL)
    store = Store(connect(own_store.url))
    services = Services.build(store, settings, MailQueue(store, mailer_for(settings)), MASTER_KEY, clock)
    world = await make_world(services)
    await set_policy(services, clock, free_views=3)
    async with AsyncTestClient(create_app(settings, clock=clock)) as client:
        used = int((await store.redis.info("memory"))["used_memory"])
        await store.redis.config_set("maxmemory", used + 1024)
        assert (await decided(client, view(visitor="visitor-full1")))["reason"] == "store_unavailable"
        refused = await client.post("/v1/admin/tiers", json=PATRON, headers=world.admin)
        assert refused.status_code == 503, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        await store.redis.config_set("maxmemory", 0)
    await store.close()
