"""The supportgate extension in a real browser: sign-in in its popup, allowed sites, passes by header and handshake.

One headless Chromium runs for the module with the extension's test build (the Chromium build with
the test hosts granted up front, since automation cannot click a permission prompt) and the EasyList
test blocker, on a persistent profile that a test closes and starts again. ``news.example`` is the
demo; ``daily.example`` is a second demo process, another gate with its own data and keys;
``sub.news.example`` and ``other.example`` are a small recording server, so the tests can see which
requests carried the ``Supportgate-Pass`` header.
"""

from __future__ import annotations

import base64
import email
import hashlib
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.policy import default
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from supportgate.extension_build import Preset, build_test_variant
from tests.browser.conftest import (
    ARTICLE,
    CHROMIUM,
    EASYLIST,
    HOST,
    ORIGIN,
    ROOT,
    SITE,
    WATCH_SCRIPT,
    Demo,
    run_demo,
    write_blocker_extension,
)
from tests.readers_helpers import WELCOME_SUBJECT

pytestmark = pytest.mark.browser

CLIENT = f"/demo/client/{ARTICLE}"
SERVER = f"/demo/server/{ARTICLE}"
SUBDOMAIN = f"sub.{HOST}"
OTHER = "other.example"
DAILY = "daily.example"
DAILY_ORIGIN = f"http://{DAILY}"
DEMO_NAME = "The Daily Demo"
DAILY_NAME = "The Daily Planet"
TEST_HOSTS = [f"http://{HOST}/*", f"http://{SUBDOMAIN}/*", f"http://{OTHER}/*", f"http://{DAILY}/*"]
PASS_HEADER = "supportgate-pass"

# Posts a hello to this window as gate.js does; the pass that comes back, or null after a while.
HELLO = """
async ({site, wait}) => {
  const nonce = "test" + Math.random().toString(36).slice(2, 12);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), wait);
    addEventListener("message", (event) => {
      const data = event.data;
      if (data && data.type === "supportgate:pass" && data.nonce === nonce) {
        clearTimeout(timer);
        resolve(data.pass);
      }
    });
    postMessage({type: "supportgate:hello", site, nonce}, location.origin);
  });
}
"""
# Starts recording every pass message this window receives (for hellos sent from elsewhere).
RECORD_PASSES = """
() => {
  window.__passes = [];
  addEventListener("message", (event) => {
    if (event.data && event.data.type === "supportgate:pass") window.__passes.push(event.data.nonce);
  });
}
"""


class Recorder(ThreadingHTTPServer):
    """A server standing in for other hosts: it records each request's headers and serves a small page."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _RecordingHandler)
        self.requests: list[dict[str, str]] = []
        self.lock = threading.Lock()

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self.server_address[1])

    def seen(self, host: str) -> list[dict[str, str]]:
        """The headers of every request recorded for ``host`` (lower-case names)."""
        with self.lock:
            return [r for r in self.requests if r.get("host", "").split(":")[0] == host]

    def clear(self) -> None:
        """Forget what was recorded."""
        with self.lock:
            self.requests.clear()


# A page that advertises the demo site on the gate, as a lookalike would, and a frame that sends a hello.
_PAGE = f"""<!doctype html><html><head><meta charset="utf-8">
<meta name="supportgate" content="site={SITE}; gate={ORIGIN}"><title>elsewhere</title></head>
<body><p>Another host.</p></body></html>"""
_FRAME = f"""<!doctype html><html><head><meta charset="utf-8"><title>frame</title></head><body><script>
window.__passes = [];
addEventListener("message", (e) => {{
  if (e.data && e.data.type === "supportgate:pass") window.__passes.push(e.data.nonce);
}});
parent.postMessage({{type: "supportgate:hello", site: "{SITE}", nonce: "from-frame-to-parent"}}, "*");
postMessage({{type: "supportgate:hello", site: "{SITE}", nonce: "from-frame-to-self"}}, location.origin);
</script></body></html>"""


class _RecordingHandler(BaseHTTPRequestHandler):
    server: Recorder

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.requests.append({name.lower(): value for name, value in self.headers.items()})
        body = _FRAME if self.path.startswith("/frame") else _PAGE
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet."""


@pytest.fixture(scope="module")
def recorder() -> Iterator[Recorder]:
    """The recording server, for sub.news.example and other.example."""
    server = Recorder()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@dataclass
