"""Store sizing: the keys and memory one supporter, one signed-in device, one site and one metered visitor take.

Run with ``uv run python bench/store_sizing.py [--supporters N] [--sites N] [--visitors N] [--url URL]``.
Without ``--url`` it starts an embedded store (``valkey-server``, as ``supportgate serve`` does) in a
temporary dir; with one (a single server or any node of a cluster) it uses that store, which it
empties first: never point it at a store whose data you want to keep.

Through the services themselves (the same writes the admin API and sign-in make, each with its audit
entry) it creates, one kind after the other: ``N`` supporters on one tier, one signed-in session for
each of them, ``N`` sites each with a site API key, and ``N`` distinct visitors metered on one site.
After each kind it reads the store's key count (``DBSIZE``), ``used_memory`` (``INFO memory``) and the
sum of ``MEMORY USAGE`` over every key, on every primary of a cluster, and prints what one more of
that kind costs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from redis.asyncio import Redis, RedisCluster

from supportgate.catalog.policy import Policy
from supportgate.catalog.schemas import SiteIn, SupporterIn, TierIn
from supportgate.gate.metering import Metering
from supportgate.mail import mailer_for
from supportgate.mail_queue import MailQueue
from supportgate.services import Services
from supportgate.settings import Settings
from supportgate.store import EmbeddedStore, Store, open_store
from supportgate.tokens.sealing import MasterKey

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@dataclass
class Size:
    """What the store holds at one moment."""

    keys: int
    used_memory: int
    key_memory: int


async def measure(store: Store) -> Size:
    """Keys, ``used_memory`` and the sum of ``MEMORY USAGE`` over the keys (every primary of a cluster)."""
    redis = store.redis
    nodes: list[Redis] = []
    if isinstance(redis, RedisCluster):
        nodes = [Redis(host=node.host, port=int(node.port)) for node in redis.get_primaries()]
    else:
        nodes = [redis]
    keys = used = usage = 0
    try:
        for node in nodes:
            keys += int(await node.dbsize())
            used += int((await node.info("memory"))["used_memory"])
            async for key in node.scan_iter(count=1000):
                usage += int(await node.memory_usage(key, samples=0) or 0)
    finally:
        if isinstance(redis, RedisCluster):
            for node in nodes:
                await node.aclose()
    return Size(keys, used, usage)


@contextlib.contextmanager
def a_store(url: str | None) -> Iterator[str]:
    """The store URL given, or an embedded store's for the run."""
    if url is not None:
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="sg-sizing-") as tmp, EmbeddedStore(Path(tmp)) as server:
        yield server.url


async def flush(store: Store) -> None:
    """Empty the store: every primary of a cluster."""
    redis = store.redis
    if isinstance(redis, RedisCluster):
        await redis.flushall(target_nodes=RedisCluster.PRIMARIES)
    else:
        await redis.flushall()


def row(name: str, count: int, before: Size, after: Size) -> str:
    """One line of the table: what one more of ``name`` costs."""
    keys = (after.keys - before.keys) / count
    used = (after.used_memory - before.used_memory) / count
    usage = (after.key_memory - before.key_memory) / count
    return f"| {name} | {count:,} | {keys:.2f} | {usage:,.0f} | {used:,.0f} |"


async def run(args: argparse.Namespace, url: str) -> None:
    with tempfile.TemporaryDirectory(prefix="sg-sizing-data-") as data:
        settings = Settings(redis_url=url, data_dir=Path(data))
        store = await open_store(url, socket_timeout=30)
        await flush(store)
        mail = MailQueue(store, mailer_for(settings))
        services = Services.build(store, settings, mail, MasterKey(settings.load_master_key()), lambda: NOW)
        try:
            await services.signing_keys.ensure()
            tier = TierIn(id="supporter", name="Supporter", entitlements=["adblock_ok"], max_devices=5)
            await services.tiers.create(tier, actor="bench")
            lines = [
                f"store: {'cluster' if store.cluster else 'one server'}",
                "",
                "| each | made | keys | bytes (MEMORY USAGE) | bytes (used_memory) |",
                "| --- | --- | --- | --- | --- |",
            ]

            start = await measure(store)
            ids = []
            for n in range(args.supporters):
                made = await services.supporters.create(
                    SupporterIn(email=f"s{n}@example.com", tier="supporter", notify=False), actor="bench"
                )
                ids.append(made.id)
            supporters = await measure(store)
            lines.append(
                row(
                    "supporter (record, address key, audit target set; index members, audit entry)",
                    args.supporters,
                    start,
                    supporters,
                )
            )

            for supporter_id in ids:
                await services.sessions.start(supporter_id=supporter_id, max_devices=5, device="bench browser")
            sessions = await measure(store)
            lines.append(row("signed-in device (session record, session set)", args.supporters, supporters, sessions))

            for n in range(args.sites):
                site_id = f"site{n}"
                origins = [f"https://{site_id}.example"]
                await services.sites.create(SiteIn(id=site_id, name=site_id, origins=origins), actor="bench")
                await services.api_keys.create("site", name=site_id, site=site_id, actor="bench")
            sites = await measure(store)
            what = "site with one site key (record, audit target set; index members, audit entries)"
            lines.append(row(what, args.sites, sessions, sites))

            metering = Metering(store, lambda: NOW)
            policy = Policy(free_views=3)
            await metering.count("site0", policy, "first")
            first = await measure(store)
            for n in range(args.visitors):
                await metering.count("site0", policy, f"visitor-{n:08d}")
            visitors = await measure(store)
            lines.append(row("first metered visitor of a site and period (the sketch)", 1, sites, first))
            lines.append(row("metered visitor after that", args.visitors, first, visitors))
            print("\n".join(lines))
        finally:
            await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--supporters", type=int, default=2000)
    parser.add_argument("--sites", type=int, default=200)
    parser.add_argument("--visitors", type=int, default=20000)
    parser.add_argument("--url", help="a store to use (emptied first!) instead of an embedded one")
    args = parser.parse_args()
    with a_store(args.url) as url:
        asyncio.run(run(args, url))


if __name__ == "__main__":
    main()
