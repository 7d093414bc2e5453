"""The gate served first-party: a site's real nginx proxies it under /sg/, and the page never reaches the gate's host.

The gate runs as ``supportgate demo`` public as http://gate.example, a name Chromium cannot reach.
Debian's nginx, started unprivileged on a loopback port, is http://news.example: it serves a small
article page and passes ``/sg/`` to the gate. The site's policy names http://news.example/sg/, so
gate.js, its probes, decide, the wall, events and reports all go to the site's own origin.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.conftest import (
    EASYLIST,
    ORIGIN,
    WATCH_SCRIPT,
    Demo,
    launch_chromium,
    run_demo,
    write_blocker_extension,
)
from tests.processes import find_binary, free_port, nginx_conf, stop

pytestmark = pytest.mark.browser

GATE_ORIGIN = "http://gate.example"
SITE = "firstparty"
FIRST_PARTY = f"{ORIGIN}/sg/"
ARTICLE = "/articles/ferry.html"
NOBODY = 65534
PAGE = f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>The night ferry returns</title></head>
<body>
<main><h1>The night ferry returns</h1><p>After twelve years the night ferry sails again.</p></main>
<script src="{FIRST_PARTY}v1/sites/{SITE}/gate.js" async></script>
</body>
</html>
"""
# The site's proxy, as a publisher would write it: the gate under /sg/, the reader's address and
# the site's host passed on (the gate trusts this proxy's address for X-Forwarded-For).
NGINX_SERVER = """
  access_log {root}/access.log;
  types {{ text/html html; }}
  server {{
    listen 127.0.0.1:{port};
    server_name news.example;
    root {root}/site;
    location /sg/ {{
      proxy_pass http://127.0.0.1:{gate}/;
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $host;
    }}
  }}"""
DETECTED = "() => window.supportgate && window.supportgate.detection && window.supportgate.detection.result"
DECIDED = "() => window.supportgate && window.supportgate.decision && window.supportgate.decision.decision"
# The re-check is over: the wall's status line says the blocker is still on.
STILL_BLOCKED = """
() => {
  const root = window.__sgTest.shadows[0].querySelector("[data-sg-root]");
  return root.querySelector("[data-sg-status]").textContent === root.getAttribute("data-sg-msg-blocked");
}
"""
IN_WALL = "(action) => window.__sgTest.shadows[0].querySelector(`[data-sg-action=${action}]`).click()"


