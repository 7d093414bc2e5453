"""The store layer: key discipline for Redis Cluster, durable transactions, and the embedded server's lifecycle."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Iterable
from pathlib import Path

import pytest
import redis
from redis.asyncio.client import Pipeline
from redis.asyncio.connection import AbstractConnection

from supportgate.catalog.schemas import SiteIn, SupporterIn, SupporterPatch, TierIn
from supportgate.services import Services
from supportgate.store import EmbeddedStore, Store, begin, connect, open_store
from tests.cluster_helpers import ClusterNode, ValkeyCluster, every_key
from tests.conftest import CLUSTER_ONLY, EVERY_STORE

_COMMAND = re.compile(rb"\*\d+\r\n\$\d+\r\n([A-Za-z]+)\r\n")
# The hash tags a multi-key change may span; each change stays inside one of them.
TAGGED = re.compile(
    r"^sg:\{(dir|keys|mail|sup:[a-z0-9-]+|site:[a-z0-9-]+|code:[0-9a-f]{64}|act:[0-9a-f]{64}|rate:[^}]+)\}"
)


@EVERY_STORE
async def test_every_key_carries_a_hash_tag(services: Services, store_url: str) -> None:
    """After every kind of admin write, each key in the store is under one of the known hash tags."""
    tier = TierIn(id="supporter", name="S", entitlements=["adblock_ok"], max_devices=2)
    await services.tiers.create(tier, actor="t")
    await services.tiers.create(TierIn(id="patron", name="P", entitlements=["ad_free"], max_devices=2), actor="t")
    made = await services.supporters.create(SupporterIn(email="a@example.com", tier="supporter"), actor="t")
    await services.supporters.update(made.id, SupporterPatch(tier="patron", email="b@example.com"), actor="t")
    kept = await services.supporters.create(SupporterIn(email="c@example.com", tier="patron"), actor="t")
    await services.sites.create(SiteIn(id="news", name="News", origins=["https://news.example"]), actor="t")
    await services.api_keys.create("site", name="news", site="news", actor="t")
    await services.api_keys.create("admin", name="ops", actor="t")
    signed_in = await services.sessions.start(supporter_id=made.id, max_devices=2, device="d")
    caller = await services.sessions.authenticate(signed_in.access_token)
    await services.passes.issue(caller, "news")
    await services.sessions.refresh(signed_in.refresh_token, request_id="retry-safe-1")
    await services.codes.request("c@example.com", site="news", client_ip="127.0.0.1")
    await services.activation.create(made.id, actor="t")
    await services.sessions.start(supporter_id=kept.id, max_devices=2, device="kept")
    await services.supporters.forget(made.id, actor="t")
    await services.tiers.delete("supporter", move_to=None, actor="t")
    names = every_key(store_url)
    for family in ("{dir}", "{keys}", "{sup:", "{site:", "{code:", "{act:", "{rate:"):
        assert any(family in name for name in names), family
    untagged = [name for name in names if not TAGGED.match(name)]
    assert untagged == []


def test_a_second_user_shares_a_running_store(tmp_path: Path) -> None:
    """Starting the embedded store where one already runs shares it and leaves it running after."""
    owner = EmbeddedStore(tmp_path)
    owner.start()
    try:
        guest = EmbeddedStore(tmp_path)
        assert guest.start() == owner.url
        assert not guest.owned
        guest.stop()
        with redis.Redis.from_url(owner.url) as client:
            assert client.ping()
    finally:
        owner.stop()
    assert not Path(owner.socket).exists()


def test_deep_data_dirs_still_get_a_socket(tmp_path: Path) -> None:
    """A data dir too deep for a unix socket path gets its socket in a short temporary dir."""
    deep = tmp_path.joinpath(*["a-rather-long-directory-name"] * 5)
    with EmbeddedStore(deep) as server:
        assert len(str(server.socket)) < 104
        with redis.Redis.from_url(server.url) as client:
            client.set("k", "v")
        assert (deep / "store" / "appendonlydir").is_dir()


def test_a_broken_store_binary_says_why(tmp_path: Path) -> None:
    """A server that exits at start raises an error quoting its last log line."""
    fake = tmp_path / "fake-server"
    fake.write_text("#!/bin/sh\nexit 3\n")
    fake.chmod(0o755)
    with pytest.raises(Exception, match="exited at start"):
        EmbeddedStore(tmp_path / "data", binary=str(fake)).start(timeout=5)


@EVERY_STORE
async def test_batched_gets_answer_each_caller(store_url: str) -> None:
    """Fifty GETs asked for at once travel together, and each caller gets its own key's value (from any node)."""
    store = await open_store(store_url)
    try:
        async with store.redis.pipeline(transaction=False) as pipe:
            for n in range(0, 50, 2):
                pipe.set(f"k{n}", f"v{n}")
            await pipe.execute()
        values = await asyncio.gather(*(store.get_batched(f"k{n}") for n in range(50)))
        assert values == [f"v{n}".encode() if n % 2 == 0 else None for n in range(50)]
    finally:
        await store.close()


