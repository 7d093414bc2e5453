"""Client addresses behind trusted proxies: the header walk, the setting, and every feature that uses an address."""

from __future__ import annotations

from collections.abc import AsyncIterator
from ipaddress import ip_network
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from supportgate.app import create_app
from supportgate.demo.articles import ARTICLES
from supportgate.demo.seed import seed
from supportgate.errors import SettingsError
from supportgate.http.client import forwarded_client
from supportgate.services import Services
from supportgate.settings import Network, Settings
from tests.conftest import NO_DNS, FakeClock
from tests.gate_helpers import NEWS_ORIGIN, decided, make_world, set_policy, view
from tests.peers import AtPeer

Client = AsyncTestClient[AtPeer]
TRUSTED = (ip_network("10.0.0.0/8"), ip_network("fd00::/8"))
PROXY = "10.0.0.2"
OUTSIDER = "203.0.113.50"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def headers(**values: str) -> list[tuple[bytes, bytes]]:
    """ASGI headers from keyword arguments (``x_forwarded_for`` → ``x-forwarded-for``)."""
    return [(name.replace("_", "-").encode(), value.encode()) for name, value in values.items()]


@pytest.mark.parametrize(
    ("peer", "sent", "client"),
    [
        (PROXY, headers(x_forwarded_for="198.51.100.7"), "198.51.100.7"),
        (PROXY, headers(x_forwarded_for="198.51.100.7, 10.9.9.9"), "198.51.100.7"),
        (PROXY, headers(x_forwarded_for="1.1.1.1, 6.6.6.6, 198.51.100.7"), "198.51.100.7"),
        (PROXY, [(b"x-forwarded-for", b"6.6.6.6"), (b"x-forwarded-for", b"198.51.100.7")], "198.51.100.7"),
        (PROXY, headers(x_forwarded_for="198.51.100.7:51234"), "198.51.100.7"),
        (PROXY, headers(x_forwarded_for="2001:db8::7"), "2001:db8::7"),
        (PROXY, headers(x_forwarded_for="[2001:db8::7]:443"), "2001:db8::7"),
        (PROXY, headers(x_forwarded_for="10.1.1.1, 10.9.9.9"), "10.1.1.1"),
        (PROXY, headers(forwarded="for=198.51.100.7"), "198.51.100.7"),
        (PROXY, headers(forwarded='for="198.51.100.7:4711";proto=https;by=10.0.0.2'), "198.51.100.7"),
        (PROXY, headers(forwarded='for="[2001:db8:cafe::17]:4711", For=10.0.0.9'), "2001:db8:cafe::17"),
        (PROXY, headers(forwarded='for=6.6.6.6, host="a,b";for=198.51.100.7'), "198.51.100.7"),
        (PROXY, [(b"forwarded", b'for="6.6.6.6'), (b"forwarded", b"for=198.51.100.7")], "198.51.100.7"),
        ("fd00::1", headers(x_forwarded_for="198.51.100.7"), "198.51.100.7"),
        ("::ffff:10.0.0.2", headers(x_forwarded_for="198.51.100.7"), "198.51.100.7"),
    ],
)
def test_a_trusted_proxy_names_the_right_most_untrusted_hop(
    peer: str, sent: list[tuple[bytes, bytes]], client: str
) -> None:
    """From a trusted peer the client is the right-most hop no trusted proxy is at, whatever stands left of it."""
    assert forwarded_client(peer, sent, TRUSTED) == client


@pytest.mark.parametrize(
    ("sent", "client"),
    [
        (headers(forwarded="for=unknown"), PROXY),
        (headers(forwarded='for=6.6.6.6, for="_hidden"'), PROXY),
        (headers(forwarded='for=6.6.6.6, for="_hidden", for=10.0.0.3'), "10.0.0.3"),
        (headers(forwarded="for=198.51.100.7:4711"), PROXY),
        (headers(forwarded="for=2001:db8::7"), PROXY),
        (headers(forwarded="proto=https"), PROXY),
        (headers(forwarded="for=6.6.6.6;for=7.7.7.7"), PROXY),
        (headers(forwarded='for="198.51.100.7'), PROXY),
        (headers(x_forwarded_for="6.6.6.6, unknown"), PROXY),
        (headers(x_forwarded_for="6.6.6.6, not an address, 10.0.0.3"), "10.0.0.3"),
        (headers(x_forwarded_for="6.6.6.6,,"), PROXY),
        (headers(x_forwarded_for="198.51.100.7", forwarded="for=6.6.6.6"), PROXY),
    ],
)
def test_a_bad_hop_ends_the_walk_at_the_last_good_address(sent: list[tuple[bytes, bytes]], client: str) -> None:
    """A malformed, hidden or missing for= (or two headers that disagree) leaves the last address vouched for."""
    assert forwarded_client(PROXY, sent, TRUSTED) == client


