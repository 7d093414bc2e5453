"""Getting the extension in a real browser: the wall's link to the install page, the page itself, its screenshots.

The screenshots the install page shows are made here, from the zips the demo serves, loaded as a
reader would: Chromium's unpacked into Chromium, Firefox's as a temporary add-on into Firefox ESR
(the driver of ``test_firefox.py``). With ``SUPPORTGATE_UPDATE_SCREENSHOTS=1`` they are written into
the package's ``static/install/`` (committed); otherwise they go to a temporary dir, and the page's
images are checked to load.
"""

from __future__ import annotations

import io
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from supportgate.install.page import SCREENSHOTS
from tests.browser.conftest import ARTICLE, ROOT, UPDATE_SCREENSHOTS, Demo, launch_chromium
from tests.browser.test_firefox import ADDON_ID, running_firefox
from tests.browser.test_gate_browser import AXE_RUN, WALL_DIALOG, visit_client

pytestmark = pytest.mark.browser

CLIENT = f"/demo/client/{ARTICLE}"
INSTALL_IMAGES = ROOT / "src" / "supportgate" / "static" / "install"
# The wall's install link and status, from the shadow root gate.js attached (kept by the test's watch script).
WALL_LINK = """
() => {
  const root = window.__sgTest.shadows.find((r) => r.querySelector("[data-sg-install]"));
  const holder = root.querySelector("[data-sg-install]");
  return {
    hidden: holder.hidden,
    shown: holder.getClientRects().length > 0,
    href: holder.querySelector("a").href,
    status: root.querySelector("[data-sg-status]").textContent,
    noext: root.querySelector("[data-sg-root]").getAttribute("data-sg-msg-noext"),
  };
}
"""
CLICK_IN_WALL = """
(selector) => window.__sgTest.shadows.map((r) => r.querySelector(selector)).find(Boolean).click()
"""
IMAGES_LOADED = """
() => [...document.images].every((image) => image.complete)
  && [...document.images].map((image) => [image.getAttribute("src"), image.naturalWidth])
"""


def poll(page: Any, script: str, what: str, timeout: float = 10) -> Any:
    """What ``script`` returns once truthy, polled from here: the page's CSP stops wait_for_function's eval."""
    deadline = time.monotonic() + timeout
    while not (found := page.evaluate(script)):
        assert time.monotonic() < deadline, f"{what}: still {found!r} after {timeout} s"
        time.sleep(0.05)
    return found


def test_the_walls_sign_in_without_an_extension_leads_to_the_install_page(easylist: Any, demo: Demo) -> None:
    """Without the extension, the wall's sign-in says none answered and shows a link that reaches the install page."""
    visit_client(easylist, demo)
    poll(easylist, f"() => Boolean(({WALL_DIALOG})())", "the wall")
    before = easylist.evaluate(WALL_LINK)
    assert before["hidden"]
    assert not before["shown"]
    easylist.evaluate(CLICK_IN_WALL, '[data-sg-action="signin"]')
    poll(easylist, f"() => ({WALL_LINK})().shown", "the install link")
    after = easylist.evaluate(WALL_LINK)
    assert after["status"] == after["noext"]
    assert after["href"] == demo.url("/extension?site=demo")
    with easylist.expect_navigation():
        easylist.evaluate(CLICK_IN_WALL, "[data-sg-install] a")
    assert easylist.url == demo.url("/extension?site=demo")
    assert easylist.locator("h1").inner_text() == "Support The Daily Demo: get the supportgate extension"
    download = easylist.locator('a[data-browser="chromium"]').get_attribute("href")
    fetched = easylist.evaluate("url => fetch(url).then((r) => [r.status, r.headers.get('content-type')])", download)
    assert fetched == [200, "application/zip"]


def test_the_install_page_passes_axe_and_fits_a_phone(no_blocker: Any, demo: Demo, axe_source: str) -> None:
    """axe-core finds no serious or critical violation; on a phone nothing scrolls sideways and the images load."""
    no_blocker.set_viewport_size({"width": 360, "height": 740})
    no_blocker.goto(demo.url("/extension?site=demo"))
    loaded = poll(no_blocker, IMAGES_LOADED, "the page's images")
    assert [src for src, _ in loaded] == [f"extension/img/{name}" for name in SCREENSHOTS]
    assert all(width > 0 for _, width in loaded), loaded
    assert no_blocker.evaluate("document.documentElement.scrollWidth") <= 360
    no_blocker.evaluate(axe_source + "\n;undefined")  # evaluated by the test, outside the page's CSP
    results = no_blocker.evaluate(AXE_RUN)
    assert [v for v in results["violations"] if v["impact"] in {"serious", "critical"}] == []
    no_blocker.keyboard.press("Tab")
    focused = no_blocker.evaluate("document.activeElement.getAttribute('data-browser')")
    assert focused == "chromium", "the first stop of the keyboard is the first download"


