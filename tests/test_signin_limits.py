"""Sign-in limits that a stranger cannot turn against a supporter: per address and network, a flood ceiling, guesses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis
from litestar import Litestar
from litestar.testing import AsyncTestClient

from supportgate.catalog.schemas import SupporterIn, TierIn
from supportgate.readers.codes import REQUESTS_PER_ADDRESS, REQUESTS_PER_ADDRESS_AND_IP, VERIFIES_PER_ADDRESS_ELSEWHERE
from supportgate.services import Services
from supportgate.settings import Settings
from tests.conftest import FakeClock
from tests.peers import AtPeer
from tests.readers_helpers import emailed_code, mails_to

Client = AsyncTestClient[AtPeer]
OWNER = "owner@example.com"
HOME = "192.0.2.10"
STRANGER = "198.51.100.66"


@pytest.fixture
def outbox(settings: Settings) -> Path:
    return settings.data_dir / "outbox"


@pytest.fixture
def peer(app: Litestar) -> AtPeer:
    """The app as reached from the owner's home network; a test may set another ``address``."""
    return AtPeer(app, HOME)


@pytest.fixture
async def client(peer: AtPeer) -> AsyncIterator[Client]:
    """A client whose requests arrive from ``peer``."""
    async with AsyncTestClient(peer) as test_client:
        yield test_client


@pytest.fixture
async def owner(client: Client, services: Services) -> None:  # noqa: ARG001 - the app starts first
    """OWNER is an active supporter."""
    tier = TierIn(id="supporter", name="Supporter", entitlements=["adblock_ok"], max_devices=5)
    await services.tiers.create(tier, actor="tests")
    await services.supporters.create(SupporterIn(email=OWNER, tier="supporter"), actor="tests")


async def request_code(client: Client, peer: AtPeer, address: str) -> int:
    """The status of a code request for OWNER from ``address``."""
    peer.address = address
    return (await client.post("/v1/auth/code/request", json={"email": OWNER})).status_code


async def verify(client: Client, peer: AtPeer, address: str, code: str) -> tuple[int, str]:
    """The status and detail of verifying ``code`` for OWNER from ``address``."""
    peer.address = address
    answer = await client.post("/v1/auth/code/verify", json={"email": OWNER, "code": code, "device": "x"})
    return answer.status_code, str(answer.json().get("detail", ""))


@pytest.mark.usefixtures("owner")
async def test_a_strangers_requests_do_not_spend_the_owners_budget(client: Client, peer: AtPeer, outbox: Path) -> None:
    """A stranger who uses up the code requests for the owner's address from their network leaves the owner theirs."""
    per_network = REQUESTS_PER_ADDRESS_AND_IP.limit
    assert [await request_code(client, peer, STRANGER) for _ in range(per_network)] == [202] * per_network
    assert await request_code(client, peer, STRANGER) == 429
    assert await request_code(client, peer, HOME) == 202
    code = await emailed_code(outbox, OWNER, nth=per_network + 1)
    assert (await verify(client, peer, HOME, code))[0] == 200


@pytest.mark.usefixtures("owner")
async def test_the_per_address_ceiling_stops_a_mail_flood(
    client: Client, peer: AtPeer, outbox: Path, clock: FakeClock
) -> None:
    """Requests for one address from many networks stop at the hourly ceiling, and no more mail goes out."""
    networks = [f"198.51.100.{n}" for n in range(REQUESTS_PER_ADDRESS.limit)]
    statuses = [await request_code(client, peer, network) for network in networks]
    assert statuses == [202] * REQUESTS_PER_ADDRESS.limit
    peer.address = "203.0.113.1"
    flood = await client.post("/v1/auth/code/request", json={"email": OWNER})
    assert flood.status_code == 429
    assert "sign-in codes for this address:" in flood.json()["detail"]
    assert len(await mails_to(outbox, OWNER, count=REQUESTS_PER_ADDRESS.limit)) == REQUESTS_PER_ADDRESS.limit
    clock.advance(hours=1)
    assert await request_code(client, peer, HOME) == 202


@pytest.mark.usefixtures("owner")
async def test_guesses_from_elsewhere_are_limited_per_address(client: Client, peer: AtPeer, outbox: Path) -> None:
    """Guesses at the owner's code from networks that did not ask for it stop before using it up; the owner signs in."""
    assert await request_code(client, peer, HOME) == 202
    code = await emailed_code(outbox, OWNER)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    guesses = [
        await verify(client, peer, f"198.51.100.{n}", wrong) for n in range(VERIFIES_PER_ADDRESS_ELSEWHERE.limit)
    ]
    assert [status for status, _ in guesses] == [400] * VERIFIES_PER_ADDRESS_ELSEWHERE.limit
    status, detail = await verify(client, peer, "198.51.100.99", wrong)
    assert status == 429
    assert "did not ask for its code" in detail
    assert (await verify(client, peer, HOME, code))[0] == 200


@pytest.mark.usefixtures("owner")
async def test_an_owner_held_back_elsewhere_asks_from_where_they_are(
    client: Client, peer: AtPeer, outbox: Path
) -> None:
    """On a new network, held back by strangers' guesses, the owner asks for a code from there and signs in."""
    for n in range(VERIFIES_PER_ADDRESS_ELSEWHERE.limit):
        await verify(client, peer, f"198.51.100.{n}", "000000")
    mobile = "2001:db8:77::1"
    assert (await verify(client, peer, mobile, "000000"))[0] == 429
    assert await request_code(client, peer, mobile) == 202
    code = await emailed_code(outbox, OWNER)
    assert (await verify(client, peer, mobile, code))[0] == 200


@pytest.mark.usefixtures("owner")
async def test_a_network_that_asked_last_hour_still_counts_as_asking(
    client: Client, peer: AtPeer, outbox: Path, clock: FakeClock
) -> None:
    """A code asked for just before the hour turns is verified from that network after it, past strangers' guesses."""
    clock.now = clock.now.replace(minute=55)
    assert await request_code(client, peer, HOME) == 202
    code = await emailed_code(outbox, OWNER)
    clock.advance(minutes=10)
    for n in range(VERIFIES_PER_ADDRESS_ELSEWHERE.limit + 1):
        await verify(client, peer, f"198.51.100.{n}", "000000")
    assert (await verify(client, peer, HOME, code))[0] == 200


@pytest.mark.usefixtures("owner")
async def test_a_code_request_costs_the_store_the_same_for_anyone(client: Client, peer: AtPeer, store_url: str) -> None:
    """With the new limits, asking for a supporter's code and for a stranger's sends the store the same commands."""

    async def commands(email: str) -> dict[str, int]:
        with redis.Redis.from_url(store_url) as raw:
            raw.config_resetstat()
            assert (await client.post("/v1/auth/code/request", json={"email": email})).status_code == 202
            stats = raw.info("commandstats")
        return {name: int(stat["calls"]) for name, stat in stats.items() if name != "cmdstat_config"}

    # Only the request's own work is counted: the mail consumer's reads run on their own clock.
    client.blocking_portal.call(peer.app.state.services.mail.stop)
    peer.address = STRANGER
    await commands("first@example.com")  # loads the code secret once per process
    assert await commands(OWNER) == await commands("nobody@example.com")