class Browser:
    """Chromium with the extension's test build and the EasyList blocker."""

    context: Any
    """The Playwright browser context (replaced when the test relaunches the profile)."""
    extension_id: str
    """The extension's id, from its service worker's URL."""
    demo: Demo
    """The demo it visits (news.example)."""
    relaunch: Callable[[], Any]
    """Close the browser and start it again on the same profile; the new context."""

    def page_url(self, path: str) -> str:
        """The URL of one of the extension's pages."""
        return f"chrome-extension://{self.extension_id}/{path}"

    def worker(self) -> Any:
        """The extension's service worker, waking it if the browser stopped it."""
        for worker in self.context.service_workers:
            if worker.url.startswith(self.page_url("")):
                return worker
        waker = self.context.new_page()
        try:
            waker.goto(self.page_url("popup/popup.html"))
            waker.wait_for_selector("body[data-ready=true]")
        finally:
            waker.close()
        return next(w for w in self.context.service_workers if w.url.startswith(self.page_url("")))

    def tab_id(self, page: Any) -> int:
        """The browser's tab id for a page (the newest tab showing its URL)."""
        tabs = self.worker().evaluate("async () => (await chrome.tabs.query({})).map((t) => [t.id, t.url])")
        ids = [tab_id for tab_id, url in tabs if url == page.url]
        assert ids, f"no tab shows {page.url}: {tabs}"
        return int(max(ids))

    def popup(self, for_page: Any | None = None) -> Any:
        """The popup, opened as a page in a tab, looking at ``for_page``'s tab."""
        popup = self.context.new_page()
        popup.set_viewport_size({"width": 380, "height": 640})
        query = "" if for_page is None else f"?tab={self.tab_id(for_page)}"
        popup.goto(self.page_url(f"popup/popup.html{query}"))
        popup.wait_for_selector("body[data-ready=true]")
        return popup

    def header_rules(self) -> list[dict[str, Any]]:
        """The extension's declarativeNetRequest session rules."""
        rules: list[dict[str, Any]] = self.worker().evaluate("() => chrome.declarativeNetRequest.getSessionRules()")
        return rules

    def memberships(self) -> dict[str, Any]:
        """The memberships as the worker keeps them in storage.local."""
        found: dict[str, Any] = self.worker().evaluate(
            "async () => (await chrome.storage.local.get('memberships')).memberships || {}"
        )
        return found


def _launch(playwright: Any, profile: Path, extensions: list[Path], *, hosts: dict[str, int]) -> Any:
    """Headless Chromium as the suite's fixture starts it, with each host name mapped to its port."""
    joined = ",".join(str(path) for path in extensions)
    rules = ", ".join(f"MAP {host}:80 127.0.0.1:{port}" for host, port in hosts.items())
    context = playwright.chromium.launch_persistent_context(
        str(profile),
        executable_path=str(CHROMIUM),
        headless=True,
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--host-resolver-rules={rules}",
            f"--disable-extensions-except={joined}",
            f"--load-extension={joined}",
        ],
        viewport={"width": 1280, "height": 900},
        locale="en-GB",
    )
    context.set_default_timeout(15_000)
    return context


def _wait_for_blocker(context: Any) -> None:
    """Wait until EasyList's rules are active: they load just after the browser starts."""
    page = context.new_page()
    try:
        page.goto(f"{ORIGIN}/demo/")
        deadline = time.monotonic() + 10
        probe = f"{ORIGIN}{EASYLIST.blocked_probe}"
        while (
            page.evaluate("u => fetch(u, {cache: 'no-store'}).then(() => 'loaded', () => 'blocked')", probe)
            != "blocked"
        ):
            assert time.monotonic() < deadline, "the EasyList blocker never became active"
            time.sleep(0.1)
    finally:
        page.close()


def _extension_worker(context: Any) -> Any:
    worker = next((w for w in context.service_workers if "/background/main.js" in w.url), None)
    if worker is None:
        worker = context.wait_for_event("serviceworker", predicate=lambda w: "/background/main.js" in w.url)
    return worker


