"""Revocation cutoffs kept in each process while the store tracks them (CLIENT TRACKING), and dropped when it stops."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.cluster import RedisCluster

from supportgate.app import create_app
from supportgate.services import Services
from supportgate.settings import Settings
from supportgate.store.tracking import TrackedReads
from tests.cluster_helpers import ValkeyCluster, sync_client
from tests.conftest import CLUSTER_ONLY, EVERY_STORE, FakeClock
from tests.gate_helpers import World, decided, make_world, pass_for, view

Client = AsyncTestClient[Litestar]
WORKERS = 2


async def _until(check: Callable[[], bool], *, within: float, what: str) -> float:
    """Poll ``check`` until it holds; the seconds it took. Fails after ``within`` seconds."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > within:
            pytest.fail(f"{what} did not happen within {within} s")
        await asyncio.sleep(0.01)
    return time.monotonic() - started


def _cutoffs(client: Client) -> TrackedReads:
    app = client.app
    assert isinstance(app, Litestar)
    cutoffs: TrackedReads = app.state.services.cutoffs
    return cutoffs


def _per_primary(url: str, section: str) -> list[dict[str, Any]]:
    """``INFO section`` of the store, or of every primary of a cluster."""
    client = sync_client(url)
    with client:
        if isinstance(client, RedisCluster):
            return list(client.info(section, target_nodes=RedisCluster.PRIMARIES).values())
        return [client.info(section)]


def _gets(url: str) -> int:
    """How many GETs the store has run (on a cluster, all its primaries), by its own counters."""
    return sum(info.get("cmdstat_get", {}).get("calls", 0) for info in _per_primary(url, "commandstats"))


@pytest.fixture
async def workers(settings: Settings, clock: FakeClock) -> AsyncIterator[list[Client]]:
    """Two apps on one store, as two workers: each its own PassCheck and tracking connections, tracking on."""
    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(AsyncTestClient(create_app(settings, clock=clock))) for _ in range(WORKERS)
        ]
        for client in clients:
            cutoffs = _cutoffs(client)
            await _until(lambda cutoffs=cutoffs: cutoffs.live, within=10, what="tracking on")
        yield clients


@pytest.fixture
async def world(services: Services) -> World:
    return await make_world(services)


@EVERY_STORE
async def test_a_revocation_reaches_every_worker_within_a_second(
    workers: list[Client], world: World, services: Services
) -> None:
    """A pass kept as valid by two workers is refused by both within a second of the admin signing its supporter out."""
    token = await pass_for(services, world.supporter_id)
    for client in workers:
        for _ in range(2):
            assert (await decided(client, view(**{"pass": token})))["reason"] == "supporter"
        assert len(_cutoffs(client)) == 1

    signed_out = await workers[0].delete(f"/v1/admin/supporters/{world.supporter_id}/sessions", headers=world.admin)
    assert signed_out.status_code == 204, signed_out.text
    started = time.monotonic()
    for client in workers:
        while (await decided(client, view(**{"pass": token}))).get("pass_error") != "revoked":
            assert time.monotonic() - started < 1.0, "a worker still took the pass for valid a second after"
            await asyncio.sleep(0.01)


@EVERY_STORE
async def test_a_kept_cutoff_costs_no_store_round_trip(
    workers: list[Client], world: World, services: Services, store_url: str
) -> None:
    """Once a pass's cutoff is kept, decides with it send no GET to the store, by the store's own counters."""
    client = workers[0]
    token = await pass_for(services, world.supporter_id)
    before = _gets(store_url)
    assert (await decided(client, view(**{"pass": token})))["reason"] == "supporter"
    assert _gets(store_url) - before >= 1, "the first decide reads the cutoff"
    before = _gets(store_url)
    for _ in range(50):
        assert (await decided(client, view(**{"pass": token})))["reason"] == "supporter"
    assert _gets(store_url) - before == 0


