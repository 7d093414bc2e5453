"""Crawlers that are who they say: forward-confirmed reverse DNS against a real DNS server on loopback."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import dns.reversename
import msgspec
import pytest
from dnslib import AAAA, PTR, QTYPE, RCODE, RR, A, DNSRecord
from dnslib.server import BaseResolver, DNSHandler, DNSLogger, DNSServer
from litestar.testing import AsyncTestClient

from supportgate.app import create_app
from supportgate.catalog.policy import Crawlers
from supportgate.errors import SettingsError
from supportgate.gate.crawlers import CRAWLER_DOMAINS, WAIT_BUDGET, crawler_domains
from supportgate.services import Services
from supportgate.settings import Settings
from tests.conftest import FakeClock
from tests.gate_helpers import make_world, set_policy, view
from tests.peers import AtPeer

Client = AsyncTestClient[AtPeer]
PROXY = "10.0.0.2"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
BINGBOT = "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"
REAL = "66.249.66.1"
REAL_NAME = "crawl-66-249-66-1.googlebot.com"


class Zone(BaseResolver):  # type: ignore[misc] - dnslib ships no types
    """A DNS zone the tests fill: PTR, A and AAAA records; every question asked is noted."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], list[str]] = {}
        self.asked: list[tuple[str, str]] = []
        self.failing: set[str] = set()
        self._lock = threading.Lock()

    def ptr(self, address: str, name: str) -> None:
        """Give ``address`` the reverse name ``name``."""
        self.records.setdefault((dns.reversename.from_address(address).to_text(), "PTR"), []).append(name + ".")

    def forward(self, name: str, *addresses: str) -> None:
        """Give ``name`` A or AAAA records for ``addresses``."""
        for address in addresses:
            kind = "AAAA" if ":" in address else "A"
            self.records.setdefault((name + ".", kind), []).append(address)

    def verified(self, address: str, name: str) -> None:
        """Give ``address`` the reverse name ``name``, and ``name`` the address back: records a real crawler has."""
        self.ptr(address, name)
        self.forward(name, address)

    def questions(self) -> int:
        """How many questions the server was asked so far."""
        with self._lock:
            return len(self.asked)

    def resolve(self, request: DNSRecord, handler: DNSHandler) -> DNSRecord:  # noqa: ARG002 - dnslib's signature
        """The records held for the question; NXDOMAIN for a name with none of any kind."""
        name, kind = str(request.q.qname).lower(), QTYPE[request.q.qtype]
        with self._lock:
            self.asked.append((name, kind))
        reply = request.reply()
        if name in self.failing:
            reply.header.rcode = RCODE.SERVFAIL
        elif not any(held == name for held, _ in self.records):
            reply.header.rcode = RCODE.NXDOMAIN
        rdata = {"PTR": PTR, "A": A, "AAAA": AAAA}
        for value in self.records.get((name, kind), []):
            reply.add_answer(RR(name, getattr(QTYPE, kind), rdata=rdata[kind](value), ttl=60))
        return reply


@pytest.fixture
def zone() -> Iterator[tuple[Zone, tuple[str, int]]]:
    """A real DNS server on a loopback port, over UDP and TCP, answering from a :class:`Zone`."""
    records = Zone()
    quiet = DNSLogger("-request,-reply,-truncated,-error")
    for _ in range(20):  # the UDP port's number may be taken for TCP: try another
        udp = DNSServer(records, address="127.0.0.1", port=0, logger=quiet)
        port = udp.server.server_address[1]
        try:
            tcp = DNSServer(records, address="127.0.0.1", port=port, tcp=True, logger=quiet)
            break
        except OSError:
            udp.server.server_close()
    else:
        pytest.fail("no loopback port was free for both UDP and TCP")
    udp.start_thread()
    tcp.start_thread()
    yield records, ("127.0.0.1", port)
    udp.stop()
    tcp.stop()
    udp.server.server_close()
    tcp.server.server_close()


