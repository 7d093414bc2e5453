"""The gate behind a reverse proxy: ``GET /v1/forward-auth``, and nginx and Caddy with docs/proxy.md's configurations.

The first tests call the endpoint in process. The others start Debian's real ``nginx`` and
``caddy`` as processes on loopback ports, each with the fenced configuration block of
docs/proxy.md (placeholders filled in, nothing else changed but the listen address), in front of
a small backend that serves an article, with the gate served by ``supportgate serve``.
"""

from __future__ import annotations

import email
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.policy import default
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from supportgate.app import create_app
from supportgate.services import Services
from supportgate.settings import Settings
from supportgate.store import EmbeddedStore
from tests.conftest import FakeClock
from tests.gate_helpers import make_world, pass_for, set_policy
from tests.peers import AtPeer
from tests.processes import find_binary, free_port, nginx_conf, start_supportgate, stop, wait_ready
from tests.tokens_helpers import MASTER_MATERIAL

Client = AsyncTestClient[Litestar]
DOC = Path(__file__).resolve().parent.parent / "docs" / "proxy.md"
ARTICLE = "<h1>The article</h1>"
UNTESTED = "the proxy configuration is not tested"


def ask(
    key: str | None = None, site: str | None = "news", uri: str | None = "/article", **headers: str
) -> dict[str, str]:
    """Headers of a forward-auth request as a proxy sends them."""
    sent = dict(headers)
    if key is not None:
        sent["Authorization"] = f"Bearer {key}"
    if site is not None:
        sent["X-Supportgate-Site"] = site
    if uri is not None:
        sent["X-Original-URI"] = uri
    return sent


# ---------------------------------------------------------------------------------------------
# The endpoint, in process


async def test_forward_auth_answers_with_a_status_and_the_decision_headers(
    client: Client, services: Services, clock: FakeClock
) -> None:
    """No blocker: 200 allow; blocked on a hard-wall site: 403 wall; soft: 200 nag; a pass: 200 supporter."""
    world = await make_world(services)
    clear = await client.get("/v1/forward-auth", headers=ask(world.news_key, Cookie="sg_adblock=clear"))
    assert clear.status_code == 200
    assert (clear.headers["supportgate-decision"], clear.headers["supportgate-reason"]) == ("allow", "no_adblock")
    assert clear.headers["cache-control"] == "no-store"
    assert "set-cookie" not in clear.headers
    unknown = await client.get("/v1/forward-auth", headers=ask(world.news_key))
    assert (unknown.status_code, unknown.headers["supportgate-reason"]) == (200, "inconclusive")
    walled = await client.get("/v1/forward-auth", headers=ask(world.news_key, Cookie="a=1; sg_adblock=blocked"))
    assert walled.status_code == 403
    assert (walled.headers["supportgate-decision"], walled.headers["supportgate-reason"]) == ("wall", "adblock")
    assert walled.json()["decision"] == "wall"
    token = await pass_for(services, world.supporter_id)
    supporter = await client.get(
        "/v1/forward-auth", headers=ask(world.news_key, Cookie="sg_adblock=blocked", **{"Supportgate-Pass": token})
    )
    assert (supporter.status_code, supporter.headers["supportgate-reason"]) == (200, "supporter")
    bad_pass = await client.get(
        "/v1/forward-auth", headers=ask(world.news_key, Cookie="sg_adblock=blocked", **{"Supportgate-Pass": "x.y.z"})
    )
    assert (bad_pass.status_code, bad_pass.json()["pass_error"]) == (403, "malformed")
    await set_policy(services, clock, mode="soft", exempt_paths=["/free/*"])
    nag = await client.get("/v1/forward-auth", headers=ask(world.news_key, Cookie="sg_adblock=blocked"))
    assert (nag.status_code, nag.headers["supportgate-decision"]) == (200, "nag")
    exempt = await client.get(
        "/v1/forward-auth",
        headers=ask(world.news_key, uri=None, Cookie="sg_adblock=blocked", **{"X-Forwarded-Uri": "/free/x?y=1"}),
    )
    assert (exempt.status_code, exempt.headers["supportgate-reason"]) == (200, "exempt_path")