@pytest.fixture
def installed(playwright: Any, demo: Demo, tmp_path: Path) -> Iterator[tuple[Any, str]]:
    """Chromium with the demo's own Chromium zip unzipped and loaded unpacked, as the install page says; its id."""
    answer = demo.anonymous.get("/extension/supportgate-chromium.zip")
    assert answer.status_code == 200, answer.text
    unpacked = tmp_path / "supportgate-chromium"
    with zipfile.ZipFile(io.BytesIO(answer.content)) as bundle:
        bundle.extractall(unpacked)
    context = launch_chromium(playwright, tmp_path / "profile", port=demo.port, extensions=[unpacked])
    try:
        worker = next((w for w in context.service_workers if "/background/main.js" in w.url), None)
        if worker is None:
            worker = context.wait_for_event("serviceworker", predicate=lambda w: "/background/main.js" in w.url)
        yield context, worker.url.split("/")[2]
    finally:
        context.close()


def test_the_downloaded_zip_loads_and_gives_the_pages_screenshots(installed: tuple[Any, str], tmp_path: Path) -> None:
    """The served zip loads unpacked with Developer mode on, and its popup opens: the install page's two pictures."""
    context, extension_id = installed
    target = INSTALL_IMAGES if UPDATE_SCREENSHOTS else tmp_path
    page = context.new_page()
    page.set_viewport_size({"width": 760, "height": 430})
    page.goto("chrome://extensions")
    toggle = page.locator("extensions-manager extensions-toolbar #devMode")
    toggle.click()
    page.locator("extensions-manager extensions-toolbar #loadUnpacked").wait_for()
    card = page.locator(f"extensions-manager extensions-item#{extension_id}")
    card.wait_for()
    assert "supportgate" in card.locator("#name").inner_text()
    page.screenshot(path=target / "chromium-extensions.png", animations="disabled")

    popup = context.new_page()
    popup.set_viewport_size({"width": 380, "height": 100})
    popup.goto(f"chrome-extension://{extension_id}/popup/popup.html")
    popup.wait_for_selector("body[data-ready=true]")
    popup.screenshot(path=target / "popup-signin.png", full_page=True, animations="disabled")
    for name in ("chromium-extensions.png", "popup-signin.png"):
        size = (target / name).stat().st_size
        assert size < 100_000, f"{name} is {size} bytes"


FIREFOX_UUID = "5e0c3b7a-1d2f-4a8b-9c6d-2f4e6a8b0c1d"
"""The add-on's moz-extension:// host in the pictures (about:debugging shows it), fixed: a refresh keeps it."""


def test_the_served_firefox_zip_loads_as_a_temporary_add_on_and_gives_the_pages_screenshots(
    demo: Demo, tmp_path: Path
) -> None:
    """The served Firefox zip installs as a temporary add-on; about:debugging and about:addons list it: two pictures."""
    target = INSTALL_IMAGES if UPDATE_SCREENSHOTS else tmp_path
    answer = demo.anonymous.get("/extension/supportgate-firefox.zip")
    assert answer.status_code == 200, answer.text
    # about:debugging shows where the add-on was loaded from: a short folder of its own, not the test's.
    with tempfile.TemporaryDirectory() as downloads:
        zipped = Path(downloads) / "supportgate-firefox.zip"
        zipped.write_bytes(answer.content)
        with running_firefox(
            tmp_path / "firefox", uuids={ADDON_ID: FIREFOX_UUID}, uuid=FIREFOX_UUID, extensions=[]
        ) as firefox:
            # BiDi's webExtension.install of a file is AddonManager.installTemporaryAddon, what
            # about:debugging's "Load Temporary Add-on…" calls with the file the reader picks.
            assert firefox.step("installAddon", path=str(zipped)) == ADDON_ID
            debugging = firefox.step("aboutDebugging", addon="supportgate", path=str(target / "firefox-debugging.png"))
            addons = firefox.step("aboutAddons", id=ADDON_ID, path=str(target / "firefox-addons.png"))
    assert debugging["pane"] == "Temporary Extensions (1)", debugging
    assert "supportgate-firefox.zip" in debugging["card"], debugging
    assert ADDON_ID in debugging["card"], debugging
    assert addons["heading"] == "Manage Your Extensions", addons
    assert (addons["name"], addons["enabled"]) == ("supportgate", True), addons
    for name, shown in (("firefox-debugging.png", debugging), ("firefox-addons.png", addons)):
        head = (target / name).read_bytes()
        assert head.startswith(b"\x89PNG\r\n\x1a\n"), name
        assert len(head) < 100_000, f"{name} is {len(head)} bytes"
        assert (shown["clip"]["width"], shown["clip"]["height"]) == (
            int.from_bytes(head[16:20], "big"),
            int.from_bytes(head[20:24], "big"),
        ), f"{name} is not the cropped part"
