"""The extension in real Firefox ESR: installed as a temporary add-on over WebDriver BiDi, sign-in, allow, no wall.

Debian's ``firefox-esr`` runs headless, driven by puppeteer-core over WebDriver BiDi from
``tests/browser/firefox/driver.mjs``; pytest talks to that script one step at a time (JSON lines on
its stdin and stdout), so the steps, the sign-in code read from the demo's mail and the assertions
all stay here, and one Firefox serves the whole module. The popup's selectors and texts live in
``tests/browser/firefox/ui.mjs``.

What differs from the Chromium suite:

- The extension is the Firefox build's test variant (``build_test_variant(..., browser="firefox")``):
  ``host_permissions`` for news.example, which Firefox grants at install to a temporary add-on, as
  automation cannot click a permission prompt.
- The EasyList test blocker is the same MV3 extension (declarativeNetRequest rules and the cosmetic
  rule), installed the same way.
- Firefox cannot map a host name to a port, so every ``http://`` request goes through a proxy on
  loopback that is the demo itself: it answers ``GET http://news.example/...`` as its own page.
- A fixed moz-extension:// host for the add-on (the ``extensions.webextensions.uuids`` pref) lets
  the driver open the popup as a page in a tab.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from supportgate.extension_build import build_test_variant
from tests.browser.conftest import ARTICLE, EASYLIST, HOST, ORIGIN, ROOT, SITE, Demo, write_blocker_extension
from tests.browser.test_extension_browser import emailed_code, new_supporter
from tests.node_deps import ensure_node_modules

pytestmark = pytest.mark.browser

FIREFOX = Path("/usr/bin/firefox-esr")
DRIVER = Path(__file__).parent / "firefox" / "driver.mjs"
PUPPETEER = ROOT / "node_modules" / "puppeteer-core" / "package.json"
ADDON_ID = "supportgate@supportgate.invalid"
BLOCKER_ID = "easylist-blocker@supportgate.invalid"
CLIENT = f"{ORIGIN}/demo/client/{ARTICLE}"
SERVER = f"{ORIGIN}/demo/server/{ARTICLE}"
STEP_TIMEOUT = 15.0
"""Seconds for one browser step inside the driver; pytest waits a little longer for its answer."""
START_TIMEOUT = 120.0
"""Seconds for Firefox to start, install both add-ons and be pointed at the gate."""


class Firefox:
    """The driver process and the Firefox it runs: one JSON command a line in, one answer a line out."""

    def __init__(self, process: subprocess.Popen[str], log: Path) -> None:
        self._process = process
        self._log = log
        self.started: dict[str, Any] = {}
        """What the driver said once Firefox was up: its ``version``, the ``installed`` add-ons, its ``pid``."""

    def start(self) -> None:
        """Wait for Firefox to be up, the add-ons installed and the extension pointed at the gate."""
        self.started = self._read(START_TIMEOUT, "starting Firefox")

    def step(self, name: str, timeout: float = STEP_TIMEOUT * 2 + 5, **args: Any) -> Any:
        """Run step ``name`` in the browser; its result, or a test failure naming what went wrong."""
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(json.dumps({"step": name, "args": args}) + "\n")
            self._process.stdin.flush()
        except OSError as error:
            raise AssertionError(f"step {name}: the Firefox driver is gone ({error})\n{self._tail()}") from None
        return self._read(timeout, f"step {name}")

    def _tail(self) -> str:
        return self._log.read_text()[-4000:]

    def _read(self, timeout: float, what: str) -> Any:
        assert self._process.stdout is not None
        ready, _, _ = select.select([self._process.stdout], [], [], timeout)
        line = self._process.stdout.readline() if ready else ""
        if not line:
            state = "exited" if self._process.poll() is not None else f"gave no answer in {timeout:.0f} s"
            raise AssertionError(f"{what}: the Firefox driver {state}\n{self._tail()}")
        try:
            answer: dict[str, Any] = json.loads(line)
        except json.JSONDecodeError:
            raise AssertionError(f"{what}: the Firefox driver printed {line!r}, not an answer") from None
        assert answer["ok"], f"{what} failed in Firefox: {answer['error']}"
        return answer["result"]

    def close(self) -> None:
        """Ask the driver to close Firefox; then kill what is left of the driver's and Firefox's process groups."""
        try:
            if self._process.poll() is None and self._process.stdin is not None:
                self._process.stdin.write(json.dumps({"step": "quit"}) + "\n")
                self._process.stdin.close()
            self._process.wait(timeout=15)
        except (OSError, subprocess.TimeoutExpired):
            pass
        finally:
            # puppeteer starts Firefox in a process group of its own; the driver's group holds the rest.
            for group in (self.started.get("pid"), self._process.pid):
                if group:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(group, signal.SIGKILL)
            self._process.wait(timeout=5)


def _node_modules() -> None:
    """puppeteer-core, installed by the session's `npm ci` (tests/node_deps.py)."""
    reason = ensure_node_modules()
    if reason is not None:
        pytest.skip(f"{reason}: no Firefox test")


