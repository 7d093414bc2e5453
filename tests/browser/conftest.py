"""Fixtures for the browser suite: the demo as a real process, headless Chromium with test blockers, axe-core.

The demo runs as ``python -m supportgate demo`` with ``SUPPORTGATE_PUBLIC_URL=http://news.example``,
and Chromium maps that host name to the demo's port, so the article pages, ``gate.js``, decide and
the interstitial are all on one real-looking origin. Each blocker kind gets one browser, reused by
the tests; each test gets a fresh page with the cookies cleared.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.processes import free_port, start_supportgate, stop, wait_ready

ROOT = Path(__file__).resolve().parents[2]
SHARED_ADBLOCK = ROOT.parent / "shared" / "adblock"
CHROMIUM = Path("/usr/bin/chromium")
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
HOST = "news.example"
ORIGIN = f"http://{HOST}"
SITE = "demo"
ARTICLE = "night-ferry-returns"
UPDATE_SCREENSHOTS = os.environ.get("SUPPORTGATE_UPDATE_SCREENSHOTS") == "1"

# Watches the page from before its first script: every shadow root attached (kept even when
# closed, so a test can look inside the wall) and every element made inert.
WATCH_SCRIPT = """
(() => {
  const watch = (window.__sgTest = { shadows: [], inerted: [] });
  const attach = Element.prototype.attachShadow;
  Element.prototype.attachShadow = function (init) {
    const root = attach.call(this, init);
    watch.shadows.push(root);
    return root;
  };
  new MutationObserver((changes) => {
    for (const change of changes) {
      if (change.target.inert) watch.inerted.push(change.target.nodeName);
    }
  }).observe(document, { subtree: true, attributes: true, attributeFilter: ["inert"] });
})();
"""


@dataclass(frozen=True)
class Blocker:
    """A test-only blocker extension: one of the shared filter lists, and optionally a cosmetic rule."""

    name: str
    """Its name, and the file in ``../shared/adblock`` whose rules it loads."""
    cosmetic: bool
    """Whether it also hides the elements EasyList's cosmetic rules hide (the bait's class names)."""
    blocked_probe: str
    """A path this list blocks for any request type; fetching it proves the rules are active."""


EASYLIST = Blocker("easylist", cosmetic=True, blocked_probe="/pgout.js")
EASYPRIVACY = Blocker("easyprivacy", cosmetic=False, blocked_probe="/analytics/rakuten.js")


def write_blocker_extension(blocker: Blocker, into: Path) -> Path:
    """Write ``blocker`` as an unpacked MV3 extension under ``into``, reading its rules from ../shared."""
    rules = SHARED_ADBLOCK / f"{blocker.name}.json"
    if not rules.is_file():
        pytest.skip(f"{rules.name} is not in ../shared/adblock (a checkout outside the workplace): no blocker")
    directory = into / f"{blocker.name}-blocker"
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(rules, directory / "rules.json")
    manifest: dict[str, Any] = {
        "manifest_version": 3,
        "name": f"supportgate test blocker ({blocker.name})",
        "version": "1.0",
        "permissions": ["declarativeNetRequest"],
        "host_permissions": ["<all_urls>"],
        "declarative_net_request": {
            "rule_resources": [{"id": blocker.name, "enabled": True, "path": "rules.json"}],
        },
    }
    if blocker.cosmetic:
        # EasyList's element-hiding rules are not in the DNR file; this is the one the bait meets.
        (directory / "cosmetic.css").write_text(".adsbox, .ad-banner { display: none !important; }\n")
        manifest["content_scripts"] = [
            {"matches": ["<all_urls>"], "css": ["cosmetic.css"], "run_at": "document_start", "all_frames": True}
        ]
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return directory


@dataclass
class Demo:
    """The running ``supportgate demo`` process and an admin client for its API."""

    port: int
    """The port it listens on, on 127.0.0.1."""
    admin_key: str
    """The admin API key it printed."""
    data_dir: Path
    """Its data dir."""
    origin: str = ORIGIN
    """Its public URL (``SUPPORTGATE_PUBLIC_URL``): the gate's and the demo site's origin."""
    api: httpx.Client = field(init=False)
    """A client for its API, sending the admin key."""
    anonymous: httpx.Client = field(init=False)
    """A client for its API, sending no credentials."""

    def __post_init__(self) -> None:
        base = f"http://127.0.0.1:{self.port}"
        self.api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {self.admin_key}"}, timeout=10)
        self.anonymous = httpx.Client(base_url=base, timeout=10)

    def url(self, path: str) -> str:
        """``path`` on the demo's public name, as the browser reaches it."""
        return f"{self.origin}{path}"

    def decide(self, **fields: Any) -> dict[str, Any]:
        """Ask decide as a browser on the demo site's origin would."""
        answer = self.anonymous.post(
            "/v1/decide",
            json={"site": SITE, "path": f"/demo/client/{ARTICLE}", **fields},
            headers={"Origin": self.origin},
        )
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result