@pytest.fixture(scope="module")
def daily(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """A second gate: another ``supportgate demo`` with its own data dir, public as http://daily.example."""
    with run_demo(tmp_path_factory.mktemp("daily-data"), DAILY_ORIGIN) as service:
        # The demo seeds news.example's origins; this gate's site is on daily.example, under another name.
        renamed = service.api.patch(f"/v1/admin/sites/{SITE}", json={"name": DAILY_NAME, "origins": [DAILY_ORIGIN]})
        assert renamed.status_code == 200, renamed.text
        yield service


@pytest.fixture(scope="module")
def browser(
    playwright: Any, demo: Demo, daily: Demo, recorder: Recorder, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Browser]:
    """Chromium with the extension's test build and EasyList; news.example and daily.example are two demo gates."""
    root = tmp_path_factory.mktemp("extension-browser")
    built = build_test_variant(ROOT / "extension", root / "dist", TEST_HOSTS)
    blocker = write_blocker_extension(EASYLIST, root / "extensions")
    hosts = {HOST: demo.port, DAILY: daily.port, SUBDOMAIN: recorder.port, OTHER: recorder.port}

    def launch() -> Any:
        context = _launch(playwright, root / "profile", [built.directory, blocker], hosts=hosts)
        _wait_for_blocker(context)
        return context

    context = launch()
    extension = Browser(context, _extension_worker(context).url.split("/")[2], demo, relaunch=lambda: None)

    def relaunch() -> Any:
        extension.context.close()
        extension.context = launch()
        assert _extension_worker(extension.context).url.split("/")[2] == extension.extension_id
        return extension.context

    extension.relaunch = relaunch
    try:
        yield extension
    finally:
        extension.context.close()


def new_supporter(demo: Demo) -> dict[str, Any]:
    """A fresh supporter on the demo's "supporter" tier."""
    address = f"reader-{secrets.token_hex(4)}@example.com"
    granted = demo.api.post("/v1/admin/supporters", json={"email": address, "tier": "supporter"})
    assert granted.status_code == 201, granted.text
    supporter: dict[str, Any] = granted.json()
    return supporter


def emailed_code(demo: Demo, address: str, timeout: float = 10) -> str:
    """The sign-in code in the newest mail to ``address`` in the demo's outbox."""
    outbox = demo.data_dir / "outbox"
    deadline = time.monotonic() + timeout
    while True:
        paths = sorted(outbox.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns) if outbox.is_dir() else []
        mails = [email.message_from_bytes(p.read_bytes(), policy=default) for p in paths]
        for mail in reversed(mails):
            # A grant's welcome mail goes to the same address; the code is in the sign-in mail.
            if mail["To"] == address and not str(mail["Subject"]).startswith(WELCOME_SUBJECT):
                part = mail.get_body(preferencelist=("plain",))
                assert part is not None
                found = re.search(r"\b(\d{6})\b", str(part.get_content()))
                assert found, part.get_content()
                return found.group(1)
        assert time.monotonic() < deadline, f"no mail to {address} in the outbox"
        time.sleep(0.05)


def snap(popup: Any, path: Path) -> None:
    """A screenshot of the popup as tall as its content."""
    popup.set_viewport_size({"width": 380, "height": 100})
    popup.screenshot(path=path, full_page=True, animations="disabled")
    popup.set_viewport_size({"width": 380, "height": 640})


def membership(popup: Any, gate: str = ORIGIN) -> Any:
    """The popup's entry for the membership on ``gate``."""
    return popup.locator(f'.membership[data-gate="{gate}"]')


def sign_in(
    browser: Browser,
    address: str,
    *,
    for_page: Any,
    demo: Demo | None = None,
    name: str = DEMO_NAME,
    screenshots: Path | None = None,
) -> None:
    """Sign in through the popup on ``for_page`` with the emailed code: it allows that page's site too."""
    demo = demo or browser.demo
    popup = browser.popup(for_page)
    try:
        signed_in = membership(popup, demo.origin).locator(".sign-out")
        if signed_in.count():
            signed_in.click()
            popup.get_by_label("Email").wait_for()
        popup.get_by_role("heading", name=f"Sign in as a supporter of {name}").wait_for()
        popup.get_by_label("Email").fill(address)
        if screenshots is not None:
            snap(popup, screenshots / "popup-signin.png")
        popup.get_by_role("button", name="Email me a code").click()
        popup.locator("#signin-code, #message.error").first.wait_for()
        assert not popup.locator("#message.error").count(), popup.locator("#message").inner_text()
        popup.get_by_label("Code from the email").fill(emailed_code(demo, address))
        popup.get_by_role("button", name="Sign in", exact=True).click()
        membership(popup, demo.origin).locator(".account-email").filter(has_text=address).wait_for()
    finally:
        popup.close()


def allow_demo(browser: Browser, article: Any, *, screenshots: Path | None = None) -> None:
    """Allow the demo site from the popup (if it is not still allowed from before), and wait for its pass."""
    popup = browser.popup(article)
    try:
        allow = popup.get_by_role("button", name=f"Let {DEMO_NAME} see that I'm a supporter")
        if allow.count():
            allow.click()
        popup.locator("#site-status").filter(has_text="Shared: no wall here").wait_for()
        if screenshots is not None:
            snap(popup, screenshots / "popup-site.png")
    finally:
        popup.close()


def remove_demo(browser: Browser, article: Any) -> None:
    """Remove the demo site from the popup."""
    popup = browser.popup(article)
    try:
        popup.get_by_role("button", name="Stop sharing with this site").click()
        popup.locator("#site-status").filter(has_text="Not shared with this site").wait_for()
    finally:
        popup.close()


def sign_out(browser: Browser, gate: str = ORIGIN) -> None:
    """Sign out of ``gate``'s membership from the popup."""
    popup = browser.popup()
    try:
        entry = membership(popup, gate)
        if entry.locator(".sign-out").count():
            entry.locator(".sign-out").click()
            entry.locator(".forget").wait_for()
    finally:
        popup.close()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def gate_binds_sessions(demo: Demo) -> bool:
    """Whether ``demo``'s gate binds a sign-in that carries a DPoP proof (``token_type: DPoP``), asked over HTTP."""
    key = ec.generate_private_key(ec.SECP256R1())
    numbers = key.public_key().public_numbers()
    jwk = {
        "kty": "EC",
        "crv": "P-256",
        "x": b64url(numbers.x.to_bytes(32, "big")),
        "y": b64url(numbers.y.to_bytes(32, "big")),
    }
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}
    url = f"{demo.origin}/v1/auth/activate"
    payload = {"jti": b64url(secrets.token_bytes(16)), "htm": "POST", "htu": url, "iat": int(time.time())}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    proof = f"{signing_input}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"
    person = new_supporter(demo)
    made = demo.api.post(f"/v1/admin/supporters/{person['id']}/activation-codes")
    assert made.status_code == 201, made.text
    answer = demo.anonymous.post(
        "/v1/auth/activate", json={"code": made.json()["code"], "device": "probe"}, headers={"DPoP": proof}
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["token_type"]).lower() == "dpop"


# The extension's device key as IndexedDB keeps it: its public JWK.
DEVICE_JWK = """
() => new Promise((resolve, reject) => {
  const opened = indexedDB.open("supportgate");
  opened.onerror = () => reject(opened.error);
  opened.onsuccess = () => {
    const read = opened.result.transaction("keys").objectStore("keys").get("device");
    read.onsuccess = () => resolve(read.result && read.result.publicJwk);
    read.onerror = () => reject(read.error);
  };
})
"""