async def test_batched_gets_share_the_stores_failure(tmp_path: Path) -> None:
    """When the store is down, every batched GET fails with the store's error, none hangs."""
    server = EmbeddedStore(tmp_path)
    server.start()
    store = Store(connect(server.url, timeout=0.5))
    server.stop()
    try:
        results = await asyncio.gather(*(store.get_batched(f"k{n}") for n in range(5)), return_exceptions=True)
        assert all(isinstance(r, redis.exceptions.ConnectionError) for r in results), results
    finally:
        await store.close()


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> dict[int, list[str]]:
    """The names of the commands every store connection sends from now on, in order, by connection."""
    by_connection: dict[int, list[str]] = {}
    original = AbstractConnection.send_packed_command

    async def recording(
        self: AbstractConnection,
        command: bytes | str | Iterable[bytes],
        check_health: bool = True,
    ) -> None:
        packed = command.encode() if isinstance(command, str) else command
        raw = packed if isinstance(packed, bytes) else b"".join(packed)
        by_connection.setdefault(id(self), []).extend(name.decode().upper() for name in _COMMAND.findall(raw))
        await original(self, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", recording)
    return by_connection


@EVERY_STORE
@pytest.mark.parametrize("watching", [True, False])
async def test_each_durability_wait_runs_on_its_transactions_connection(
    store_url: str, sent: dict[int, list[str]], *, watching: bool
) -> None:
    """Under 100 concurrent transactions, each EXEC is followed by its WAITAOF on its own connection."""
    # Up to 100 connections open at once: a loaded machine may take over the 2-s default to accept them.
    store = await open_store(store_url, socket_timeout=15.0)

    async def write(n: int) -> None:
        async def change(pipe: Pipeline) -> None:
            begin(pipe)
            pipe.set(f"k{n}", n)

        await store.atomically(change, *([f"k{n}"] if watching else []))

    try:
        await asyncio.gather(*(write(n) for n in range(100)))
        has_waitaof = store._waitaof
        logs = list(sent.values())
        assert sum(log.count("EXEC") for log in logs) == 100
        # On a cluster a replica confirms first (WAIT), then the primary's disk (WAITAOF).
        waits = ["WAIT", "WAITAOF"] if store.cluster else ["WAITAOF"]
        for log in logs:
            steps = [name for name in log if name != "UNWATCH"]
            for at, name in enumerate(steps):
                if name in waits:
                    assert steps[at - 1 - waits.index(name)] == "EXEC", log
                elif name == "EXEC" and has_waitaof:
                    assert steps[at + 1 : at + 1 + len(waits)] == waits, log
        waits = sum(log.count("WAITAOF") for log in logs)
        assert waits == 100 if has_waitaof else waits >= 1
    finally:
        await store.close()


@EVERY_STORE
async def test_a_durable_write_waits_on_its_own_connection(store_url: str, sent: dict[int, list[str]]) -> None:
    """Writes made through ``durably``, alongside 50 others, are followed by their WAITAOF on their connection."""
    # Up to 100 connections open at once: a loaded machine may take over the 2-s default to accept them.
    store = await open_store(store_url, socket_timeout=15.0)

    async def write(n: int) -> bool:
        async def set_key(one: redis.asyncio.Redis) -> bool:
            return bool(await one.set(f"d{n}", n, nx=True))

        return await store.durably(set_key, f"d{n}")

    try:
        assert all(await asyncio.gather(*(write(n) for n in range(50))))
        has_waitaof = store._waitaof
        waits = ["WAIT", "WAITAOF"] if store.cluster else ["WAITAOF"]
        for log in sent.values():
            for at, name in enumerate(log):
                if name in waits:
                    assert log[at - 1 - waits.index(name)] == "SET", log
                elif name == "SET" and has_waitaof:
                    assert log[at + 1 : at + 1 + len(waits)] == waits, log
        assert await store.redis.get("d7") == b"7"
    finally:
        await store.close()


def _cluster(store_server: EmbeddedStore | ValkeyCluster) -> ValkeyCluster:
    assert isinstance(store_server, ValkeyCluster)
    return store_server


@EVERY_STORE
async def test_the_store_says_whether_it_is_a_cluster(
    store_server: EmbeddedStore | ValkeyCluster, store_url: str
) -> None:
    """``open_store`` picks the cluster client exactly when the server has ``cluster_enabled:1``."""
    store = await open_store(store_url)
    try:
        assert store.cluster is isinstance(store_server, ValkeyCluster)
        assert isinstance(store.redis, redis.asyncio.RedisCluster) is store.cluster
        assert await store.ping()
    finally:
        await store.close()


@CLUSTER_ONLY
async def test_a_change_across_hash_tags_fails_loudly_on_a_cluster(
    store_server: EmbeddedStore | ValkeyCluster, store_url: str
) -> None:
    """A transaction over two hash tags is refused by the cluster (CROSSSLOT), with nothing written."""
    cluster = _cluster(store_server)
    store = await open_store(store_url)

    async def queued(pipe: Pipeline) -> None:
        begin(pipe)
        pipe.set("sg:{dir}:one", 1)
        pipe.set("sg:{mail}:two", 2)

    async def watched(pipe: Pipeline) -> None:
        await pipe.get("sg:{mail}:two")

    async def one_command(pipe: Pipeline) -> None:
        begin(pipe)
        pipe.mset({"sg:{dir}:one": 1, "sg:{dir}:two": 2, "sg:{keys}:three": 3})

    try:
        with pytest.raises(redis.exceptions.ClusterCrossSlotError):
            await store.atomically(queued)
        with pytest.raises(redis.exceptions.ClusterCrossSlotError):
            await store.atomically(one_command, "sg:{dir}:one")
        with pytest.raises(redis.exceptions.ClusterCrossSlotError):
            await store.atomically(watched, "sg:{dir}:one")

        async def two_tags(one: redis.asyncio.Redis) -> None:
            await one.set("sg:{dir}:one", 1)
            await one.set("sg:{mail}:two", 2)

        with pytest.raises(redis.exceptions.ClusterCrossSlotError):
            await store.durably(two_tags, "sg:{dir}:one")
        with cluster.client() as client:
            assert client.exists("sg:{mail}:two", "sg:{keys}:three") == 0
    finally:
        await store.close()


@CLUSTER_ONLY
async def test_an_acknowledged_write_is_on_a_replica(
    store_server: EmbeddedStore | ValkeyCluster, store_url: str
) -> None:
    """On a cluster, ``atomically`` and ``durably`` return only once the primary's replica holds the write.

    The replica is made to sleep for a second as the write is made: the answer waits for it.
    """
    cluster = _cluster(store_server)
    store = await open_store(store_url)

    async def change(pipe: Pipeline) -> None:
        begin(pipe)
        pipe.set("sg:{dir}:acked", "yes")

    async def write(one: redis.asyncio.Redis) -> None:
        await one.set("sg:{keys}:acked", "too")

    async def asleep(replica: ClusterNode, done: Awaitable[None]) -> float:
        with replica.client() as client:
            sleeping = asyncio.create_task(asyncio.to_thread(client.execute_command, "DEBUG", "SLEEP", "1"))
            await asyncio.sleep(0.1)
            started = time.monotonic()
            await done
            waited = time.monotonic() - started
            await sleeping
        return waited

    try:
        await store.atomically(change, "sg:{dir}:warm-up")  # the connections are open before the clock runs
        for key, done in (
            ("sg:{dir}:acked", store.atomically(change, "sg:{dir}:acked")),
            ("sg:{keys}:acked", store.durably(write, "sg:{keys}:acked")),
        ):
            replica = cluster.replicas_of(cluster.primary_of(key))[0]
            assert await asleep(replica, done) > 0.5
            with replica.client() as client:
                client.execute_command("READONLY")
                assert client.get(key) in {b"yes", b"too"}
        assert store._waitaof is True  # AOF on: the primary's disk too
    finally:
        await store.close()


@EVERY_STORE
async def test_a_write_across_nodes_goes_node_by_node(
    store_server: EmbeddedStore | ValkeyCluster, store_url: str
) -> None:
    """``by_node`` keeps keys in their order, all in one group on one server, per primary on a cluster."""
    keys = [f"sg:{{site:s{n}}}:cutoff:x" for n in range(12)]
    store = await open_store(store_url)
    try:
        groups = store.by_node(keys)
        assert sorted(key for group in groups for key in group) == sorted(keys)
        if not isinstance(store_server, ValkeyCluster):
            assert groups == [keys]
            return
        assert len(groups) == 3
        for group in groups:
            assert len({store_server.primary_of(key).port for key in group}) == 1
            assert group == [key for key in keys if key in group]
    finally:
        await store.close()


@EVERY_STORE
async def test_a_multi_runs_on_its_keys_primary(store_server: EmbeddedStore | ValkeyCluster, store_url: str) -> None:
    """``Store.multi`` applies its commands together; on a cluster, a second hash tag in it fails loudly."""
    store = await open_store(store_url)
    try:
        async with store.multi("sg:{rate:x}:1") as pipe:
            pipe.incr("sg:{rate:x}:1")
            pipe.expire("sg:{rate:x}:1", 60)
            assert await pipe.execute() == [1, True]
        assert await store.redis.get("sg:{rate:x}:1") == b"1"
        if isinstance(store_server, ValkeyCluster):

            async def two_tags() -> None:
                async with store.multi("sg:{rate:x}:1") as pipe:
                    pipe.incr("sg:{rate:x}:1")
                    pipe.incr("sg:{rate:y}:1")
                    await pipe.execute()

            with pytest.raises(redis.exceptions.ClusterCrossSlotError):
                await two_tags()
            assert await store.redis.get("sg:{rate:x}:1") == b"1"
            assert await store.redis.get("sg:{rate:y}:1") is None
    finally:
        await store.close()