@contextmanager
def run_demo(data_dir: Path, origin: str = ORIGIN) -> Iterator[Demo]:
    """``python -m supportgate demo`` on a free port with its own data dir, public as ``origin``; Ctrl-C stops it."""
    log = data_dir / "demo.log"
    port = free_port()
    env = {
        **os.environ,
        "SUPPORTGATE_DATA_DIR": str(data_dir),
        "SUPPORTGATE_PUBLIC_URL": origin,
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("SUPPORTGATE_REDIS_URL", None)
    process = start_supportgate("demo", "--port", str(port), env=env, log=log)
    try:
        banner = wait_ready(f"http://127.0.0.1:{port}", process, log, printed="admin API key", timeout=30, interval=0.1)
        key = re.search(r"admin API key\s+(\S+)", banner)
        assert key, banner
        service = Demo(port=port, admin_key=key.group(1), data_dir=data_dir, origin=origin)
        yield service
        service.api.close()
        service.anonymous.close()
    finally:
        stop(process, timeout=15, must_stop=True)


@pytest.fixture(scope="package")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """``python -m supportgate demo`` on a free port, public as http://news.example, stopped with Ctrl-C."""
    with run_demo(tmp_path_factory.mktemp("demo-data")) as service:
        yield service


@pytest.fixture(scope="package")
def playwright() -> Iterator[Any]:
    """Playwright's sync driver, or skip when Debian's Chromium is not installed.

    Package-scoped: the driver runs an event loop on the main thread while it lives, which the async
    tests after this package must not find running.
    """
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (`apt-get install chromium`; .ci/run installs it): no browser tests")
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - only once Chromium is known to be there

    with sync_playwright() as driver:
        yield driver


def launch_chromium(playwright: Any, user_data_dir: Path, *, port: int, extensions: Sequence[Path] = ()) -> Any:
    """A persistent headless Chromium context with ``extensions`` loaded and news.example mapped to ``port``.

    Any unpacked extension works here: the test blockers, and the supportgate extension itself.
    """
    args = [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--host-resolver-rules=MAP {HOST}:80 127.0.0.1:{port}",
    ]
    if extensions:
        joined = ",".join(str(path) for path in extensions)
        args += [f"--disable-extensions-except={joined}", f"--load-extension={joined}"]
    else:
        args.append("--disable-extensions")
    context = playwright.chromium.launch_persistent_context(
        str(user_data_dir),
        executable_path=str(CHROMIUM),
        headless=True,
        args=args,
        viewport={"width": 1280, "height": 900},
        locale="en-GB",
    )
    context.set_default_timeout(10_000)
    return context


class Browsers:
    """One Chromium per set of extensions, started on first use and shared by the suite's tests."""

    def __init__(self, playwright: Any, demo: Demo, root: Path) -> None:
        self._playwright = playwright
        self._demo = demo
        self._root = root
        self._contexts: dict[str, Any] = {}

    def context(self, name: str, extensions: Sequence[Path] = (), *, ready_probe: str | None = None) -> Any:
        """The browser called ``name`` with ``extensions``; ``ready_probe`` is a path its rules block."""
        if name not in self._contexts:
            context = launch_chromium(
                self._playwright, self._root / f"profile-{name}", port=self._demo.port, extensions=extensions
            )
            self._contexts[name] = context
            if ready_probe is not None:
                _wait_for_rules(context, self._demo.url(ready_probe))
        return self._contexts[name]

    def blocker(self, blocker: Blocker) -> Any:
        """The browser with ``blocker`` installed, its rules active."""
        extension = write_blocker_extension(blocker, self._root / "extensions")
        return self.context(blocker.name, [extension], ready_probe=blocker.blocked_probe)

    def close(self) -> None:
        """Close every browser started."""
        for context in self._contexts.values():
            context.close()


def _wait_for_rules(context: Any, blocked_url: str) -> None:
    """Wait until the extension's rules block ``blocked_url``: they load just after the browser starts."""
    page = context.new_page()
    try:
        page.goto(ORIGIN + "/demo/")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            outcome = page.evaluate(
                "url => fetch(url, {cache: 'no-store'}).then(() => 'loaded', () => 'blocked')", blocked_url
            )
            if outcome == "blocked":
                return
            time.sleep(0.1)
        raise AssertionError(f"the blocker's rules never blocked {blocked_url}")
    finally:
        page.close()


@pytest.fixture(scope="package")
def browsers(playwright: Any, demo: Demo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browsers]:
    """The suite's browsers, by blocker kind."""
    pool = Browsers(playwright, demo, tmp_path_factory.mktemp("chromium"))
    yield pool
    pool.close()


def _fresh_page(context: Any) -> Iterator[Any]:
    context.clear_cookies()
    page = context.new_page()
    page.add_init_script(WATCH_SCRIPT)
    yield page
    page.close()


@pytest.fixture
def easylist(browsers: Browsers) -> Iterator[Any]:
    """A fresh page in Chromium with the EasyList blocker (network rules and the cosmetic rule)."""
    yield from _fresh_page(browsers.blocker(EASYLIST))


@pytest.fixture
def easyprivacy(browsers: Browsers) -> Iterator[Any]:
    """A fresh page in Chromium with only the EasyPrivacy tracker blocker."""
    yield from _fresh_page(browsers.blocker(EASYPRIVACY))


@pytest.fixture
def no_blocker(browsers: Browsers) -> Iterator[Any]:
    """A fresh page in Chromium with no extension at all."""
    yield from _fresh_page(browsers.context("plain"))


@pytest.fixture(scope="package")
def axe_source() -> str:
    """axe-core's script, or skip when the JS dev dependencies are not installed."""
    if not AXE.is_file():
        pytest.skip("node_modules/axe-core is missing: run `npm ci` (.ci/run does) for the accessibility checks")
    return AXE.read_text()


@pytest.fixture(scope="package")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: docs/img with SUPPORTGATE_UPDATE_SCREENSHOTS=1, else a temporary dir."""
    if UPDATE_SCREENSHOTS:
        target = ROOT / "docs" / "img"
        target.mkdir(parents=True, exist_ok=True)
        return target
    return tmp_path_factory.mktemp("screenshots")