def jwk_thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638: SHA-256 of the required members in order, without spaces."""
    canonical = json.dumps({name: jwk[name] for name in ("crv", "kty", "x", "y")}, separators=(",", ":"))
    return b64url(hashlib.sha256(canonical.encode()).digest())


def claims(token: str) -> dict[str, Any]:
    """A JWT's payload, unverified: which gate issued a pass (``iss``) and for which site (``aud``)."""
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


def is_decide(response: Any) -> bool:
    return response.url.endswith("/v1/decide") and response.request.method == "POST"


def visit_client(page: Any, origin: str = ORIGIN) -> dict[str, Any]:
    """Open the client-side article on ``origin``; decide's answer for it."""
    with page.expect_response(is_decide) as decided:
        page.goto(f"{origin}{CLIENT}")
    assert decided.value.status == 200, decided.value.text()
    answer: dict[str, Any] = decided.value.json()
    return answer


def visit_server(page: Any, origin: str = ORIGIN) -> tuple[str, str]:
    """Open the server-side article on ``origin`` once gate.js has settled; the server's decision and reason."""
    page.goto(f"{origin}{SERVER}")
    page.wait_for_function(
        """() => {
          const script = document.querySelector('script[data-mode="server"]');
          const found = window.supportgate && window.supportgate.detection;
          return Boolean(found && script && script.dataset.assumed === found.result);
        }"""
    )
    main = page.locator("main")
    return main.get_attribute("data-sg-decision") or "", main.get_attribute("data-sg-reason") or ""


@pytest.fixture
def article(browser: Browser) -> Iterator[Any]:
    """A tab on the client-side demo article (walled: EasyList is on)."""
    page = browser.context.new_page()
    page.goto(f"{ORIGIN}{CLIENT}")
    yield page
    page.close()


@pytest.fixture
def supporter(browser: Browser, article: Any) -> Iterator[dict[str, Any]]:
    """A fresh supporter signed in through the popup with the demo site allowed; signed out afterwards."""
    person = new_supporter(browser.demo)
    sign_in(browser, person["email"], for_page=article)
    allow_demo(browser, article)
    yield person
    sign_out(browser)


def test_sign_in_allow_and_read_both_routes(browser: Browser, article: Any, screenshots: Path) -> None:
    """Signed in with the emailed code and the demo allowed, EasyList's reader gets the full article on both routes."""
    assert visit_client(article)["reason"] == "adblock", "the wall is up before signing in"
    person = new_supporter(browser.demo)
    sign_in(browser, person["email"], for_page=article, screenshots=screenshots)
    allow_demo(browser, article, screenshots=screenshots)
    assert [(gate, sorted(m["sites"])) for gate, m in browser.memberships().items()] == [(ORIGIN, [ORIGIN])], (
        "signing in from the page allowed its site too"
    )

    client = visit_client(article)
    assert (client["decision"], client["reason"]) == ("allow", "supporter"), client
    assert client["supporter"]["tier"] == "supporter"
    assert article.evaluate("window.supportgate.detection.result") == "blocked"
    assert visit_server(article) == ("allow", "supporter")

    popup = browser.popup(article)
    assert popup.locator("#site-adblock").inner_text() == "Detected"
    assert popup.locator("#site-name").inner_text() == DEMO_NAME
    assert membership(popup).locator(".account-tier").inner_text() == "Supporter"
    assert membership(popup).locator(".membership-name").inner_text() == DEMO_NAME
    assert popup.locator("#ledger-list").get_by_text(DEMO_NAME).is_visible()
    snap(popup, screenshots / "popup-ledger.png")
    popup.get_by_role("button", name="Clear this list").click()
    popup.locator("#ledger").wait_for(state="hidden")
    popup.close()
    sign_out(browser)


@pytest.mark.usefixtures("supporter")
def test_removing_the_site_brings_the_wall_back(browser: Browser, article: Any) -> None:
    """Once the site is removed, the next page view gets the wall: no header rule, no handshake answer."""
    assert visit_client(article)["reason"] == "supporter"
    remove_demo(browser, article)
    assert browser.header_rules() == []
    client = visit_client(article)
    assert (client["decision"], client["reason"]) == ("wall", "adblock"), client
    assert visit_server(article) == ("wall", "adblock")


@pytest.mark.usefixtures("supporter")
def test_signing_out_brings_the_wall_back_and_ends_the_session(browser: Browser, article: Any) -> None:
    """Signing out drops every header rule and ends the session at the gate, voiding its passes: the wall returns."""
    assert visit_client(article)["reason"] == "supporter"
    held = article.evaluate(HELLO, {"site": SITE, "wait": 3000})
    assert isinstance(held, str)
    assert browser.demo.decide(adblock="blocked", **{"pass": held})["reason"] == "supporter"

    sign_out(browser)
    assert browser.header_rules() == []
    client = visit_client(article)
    assert (client["decision"], client["reason"]) == ("wall", "adblock"), client
    assert visit_server(article) == ("wall", "adblock")
    after = browser.demo.decide(adblock="blocked", **{"pass": held})
    assert (after["decision"], after["pass_error"]) == ("wall", "revoked"), "the gate still honours the old pass"


