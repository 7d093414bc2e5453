"""The admin console in real Chromium: sign-in, every form, axe-core on every page, the keyboard, sign-out.

With ``SUPPORTGATE_UPDATE_SCREENSHOTS=1`` the dashboard and the supporter list are written to
``docs/img/`` (committed); otherwise to a temporary dir.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Demo
from tests.browser.test_gate_browser import AXE_RUN

pytestmark = pytest.mark.browser

FOCUS = """
() => {
  const el = document.activeElement;
  const style = getComputedStyle(el);
  return { tag: el.tagName, id: el.id, text: el.textContent.trim(), href: el.getAttribute("href"),
           outline: style.outlineStyle, width: style.outlineWidth };
}
"""


def check_axe(page: Any, axe_source: str) -> None:
    """axe-core finds no serious or critical violation on the page as it is."""
    page.evaluate(axe_source + "\n;undefined")  # evaluated by the test: the console's policy runs no script
    results = page.evaluate(AXE_RUN)
    bad = [v for v in results["violations"] if v["impact"] in {"serious", "critical"}]
    assert bad == [], f"{page.url}: {bad}"


def sign_in(page: Any, demo: Demo, then: str = "/admin/") -> None:
    page.goto(demo.url(then))
    assert "/admin/login" in page.url
    page.get_by_label("Admin key").fill(demo.admin_key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(re.escape(demo.url(then)) + r"$"))


def test_every_console_page_and_form(no_blocker: Any, demo: Demo, axe_source: str, screenshots: Path) -> None:
    page = no_blocker
    for index, signal in enumerate(["blocked", "blocked", "clear", "clear", "clear", "inconclusive"]):
        demo.decide(adblock=signal, visitor=f"console-visitor-{index}")
    deadline = time.monotonic() + 10  # the stats buffer flushes each second
    while demo.api.get("/v1/admin/stats", params={"site": "demo"}).json()["totals"]["views"] < 6:
        assert time.monotonic() < deadline, "the page views never reached the stats"
        time.sleep(0.1)
    page.goto(demo.url("/admin/supporters"))
    assert "/admin/login?next=%2Fadmin%2Fsupporters" in page.url
    check_axe(page, axe_source)
    page.get_by_label("Admin key").fill("sga_wrong_key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("That is not a valid admin key")
    assert not [c for c in page.context.cookies() if c["name"] == "sg_console"]

    sign_in(page, demo)
    cookie = next(c for c in page.context.cookies() if c["name"] == "sg_console")
    assert (cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (True, "Strict", "/admin")
    assert page.locator("svg[role=img]").count() == 15
    expect(page.locator("table caption", has_text="The funnel")).to_have_count(1)
    assert re.match(r"Page views: [1-9]", page.locator(".chart-card h2").first.inner_text())
    check_axe(page, axe_source)
    page.get_by_label("Site").select_option("demo")
    page.get_by_label("Last 7 days").check()
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(re.compile(r"days=7"))
    assert "site=demo" in page.url
    assert "days=7" in page.url
    page.locator("details summary").first.click()
    assert page.locator("details table caption").first.inner_text() == "Page views per day"
    page.goto(demo.url("/admin/"))
    page.screenshot(path=screenshots / "console-dashboard.png", full_page=False, animations="disabled")
    supporter_forms(page, demo, axe_source, screenshots)
    tier_forms(page, demo, axe_source)
    site_forms(page, demo, axe_source)
    keys_audit_and_sign_out(page, demo, axe_source, cookie)


def supporter_forms(page: Any, demo: Demo, axe_source: str, screenshots: Path) -> None:
    """Supporters: grant, list, search, change, extend, activation code, revoke, restore, erase."""
    page.get_by_role("link", name="Supporters").click()
    page.wait_for_url(demo.url("/admin/supporters"))
    page.get_by_label("Email", exact=True).fill("browser.reader@example.com")
    page.get_by_label("Tier").nth(1).select_option("patron")
    page.get_by_label("Note", exact=True).fill("from the browser test")
    page.get_by_role("button", name="Grant").click()
    expect(page.get_by_role("status")).to_have_text("Supporter status granted.")
    check_axe(page, axe_source)
    supporter_url = page.url.split("?")[0]
    page.get_by_label("Note").fill("changed in the console")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Saved.")
    page.get_by_label("Extend by (days)").fill("30")
    page.get_by_role("button", name="Extend").click()
    expect(page.get_by_role("status")).to_have_text("Support extended.")
    page.get_by_role("button", name="Make an activation code").click()
    assert re.fullmatch(r"[0-9A-Z]{4}(-[0-9A-Z]{4}){3}", page.locator(".secret output").inner_text())
    page.get_by_role("button", name="Revoke").click()
    expect(page.get_by_role("status")).to_have_text("Supporter status revoked.")
    page.get_by_role("button", name="Restore").click()
    expect(page.get_by_role("status")).to_have_text("Supporter status restored.")

    page.goto(demo.url("/admin/supporters"))
    page.get_by_label("Email or note contains").fill("browser.reader")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"q=browser.reader"))
    expect(page.locator("tbody tr")).to_have_count(1)
    page.goto(demo.url("/admin/supporters"))
    check_axe(page, axe_source)
    page.screenshot(path=screenshots / "console-supporters.png", full_page=False, animations="disabled")

    page.goto(supporter_url + "/forget")
    check_axe(page, axe_source)
    page.get_by_label("Type the email address to confirm").fill("browser.reader@example.com")
    page.get_by_role("button", name="Erase").click()
    expect(page.get_by_role("status")).to_have_text("The supporter's data was erased.")
    assert demo.api.get("/v1/admin/supporters", params={"q": "browser.reader"}).json()["items"] == []


def tier_forms(page: Any, demo: Demo, axe_source: str) -> None:
    """Tiers: create, edit (with the Stripe prices that grant the tier)."""
    page.get_by_role("link", name="Tiers").click()
    page.wait_for_url(demo.url("/admin/tiers"))
    check_axe(page, axe_source)
    page.get_by_label("Id", exact=True).fill("browser-tier")
    page.get_by_label("Name").fill("Browser tier")
    page.get_by_label("Devices at once").fill("2")
    page.get_by_role("button", name="Create tier").click()
    expect(page.get_by_role("status")).to_have_text("Tier created.")
    check_axe(page, axe_source)
    page.get_by_label("Name").fill("Browser tier, renamed")
    page.get_by_label("Stripe prices").fill("price_1Qbrowser, price_1Qyearly")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Saved.")
    saved = demo.api.get("/v1/admin/tiers/browser-tier").json()
    assert saved["name"] == "Browser tier, renamed"
    assert saved["stripe_price_ids"] == ["price_1Qbrowser", "price_1Qyearly"]


def site_forms(page: Any, demo: Demo, axe_source: str) -> None:
    """Sites: create, change the policy, the wall's preview, a site key."""
    page.get_by_role("link", name="Sites").click()
    page.wait_for_url(demo.url("/admin/sites"))
    check_axe(page, axe_source)
    page.get_by_label("Id", exact=True).fill("browser-site")
    page.get_by_label("Name").fill("Browser site")
    page.get_by_label("Origins, one a line").fill("https://browser.example")
    page.get_by_role("button", name="Create site").click()
    expect(page.get_by_role("status")).to_have_text("Site created.")
    check_axe(page, axe_source)
    page.get_by_label("When a reader blocks ads").select_option("soft")
    page.get_by_label("Free views per period").fill("3")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Saved.")
    assert demo.api.get("/v1/admin/sites/browser-site").json()["policy"]["mode"] == "soft"
    page.get_by_role("button", name="Make a site key").click()
    assert page.locator(".secret output").inner_text().startswith("sgs_")
    check_axe(page, axe_source)
    page.get_by_role("button", name=re.compile("^Revoke site key ")).click()
    expect(page.get_by_role("status")).to_have_text("The site key was revoked.")
    assert demo.api.get("/v1/admin/sites/browser-site/keys").json()["items"] == []
    page.get_by_role("link", name="de", exact=True).click()
    page.wait_for_url(re.compile(r"\?preview=de#preview-h$"))
    preview = page.frame_locator("iframe.preview")
    expect(preview.locator("html")).to_have_attribute("lang", "de")
    expect(preview.get_by_role("dialog")).to_be_visible()
    page.get_by_role("link", name="Open the wall in de on its own").click()
    page.wait_for_url(re.compile(r"/interstitial\?lang=de$"))
    assert page.locator("html").get_attribute("lang") == "de"
    page.goto(demo.url("/admin/sites/browser-site/delete"))
    check_axe(page, axe_source)
    page.get_by_label("Type the site's id to confirm").fill("browser-site")
    page.get_by_role("button", name="Delete the site").click()
    expect(page.get_by_role("status")).to_have_text(re.compile("^The site was deleted"))
    assert demo.api.get("/v1/admin/sites/browser-site").status_code == 404