@pytest.fixture
def silent_server() -> Iterator[tuple[str, int]]:
    """A DNS server that never answers: a bound UDP port nobody reads."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        yield sink.getsockname()


def gate_client(
    store_url: str,
    tmp_path: Path,
    clock: FakeClock,
    resolver: tuple[str, int],
    *,
    deadline: float = 1.0,
    dns_wait: float = WAIT_BUDGET,
) -> Client:
    """A client behind the proxy at 10.0.0.2 (trusted), of an app that asks ``resolver`` about crawlers."""
    settings = Settings(
        redis_url=store_url,
        data_dir=tmp_path / "data",
        trusted_proxies=(ip_network("10.0.0.0/8"),),
        dns_resolver=resolver,
        decide_deadline_seconds=deadline,
        dns_wait_seconds=dns_wait,
    )
    return AsyncTestClient(AtPeer(create_app(settings, clock=clock), PROXY))


@pytest.fixture
async def client(
    zone: tuple[Zone, tuple[str, int]], store_url: str, tmp_path: Path, clock: FakeClock, services: Services
) -> AsyncIterator[Client]:
    """A client of an app whose crawler checks ask ``zone``'s server; sites news and blog exist.

    Views wait up to 10 s for the DNS answer, so that a loaded machine's slow answer is not taken
    for a late one: the tests of the wait use a server that never answers.
    """
    async with gate_client(store_url, tmp_path, clock, zone[1], dns_wait=10.0) as test_client:
        await make_world(services)
        yield test_client


async def reason(client: Client, forwarded_for: str, user_agent: str = GOOGLEBOT, **fields: Any) -> str:
    """The reason of a blocked reader's view, forwarded by the proxy for ``forwarded_for``."""
    headers = {"Origin": "https://news.example", "User-Agent": user_agent, "X-Forwarded-For": forwarded_for}
    answer = await client.post("/v1/decide", json=view(**fields), headers=headers)
    assert answer.status_code == 200, answer.text
    found: str = answer.json()["reason"]
    return found


async def test_a_real_googlebot_is_a_crawler(client: Client, zone: tuple[Zone, tuple[str, int]]) -> None:
    """An address whose PTR is under googlebot.com and whose name resolves back to it is a crawler."""
    records, _ = zone
    records.verified(REAL, REAL_NAME)
    assert await reason(client, REAL) == "crawler"
    assert (dns.reversename.from_address(REAL).to_text(), "PTR") in records.asked
    assert (REAL_NAME + ".", "A") in records.asked


async def test_a_real_googlebot_over_ipv6_is_confirmed_by_aaaa(
    client: Client, zone: tuple[Zone, tuple[str, int]]
) -> None:
    """An IPv6 address is confirmed by its name's AAAA records."""
    records, _ = zone
    address, name = "2001:4860:4801:10::1", "crawl-2001-4860-4801-10--1.googlebot.com"
    records.verified(address, name)
    assert await reason(client, address) == "crawler"
    assert (name + ".", "AAAA") in records.asked


@pytest.mark.parametrize(
    ("ptr", "forward"),
    [
        ("evil.example.com", "203.0.113.7"),
        ("crawl-x.googlebot.com.evil.com", "203.0.113.7"),
        ("evilgooglebot.com", "203.0.113.7"),
        ("crawl-66-249-66-1.googlebot.com", "66.249.66.1"),
        ("crawl-66-249-66-1.googlebot.com", None),
        (None, None),
    ],
    ids=[
        "foreign-name",
        "crawler-name-inside-a-foreign-one",
        "lookalike-domain",
        "forward-elsewhere",
        "no-forward",
        "nxdomain",
    ],
)
async def test_a_spoofed_googlebot_gets_the_reader_rules(
    client: Client, zone: tuple[Zone, tuple[str, int]], ptr: str | None, forward: str | None
) -> None:
    """A foreign or look-alike PTR, a PTR whose name resolves elsewhere or nowhere, or no PTR: walled as a reader."""
    records, _ = zone
    spoofer = "203.0.113.7"
    if ptr is not None:
        records.ptr(spoofer, ptr)
    if forward is not None:
        records.forward(ptr or "", forward)
    assert await reason(client, spoofer) == "adblock"
    assert await reason(client, spoofer, adblock="clear") == "no_adblock"