def test_a_revoked_supporter_gets_the_wall_and_is_signed_out(
    browser: Browser, article: Any, supporter: dict[str, Any]
) -> None:
    """An admin's revocation voids the pass at once, and the extension's next refresh signs out cleanly."""
    assert visit_client(article)["reason"] == "supporter"
    revoked = browser.demo.api.delete(f"/v1/admin/supporters/{supporter['id']}")
    assert revoked.status_code == 204, revoked.text

    client = visit_client(article)
    assert (client["decision"], client["reason"]) == ("wall", "adblock"), client
    assert client["pass_error"] == "revoked"

    popup = browser.popup(article)
    try:
        popup.locator("#signout-notice").wait_for()
        # The gate ends the sessions of a revoked supporter, so the refresh finds its session gone.
        assert "so you were signed out" in popup.locator("#signout-notice").inner_text()
        assert "so you were signed out" in membership(popup).locator(".signout-notice").inner_text()
        assert popup.get_by_label("Email").is_visible()
    finally:
        popup.close()
    assert browser.header_rules() == []
    assert visit_server(article) == ("wall", "adblock")


@pytest.mark.usefixtures("supporter")
def test_the_header_goes_to_the_site_origin_only(browser: Browser, article: Any, recorder: Recorder) -> None:
    """The pass header reaches news.example, but not sub.news.example nor another origin, by fetch or navigation."""
    rules = browser.header_rules()
    assert [rule["condition"]["urlFilter"] for rule in rules] == [f"|{ORIGIN}/"]
    assert rules[0]["action"]["requestHeaders"][0]["header"] == "Supportgate-Pass"

    recorder.clear()
    fetched = article.evaluate(
        """async (urls) => Promise.all(urls.map((u) => fetch(u, {cache: "no-store"}).then((r) => r.status)))""",
        [f"http://{SUBDOMAIN}/fetched", f"http://{OTHER}/fetched"],
    )
    assert fetched == [200, 200]
    elsewhere = browser.context.new_page()
    for host in (SUBDOMAIN, OTHER):
        elsewhere.goto(f"http://{host}/navigated")
    elsewhere.close()
    for host in (SUBDOMAIN, OTHER):
        seen = recorder.seen(host)
        assert len(seen) >= 2, f"{host}: {seen}"
        assert all(PASS_HEADER not in headers for headers in seen), f"the pass went to {host}"

    # The same request to the site's own origin does carry it: the server-side route reads it.
    html = article.evaluate("async (u) => (await fetch(u, {cache: 'no-store'})).text()", f"{ORIGIN}{SERVER}")
    assert 'data-sg-reason="supporter"' in html


@pytest.mark.usefixtures("supporter")
def test_the_handshake_answers_the_top_window_of_the_allowed_origin_only(browser: Browser, article: Any) -> None:
    """A hello from the page itself gets the pass; one from a frame, another origin or for another site gets nothing."""
    visit_client(article)
    own = article.evaluate(HELLO, {"site": SITE, "wait": 3000})
    assert isinstance(own, str)
    assert own.count(".") == 2, "the answer is a pass (a JWT)"
    assert article.evaluate(HELLO, {"site": "another-site", "wait": 1000}) is None

    article.evaluate(RECORD_PASSES)
    # A cross-origin frame posting to the page, and to itself.
    article.evaluate(
        """(src) => new Promise((resolve) => {
             const frame = document.createElement("iframe");
             frame.src = src;
             frame.onload = resolve;
             document.body.append(frame);
           })""",
        f"http://{OTHER}/frame",
    )
    # A same-origin frame asking for itself.
    article.evaluate(
        """(src) => new Promise((resolve) => {
             const frame = document.createElement("iframe");
             frame.src = src;
             frame.onload = resolve;
             document.body.append(frame);
           })""",
        f"{ORIGIN}/demo/",
    )
    same_origin = next(f for f in article.frames if f.url == f"{ORIGIN}/demo/")
    assert same_origin.evaluate(HELLO, {"site": SITE, "wait": 1500}) is None
    cross_origin = next(f for f in article.frames if f.url.startswith(f"http://{OTHER}/"))
    assert cross_origin.evaluate("window.__passes") == []
    assert article.evaluate("window.__passes") == []

    # Top-level pages on other origins that advertise the demo site get nothing either.
    for host in (SUBDOMAIN, OTHER):
        page = browser.context.new_page()
        page.goto(f"http://{host}/page")
        assert page.evaluate(HELLO, {"site": SITE, "wait": 1500}) is None, host
        page.close()


def activation_code(demo: Demo, supporter_id: str) -> str:
    """A new one-time activation code for the supporter, made through the admin API."""
    made = demo.api.post(f"/v1/admin/supporters/{supporter_id}/activation-codes")
    assert made.status_code == 201, made.text
    code: str = made.json()["code"]
    return code


def test_sign_in_with_an_activation_code(browser: Browser, article: Any) -> None:
    """The popup signs in with an activation code typed in lower case with spaces, and shows the tier."""
    person = new_supporter(browser.demo)
    code = activation_code(browser.demo, person["id"]).lower().replace("-", " ")
    popup = browser.popup(article)
    try:
        popup.get_by_role("button", name="I have an activation code").click()
        popup.get_by_label("Activation code").fill(code)
        popup.get_by_role("button", name="Activate").click()
        membership(popup).locator(".account-email").filter(has_text=person["email"]).wait_for()
        assert membership(popup).locator(".account-tier").inner_text() == "Supporter"
        membership(popup).locator(".sign-out").click()
        popup.get_by_label("Email").wait_for()
    finally:
        popup.close()