async def test_forward_auth_sets_the_meters_visitor_cookie_once(
    client: Client, services: Services, clock: FakeClock
) -> None:
    """A metered reader without ``sg_visitor`` gets one; with it, the meter counts that visitor and sets nothing."""
    world = await make_world(services)
    await set_policy(services, clock, free_views=2)
    first = await client.get(
        "/v1/forward-auth", headers=ask(world.news_key, Cookie="sg_adblock=blocked", **{"X-Forwarded-Proto": "https"})
    )
    assert (first.status_code, first.headers["supportgate-reason"]) == (200, "metered")
    cookie = first.headers["set-cookie"]
    visitor = re.fullmatch(
        r"sg_visitor=([A-Za-z0-9_-]{22}); Path=/; Max-Age=31536000; HttpOnly; SameSite=Lax; Secure", cookie
    )
    assert visitor is not None, cookie
    assert first.json()["meter"]["used"] == 1
    reader = {"Cookie": f"sg_adblock=blocked; sg_visitor={visitor.group(1)}"}
    second = await client.get("/v1/forward-auth", headers=ask(world.news_key, **reader))
    assert (second.status_code, second.json()["meter"]["used"], "set-cookie" in second.headers) == (200, 2, False)
    third = await client.get("/v1/forward-auth", headers=ask(world.news_key, **reader))
    assert (third.status_code, third.headers["supportgate-reason"]) == (403, "adblock")


async def test_the_crawler_rule_sees_the_reader_a_trusted_proxy_forwarded_for(
    store_url: str, tmp_path: Path, services: Services, clock: FakeClock
) -> None:
    """From a trusted proxy, X-Forwarded-For names the reader whose address the crawler rule checks."""
    world = await make_world(services)
    await set_policy(services, clock, crawlers={"user_agents": ["Googlebot"], "ip_ranges": ["66.249.64.0/19"]})
    settings = Settings(redis_url=store_url, data_dir=tmp_path / "data", trusted_proxies=(ip_network("10.0.0.0/8"),))
    crawler = ask(
        world.news_key, Cookie="sg_adblock=blocked", **{"User-Agent": "Mozilla/5.0 (compatible; Googlebot/2.1)"}
    )
    async with AsyncTestClient(AtPeer(create_app(settings, clock=clock), "10.0.0.2")) as proxied:
        from_google = await proxied.get("/v1/forward-auth", headers={**crawler, "X-Forwarded-For": "66.249.66.1"})
        elsewhere = await proxied.get("/v1/forward-auth", headers={**crawler, "X-Forwarded-For": "203.0.113.50"})
    assert (from_google.status_code, from_google.headers["supportgate-reason"]) == (200, "crawler")
    assert (elsewhere.status_code, elsewhere.headers["supportgate-reason"]) == (403, "adblock")


@pytest.mark.parametrize(
    ("headers", "status", "names"),
    [
        (ask(None), 401, "Authorization: Bearer"),
        (ask("sgs_not-a-key"), 401, "not valid"),
        (ask("BLOG", site="news"), 401, "not 'news'"),
        (ask("NEWS", site=None), 400, "X-Supportgate-Site: missing"),
        (ask("NEWS", site="News!"), 400, "X-Supportgate-Site"),
        (ask("NEWS", uri=None), 400, "X-Original-URI (nginx) or X-Forwarded-Uri"),
        (ask("NEWS", uri="article"), 400, "does not start with '/'"),
    ],
)
async def test_bad_input_is_a_problem_naming_it(
    client: Client, services: Services, headers: dict[str, str], status: int, names: str
) -> None:
    """A missing or wrong key is 401 (never 403, which a proxy takes for the wall); bad headers are 400."""
    world = await make_world(services)
    if "Authorization" in headers:
        key = {"Bearer NEWS": world.news_key, "Bearer BLOG": world.blog_key}.get(headers["Authorization"])
        headers = {**headers, "Authorization": f"Bearer {key}"} if key else headers
    answer = await client.get("/v1/forward-auth", headers=headers)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert names in answer.json()["detail"]
    assert "supportgate-decision" not in answer.headers
    assert (await client.post("/v1/forward-auth", headers=headers)).status_code == 405


