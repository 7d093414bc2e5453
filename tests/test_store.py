"""The store layer: key discipline for Redis Cluster, and the embedded server's lifecycle."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
import redis

from supportgate.catalog.schemas import SiteIn, SupporterIn, SupporterPatch, TierIn
from supportgate.services import Services
from supportgate.store import EmbeddedStore, Store, connect

# The hash tags a multi-key change may span; each change stays inside one of them.
TAGGED = re.compile(r"^sg:\{(dir|keys|sup:[a-z0-9-]+|site:[a-z0-9-]+|code:[0-9a-f]{64}|act:[0-9a-f]{64}|rate:[^}]+)\}")


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
    with redis.Redis.from_url(store_url) as client:
        names = [key.decode() for key in client.scan_iter(count=1000)]
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


async def test_batched_gets_answer_each_caller(store_url: str) -> None:
    """Fifty GETs asked for at once travel together, and each caller gets its own key's value."""
    store = Store(connect(store_url))
    try:
        await store.redis.mset({f"k{n}": f"v{n}" for n in range(0, 50, 2)})
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