def test_over_the_device_limit_the_popup_lets_the_reader_end_a_session(
    browser: Browser, demo: Demo, article: Any
) -> None:
    """At the tier's device limit the popup lists the sessions; ending one signs this browser in."""
    person = new_supporter(demo)
    for number in range(3):
        made = demo.api.post(
            "/v1/auth/activate",
            json={"code": activation_code(demo, person["id"]), "device": f"Old laptop {number}"},
            headers={"Authorization": ""},
        )
        assert made.status_code == 200, made.text
    popup = browser.popup(article)
    try:
        popup.get_by_label("Email").fill(person["email"])
        popup.get_by_role("button", name="Email me a code").click()
        popup.get_by_label("Code from the email").fill(emailed_code(demo, person["email"]))
        popup.get_by_role("button", name="Sign in", exact=True).click()
        popup.get_by_text("Your tier allows 3 devices at once").wait_for()
        popup.get_by_label(re.compile(r"^Old laptop 1, last used")).check()
        popup.get_by_role("button", name="End them and sign in").click()
        membership(popup).locator(".account-email").filter(has_text=person["email"]).wait_for()
        membership(popup).locator(".sign-out").click()
        popup.get_by_label("Email").wait_for()
    finally:
        popup.close()


# Makes a membership's access token and its site's pass look due, then fires the upkeep alarm.
AGE_TOKENS = """
async (gate) => {
  const now = Date.now();
  const {memberships} = await chrome.storage.local.get("memberships");
  const {passes} = await chrome.storage.session.get("passes");
  const session = memberships[gate].session;
  session.accessExpiresAt = now - 1000;
  for (const entry of Object.values(passes).filter((entry) => entry.gate === gate)) {
    entry.fetchedAt = now - 3_540_000;
    entry.expiresAt = now + 60_000;
  }
  await chrome.storage.local.set({memberships});
  await chrome.storage.session.set({passes});
  await chrome.alarms.create("supportgate-upkeep", {when: now});
  return {refreshToken: session.refreshToken, pass: passes[gate]?.pass ?? null};
}
"""
CURRENT_TOKENS = """
async (gate) => {
  const {memberships} = await chrome.storage.local.get("memberships");
  const {passes} = await chrome.storage.session.get("passes");
  const session = (memberships || {})[gate]?.session;
  return {refreshToken: session ? session.refreshToken : null, pass: (passes || {})[gate]?.pass ?? null};
}
"""


def wait_for_refresh(browser: Browser, gate: str) -> dict[str, Any]:
    """Age ``gate``'s tokens and pass, fire the upkeep, and wait for a new refresh token and pass."""
    before = browser.worker().evaluate(AGE_TOKENS, gate)
    deadline = time.monotonic() + 15
    while True:
        now: dict[str, Any] = browser.worker().evaluate(CURRENT_TOKENS, gate)
        if now["refreshToken"] not in {None, before["refreshToken"]} and now["pass"] not in {None, before["pass"]}:
            return now
        assert time.monotonic() < deadline, f"nothing was refreshed: {now}"
        time.sleep(0.2)


@pytest.mark.usefixtures("supporter")
def test_the_alarm_refreshes_the_session_and_the_pass(browser: Browser, article: Any) -> None:
    """When the access token and pass are due, the upkeep alarm rotates the tokens and puts a new pass in the rule."""
    now = wait_for_refresh(browser, ORIGIN)
    rules = browser.header_rules()
    assert [rule["action"]["requestHeaders"][0]["value"] for rule in rules] == [now["pass"]]
    client = visit_client(article)
    assert (client["decision"], client["reason"]) == ("allow", "supporter"), client


AXE_RUN = """
async () => {
  const results = await axe.run(document, { resultTypes: ["violations"] });
  return results.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target) }));
}
"""


def axe_violations(page: Any, axe_source: str) -> list[dict[str, Any]]:
    """axe-core's violations on the page, run over the debugging protocol: extension pages refuse inline script."""
    page.evaluate(axe_source + "\n;undefined")
    found: list[dict[str, Any]] = page.evaluate(AXE_RUN)
    return found


def test_popup_passes_axe(browser: Browser, article: Any, axe_source: str) -> None:
    """axe-core finds no violation in the popup: signed out, the activation step, signed in with the site allowed."""
    popup = browser.popup(article)
    try:
        assert axe_violations(popup, axe_source) == []
        popup.get_by_role("button", name="I have an activation code").click()
        assert axe_violations(popup, axe_source) == []
    finally:
        popup.close()
    person = new_supporter(browser.demo)
    sign_in(browser, person["email"], for_page=article)
    allow_demo(browser, article)
    popup = browser.popup(article)
    try:
        popup.wait_for_selector("body[data-settled=true]")
        assert axe_violations(popup, axe_source) == []
        membership(popup).locator(".sign-out").click()
        popup.get_by_label("Email").wait_for()
        assert axe_violations(popup, axe_source) == []
    finally:
        popup.close()


def test_manifest_permissions_in_the_running_browser(browser: Browser) -> None:
    """The running test build asks for exactly the production permissions, plus the test hosts."""
    manifest = browser.worker().evaluate("() => chrome.runtime.getManifest()")
    production = json.loads((ROOT / "extension" / "manifest.chromium.json").read_text())
    assert manifest["permissions"] == production["permissions"]
    assert manifest["optional_host_permissions"] == ["*://*/*"]
    assert sorted(manifest["host_permissions"]) == sorted(TEST_HOSTS)