async def test_a_googlebot_name_does_not_make_a_bingbot(client: Client, zone: tuple[Zone, tuple[str, int]]) -> None:
    """A confirmed name counts only for its own crawler: a Googlebot address claiming to be Bingbot is walled."""
    records, _ = zone
    records.verified(REAL, REAL_NAME)
    assert await reason(client, REAL, BINGBOT) == "adblock"
    assert await reason(client, REAL) == "crawler"
    bing, bing_name = "157.55.39.1", "msnbot-157-55-39-1.search.msn.com"
    records.verified(bing, bing_name)
    assert await reason(client, bing, BINGBOT) == "crawler"


async def test_the_outcome_is_cached_per_address_for_its_ttl(
    client: Client, zone: tuple[Zone, tuple[str, int]], clock: FakeClock
) -> None:
    """Once looked up, an address is decided without a DNS question: verified for a day, refused for an hour."""
    records, _ = zone
    records.verified(REAL, REAL_NAME)
    spoofer = "203.0.113.8"
    records.ptr(spoofer, "evil.example.com")
    assert await reason(client, REAL) == "crawler"
    assert await reason(client, spoofer) == "adblock"
    asked = records.questions()
    assert asked == 3  # PTR and A of the real one; PTR of the spoofer, whose foreign name is not resolved
    for _ in range(5):
        assert await reason(client, REAL) == "crawler"
        assert await reason(client, spoofer) == "adblock"
    assert records.questions() == asked
    clock.advance(hours=1, seconds=1)
    assert await reason(client, spoofer) == "adblock"
    assert await reason(client, REAL) == "crawler"
    assert records.questions() == asked + 1
    clock.advance(days=1)
    assert await reason(client, REAL) == "crawler"
    assert records.questions() == asked + 3


async def test_a_dns_failure_refuses_the_claim_for_a_minute(
    client: Client, zone: tuple[Zone, tuple[str, int]], clock: FakeClock
) -> None:
    """A server failure (SERVFAIL) fails no view: the claim is refused, and asked about again a minute later."""
    records, _ = zone
    address = "66.249.66.2"
    records.failing.add(dns.reversename.from_address(address).to_text())
    assert await reason(client, address) == "adblock"
    asked = records.questions()
    assert asked >= 1
    assert await reason(client, address, adblock="clear") == "no_adblock"
    assert records.questions() == asked
    clock.advance(minutes=1, seconds=1)
    records.failing.clear()
    name = "crawl-66-249-66-2.googlebot.com"
    records.verified(address, name)
    assert await reason(client, address) == "crawler"
    assert records.questions() == asked + 2


async def test_views_from_one_address_share_one_lookup(client: Client, zone: tuple[Zone, tuple[str, int]]) -> None:
    """Views from an address arriving together ask the DNS server once between them."""
    import asyncio  # noqa: PLC0415 - only this test gathers views

    records, _ = zone
    records.verified(REAL, REAL_NAME)
    reasons = await asyncio.gather(*(reason(client, REAL) for _ in range(8)))
    assert reasons == ["crawler"] * 8
    assert records.questions() == 2