@dataclass
class Nginx:
    """A running nginx: its loopback port and its prefix directory."""

    port: int
    """The port it listens on, on 127.0.0.1; news.example:80 is mapped to it."""
    root: Path
    """Its prefix: config, logs, temp files and the site's pages."""

    def log(self, name: str) -> str:
        """One of its logs, for a failure's message."""
        path = self.root / name
        return path.read_text() if path.is_file() else ""


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """The gate, public as http://gate.example, trusting the proxy on 127.0.0.1, with the first-party site."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SUPPORTGATE_TRUSTED_PROXIES", "127.0.0.1/32")
        running = run_demo(tmp_path_factory.mktemp("first-party-gate"), origin=GATE_ORIGIN)
        service = running.__enter__()
    try:
        created = service.api.post(
            "/v1/admin/sites",
            json={
                "id": SITE,
                "name": "News Example",
                "origins": [ORIGIN],
                "policy": {"mode": "hard", "first_party_url": FIRST_PARTY},
            },
        )
        assert created.status_code == 201, created.text
        yield service
    finally:
        running.__exit__(None, None, None)


@pytest.fixture(scope="module")
def nginx(gate: Demo) -> Iterator[Nginx]:
    """Debian's nginx on a free loopback port, as nobody when the tests run as root, serving the site and /sg/."""
    binary = find_binary("nginx", untested="no first-party test")
    root = Path(tempfile.mkdtemp(prefix="sg-nginx-"))
    port = free_port()
    (root / "tmp").mkdir()
    (root / "site" / "articles").mkdir(parents=True)
    (root / "site" / ARTICLE.lstrip("/")).write_text(PAGE)
    server = NGINX_SERVER.format(root=root, port=port, gate=gate.port)
    (root / "nginx.conf").write_text(nginx_conf(root, root / "tmp", server))
    as_root = os.geteuid() == 0
    if as_root:
        for path in [root, *root.rglob("*")]:
            os.chown(path, NOBODY, NOBODY)
    process = subprocess.Popen(
        [binary, "-p", str(root), "-c", str(root / "nginx.conf"), "-e", str(root / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        user=NOBODY if as_root else None,
        group=NOBODY if as_root else None,
    )
    server = Nginx(port=port, root=root)
    try:
        _wait_until(lambda: _answers(f"http://127.0.0.1:{port}{ARTICLE}"), what="nginx", log=server.log)
        yield server
    finally:
        stop(process, signal.SIGTERM, timeout=10)
        shutil.rmtree(root, ignore_errors=True)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, headers={"Host": "news.example"}, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _wait_until(ready: Callable[[], bool], *, what: str, log: Callable[[str], str]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} did not answer:\n{log('error.log')}")


@pytest.fixture(scope="module")
def browsers(playwright: Any, nginx: Nginx, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Chromium with EasyList's blocker and Chromium without any, news.example mapped to nginx."""
    root = tmp_path_factory.mktemp("first-party-chromium")
    blocker = write_blocker_extension(EASYLIST, root / "extensions")
    contexts = {
        "easylist": launch_chromium(playwright, root / "easylist", port=nginx.port, extensions=[blocker]),
        "plain": launch_chromium(playwright, root / "plain", port=nginx.port),
    }
    try:
        _wait_for_blocker(contexts["easylist"])
        yield contexts
    finally:
        for context in contexts.values():
            context.close()


def _wait_for_blocker(context: Any) -> None:
    """Wait until EasyList's rules are active (they load just after the browser starts), on a page of the site."""
    page = context.new_page()
    try:
        page.goto(ORIGIN + "/")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            probe = "url => fetch(url, {cache: 'no-store'}).then(() => 'loaded', () => 'blocked')"
            if page.evaluate(probe, EASYLIST.blocked_probe) == "blocked":
                return
            time.sleep(0.1)
        raise AssertionError(f"EasyList's rules never blocked {EASYLIST.blocked_probe}")
    finally:
        page.close()


@dataclass
class Visit:
    """A page and every request it made, with the answers it got."""

    page: Any
    """The Playwright page."""
    requests: list[str]
    """Each request's URL, in order."""
    answers: dict[str, int]
    """The status of the last answer per URL path (query left out)."""
    failed: list[str]
    """URLs whose request failed (blocked, or the host unreachable)."""


def visit(context: Any) -> Visit:
    """Open the article in ``context`` with every request recorded; wait until gate.js has decided."""
    context.clear_cookies()
    page = context.new_page()
    page.add_init_script(WATCH_SCRIPT)
    seen = Visit(page=page, requests=[], answers={}, failed=[])
    page.on("request", lambda request: seen.requests.append(request.url))
    page.on("requestfailed", lambda request: seen.failed.append(request.url))
    page.on("response", lambda response: seen.answers.__setitem__(response.url.split("?")[0], response.status))
    page.goto(ORIGIN + ARTICLE)
    page.wait_for_function(DETECTED)
    page.wait_for_function("() => window.supportgate.ready.then(() => true)")
    return seen


def assert_first_party(seen: Visit) -> None:
    """Every request went to the site's origin, none to the gate's host or port."""
    assert seen.requests
    others = [url for url in seen.requests if not url.startswith(ORIGIN + "/")]
    assert others == [], others
    assert not [url for url in seen.requests if "gate.example" in url]


def test_blocked_reader_meets_the_wall_and_every_request_stays_first_party(
    browsers: dict[str, Any], nginx: Nginx
) -> None:
    """With EasyList the bait under /sg/ is blocked, the wall shows, and its events and report reach the gate."""
    seen = visit(browsers["easylist"])
    page = seen.page
    try:
        assert page.evaluate("window.supportgate.detection.result") == "blocked"
        page.wait_for_function(DECIDED)
        decision = page.evaluate("window.supportgate.decision")
        assert decision["decision"] == "wall"
        assert decision["interstitial_url"].startswith(f"{FIRST_PARTY}v1/sites/{SITE}/interstitial")
        page.wait_for_function("() => window.__sgTest.shadows.length === 1")
        assert page.evaluate("window.__sgTest.shadows[0].querySelector('[role=dialog]') !== null")
        assert page.evaluate("document.querySelector('main').closest('[inert]') !== null")
        base = f"{FIRST_PARTY}v1/sites/{SITE}"
        assert seen.answers[f"{base}/gate.js"] == 200
        assert seen.answers[f"{base}/probe.js"] == 200
        assert seen.answers[f"{FIRST_PARTY}v1/decide"] == 200
        assert seen.answers[f"{base}/interstitial"] == 200
        assert any(url.startswith(f"{base}/ads/show.js") for url in seen.failed), seen.failed

        with page.expect_response(f"{base}/events") as event:
            page.evaluate(IN_WALL, "recheck")
        assert event.value.status == 204
        page.wait_for_function(STILL_BLOCKED)
        with page.expect_response(f"{base}/reports") as report:
            page.evaluate(IN_WALL, "report")
        assert report.value.status == 202
        assert_first_party(seen)
    finally:
        page.close()
    # The proxy passed the requests on: the gate saw them only through nginx.
    assert f"GET /sg/v1/sites/{SITE}/gate.js" in nginx.log("access.log")


def test_clear_reader_sees_no_wall_and_every_request_stays_first_party(browsers: dict[str, Any]) -> None:
    """Without a blocker both probes load from the site's origin, decide allows, and no wall is placed."""
    seen = visit(browsers["plain"])
    page = seen.page
    try:
        assert page.evaluate("window.supportgate.detection.result") == "clear"
        page.wait_for_function(DECIDED)
        assert page.evaluate("window.supportgate.decision.decision") == "allow"
        assert page.evaluate("window.__sgTest.shadows.length") == 0
        assert page.evaluate("document.querySelector('supportgate-ui')") is None
        base = f"{FIRST_PARTY}v1/sites/{SITE}"
        assert seen.answers[f"{base}/ads/show.js"] == 200
        assert seen.answers[f"{FIRST_PARTY}v1/decide"] == 200
        assert_first_party(seen)
    finally:
        page.close()