def check_memberships(browser: Browser, daily: Demo) -> None:
    """One membership per gate with its own site and its session kept, bound to the device key if its gate binds."""
    stored = browser.memberships()
    assert sorted(stored) == [DAILY_ORIGIN, ORIGIN]
    device = jwk_thumbprint(browser.worker().evaluate(DEVICE_JWK))
    for gate, service in ((ORIGIN, browser.demo), (DAILY_ORIGIN, daily)):
        assert list(stored[gate]["sites"]) == [gate], f"the site is allowed under its own gate: {stored[gate]}"
        session = stored[gate]["session"]
        assert session["refreshToken"], "the session is kept in storage.local"
        # A gate that does DPoP binds the session to the extension's device key; an older one answers Bearer.
        if gate_binds_sessions(service):
            assert session["tokenType"] == "DPoP", session
            assert claims(session["accessToken"])["cnf"] == {"jkt": device}
        else:
            assert session["tokenType"] == "Bearer", session


def test_two_gates_two_memberships_each_site_its_own_pass_and_a_relaunch(
    browser: Browser, daily: Demo, screenshots: Path
) -> None:
    """Signed in on two gates, each site gets only its own gate's pass; the profile relaunched, both stay signed in."""
    news_reader, daily_reader = new_supporter(browser.demo), new_supporter(daily)
    news = browser.context.new_page()
    news.goto(f"{ORIGIN}{CLIENT}")
    sign_in(browser, news_reader["email"], for_page=news)
    planet = browser.context.new_page()
    planet.goto(f"{DAILY_ORIGIN}{CLIENT}")
    sign_in(browser, daily_reader["email"], for_page=planet, demo=daily, name=DAILY_NAME)

    check_memberships(browser, daily)

    def each_site_gets_its_own_pass() -> None:
        deadline = time.monotonic() + 20
        while len(rules := browser.header_rules()) < 2:
            assert time.monotonic() < deadline, f"no pass for each site: {rules}"
            time.sleep(0.2)
        by_filter = {rule["condition"]["urlFilter"]: rule["action"]["requestHeaders"][0]["value"] for rule in rules}
        assert sorted(by_filter) == [f"|{DAILY_ORIGIN}/", f"|{ORIGIN}/"]
        for origin, page in ((ORIGIN, news), (DAILY_ORIGIN, planet)):
            header = claims(by_filter[f"|{origin}/"])
            assert (header["iss"], header["aud"]) == (origin, SITE), f"{origin}'s header carries another gate's pass"
            client = visit_client(page, origin)
            assert (client["decision"], client["reason"]) == ("allow", "supporter"), (origin, client)
            handed = page.evaluate(HELLO, {"site": SITE, "wait": 3000})
            assert isinstance(handed, str), origin
            assert claims(handed)["iss"] == origin, f"{origin}'s handshake handed out another gate's pass"
            # The site's own server saw a pass it could verify: one from its own gate, signed with its keys.
            assert visit_server(page, origin) == ("allow", "supporter"), origin

    each_site_gets_its_own_pass()

    popup = browser.popup(planet)
    try:
        popup.wait_for_selector("body[data-settled=true]")
        assert popup.locator("#site-name").inner_text() == DAILY_NAME
        assert membership(popup, ORIGIN).locator(".membership-name").inner_text() == DEMO_NAME
        assert membership(popup, DAILY_ORIGIN).locator(".membership-name").inner_text() == DAILY_NAME
        assert membership(popup, DAILY_ORIGIN).locator(".account-email").inner_text() == daily_reader["email"]
        assert membership(popup, ORIGIN).locator(".account-email").inner_text() == news_reader["email"]
        snap(popup, screenshots / "popup-memberships.png")
    finally:
        popup.close()

    context = browser.relaunch()
    news, planet = context.new_page(), context.new_page()
    each_site_gets_its_own_pass()
    # The session outlived the browser, and the device key with it: a refresh still works.
    wait_for_refresh(browser, DAILY_ORIGIN)
    assert visit_client(planet, DAILY_ORIGIN)["reason"] == "supporter"
    for gate in (ORIGIN, DAILY_ORIGIN):
        sign_out(browser, gate)
    news.close()
    planet.close()


# Clicks the wall's "Sign in with the extension" (in gate.js's closed shadow root) and says what the wall then says.
CLICK_WALL_SIGNIN = """
async () => {
  const root = window.__sgTest.shadows.map((r) => r.querySelector("[data-sg-msg-signin]")).find(Boolean);
  root.querySelector('[data-sg-action="signin"]').click();
  const status = root.querySelector("[data-sg-status]");
  const said = new Promise((resolve) => {
    const check = () => (status.textContent ? resolve(status.textContent) : setTimeout(check, 20));
    check();
  });
  return {said: await said, signin: root.getAttribute("data-sg-msg-signin")};
}
"""


CLICK_WALL_RECHECK = """
() => window.__sgTest.shadows
  .map((root) => root.querySelector('[data-sg-action="recheck"]'))
  .find(Boolean)
  .click()
"""
CLEAR_WALL_STATUS = """
() => window.__sgTest.shadows.forEach((root) => {
  const status = root.querySelector("[data-sg-status]");
  if (status) status.textContent = "";
})
"""
OPEN_POPUPS = """
async () => (await chrome.runtime.getContexts({contextTypes: ["POPUP"]})).map((c) => c.documentUrl)
"""


