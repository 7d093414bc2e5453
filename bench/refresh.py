"""Refresh round trips per second through ``SessionService.refresh`` against an embedded store.

Run with ``uv run python bench/refresh.py [--seconds N] [--chains N]``. It starts a private
store in a temporary directory as the CLI would (unix socket, AOF on), signs one supporter in,
and refreshes: first one chain of tokens, each refresh waiting for the last (what one device
does), then ``--chains`` sessions refreshing side by side. Each refresh reads the supporter,
rotates the token in one optimistic transaction, waits for the AOF where the server can say
so, and signs an access token. A bare ``PING`` round trip is the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from supportgate.catalog.audit import AuditLog
from supportgate.catalog.schemas import SupporterIn, TierIn
from supportgate.catalog.supporters import SupporterService
from supportgate.catalog.tiers import TierService
from supportgate.clock import utc_now
from supportgate.readers.sessions import SessionService
from supportgate.store import EmbeddedStore, Store, connect
from supportgate.tokens.jwt import Tokens
from supportgate.tokens.sealing import MasterKey
from supportgate.tokens.signing_keys import SigningKeys
from supportgate.tokens.vault import Vault

ISSUER = "https://gate.example"


async def chains_per_second(step: Callable[[int], Awaitable[None]], chains: int, seconds: float) -> float:
    """Calls of ``step`` completed a second when ``chains`` loops of it run side by side."""
    done = [0] * chains
    deadline = time.perf_counter() + seconds

    async def loop(chain: int) -> None:
        while time.perf_counter() < deadline:
            await step(chain)
            done[chain] += 1

    for chain in range(chains):  # warm up: connections opened, keys loaded
        await step(chain)
    start = time.perf_counter()
    await asyncio.gather(*(loop(chain) for chain in range(chains)))
    return sum(done) / (time.perf_counter() - start)


async def measure(url: str, seconds: float, chains: int) -> list[tuple[str, int, float]]:
    """The table's rows: what was measured, how many ran side by side, and how many a second."""
    store = Store(connect(url))
    try:
        audit = AuditLog(store)
        supporters = SupporterService(store, audit, utc_now)
        await TierService(store, audit, utc_now).create(
            TierIn(id="supporter", name="Supporter", entitlements=["adblock_ok"], max_devices=100), actor="bench"
        )
        supporter = await supporters.create(SupporterIn(email="bench@example.com", tier="supporter"), actor="bench")
        keys = SigningKeys(Vault(store, MasterKey(secrets.token_bytes(32))), utc_now)
        await keys.ensure()
        sessions = SessionService(store, Tokens(keys, utc_now), supporters, utc_now, issuer=ISSUER)
        tokens = [
            (await sessions.start(supporter_id=supporter.id, max_devices=100, device=f"bench {n}")).refresh_token
            for n in range(chains)
        ]

        async def ping(_: int) -> None:
            await store.redis.ping()

        async def refresh(chain: int) -> None:
            tokens[chain] = (await sessions.refresh(tokens[chain])).refresh_token

        return [
            ("PING (baseline)", 1, await chains_per_second(ping, 1, seconds)),
            ("refresh", 1, await chains_per_second(refresh, 1, seconds)),
            ("PING (baseline)", chains, await chains_per_second(ping, chains, seconds)),
            ("refresh", chains, await chains_per_second(refresh, chains, seconds)),
        ]
    finally:
        await store.close()


def main() -> None:
    """Start the store, measure, and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time spent on each row")
    parser.add_argument("--chains", type=int, default=16, help="sessions refreshing side by side")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sg-bench-") as data, EmbeddedStore(Path(data)) as server:
        rows = asyncio.run(measure(server.url, args.seconds, args.chains))
    print(f"{'round trip':<18} {'chains':>6} {'per second':>12} {'ms each':>8}")
    for name, chains, rate in rows:
        print(f"{name:<18} {chains:>6} {rate:>12,.0f} {1000 * chains / rate:>8.2f}")


if __name__ == "__main__":
    main()