@EVERY_STORE
async def test_a_killed_invalidation_connection_empties_the_map_until_tracking_is_back(
    workers: list[Client], world: World, services: Services, store_url: str
) -> None:
    """Killing the invalidation connection drops what was kept; tracking comes back and revocations still arrive."""
    client = workers[0]
    cutoffs = _cutoffs(client)
    token = await pass_for(services, world.supporter_id)
    assert (await decided(client, view(**{"pass": token})))["reason"] == "supporter"
    assert len(cutoffs) == 1

    store = sync_client(store_url)
    with store:
        # On a cluster, one primary's: losing any node's pair drops everything kept.
        node = store.get_primaries()[0].redis_connection if isinstance(store, RedisCluster) else store
        assert node is not None
        ours = [entry["id"] for entry in node.client_list(_type="pubsub")]
        assert ours, "each worker holds an invalidation connection"
        for client_id in ours:
            node.client_kill_filter(_id=client_id)
    await _until(lambda: len(cutoffs) == 0, within=1.0, what="the kept cutoffs dropped")

    assert (await decided(client, view(**{"pass": token})))["reason"] == "supporter"
    await _until(lambda: cutoffs.live, within=5.0, what="tracking back")
    assert (await decided(client, view(**{"pass": token})))["reason"] == "supporter"
    await _until(lambda: len(cutoffs) == 1, within=1.0, what="the cutoff kept again")
    await services.sessions.end_all(world.supporter_id)
    started = time.monotonic()
    while (await decided(client, view(**{"pass": token}))).get("pass_error") != "revoked":
        assert time.monotonic() - started < 1.0
        await asyncio.sleep(0.01)


@EVERY_STORE
async def test_a_read_that_races_an_invalidation_is_not_kept(services: Services) -> None:
    """A value read while its key was invalidated is answered but not kept; the next read asks the store."""
    cutoffs = TrackedReads(services.store)
    await cutoffs.start()
    try:
        await _until(lambda: cutoffs.live, within=10, what="tracking on")
        key = "{site:news}:race-probe"
        reading = asyncio.ensure_future(cutoffs.read(key))
        await asyncio.sleep(0)  # the read is marked and queued, not yet answered
        cutoffs._forget([key.encode()])
        assert await reading is None
        assert cutoffs.cached(key) is None
        assert await cutoffs.read(key) is None
        assert cutoffs.cached(key) == (None,)
        await services.store.redis.set(key, b"7")
        await _until(lambda: cutoffs.cached(key) is None, within=1.0, what="the write's invalidation")
        assert await cutoffs.read(key) == b"7"
        assert cutoffs.cached(key) == (b"7",)
    finally:
        await cutoffs.stop()


@CLUSTER_ONLY
async def test_a_failover_drops_what_was_kept_and_tracking_follows_the_new_primary(
    store_server: ValkeyCluster, services: Services
) -> None:
    """After a key's replica takes over, nothing read from the old primary is kept; writes on the new one are heard."""
    cutoffs = TrackedReads(services.store)
    await cutoffs.start()
    try:
        await _until(lambda: cutoffs.live, within=10, what="tracking on")
        key = "{site:news}:failover-probe"
        assert await cutoffs.read(key) is None
        assert cutoffs.cached(key) == (None,)
        old = store_server.primary_of(key)
        replica = store_server.replicas_of(old)[0]
        with replica.client() as client:
            client.execute_command("CLUSTER", "FAILOVER")
        await _until(lambda: cutoffs.cached(key) is None, within=5, what="the kept value dropped")
        deadline = time.monotonic() + 30
        while store_server.primary_of(key) is not replica or not store_server.replicas_of(replica):
            assert time.monotonic() < deadline, "the manual failover did not complete"
            await asyncio.sleep(0.05)
        await _until(lambda: cutoffs.live, within=10, what="tracking back")
        while cutoffs.cached(key) is None:  # tracking may drop again while the cluster settles
            assert await cutoffs.read(key) is None
            assert time.monotonic() < deadline, "the value was never kept again"
            await asyncio.sleep(0.05)
        with replica.client() as client:
            client.set(key, b"9")
        took = await _until(lambda: cutoffs.cached(key) is None, within=1.0, what="the new primary's invalidation")
        assert await cutoffs.read(key) == b"9", took
    finally:
        await cutoffs.stop()