async def test_a_dns_server_that_never_answers_leaves_the_view_to_the_reader_rules(
    silent_server: tuple[str, int], store_url: str, tmp_path: Path, clock: FakeClock, services: Services
) -> None:
    """With a DNS server that never answers, the claimed crawler's view is answered within the budget, as a reader's."""
    async with gate_client(store_url, tmp_path, clock, silent_server) as client:
        await make_world(services)
        assert await reason(client, "198.51.100.1", "Mozilla/5.0 Firefox/140") == "adblock"  # the site is loaded
        for _ in range(2):  # the first view starts the lookup; the second waits on the same one
            started = time.monotonic()
            assert await reason(client, REAL) == "adblock"
            # Within the DNS budget (and a loaded machine's slack), not the 2 s the lookup may take.
            assert time.monotonic() - started < WAIT_BUDGET + 1.0


async def test_the_dns_wait_leaves_the_store_its_own_budget(
    silent_server: tuple[str, int], store_url: str, tmp_path: Path, clock: FakeClock, services: Services
) -> None:
    """A page-view deadline shorter than the DNS wait still leaves the meter its store call after the wait."""
    async with gate_client(store_url, tmp_path, clock, silent_server, deadline=WAIT_BUDGET * 0.9) as client:
        await make_world(services)
        await set_policy(services, clock, free_views=3)
        assert await reason(client, "198.51.100.1", "Mozilla/5.0 Firefox/140") == "adblock"  # the site is loaded
        assert await reason(client, REAL, visitor="visitor-0001") == "metered"


async def test_user_agent_trust_is_an_opt_in(
    client: Client, zone: tuple[Zone, tuple[str, int]], services: Services, clock: FakeClock
) -> None:
    """With verify: user_agent a crawler's User-Agent is believed from anywhere, and no DNS question is asked."""
    records, _ = zone
    assert await reason(client, "203.0.113.9") == "adblock"
    await set_policy(services, clock, crawlers={"verify": "user_agent"})
    asked = records.questions()
    assert await reason(client, "203.0.113.10") == "crawler"
    assert await reason(client, "203.0.113.11", BINGBOT) == "crawler"
    assert await reason(client, "203.0.113.12", "Mozilla/5.0 Firefox/140") == "adblock"
    assert records.questions() == asked


async def test_ip_ranges_let_crawlers_through_without_dns(
    client: Client, zone: tuple[Zone, tuple[str, int]], services: Services, clock: FakeClock
) -> None:
    """A claimed crawler from the policy's ranges is let through without DNS; outside them, DNS decides."""
    records, _ = zone
    await set_policy(services, clock, crawlers={"user_agents": ["Googlebot"], "ip_ranges": ["198.51.100.0/24"]})
    assert await reason(client, "198.51.100.20") == "crawler"
    assert records.questions() == 0
    records.verified(REAL, REAL_NAME)
    assert await reason(client, REAL) == "crawler"
    assert await reason(client, "203.0.113.13") == "adblock"
    await set_policy(
        services,
        clock,
        crawlers={"user_agents": ["Googlebot"], "ip_ranges": ["198.51.100.0/24"], "verify": "user_agent"},
    )
    asked = records.questions()
    assert await reason(client, "198.51.100.21") == "crawler"
    assert await reason(client, "203.0.113.14") == "adblock"
    assert records.questions() == asked


async def test_a_site_key_caller_without_client_ip_is_no_crawler(
    client: Client, zone: tuple[Zone, tuple[str, int]], services: Services
) -> None:
    """A server-side caller that names no client address cannot have its crawler checked: the reader rules apply."""
    records, _ = zone
    records.verified(REAL, REAL_NAME)
    key = (await services.api_keys.create("site", name="news2", site="news", actor="tests")).key
    headers = {"Authorization": f"Bearer {key}"}
    body = view(user_agent=GOOGLEBOT)
    assert (await client.post("/v1/decide", json=body, headers=headers)).json()["reason"] == "adblock"
    body = view(user_agent=GOOGLEBOT, client_ip=REAL)
    assert (await client.post("/v1/decide", json=body, headers=headers)).json()["reason"] == "crawler"


