"""A served app on a Valkey Cluster while a primary is killed: decide keeps answering, acknowledged writes stay.

The cluster is the test's own (six servers, ``cluster-node-timeout`` 1000 ms): it kills one. The
app runs as ``supportgate serve`` would, in its own process, reached over loopback by httpx.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import RedisCluster
from redis.asyncio.client import Pipeline

from supportgate.store import begin, names, open_store
from tests.cluster_helpers import ValkeyCluster
from tests.processes import free_port, start_supportgate, stop, wait_ready
from tests.readers_helpers import sign_in

pytestmark = pytest.mark.slow
FAN = "fan@example.com"
DECIDE_WORKERS = 4
MAX_DECIDES = 20_000
# The app's own bound on a page view is its decide deadline (100 ms); a loaded test machine gets slack,
# but nothing may reach the store timeout (2 s), where a hung store would show.
SLOWEST_DECIDE_S = 1.5


@dataclass
class Answer:
    """One decide as the load loop saw it."""

    at: float
    seconds: float
    status: int
    reason: str


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[ValkeyCluster]:
    """A cluster of the test's own, which it may wound."""
    with ValkeyCluster(tmp_path / "cluster") as made:
        yield made


@pytest.fixture
def served(cluster: ValkeyCluster, tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """``supportgate serve`` on the cluster: its base URL, an admin key (made by the CLI), its outbox."""
    data = tmp_path / "data"
    env = {
        **os.environ,
        "SUPPORTGATE_REDIS_URL": cluster.url,
        "SUPPORTGATE_DATA_DIR": str(data),
        "SUPPORTGATE_LOG_LEVEL": "WARNING",
        # The load comes from one address; its page views are not what is limited here.
        "SUPPORTGATE_ANONYMOUS_DECIDES_PER_MINUTE": "1000000",
    }
    made = subprocess.run(
        [sys.executable, "-m", "supportgate", "admin", "create-key", "--name", "failover"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    admin_key = re.search(r"sga_\S+", made.stdout + made.stderr)
    assert admin_key, made.stdout + made.stderr
    port = free_port()
    log = tmp_path / "serve.log"
    server = start_supportgate("serve", "--port", str(port), "--workers", "1", env=env, log=log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, server, log, interval=0.1, request_timeout=2)
        yield base, admin_key.group(0), data / "outbox"
    finally:
        stop(server)


def _quiet_spell(log: Path) -> str:
    """The longest time the server answered no request, from its access log (its lines end each answer)."""
    ends = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            with contextlib.suppress(ValueError, KeyError):
                ends.append(datetime.fromisoformat(json.loads(line)["time"]))
    gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(sorted(ends))]
    return f"the server answered nothing for {max(gaps, default=0.0):.2f} s at the longest"


def _site_beside(cluster: ValkeyCluster, key: str) -> str:
    """A site id whose ``{site:<id>}`` keys are on the same primary as ``key``."""
    with cluster.client() as client:
        target = client.get_node_from_key(key)
        for n in range(1000):
            if client.get_node_from_key(names.pass_cutoff(f"news{n}", "x")) == target:
                return f"news{n}"
    raise AssertionError("no site id on that primary")


async def _decide_load(base: str, body: dict[str, Any], headers: dict[str, str], stop: asyncio.Event) -> list[Answer]:
    """Decides from a few concurrent loops until ``stop`` (or a bound on their number): what each got."""
    answers: list[Answer] = []

    async def loop(client: httpx.AsyncClient) -> None:
        while not stop.is_set() and len(answers) < MAX_DECIDES:
            sent = time.monotonic()
            reply = await client.post("/v1/decide", json=body, headers=headers)
            reason = reply.json().get("reason", "") if reply.status_code == 200 else reply.text
            answers.append(Answer(sent, time.monotonic() - sent, reply.status_code, reason))

    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        await asyncio.gather(*(loop(client) for _ in range(DECIDE_WORKERS)))
    return answers


async def _prepare(cluster: ValkeyCluster, base: str, admin: dict[str, str], outbox: Path) -> tuple[str, str, str, str]:
    """A tier, a site beside the catalog, a signed-in fan's pass for it, and a supporter written last.

    The site's keys are on the catalog's primary, so the decides need the primary the test kills.
    Returns the site, its origin, the pass and the id of the supporter written last.
    """
    site = _site_beside(cluster, names.tiers())
    origin = f"https://{site}.example"
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        tier = {"id": "supporter", "name": "S", "entitlements": ["adblock_ok"], "max_devices": 3}
        assert (await client.post("/v1/admin/tiers", json=tier, headers=admin)).status_code == 201
        made = await client.post("/v1/admin/sites", json={"id": site, "name": site, "origins": [origin]}, headers=admin)
        assert made.status_code == 201, made.text
        fan = await client.post("/v1/admin/supporters", json={"email": FAN, "tier": "supporter"}, headers=admin)
        assert fan.status_code == 201, fan.text
        signed_in = await sign_in(client, outbox, FAN)  # type: ignore[arg-type]  # an httpx client, as the helper's
        bearer = {"Authorization": f"Bearer {signed_in['access_token']}"}
        issued = await client.post("/v1/passes", json={"site": site}, headers=bearer)
        assert issued.status_code == 200, issued.text
        # The write the test checks survives: acknowledged just before the primary holding it dies.
        late = await client.post(
            "/v1/admin/supporters", json={"email": "late@example.com", "tier": "supporter"}, headers=admin
        )
        assert late.status_code == 201, late.text
    return site, origin, issued.json()["pass"], late.json()["id"]


# Once, in a CI run on a fresh clone, one decide took 3.6 s: the server's access log shows that no
# request at all was answered for those 3.6 s (a whole-process stall, not a view waiting on the dead
# store, which every view gives up on at its deadline), and the same test under two busy loops on
# both cores then passed seven times out of seven with its slowest decide at 31-48 ms. The cause is
# not found; like every test it runs a second time on a failure (pyproject's addopts), and its message
# says whether the server stalled.
async def test_decide_stays_answered_while_a_primary_dies_and_acknowledged_writes_survive(
    cluster: ValkeyCluster, served: tuple[str, str, Path], tmp_path: Path
) -> None:
    """``kill -9`` the primary of the catalog: decide fails open meanwhile, then works again; no write is lost."""
    base, admin_key, outbox = served
    admin = {"Authorization": f"Bearer {admin_key}"}
    site, origin, pass_, late_id = await _prepare(cluster, base, admin, outbox)
    victim = cluster.primary_of(names.supporter(late_id))
    assert victim is cluster.primary_of(names.pass_cutoff(site, "x")), "the site's keys share the victim"

    body = {"site": site, "path": "/article", "adblock": "blocked", "pass": pass_}
    stop = asyncio.Event()
    load = asyncio.create_task(_decide_load(base, body, {"Origin": origin}, stop))
    await asyncio.sleep(1.0)
    killed_at = time.monotonic()
    cluster.kill(victim)
    promoted = await asyncio.to_thread(cluster.wait_until_served, names.supporter(late_id))
    took_over = time.monotonic() - killed_at
    await asyncio.sleep(3.0)  # the app's next probe finds the new primary; decides read the store again
    stop.set()
    answers = await load

    assert promoted is not victim
    statuses = {answer.status for answer in answers}
    assert statuses == {200}, [a for a in answers if a.status != 200][:5]
    slowest = max(answer.seconds for answer in answers)
    assert slowest < SLOWEST_DECIDE_S, f"slowest decide {slowest:.2f} s; {_quiet_spell(tmp_path / 'serve.log')}"
    reasons = [answer.reason for answer in answers]
    assert "store_unavailable" in reasons, "the dead primary's slots went unanswered for a while"
    # When each answer came (a decide sent just before the kill may be answered after it).
    failed = [answer.at + answer.seconds for answer in answers if answer.reason == "store_unavailable"]
    print(  # noqa: T201 - when decides failed open, from the kill on
        "\nfailed open at (s after the kill):",
        [round(at - killed_at, 2) for at in failed[:3]],
        "...",
        [round(at - killed_at, 2) for at in failed[-3:]],
        f"promoted at {took_over:.2f}",
    )
    assert min(failed) > killed_at, "nothing failed open before the kill"
    assert max(failed) < killed_at + took_over + 2.0, "the app found the new primary soon after it took over"
    assert any(answer.at > killed_at + took_over + 2.0 for answer in answers)
    print(  # noqa: T201 - the figures the report quotes
        f"\n{len(answers)} decides, replica promoted {took_over:.2f} s after the kill, "
        f"{reasons.count('store_unavailable')} failed open, slowest {slowest * 1000:.0f} ms"
    )

    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        kept = await client.get(f"/v1/admin/supporters/{late_id}", headers=admin)
        assert kept.status_code == 200, kept.text
        assert kept.json()["email"] == "late@example.com"
        # Admin writes work again, on the promoted primary (acknowledged once it has a replica again,
        # which it has not: the dead primary was its only one, so the write is refused, honestly).
        again = await client.post(
            "/v1/admin/supporters", json={"email": "after@example.com", "tier": "supporter"}, headers=admin
        )
        assert again.status_code == 503, again.text
        assert again.headers["content-type"] == "application/problem+json"


async def test_the_store_follows_a_slot_moved_by_a_manual_failover(cluster: ValkeyCluster) -> None:
    """After ``CLUSTER FAILOVER`` the old primary answers MOVED: transactions and commands go to the new one."""
    key = names.tiers()
    store = await open_store(cluster.url)
    try:
        await store.redis.set(key, "before")
        old = cluster.primary_of(key)
        replica = cluster.replicas_of(old)[0]
        with replica.client() as client:
            client.execute_command("CLUSTER", "FAILOVER")
        deadline = time.monotonic() + 30
        while cluster.primary_of(key) is not replica or not cluster.replicas_of(replica):
            assert time.monotonic() < deadline, "the manual failover did not complete"
            await asyncio.sleep(0.05)
        stale = store.redis.get_node_from_key(key)
        assert isinstance(store.redis, RedisCluster)
        assert stale is not None
        assert int(stale.port) == old.port, "the client has not looked at the cluster since"

        async def change(pipe: Pipeline) -> bytes | None:
            seen: bytes | None = await pipe.get(key)
            begin(pipe)
            pipe.set(key, "after")
            return seen

        assert await store.atomically(change, key) == b"before"
        moved = store.redis.get_node_from_key(key)
        assert moved is not None
        assert int(moved.port) == replica.port
        assert await store.redis.get(key) == b"after"
        with replica.client() as client:
            assert client.get(key) == b"after"
    finally:
        await store.close()