@pytest.mark.parametrize(
    ("peer", "trusted", "client"),
    [
        (OUTSIDER, TRUSTED, OUTSIDER),
        (PROXY, (), PROXY),
        ("testclient", TRUSTED, "testclient"),
        ("", TRUSTED, "unknown"),
        ("::ffff:203.0.113.50", TRUSTED, OUTSIDER),
    ],
)
def test_forwarding_headers_count_only_from_a_trusted_peer(
    peer: str, trusted: tuple[Network, ...], client: str
) -> None:
    """From a peer outside the trusted ranges (or with none set) the peer is the client and its headers are ignored."""
    sent = headers(x_forwarded_for="198.51.100.7", forwarded="for=198.51.100.7")
    assert forwarded_client(peer, sent, trusted) == client


def test_trusted_proxies_are_read_from_the_environment() -> None:
    """SUPPORTGATE_TRUSTED_PROXIES takes comma-separated ranges and single addresses, IPv4 and IPv6."""
    settings = Settings.from_env({"SUPPORTGATE_TRUSTED_PROXIES": " 10.0.0.0/8, 192.168.1.7 ,fd00::/8"})
    assert settings.trusted_proxies == (
        ip_network("10.0.0.0/8"),
        ip_network("192.168.1.7/32"),
        ip_network("fd00::/8"),
    )
    assert Settings.from_env({}).trusted_proxies == ()


@pytest.mark.parametrize("value", ["10.0.0.0/33", "10.0.0.0/8, proxy.internal", "fd00::/129"])
def test_a_bad_trusted_range_names_the_variable(value: str) -> None:
    """A value that is no IP range stops the settings with a message naming the variable and the value."""
    with pytest.raises(SettingsError, match=r"SUPPORTGATE_TRUSTED_PROXIES holds '[^']+', which is not an IP range"):
        Settings.from_env({"SUPPORTGATE_TRUSTED_PROXIES": value})


@pytest.fixture
def settings(store_url: str, tmp_path: Path) -> Settings:
    """Settings that trust the proxies in 10.0.0.0/8 and fd00::/8."""
    return Settings(redis_url=store_url, data_dir=tmp_path / "data", trusted_proxies=TRUSTED, dns_resolver=NO_DNS)


@pytest.fixture
def peer(app: Litestar) -> AtPeer:
    """The app as reached from the proxy at 10.0.0.2; a test may set another ``address``."""
    return AtPeer(app, PROXY)


@pytest.fixture
async def client(peer: AtPeer) -> AsyncIterator[Client]:
    """A client whose requests arrive from ``peer``."""
    async with AsyncTestClient(peer) as test_client:
        yield test_client


async def request_code(client: Client, email: str, forwarded_for: str) -> int:
    """The status of a code request for ``email`` that the proxy forwarded for ``forwarded_for``."""
    answer = await client.post(
        "/v1/auth/code/request", json={"email": email}, headers={"X-Forwarded-For": forwarded_for}
    )
    return answer.status_code


async def test_readers_behind_a_trusted_proxy_have_their_own_code_budget(client: Client) -> None:
    """Behind a trusted proxy one reader using up the per-network budget leaves the next reader theirs."""
    for n in range(20):
        assert await request_code(client, f"r{n}@example.com", "198.51.100.7") == 202
    assert await request_code(client, "r99@example.com", "198.51.100.7") == 429
    assert await request_code(client, "r99@example.com", "198.51.100.8") == 202


async def test_spoofed_left_most_entries_do_not_buy_a_new_budget(client: Client) -> None:
    """A client writing a new X-Forwarded-For each time is still known by the hop the proxy added."""
    for n in range(20):
        assert await request_code(client, f"r{n}@example.com", f"192.0.2.{n}, 198.51.100.7") == 202
    assert await request_code(client, "r99@example.com", "192.0.2.99, 198.51.100.7") == 429