async def test_a_site_deleted_while_its_key_is_cached_is_a_404(
    client: Client, services: Services, clock: FakeClock
) -> None:
    """docs/proxy.md's 404: the site is gone but its key is still in the cache; once the cache is stale, a 401."""
    world = await make_world(services)
    # A request that stops after the key check: the key is cached for 5 s, the site is not loaded.
    unfinished = await client.get("/v1/forward-auth", headers=ask(world.news_key, uri=None))
    assert unfinished.status_code == 400
    deleted = await client.delete("/v1/admin/sites/news", headers={"Authorization": f"Bearer {world.admin_key}"})
    assert deleted.status_code == 204
    gone = await client.get("/v1/forward-auth", headers=ask(world.news_key, Cookie="sg_adblock=blocked"))
    assert gone.status_code == 404, gone.text
    assert gone.headers["content-type"] == "application/problem+json"
    assert gone.json()["detail"] == "There is no site 'news'."
    assert "supportgate-decision" not in gone.headers
    row = "| 404 | the site was deleted in the last 5 seconds, while its key is still cached | as 400 |"
    assert row in DOC.read_text()
    documented = (await client.get("/schema/openapi.json")).json()["paths"]["/v1/forward-auth"]["get"]
    assert "application/problem+json" in documented["responses"]["404"]["content"]
    assert "deleted in the last 5 seconds, while its key is still cached, is 404" in documented["description"]
    clock.advance(seconds=6)
    revoked = await client.get("/v1/forward-auth", headers=ask(world.news_key, Cookie="sg_adblock=blocked"))
    assert revoked.status_code == 401
    assert revoked.headers["content-type"] == "application/problem+json"


async def test_a_store_failure_lets_the_page_through(
    own_store: EmbeddedStore, own_services: Services, clock: FakeClock
) -> None:
    """Store down: a cached site with a pass, and a key never seen, both answer 200 store_unavailable in time."""
    world = await make_world(own_services)
    token = await pass_for(own_services, world.supporter_id)
    settings = Settings(redis_url=own_store.url, store_timeout_seconds=0.5, master_key=MASTER_MATERIAL)
    async with Client(create_app(settings, clock=clock)) as app:
        reader = ask(world.news_key, Cookie="sg_adblock=blocked", **{"Supportgate-Pass": token})
        assert (await app.get("/v1/forward-auth", headers=reader)).headers["supportgate-reason"] == "supporter"
        own_store.stop()
        started = time.monotonic()
        cached = await app.get("/v1/forward-auth", headers=reader)
        unseen = await app.get("/v1/forward-auth", headers=ask(world.blog_key, site="blog"))
        assert time.monotonic() - started < 2
    for answer in (cached, unseen):
        assert answer.status_code == 200
        assert (answer.headers["supportgate-decision"], answer.headers["supportgate-reason"]) == (
            "allow",
            "store_unavailable",
        )


# ---------------------------------------------------------------------------------------------
# nginx and Caddy in front of a backend, with the gate served over a real port


def doc_block(language: str) -> str:
    """The one fenced block of ``language`` in docs/proxy.md."""
    blocks = re.findall(rf"^```{language}\n(.*?)^```$", DOC.read_text(), re.MULTILINE | re.DOTALL)
    assert len(blocks) == 1, f"docs/proxy.md has {len(blocks)} {language} blocks"
    return str(blocks[0])


@dataclass
class Gate:
    """``supportgate serve`` with a site ``news`` (hard wall) and ``metered`` (2 free views), and a pass for news."""

    url: str
    news_key: str
    metered_key: str
    token: str


@dataclass
class Ports:
    """The loopback ports the proxies listen on, fixed before the sites' origins are stored."""

    nginx: int
    caddy: int


@pytest.fixture(scope="module")
def ports() -> Ports:
    return Ports(nginx=free_port(), caddy=free_port())