async def test_a_bad_verify_value_is_a_400_naming_the_field(client: Client, services: Services) -> None:
    """A policy whose crawlers.verify is neither dns nor user_agent is refused with a problem, and nothing changes."""
    admin = {"Authorization": f"Bearer {(await services.api_keys.create('admin', name='t', actor='tests')).key}"}
    answer = await client.patch(
        "/v1/admin/sites/news", json={"policy": {"crawlers": {"verify": "maybe"}}}, headers=admin
    )
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert "policy.crawlers.verify" in answer.json()["detail"]
    site = (await client.get("/v1/admin/sites/news", headers=admin)).json()
    assert site["policy"]["crawlers"]["verify"] == "dns"
    changed = await client.patch(
        "/v1/admin/sites/news", json={"policy": {"crawlers": {"verify": "user_agent"}}}, headers=admin
    )
    assert changed.json()["policy"]["crawlers"]["verify"] == "user_agent"
    audit = (await client.get("/v1/admin/audit", headers=admin)).json()
    assert audit["items"][0]["after"]["policy"]["crawlers"]["verify"] == "user_agent"


def test_each_default_crawler_has_documented_domains() -> None:
    """Every crawler a new policy names maps to its documented reverse-DNS domains; googleusercontent.com is none."""
    assert crawler_domains("Googlebot") == ("googlebot.com", "google.com")
    assert crawler_domains("Googlebot-Image") == ("googlebot.com", "google.com")
    assert crawler_domains("Bingbot") == ("search.msn.com",)
    assert crawler_domains("DuckDuckBot") == ("duckduckgo.com",)
    assert crawler_domains("Applebot") == ("applebot.apple.com",)
    assert crawler_domains("YandexBot") == ("yandex.ru", "yandex.net", "yandex.com")
    assert crawler_domains("Baiduspider") == ("crawl.baidu.com", "crawl.baidu.jp")
    assert crawler_domains("MyOwnBot") == ()


@pytest.mark.parametrize(
    ("value", "parsed"),
    [("127.0.0.1:5353", ("127.0.0.1", 5353)), ("[::1]:53", ("::1", 53)), ("192.0.2.53", ("192.0.2.53", 53))],
)
def test_the_dns_resolver_setting(value: str, parsed: tuple[str, int]) -> None:
    """SUPPORTGATE_DNS_RESOLVER takes an IP address with an optional port (IPv6 in brackets)."""
    assert Settings.from_env({"SUPPORTGATE_DNS_RESOLVER": value}).dns_resolver == parsed


def test_the_dns_wait_setting() -> None:
    """SUPPORTGATE_DNS_WAIT_MS sets the wait in milliseconds; 150 ms by default."""
    assert Settings.from_env({}).dns_wait_seconds == WAIT_BUDGET
    assert Settings.from_env({"SUPPORTGATE_DNS_WAIT_MS": "400"}).dns_wait_seconds == 0.4


@pytest.mark.parametrize("value", ["dns.example:53", "127.0.0.1:0", "127.0.0.1:99999", "[::1", "::1:53x"])
def test_a_bad_dns_resolver_setting_names_the_variable(value: str) -> None:
    """A resolver that is no IP address and port stops the settings with the variable's name."""
    with pytest.raises(SettingsError, match="SUPPORTGATE_DNS_RESOLVER"):
        Settings.from_env({"SUPPORTGATE_DNS_RESOLVER": value})


def test_the_policy_schema_names_every_crawler_with_domains() -> None:
    """The policy's documented list of crawlers with known DNS domains is the list the check uses."""
    info = msgspec.inspect.type_info(Crawlers)
    assert isinstance(info, msgspec.inspect.StructType)
    field = next(field for field in info.fields if field.name == "user_agents")
    assert isinstance(field.type, msgspec.inspect.Metadata)
    text = (field.type.extra_json_schema or {})["description"].lower()
    assert all(name in text for name in CRAWLER_DOMAINS), text