async def test_an_untrusted_peer_cannot_forward(client: Client, peer: AtPeer) -> None:
    """A direct connection from outside the trusted ranges is its own client, whatever headers it sends."""
    peer.address = OUTSIDER
    for n in range(20):
        assert await request_code(client, f"r{n}@example.com", f"198.51.100.{n}") == 202
    assert await request_code(client, "r99@example.com", "198.51.100.99") == 429


async def test_verifications_are_limited_per_forwarded_client(client: Client) -> None:
    """The per-network verification limit counts the forwarded client, not the proxy."""

    async def verify(n: int, **sent: str) -> int:
        wrong = {"email": f"n{n}@example.com", "code": "000000", "device": "x"}
        return (await client.post("/v1/auth/code/verify", json=wrong, headers=sent)).status_code

    assert [await verify(n, **{"X-Forwarded-For": "198.51.100.7"}) for n in range(30)] == [400] * 30
    assert await verify(30, **{"X-Forwarded-For": "198.51.100.7"}) == 429
    assert await verify(31, Forwarded="for=198.51.100.8") == 400


async def test_activations_are_limited_per_forwarded_client(client: Client) -> None:
    """The activation limit counts each forwarded client on its own."""
    body = {"code": "AAAA-AAAA-AAAA-AAAA", "device": "x"}
    for _ in range(20):
        await client.post("/v1/auth/activate", json=body, headers={"X-Forwarded-For": "198.51.100.7"})
    limited = await client.post("/v1/auth/activate", json=body, headers={"X-Forwarded-For": "198.51.100.7"})
    assert limited.status_code == 429
    other = await client.post("/v1/auth/activate", json=body, headers={"X-Forwarded-For": "198.51.100.8"})
    assert other.status_code == 400


async def test_crawler_ranges_see_the_forwarded_client(
    client: Client, peer: AtPeer, services: Services, clock: FakeClock
) -> None:
    """A browser call through a trusted proxy is ranged by the forwarded client; a direct one by its peer."""
    await make_world(services)
    await set_policy(services, clock, crawlers={"user_agents": ["Googlebot"], "ip_ranges": ["66.249.64.0/19"]})
    crawler = {"User-Agent": GOOGLEBOT, "X-Forwarded-For": "66.249.66.1"}
    assert (await decided(client, view(), headers=crawler))["reason"] == "crawler"
    spoofed = {"User-Agent": GOOGLEBOT, "X-Forwarded-For": "66.249.66.1, 203.0.113.9"}
    assert (await decided(client, view(), headers=spoofed))["reason"] == "adblock"
    peer.address = OUTSIDER
    assert (await decided(client, view(), headers=crawler))["reason"] == "adblock"
    peer.address = "66.249.66.1"
    assert (await decided(client, view(), headers={"User-Agent": GOOGLEBOT}))["reason"] == "crawler"


async def test_reports_are_limited_per_forwarded_client(client: Client, services: Services) -> None:
    """Ten false-positive reports an hour per forwarded client and site; the next reader behind the proxy may report."""
    await make_world(services)
    report = {"signals": {"control": True}, "path": "/article"}

    async def send(forwarded_for: str) -> int:
        sent = {"Origin": NEWS_ORIGIN, "X-Forwarded-For": forwarded_for}
        return (await client.post("/v1/sites/news/reports", json=report, headers=sent)).status_code

    assert [await send("198.51.100.7") for _ in range(10)] == [202] * 10
    assert await send("198.51.100.7") == 429
    assert await send("198.51.100.8") == 202


async def test_the_demo_page_decides_for_the_forwarded_reader(
    settings: Settings, clock: FakeClock, services: Services
) -> None:
    """The demo's server-side page hands decide the reader the trusted proxy forwarded for, as crawler ranges need."""
    await seed(services, support_url="https://news.example/support")
    await set_policy(services, clock, "demo", crawlers={"user_agents": ["Googlebot"], "ip_ranges": ["66.249.64.0/19"]})
    async with AsyncTestClient(AtPeer(create_app(settings, clock=clock, demo=True), PROXY)) as demo:
        page = f"/demo/server/{ARTICLES[0].slug}"
        sent = {"User-Agent": GOOGLEBOT, "Cookie": "sg_adblock=blocked"}
        crawled = await demo.get(page, headers={**sent, "X-Forwarded-For": "66.249.66.1"})
        walled = await demo.get(page, headers={**sent, "X-Forwarded-For": "203.0.113.9"})
    assert 'data-sg-reason="crawler"' in crawled.text
    assert 'data-sg-reason="crawler"' not in walled.text