def _emailed_code(outbox: Path) -> str:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        for path in outbox.glob("*.eml") if outbox.is_dir() else []:
            message = email.message_from_bytes(path.read_bytes(), policy=default)
            part = message.get_body(preferencelist=("plain",))
            found = re.search(r"\b(\d{6})\b", str(part.get_content()) if part else "")
            if found:
                return found.group(1)
        time.sleep(0.1)
    raise AssertionError("no sign-in code arrived in the outbox")


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory, ports: Ports) -> Iterator[Gate]:
    """The real service on a free port, trusting loopback as its proxy, seeded through the admin API."""
    data_dir = tmp_path_factory.mktemp("gate") / "data"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "SUPPORTGATE_DATA_DIR": str(data_dir),
        "SUPPORTGATE_PUBLIC_URL": url,
        "SUPPORTGATE_TRUSTED_PROXIES": "127.0.0.1/32",
        "SUPPORTGATE_LOG_LEVEL": "WARNING",
    }
    env.pop("SUPPORTGATE_REDIS_URL", None)
    log = data_dir.parent / "serve.log"
    process = start_supportgate("serve", "--port", str(port), "--workers", "1", env=env, log=log)
    try:
        wait_ready(url, process, log)
        made = subprocess.run(
            [sys.executable, "-m", "supportgate", "admin", "create-key", "--name", "tests"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        admin = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {made.stdout.strip().splitlines()[-1]}"}, timeout=10
        )
        tier = {"id": "supporter", "name": "Supporter", "entitlements": ["adblock_ok"], "max_devices": 5}
        assert admin.post("/v1/admin/tiers", json=tier).status_code == 201
        origins = [f"http://127.0.0.1:{ports.nginx}", f"http://127.0.0.1:{ports.caddy}"]
        for site, policy in (("news", {"mode": "hard"}), ("metered", {"mode": "hard", "free_views": 2})):
            created = admin.post(
                "/v1/admin/sites", json={"id": site, "name": site, "origins": origins, "policy": policy}
            )
            assert created.status_code == 201, created.text
        keys = {site: admin.post(f"/v1/admin/sites/{site}/keys").json()["key"] for site in ("news", "metered")}
        fan = {"email": "fan@example.com", "tier": "supporter", "notify": False}
        assert admin.post("/v1/admin/supporters", json=fan).status_code == 201
        assert httpx.post(f"{url}/v1/auth/code/request", json={"email": fan["email"]}).status_code == 202
        code = _emailed_code(data_dir / "outbox")
        signed_in = httpx.post(
            f"{url}/v1/auth/code/verify", json={"email": fan["email"], "code": code, "device": "tests"}
        ).json()
        token = httpx.post(
            f"{url}/v1/passes", json={"site": "news"}, headers={"Authorization": f"Bearer {signed_in['access_token']}"}
        ).json()["pass"]
        admin.close()
        yield Gate(url=url, news_key=keys["news"], metered_key=keys["metered"], token=token)
    finally:
        stop(process)


class _Article(BaseHTTPRequestHandler):
    """The site's backend: an article for any GET, saying what the proxy told it in headers."""

    def do_GET(self) -> None:
        body = ARTICLE.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for name in ("Supportgate-Decision", "Supportgate-Reason", "Authorization", "Supportgate-Set-Cookie"):
            self.send_header(f"Seen-{name}", self.headers.get(name, "-"))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture(scope="module")
def origin() -> Iterator[str]:
    """The site's backend on a free loopback port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Article)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _filled(block: str, gate: Gate, origin: str, key: str, site: str = "news") -> str:
    for placeholder, value in (("GATE_URL", gate.url), ("ORIGIN_URL", origin), ("SITE_KEY", key), ("SITE_ID", site)):
        assert placeholder in block, f"docs/proxy.md's block has no {placeholder}"
        block = block.replace(placeholder, value)
    return block


def _wait_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until ``process`` listens on ``port``; stop it and fail if it does not."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and process.poll() is None:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    stop(process, signal.SIGTERM, timeout=10)
    raise AssertionError(f"nothing listens on {port}:\n{log.read_text()}")


def run_nginx(tmp: Path, port: int, gate: Gate, origin: str, key: str, site: str = "news") -> subprocess.Popen[bytes]:
    """Nginx with docs/proxy.md's server block, in a prefix of its own, listening on ``port``."""
    binary = find_binary("nginx", untested=UNTESTED)
    server = _filled(doc_block("nginx"), gate, origin, key, site)
    assert "listen 80;" in server
    server = server.replace("listen 80;", f"listen 127.0.0.1:{port};")
    temp = tmp / "temp"
    temp.mkdir(parents=True)
    temp.chmod(0o777)  # workers run as nobody when the tests run as root
    conf = tmp / "nginx.conf"
    conf.write_text(nginx_conf(tmp, temp, f"    access_log off;\n{server}"))
    log = tmp / "error.log"
    with (tmp / "stdout.log").open("wb") as out:
        process = subprocess.Popen([binary, "-p", str(tmp), "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT)
    _wait_listening(port, process, log)
    return process


def run_caddy(tmp: Path, port: int, gate: Gate, origin: str, key: str, site: str = "news") -> subprocess.Popen[bytes]:
    """Caddy with docs/proxy.md's site block, its data in ``tmp``, listening on ``port`` over plain HTTP."""
    binary = find_binary("caddy", untested=UNTESTED)
    block = _filled(doc_block("caddyfile"), gate, origin, key, site)
    assert block.startswith("news.example.com {")
    block = block.replace("news.example.com {", f"http://127.0.0.1:{port} {{", 1)
    conf = tmp / "Caddyfile"
    conf.write_text("{\n\tadmin off\n\tauto_https off\n}\n\n" + block)
    env = {**os.environ, "HOME": str(tmp), "XDG_DATA_HOME": str(tmp / "data"), "XDG_CONFIG_HOME": str(tmp / "config")}
    log = tmp / "caddy.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [binary, "run", "--config", str(conf), "--adapter", "caddyfile"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    _wait_listening(port, process, log)
    return process


@pytest.fixture(scope="module", params=["nginx", "caddy"])
def proxy(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, gate: Gate, origin: str, ports: Ports
) -> Iterator[str]:
    """nginx, then Caddy, in front of the backend for site ``news``: the site's URL."""
    tmp = tmp_path_factory.mktemp(request.param)
    port = getattr(ports, request.param)
    runner = run_nginx if request.param == "nginx" else run_caddy
    process = runner(tmp, port, gate, origin, gate.news_key)
    yield f"http://127.0.0.1:{port}"
    stop(process, signal.SIGTERM, timeout=10)


@pytest.mark.slow
def test_no_blocker_cookie_gets_the_article(proxy: str) -> None:
    """Without ``sg_adblock`` (and with ``clear``) the reader gets the backend's article, told the decision."""
    for cookies in ({}, {"sg_adblock": "clear"}):
        answer = httpx.get(f"{proxy}/news/today?x=1", cookies=cookies, timeout=10)
        assert answer.status_code == 200
        assert answer.text == ARTICLE
        assert answer.headers["seen-supportgate-decision"] == "allow"
        assert answer.headers["seen-authorization"] == "-"  # the site key stays between the proxy and the gate
        assert "set-cookie" not in answer.headers


@pytest.mark.slow
def test_a_blocked_reader_on_a_hard_wall_site_gets_the_wall_page(proxy: str) -> None:
    """``sg_adblock=blocked``: 403 and the gate's wall page, not the article."""
    answer = httpx.get(
        f"{proxy}/news/today", cookies={"sg_adblock": "blocked"}, headers={"Accept-Language": "de"}, timeout=10
    )
    assert answer.status_code == 403
    assert answer.headers["content-type"].startswith("text/html")
    assert answer.headers["cache-control"] == "private, no-store"
    assert ARTICLE not in answer.text
    assert "data-sg-root" in answer.text
    assert '<html lang="de"' in answer.text


@pytest.mark.slow
def test_a_reader_with_a_valid_pass_gets_the_article(proxy: str, gate: Gate) -> None:
    """A blocker and a valid ``Supportgate-Pass``: the article; a forged pass: the wall."""
    answer = httpx.get(
        f"{proxy}/news/today", cookies={"sg_adblock": "blocked"}, headers={"Supportgate-Pass": gate.token}, timeout=10
    )
    assert (answer.status_code, answer.text) == (200, ARTICLE)
    assert answer.headers["seen-supportgate-reason"] == "supporter"
    forged = httpx.get(
        f"{proxy}/news/today", cookies={"sg_adblock": "blocked"}, headers={"Supportgate-Pass": gate.token[:-4] + "AAAA"}
    )
    assert forged.status_code == 403


@pytest.mark.slow
def test_the_first_party_path_serves_gate_js_and_decide(proxy: str) -> None:
    """``/sg/`` on the site's origin: gate.js (200, JavaScript) and decide from the site's own origin."""
    script = httpx.get(f"{proxy}/sg/v1/sites/news/gate.js", timeout=10)
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert '"news"' in script.text
    decided = httpx.post(
        f"{proxy}/sg/v1/decide",
        json={"site": "news", "path": "/news/today", "adblock": "blocked"},
        headers={"Origin": proxy},
        timeout=10,
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["decision"] == "wall"
    assert decided.headers["access-control-allow-origin"] == proxy


@pytest.mark.slow
def test_a_reader_cannot_set_the_headers_the_gate_answers_with(proxy: str) -> None:
    """A reader's own Supportgate-Decision never reaches the backend, nor comes back its Supportgate-Set-Cookie."""
    answer = httpx.get(
        f"{proxy}/news/today",
        cookies={"sg_adblock": "clear"},
        headers={"Supportgate-Decision": "forged", "Supportgate-Set-Cookie": "evil=1"},
        timeout=10,
    )
    assert answer.status_code == 200
    assert answer.headers["seen-supportgate-decision"] == "allow"
    assert "set-cookie" not in answer.headers


@pytest.mark.slow
@pytest.mark.parametrize("server", ["nginx", "caddy"])
def test_the_meters_visitor_cookie_reaches_the_reader(server: str, tmp_path: Path, gate: Gate, origin: str) -> None:
    """On a metered site a reader without ``sg_visitor`` gets it through the proxy; with it, the meter runs out."""
    port = free_port()
    runner = run_nginx if server == "nginx" else run_caddy
    process = runner(tmp_path, port, gate, origin, gate.metered_key, site="metered")
    try:
        url = f"http://127.0.0.1:{port}/today"
        first = httpx.get(url, cookies={"sg_adblock": "blocked"}, timeout=10)
        assert (first.status_code, first.text) == (200, ARTICLE)
        assert first.headers["seen-supportgate-reason"] == "metered"
        visitor = first.cookies.get("sg_visitor")
        assert visitor is not None, first.headers
        reader = {"sg_adblock": "blocked", "sg_visitor": visitor}
        second = httpx.get(url, cookies=reader, timeout=10)
        assert (second.status_code, "set-cookie" in second.headers) == (200, False)
        assert httpx.get(url, cookies=reader, timeout=10).status_code == 403
    finally:
        stop(process, signal.SIGTERM, timeout=10)


@pytest.mark.slow
@pytest.mark.parametrize("server", ["nginx", "caddy"])
def test_a_wrong_site_key_answers_every_reader_401(server: str, tmp_path: Path, gate: Gate, origin: str) -> None:
    """A revoked or mistyped key: nginx's auth_request and Caddy give every reader the gate's 401 (docs/proxy.md)."""
    port = free_port()
    runner = run_nginx if server == "nginx" else run_caddy
    process = runner(tmp_path, port, gate, origin, "sgs_mistyped")
    try:
        answer = httpx.get(f"http://127.0.0.1:{port}/news/today", timeout=10)
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == 'Bearer realm="supportgate"'
        assert ARTICLE not in answer.text
    finally:
        stop(process, signal.SIGTERM, timeout=10)


@pytest.mark.slow
@pytest.mark.parametrize("server", ["nginx", "caddy"])
@pytest.mark.parametrize("gate_state", ["closed", "silent"])
def test_the_page_is_served_when_the_gate_is_unreachable(
    server: str, gate_state: str, tmp_path: Path, origin: str
) -> None:
    """No gate at GATE_URL, or one that never answers: the proxy serves the article within its timeouts."""
    port = free_port()
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        if gate_state == "silent":
            silent.listen(8)  # the kernel accepts connections; nothing ever answers them
        nowhere = f"http://127.0.0.1:{silent.getsockname()[1]}"
        runner = run_nginx if server == "nginx" else run_caddy
        process = runner(tmp_path, port, Gate(url=nowhere, news_key="", metered_key="", token=""), origin, "sgs_x")
        try:
            started = time.monotonic()
            answer = httpx.get(f"http://127.0.0.1:{port}/news/today", cookies={"sg_adblock": "blocked"}, timeout=10)
            assert time.monotonic() - started < 5
            assert (answer.status_code, answer.text) == (200, ARTICLE)
            assert answer.headers["seen-supportgate-decision"] in {"-", ""}
        finally:
            stop(process, signal.SIGTERM, timeout=10)