def keys_audit_and_sign_out(page: Any, demo: Demo, axe_source: str, cookie: dict[str, Any]) -> None:
    """Signing keys: rotate; the audit log shows the console's writes by the signed-in key; sign out."""
    page.goto(demo.url("/admin/keys"))
    check_axe(page, axe_source)
    page.get_by_label(re.compile("Rotate even if")).check()
    page.get_by_role("button", name="Rotate the signing keys").click()
    expect(page.get_by_role("status")).to_have_text("The signing keys were rotated.")
    page.get_by_role("link", name="Audit log").first.click()
    page.wait_for_url(demo.url("/admin/audit"))
    check_axe(page, axe_source)
    assert page.get_by_role("cell", name="admin:demo").count() >= 5
    page.get_by_label("Action").fill("site.delete")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"action=site.delete"))
    expect(page.locator("tbody tr")).to_have_count(1)
    check_axe(page, axe_source)
    page.get_by_role("link", name="API keys").click()
    page.wait_for_url(demo.url("/admin/api-keys"))
    check_axe(page, axe_source)
    assert page.get_by_text("(this session's)").count() == 1

    # Sign out: the session ends in the store; its cookie, put back, opens nothing.
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(demo.url("/admin/login"))
    page.context.add_cookies([cookie])
    page.goto(demo.url("/admin/"))
    assert "/admin/login" in page.url