@contextlib.contextmanager
def running_firefox(root: Path, **config: Any) -> Iterator[Firefox]:
    """The driver started with ``config``, Firefox up; closed on leaving. Skips when Firefox ESR or node is missing.

    ``config`` holds the driver's keys beside the ones set here: the Firefox binary, a fresh profile
    under ``root`` and the step timeout.
    """
    if not FIREFOX.exists():
        pytest.skip(f"{FIREFOX} is missing (`apt-get install firefox-esr`; .ci/run installs it): no Firefox test")
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is missing (`apt-get install nodejs`; .ci/run installs it): no Firefox test")
    _node_modules()
    (root / "profile").mkdir(parents=True)
    config = {
        "executablePath": str(FIREFOX),
        "profile": str(root / "profile"),
        "timeout": int(STEP_TIMEOUT * 1000),
        **config,
    }
    log = root / "driver.log"
    with log.open("w") as errors:
        process = subprocess.Popen(
            [node, str(DRIVER), json.dumps(config)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            start_new_session=True,
        )
    browser = Firefox(process, log)
    try:
        browser.start()
        yield browser
    finally:
        browser.close()


@pytest.fixture(scope="module")
def firefox(demo: Demo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Firefox]:
    """Firefox ESR with the extension's Firefox test build and the EasyList blocker, pointed at the demo's gate."""
    root = tmp_path_factory.mktemp("firefox")
    built = build_test_variant(ROOT / "extension", root / "dist", [f"http://{HOST}/*"], browser="firefox")
    blocker = write_blocker_extension(EASYLIST, root / "extensions")
    _give_id(blocker / "manifest.json", BLOCKER_ID)
    uuids = {ADDON_ID: str(uuid.uuid4()), BLOCKER_ID: str(uuid.uuid4())}
    with running_firefox(
        root,
        uuids=uuids,
        uuid=uuids[ADDON_ID],
        proxyPort=demo.port,
        extensions=[str(blocker), str(built.directory)],
        gate=ORIGIN,
        blockedProbe=EASYLIST.blocked_probe,
    ) as browser:
        yield browser


def _give_id(manifest_path: Path, addon_id: str) -> None:
    """Give the Chromium-style blocker a Gecko id, so Firefox installs it under a stable name (not a random one)."""
    manifest = json.loads(manifest_path.read_text())
    manifest["browser_specific_settings"] = {"gecko": {"id": addon_id}}
    manifest_path.write_text(json.dumps(manifest, indent=2))


def test_sign_in_allow_and_no_wall_in_firefox(firefox: Firefox, demo: Demo, screenshots: Path) -> None:
    """In Firefox ESR, EasyList's reader gets the wall; signed in from the popup, site allowed: no wall, a pass."""
    assert firefox.started["version"].startswith("firefox/")
    granted = firefox.step("permissions")
    assert f"http://{HOST}/*" in granted["origins"], f"the test build's host permission was not granted: {granted}"

    before = firefox.step("article", url=CLIENT)
    assert before["detection"] == "blocked", before
    assert (before["decision"], before["reason"], before["wall"]) == ("wall", "adblock", True), before
    assert firefox.step("serverArticle", url=SERVER) == {"decision": "wall", "reason": "adblock"}

    person = new_supporter(demo)
    firefox.step("requestCode", email=person["email"])
    firefox.step("enterCode", email=person["email"], code=emailed_code(demo, person["email"]))
    firefox.step("allow", site_name="The Daily Demo")
    firefox.step("screenshotPopup", path=str(screenshots / "popup-firefox.png"))

    after = firefox.step("article", url=CLIENT)
    assert (after["decision"], after["reason"], after["wall"]) == ("allow", "supporter", False), after
    assert after["detection"] == "blocked", "the blocker is still on: the pass, not the detection, lifts the wall"
    assert after["supporter"]["tier"] == "supporter", after
    held = firefox.step("hello", site=SITE)
    assert isinstance(held, str), "the handshake gave the page no pass"
    assert held
    assert demo.decide(adblock="blocked", **{"pass": held})["reason"] == "supporter"
    # The server-rendered route gets the pass in the Supportgate-Pass header (a declarativeNetRequest rule).
    assert firefox.step("serverArticle", url=SERVER) == {"decision": "allow", "reason": "supporter"}