def test_the_walls_sign_in_button_opens_the_sign_in_for_that_site(browser: Browser, article: Any) -> None:
    """On an allowed site while signed out, the wall's button opens the popup for that tab, and the wall says so."""
    sign_in(browser, new_supporter(browser.demo)["email"], for_page=article)
    sign_out(browser)
    article.add_init_script(WATCH_SCRIPT)
    assert visit_client(article)["decision"] == "wall"
    article.wait_for_function("() => window.__sgTest.shadows.some((r) => r.querySelector('[data-sg-msg-signin]'))")
    answer = article.evaluate(CLICK_WALL_SIGNIN)
    assert answer["said"] == answer["signin"], answer
    # Headless Chromium opens the toolbar popup for the extension.
    deadline = time.monotonic() + 10
    while browser.page_url("popup/popup.html") not in (popups := browser.worker().evaluate(OPEN_POPUPS)):
        assert time.monotonic() < deadline, f"no popup opened: {popups}"
        time.sleep(0.1)

    # With the popup open already, the browser will not open another: the popup page opens in a tab.
    time.sleep(5.1)  # a page may ask once every 5 seconds
    article.evaluate(CLEAR_WALL_STATUS)
    with browser.context.expect_page(lambda page: "/popup/popup.html?tab=" in page.url) as opened:
        answer = article.evaluate(CLICK_WALL_SIGNIN)
    assert answer["said"] == answer["signin"], answer
    popup = opened.value
    try:
        assert popup.url.endswith(f"/popup/popup.html?tab={browser.tab_id(article)}")
        popup.wait_for_selector("body[data-ready=true]")
        popup.get_by_role("heading", name=f"Sign in as a supporter of {DEMO_NAME}").wait_for()
        assert popup.locator("#site-status").inner_text() == "Allowed, but you are signed out"
        # Signing in there, then "check again" on the wall: the page gets its pass, the wall goes.
        person = new_supporter(browser.demo)
        popup.get_by_label("Email").fill(person["email"])
        popup.get_by_role("button", name="Email me a code").click()
        popup.get_by_label("Code from the email").fill(emailed_code(browser.demo, person["email"]))
        popup.get_by_role("button", name="Sign in", exact=True).click()
        popup.locator("#site-status").filter(has_text="Shared: no wall here").wait_for()
    finally:
        popup.close()
    with article.expect_response(is_decide) as decided:
        article.evaluate(CLICK_WALL_RECHECK)
    assert (decided.value.json()["decision"], decided.value.json()["reason"]) == ("allow", "supporter")
    sign_out(browser)


# An install from before memberships: one configured gate and its allowed sites.
LEGACY_INSTALL = """
async ({gate, origin}) => {
  await chrome.storage.local.remove(["memberships"]);
  await chrome.storage.local.set({
    settings: {gate},
    sites: {[origin]: {origin, site: "demo", gate, allowedAt: 1}},
  });
}
"""
STORED_AFTER_UPDATE = """
async () => chrome.storage.local.get(["memberships", "settings", "sites"])
"""


def test_an_install_with_one_configured_gate_becomes_a_signed_out_membership(browser: Browser) -> None:
    """The configured gate and its allowed sites turn into a signed-out membership when the new version starts."""
    for gate in (ORIGIN, DAILY_ORIGIN):
        sign_out(browser, gate)
    browser.worker().evaluate(LEGACY_INSTALL, {"gate": ORIGIN, "origin": ORIGIN})
    # The next start of the worker runs the new version's start-up: here, the browser's.
    browser.relaunch()
    deadline = time.monotonic() + 10
    while "memberships" not in (stored := browser.worker().evaluate(STORED_AFTER_UPDATE)):
        assert time.monotonic() < deadline, stored
        time.sleep(0.1)
    assert stored == {
        "memberships": {
            ORIGIN: {
                "gate": ORIGIN,
                "session": None,
                "notice": None,
                "sites": {ORIGIN: {"origin": ORIGIN, "site": SITE, "allowedAt": 1}},
            }
        }
    }


def test_a_branded_build_offers_its_gate_without_a_page_that_names_it(
    playwright: Any, demo: Demo, tmp_path: Path
) -> None:
    """With ``preset.json``, the popup offers the sign-in to the preset gate, by its name, on no supportgate page."""
    preset = Preset(gate=ORIGIN, name="News Example Members")
    built = build_test_variant(ROOT / "extension", tmp_path / "dist", [f"http://{HOST}/*"], preset)
    context = _launch(playwright, tmp_path / "profile", [built.directory], hosts={HOST: demo.port})
    try:
        branded = Browser(context, _extension_worker(context).url.split("/")[2], demo, relaunch=lambda: None)
        person = new_supporter(demo)
        popup = branded.popup()
        popup.get_by_role("heading", name="Sign in as a supporter of News Example Members").wait_for()
        assert popup.locator("#site-body").inner_text() == "Open supportgate on a web page to see its status there."
        popup.get_by_label("Email").fill(person["email"])
        popup.get_by_role("button", name="Email me a code").click()
        popup.get_by_label("Code from the email").fill(emailed_code(demo, person["email"]))
        popup.get_by_role("button", name="Sign in", exact=True).click()
        entry = membership(popup)
        entry.locator(".account-email").filter(has_text=person["email"]).wait_for()
        assert entry.locator(".membership-name").inner_text() == "News Example Members"
        assert popup.locator("#signin").is_hidden()
        assert branded.memberships()[ORIGIN]["sites"] == {}, "no page, so no site was allowed"
    finally:
        context.close()