def test_keyboard_only_sign_in_and_search(no_blocker: Any, demo: Demo) -> None:
    page = no_blocker
    page.goto(demo.url("/admin/"))
    page.keyboard.press("Tab")
    assert page.evaluate(FOCUS)["text"] == "Skip to the content"
    found = tab_to(page, lambda f: f["id"] == "key")
    assert found["outline"] != "none"
    page.keyboard.type(demo.admin_key)
    page.keyboard.press("Enter")
    page.wait_for_url(demo.url("/admin/"))
    tab_to(page, lambda f: f["text"] == "Supporters" and f["tag"] == "A")
    page.keyboard.press("Enter")
    page.wait_for_url(demo.url("/admin/supporters"))
    focus = tab_to(page, lambda f: f["id"] == "q")
    assert focus["outline"] != "none", "the focused field shows its focus"
    page.keyboard.type("reader@example.com")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"q=reader"))
    tab_to(page, lambda f: f["tag"] == "A" and (f["href"] or "").startswith("/admin/supporters/"))
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/admin/supporters/[0-9a-f-]+$"))
    tab_to(page, lambda f: f["text"] == "Sign out")
    page.keyboard.press("Enter")
    page.wait_for_url(demo.url("/admin/login"))


def tab_to(page: Any, wanted: Any, most: int = 60) -> dict[str, Any]:
    """Press Tab until the focused element is ``wanted``; what it is."""
    for _ in range(most):
        page.keyboard.press("Tab")
        focus: dict[str, Any] = page.evaluate(FOCUS)
        if wanted(focus):
            return focus
    raise AssertionError(f"Tab never reached it; last: {page.evaluate(FOCUS)}")
