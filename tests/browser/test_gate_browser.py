"""The gate in a real browser: the demo site, real filter lists in test blockers, gate.js, decide and the wall."""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest

from supportgate.demo.articles import ARTICLES
from tests.browser.conftest import ARTICLE, HOST, SITE, Demo

pytestmark = pytest.mark.browser

CLIENT = f"/demo/client/{ARTICLE}"
SERVER = f"/demo/server/{ARTICLE}"
FIRST_WORDS = ARTICLES[0].paragraphs[0][:60]

# The innermost focused element, looking into the shadow roots the page attached (closed ones too).
DEEP_ACTIVE = """
() => {
  let element = document.activeElement;
  for (;;) {
    const root = window.__sgTest.shadows.find((r) => r.host === element);
    if (!root || !root.activeElement) return element;
    element = root.activeElement;
  }
}
"""
# The wall's dialog, in the page or in a shadow root gate.js attached.
WALL_DIALOG = """
() => document.querySelector('[role="dialog"]')
  || window.__sgTest.shadows.map((r) => r.querySelector('[role="dialog"]')).find(Boolean)
  || null
"""
FOCUS_REPORT = f"""
() => {{
  const active = ({DEEP_ACTIVE})();
  const dialog = ({WALL_DIALOG})();
  const style = getComputedStyle(active);
  return {{
    inDialog: Boolean(dialog && dialog.contains(active)),
    label: (active.getAttribute("aria-label") || active.textContent || active.nodeName).trim(),
    visible: active.matches(":focus-visible")
      && (style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0 || style.boxShadow !== "none"),
  }};
}}
"""
# A live region in the wall says, in the wall's own words, that the blocker is still on.
ANNOUNCED_BLOCKED = """
() => window.__sgTest.shadows.some((root) => {
  const words = root.querySelector("[data-sg-msg-blocked]")?.getAttribute("data-sg-msg-blocked");
  return Boolean(words) && [...root.querySelectorAll('[role="status"], [role="alert"], [aria-live]')]
    .some((region) => region.textContent.trim() === words);
})
"""
DETECTED = "() => window.supportgate && window.supportgate.detection && window.supportgate.detection.result"
# A server-rendered page gate.js will not reload: detection agrees with what the server assumed,
# or half a second has passed since detection without a reload.
SERVER_SETTLED = f"""
() => {{
  const script = document.querySelector('script[data-mode="server"]');
  const result = ({DETECTED})();
  if (!result || !script) return false;
  if (script.dataset.assumed === result) return true;
  window.__sgTest.detectedAt ??= performance.now();
  return performance.now() - window.__sgTest.detectedAt > 500;
}}
"""
# Test-only: the wall's shadow root is opened so axe-core can look inside it.
OPEN_SHADOWS = """
(() => {
  const attach = Element.prototype.attachShadow;
  Element.prototype.attachShadow = function (init) { return attach.call(this, { ...init, mode: "open" }); };
})();
"""
AXE_RUN = """
async () => {
  const results = await axe.run(document);
  const nodes = (rule) => rule.nodes.map((n) => n.target);
  return {
    violations: results.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: nodes(v) })),
    // A target inside a shadow root is a list of selectors, host first.
    shadowChecks: results.passes.flatMap(nodes).filter((target) => Array.isArray(target[0])).length,
  };
}
"""


def is_decide(response: Any) -> bool:
    return response.url.endswith("/v1/decide") and response.request.method == "POST"


def visit_client(page: Any, demo: Demo, path: str = CLIENT) -> dict[str, Any]:
    """Open a client-side article and return decide's answer for it."""
    with page.expect_response(is_decide) as decided:
        page.goto(demo.url(path))
    assert decided.value.status == 200, decided.value.text()
    answer: dict[str, Any] = decided.value.json()
    return answer


def visit_server(page: Any, demo: Demo, path: str = SERVER) -> dict[str, Any]:
    """Open a server-side article, let gate.js settle (and reload once if it must), and read the decision."""
    loads: list[str] = []

    def loaded(frame: Any) -> None:
        if frame == page.main_frame:
            loads.append(frame.url)

    page.on("framenavigated", loaded)
    try:
        page.goto(demo.url(path))
        page.wait_for_function(SERVER_SETTLED)
    finally:
        page.remove_listener("framenavigated", loaded)
    main = page.locator("main")
    return {
        "decision": main.get_attribute("data-sg-decision"),
        "reason": main.get_attribute("data-sg-reason"),
        "pass_error": main.get_attribute("data-sg-pass-error"),
        "loads": len(loads),
    }


def detection(page: Any) -> dict[str, Any]:
    page.wait_for_function(DETECTED)
    result: dict[str, Any] = page.evaluate("window.supportgate.detection")
    return result


def wall_is_up(page: Any) -> bool:
    return bool(page.evaluate(f"Boolean(({WALL_DIALOG})())"))


def wait_for_wall(page: Any) -> None:
    page.wait_for_function(f"Boolean(({WALL_DIALOG})())")


def no_overlay_ever(page: Any) -> None:
    """Nothing was attached over the page, nothing made inert, and the headline is what is on top."""
    watched = page.evaluate("({shadows: window.__sgTest.shadows.length, inerted: window.__sgTest.inerted})")
    assert watched == {"shadows": 0, "inerted": []}
    on_top = page.evaluate(
        """() => {
          const headline = document.querySelector("h1");
          const box = headline.getBoundingClientRect();
          return headline.contains(document.elementFromPoint(box.x + box.width / 2, box.y + box.height / 2));
        }"""
    )
    assert on_top, "something covers the headline"
    assert not wall_is_up(page)


def set_adblock_cookie(page: Any, value: str) -> None:
    """What gate.js would have set on an earlier page view."""
    page.context.add_cookies([{"name": "sg_adblock", "value": value, "domain": HOST, "path": "/"}])


def pass_for(demo: Demo, site: str) -> str:
    """A fresh supporter's pass for ``site``: grant, activation code, sign-in, pass."""
    email = f"reader-{secrets.token_hex(4)}@example.com"
    granted = demo.api.post("/v1/admin/supporters", json={"email": email, "tier": "supporter"})
    assert granted.status_code == 201, granted.text
    code = demo.api.post(f"/v1/admin/supporters/{granted.json()['id']}/activation-codes")
    assert code.status_code == 201, code.text
    signed_in = demo.anonymous.post("/v1/auth/activate", json={"code": code.json()["code"], "device": "Browser test"})
    assert signed_in.status_code == 200, signed_in.text
    issued = demo.anonymous.post(
        "/v1/passes", json={"site": site}, headers={"Authorization": f"Bearer {signed_in.json()['access_token']}"}
    )
    assert issued.status_code in {200, 201}, issued.text
    token: str = issued.json()["pass"]
    return token


def wait_for_policy(demo: Demo, expected_reason: str) -> None:
    """Poll decide until a new visitor who blocks ads gets ``expected_reason``: the site cache lives ≤ 5 s."""
    deadline = time.monotonic() + 10
    while True:
        answer = demo.decide(adblock="blocked", visitor=secrets.token_urlsafe(12))
        if answer["reason"] == expected_reason:
            return
        assert time.monotonic() < deadline, f"decide still answers {answer} after the policy change"
        time.sleep(0.2)


def test_easylist_walls_the_client_route(easylist: Any, demo: Demo, screenshots: Any) -> None:
    """With EasyList, gate.js finds the blocker after load, decide walls, and the page underneath goes inert."""
    answer = visit_client(easylist, demo)
    assert (answer["decision"], answer["reason"]) == ("wall", "adblock")
    found = detection(easylist)
    assert found["result"] == "blocked", found
    wait_for_wall(easylist)
    assert easylist.evaluate("document.querySelector('main').closest('[inert]') !== null")
    easylist.evaluate(
        "() => Promise.all(window.__sgTest.shadows.flatMap((r) => r.getAnimations()).map((a) => a.finished))"
    )
    easylist.screenshot(path=screenshots / "wall.png")


def test_easylist_walls_the_server_route(easylist: Any, demo: Demo) -> None:
    """With EasyList, gate.js sets the cookie and reloads once, and the server then sends the wall, not the article."""
    decided = visit_server(easylist, demo)
    assert (decided["decision"], decided["reason"], decided["loads"]) == ("wall", "adblock", 2)
    cookies = {c["name"]: c["value"] for c in easylist.context.cookies(demo.url("/"))}
    assert cookies["sg_adblock"] == "blocked"
    assert wall_is_up(easylist)
    assert FIRST_WORDS not in easylist.content(), "the walled article's text was sent"


def test_easyprivacy_is_no_ad_blocker_on_the_client_route(easyprivacy: Any, demo: Demo) -> None:
    """A tracker blocker alone is not taken for an ad blocker: clear, allowed, no wall."""
    answer = visit_client(easyprivacy, demo)
    assert (answer["decision"], answer["reason"]) == ("allow", "no_adblock")
    assert detection(easyprivacy)["result"] == "clear"
    no_overlay_ever(easyprivacy)


def test_easyprivacy_is_no_ad_blocker_on_the_server_route(easyprivacy: Any, demo: Demo) -> None:
    """A tracker blocker alone gets the full server-rendered article."""
    decided = visit_server(easyprivacy, demo)
    assert (decided["decision"], decided["reason"]) == ("allow", "no_adblock")
    assert easyprivacy.get_by_text(FIRST_WORDS).is_visible()
    assert not wall_is_up(easyprivacy)


def test_no_blocker_sees_the_article_at_once_and_never_a_wall(no_blocker: Any, demo: Demo, screenshots: Any) -> None:
    """Without a blocker the article shows at DOMContentLoaded, before detection ends, and no overlay ever comes."""
    held: list[Any] = []
    released = False

    def hold_control(route: Any) -> None:
        if released:
            route.continue_()
        else:
            held.append(route)

    no_blocker.route("**/v1/sites/demo/probe.js*", hold_control)
    no_blocker.goto(demo.url(CLIENT), wait_until="domcontentloaded")
    assert no_blocker.get_by_text(FIRST_WORDS).is_visible()
    assert not no_blocker.evaluate(DETECTED), "detection finished before the content check"
    with no_blocker.expect_response(is_decide) as decided:
        no_blocker.wait_for_load_state("load")
        deadline = time.monotonic() + 5
        while not held and time.monotonic() < deadline:
            no_blocker.wait_for_timeout(20)
        assert held, "gate.js never asked for the control probe"
        assert not no_blocker.evaluate(DETECTED), "detection finished without its control probe"
        released = True
        for route in held:
            route.continue_()
    assert (decided.value.json()["decision"], decided.value.json()["reason"]) == ("allow", "no_adblock")
    assert detection(no_blocker)["result"] == "clear"
    no_overlay_ever(no_blocker)
    no_blocker.screenshot(path=screenshots / "demo-article.png")


def test_failed_control_and_bait_are_inconclusive_and_never_wall(easylist: Any, demo: Demo) -> None:
    """When the control and the bait both fail the result is inconclusive, and there is no wall on doubt."""
    easylist.route("**/v1/sites/demo/probe.js*", lambda route: route.abort())
    easylist.route("**/v1/sites/demo/ads/show.js*", lambda route: route.abort())
    answer = visit_client(easylist, demo)
    assert (answer["decision"], answer["reason"]) == ("allow", "inconclusive")
    assert easylist.evaluate("window.supportgate.detection.result") == "inconclusive"
    assert not wall_is_up(easylist)


# How long the check under way (or a new one) takes to settle; "hung" if not within 8 s.
RECHECK_TIMED = """
async () => {
  const started = performance.now();
  const hung = new Promise((resolve) => setTimeout(resolve, 8000, "hung"));
  const decision = await Promise.race([window.supportgate.recheck(), hung]);
  return {decision, seconds: (performance.now() - started) / 1000};
}
"""


@contextlib.contextmanager
def never_answered(page: Any, pattern: str) -> Iterator[list[Any]]:
    """Requests matching ``pattern`` are held unanswered (the gate hangs); the list of those held."""
    held: list[Any] = []

    def hold(route: Any) -> None:
        held.append(route)

    page.route(pattern, hold)
    try:
        yield held
    finally:
        for route in held:
            route.abort()
        page.unroute(pattern, hold)


def test_a_decide_that_hangs_is_given_up_on_and_walls_nothing(easylist: Any, demo: Demo) -> None:
    """When the gate does not answer decide, gate.js gives up after 1.5 s: no decision, no wall, the article stays."""
    with never_answered(easylist, "**/v1/decide") as held:
        easylist.goto(demo.url(CLIENT))
        detection(easylist)
        settled = easylist.evaluate(RECHECK_TIMED)
        assert settled["decision"] is None
        assert held, "decide was asked"
        no_overlay_ever(easylist)


def test_a_wall_that_does_not_arrive_is_given_up_on(easylist: Any, demo: Demo) -> None:
    """When decide says wall but the wall's markup never comes, gate.js gives up after 1.5 s and shows nothing."""
    with never_answered(easylist, "**/v1/sites/demo/interstitial*") as held:
        assert visit_client(easylist, demo)["decision"] == "wall"
        settled = easylist.evaluate(RECHECK_TIMED)
        assert settled["decision"] != "hung"
        assert settled["decision"]["decision"] == "wall"
        assert held, "the wall was asked for"
        no_overlay_ever(easylist)


def test_a_valid_pass_lets_a_supporter_through_the_server_route(easylist: Any, demo: Demo) -> None:
    """A supporter's pass in the Supportgate-Pass header beats the blocker: the server sends the article."""
    easylist.set_extra_http_headers({"Supportgate-Pass": pass_for(demo, SITE)})
    set_adblock_cookie(easylist, "blocked")
    decided = visit_server(easylist, demo)
    assert (decided["decision"], decided["reason"]) == ("allow", "supporter")
    assert easylist.get_by_text(FIRST_WORDS).is_visible()
    assert not wall_is_up(easylist)


@pytest.fixture(scope="module")
def elsewhere(demo: Demo) -> str:
    """A second site, so a pass can be for the wrong one."""
    created = demo.api.post(
        "/v1/admin/sites", json={"id": "elsewhere", "name": "Elsewhere", "origins": ["http://elsewhere.example"]}
    )
    assert created.status_code in {201, 409}, created.text
    return "elsewhere"


def test_a_pass_for_another_site_is_anonymous_and_walled(easylist: Any, demo: Demo, elsewhere: str) -> None:
    """A pass for another site does not unlock this one, on either route: the wall, with pass_error wrong_audience."""
    easylist.set_extra_http_headers({"Supportgate-Pass": pass_for(demo, elsewhere)})
    answer = visit_client(easylist, demo)
    assert (answer["decision"], answer["reason"]) == ("wall", "adblock")
    assert answer["pass_error"] == "wrong_audience"
    wait_for_wall(easylist)
    set_adblock_cookie(easylist, "blocked")
    decided = visit_server(easylist, demo)
    assert (decided["decision"], decided["pass_error"]) == ("wall", "wrong_audience")


@pytest.fixture(scope="class")
def two_free_views(request: pytest.FixtureRequest, demo: Demo) -> Iterator[None]:
    """The demo site's policy gives two free views, for the class's tests; reset afterwards."""
    request.getfixturevalue("browsers")  # skip, as the tests will, before the policy changes
    patched = demo.api.patch(f"/v1/admin/sites/{SITE}", json={"policy": {"free_views": 2}})
    assert patched.status_code == 200, patched.text
    wait_for_policy(demo, "metered")
    yield
    demo.api.patch(f"/v1/admin/sites/{SITE}", json={"policy": {"free_views": 0}})
    wait_for_policy(demo, "adblock")


@pytest.mark.usefixtures("two_free_views")
class TestMetering:
    """Free views before the wall, counted per visitor."""

    def test_client_route_counts_two_free_views(self, easylist: Any, demo: Demo) -> None:
        """gate.js's visitor id is metered: two views are allowed as metered, the third is walled."""
        easylist.goto(demo.url("/demo/"))
        easylist.evaluate("localStorage.removeItem('sg_visitor')")
        answers = [visit_client(easylist, demo) for _ in range(3)]
        assert [(a["decision"], a["reason"]) for a in answers] == [
            ("allow", "metered"),
            ("allow", "metered"),
            ("wall", "adblock"),
        ]
        assert [a["meter"]["used"] for a in answers] == [1, 2, 2]
        wait_for_wall(easylist)

    def test_server_route_counts_two_free_views(self, easylist: Any, demo: Demo) -> None:
        """The demo backend's visitor cookie is metered: two views are allowed as metered, the third is walled."""
        set_adblock_cookie(easylist, "blocked")
        decided = [visit_server(easylist, demo) for _ in range(3)]
        assert [(d["decision"], d["reason"]) for d in decided] == [
            ("allow", "metered"),
            ("allow", "metered"),
            ("wall", "adblock"),
        ]


def test_the_wall_passes_axe(easylist: Any, demo: Demo, axe_source: str) -> None:
    """axe-core finds no serious or critical violation on the page with the wall up (its shadow root opened for axe)."""
    easylist.add_init_script(OPEN_SHADOWS)
    visit_client(easylist, demo)
    wait_for_wall(easylist)
    easylist.evaluate(axe_source + "\n;undefined")  # evaluated by the test, outside the page's CSP
    results = easylist.evaluate(AXE_RUN)
    assert results["shadowChecks"] > 0, "axe-core did not look inside the wall's shadow root"
    assert [v for v in results["violations"] if v["impact"] in {"serious", "critical"}] == []


def test_the_server_rendered_wall_passes_axe(easylist: Any, demo: Demo, axe_source: str) -> None:
    """axe-core finds no serious or critical violation on the server-rendered wall."""
    set_adblock_cookie(easylist, "blocked")
    assert visit_server(easylist, demo)["decision"] == "wall"
    easylist.evaluate(axe_source + "\n;undefined")  # evaluated by the test, outside the page's CSP
    results = easylist.evaluate(AXE_RUN)
    assert [v for v in results["violations"] if v["impact"] in {"serious", "critical"}] == []


def test_the_wall_works_from_the_keyboard(easylist: Any, demo: Demo) -> None:
    """Focus starts and stays in the wall, visibly; Escape keeps it; Enter on "check again" re-detects and says so."""
    visit_client(easylist, demo)
    wait_for_wall(easylist)
    assert easylist.evaluate(FOCUS_REPORT)["inDialog"], "the wall opened without taking focus"
    seen = []
    for _ in range(10):
        easylist.keyboard.press("Tab")
        focus = easylist.evaluate(FOCUS_REPORT)
        assert focus["inDialog"], f"Tab left the wall for {focus['label']!r}"
        assert focus["visible"], f"no visible focus on {focus['label']!r}"
        seen.append(focus["label"])
    assert len(set(seen)) < len(seen), f"Tab did not cycle inside the wall: {seen}"
    for _ in range(len(seen)):
        easylist.keyboard.press("Shift+Tab")
        assert easylist.evaluate(FOCUS_REPORT)["inDialog"], "Shift+Tab left the wall"
    easylist.keyboard.press("Escape")
    assert wall_is_up(easylist), "Escape closed the wall"

    for _ in range(len(set(seen))):
        if "check again" in easylist.evaluate(FOCUS_REPORT)["label"].lower():
            break
        easylist.keyboard.press("Tab")
    assert "check again" in easylist.evaluate(FOCUS_REPORT)["label"].lower(), seen
    with (
        easylist.expect_request(lambda request: "/v1/sites/demo/probe.js" in request.url),
        easylist.expect_response(is_decide) as decided,
    ):
        easylist.keyboard.press("Enter")
    assert decided.value.json()["decision"] == "wall"
    assert wall_is_up(easylist)
    easylist.wait_for_function(ANNOUNCED_BLOCKED)


# The funnel: what readers do after the wall, counted per site and day

FUNNEL = ("rechecks", "allowlisted", "support_clicks", "signin_clicks", "nag_dismissals")
BAIT = "**/v1/sites/demo/ads/show.js*"
# Presses one of the wall's buttons inside the shadow root gate.js attached.
PRESS = """
(action) => window.__sgTest.shadows
  .map((root) => root.querySelector(`[data-sg-action="${action}"]`))
  .find(Boolean)
  .click()
"""
WALL_SAYS = """
() => window.__sgTest.shadows.some((root) => root.querySelector("[data-sg-status]")?.textContent.trim())
"""

# No dialog left in the page (a closed one's shadow root stays in the list, detached). A function, not
# an expression: the demo's CSP refuses the eval Playwright polls an expression with.
WALL_GONE = """
() => !window.__sgTest.shadows.some((root) => root.host.isConnected && root.querySelector('[role="dialog"]'))
"""


def funnel(demo: Demo) -> dict[str, int]:
    """The demo site's funnel counters today, from the admin stats."""
    answer = demo.api.get("/v1/admin/stats", params={"site": SITE, "days": 1})
    assert answer.status_code == 200, answer.text
    totals = answer.json()["totals"]
    return {name: totals[name] for name in FUNNEL}


def settled_funnel(demo: Demo) -> dict[str, int]:
    """The funnel counters once earlier tests' events are flushed: the same on two reads over a second apart."""
    last = funnel(demo)
    while True:
        time.sleep(1.5)
        now = funnel(demo)
        if now == last:
            return now
        last = now


def wait_for_counts(demo: Demo, before: dict[str, int], **moved: int) -> None:
    """Wait (counts are flushed about once a second) until each counter moved by ``moved``, the others not at all."""
    expected = {name: before[name] + moved.get(name, 0) for name in FUNNEL}
    deadline = time.monotonic() + 20
    while (now := funnel(demo)) != expected:
        assert time.monotonic() < deadline, f"the counters are {now}, not {expected}"
        time.sleep(0.2)


def test_the_walls_buttons_move_the_funnel(no_blocker: Any, demo: Demo) -> None:
    """Sign-in, check again while blocked, allowlisting then check again, and "become a supporter" are each counted."""
    page = no_blocker
    page.route(BAIT, lambda route: route.abort())  # a network blocker, which the reader will allowlist
    before = settled_funnel(demo)
    assert visit_client(page, demo)["decision"] == "wall"
    wait_for_wall(page)

    page.evaluate(PRESS, "signin")
    page.wait_for_function(WALL_SAYS)
    with page.expect_response(is_decide):
        page.evaluate(PRESS, "recheck")
    page.wait_for_function(ANNOUNCED_BLOCKED)
    wait_for_counts(demo, before, signin_clicks=1, rechecks=1)

    page.unroute(BAIT)
    with page.expect_response(is_decide) as decided:
        page.evaluate(PRESS, "recheck")
    assert decided.value.json()["reason"] == "no_adblock"
    page.wait_for_function(WALL_GONE)
    wait_for_counts(demo, before, signin_clicks=1, rechecks=2, allowlisted=1)


def test_become_a_supporter_is_counted_without_delaying_the_link(no_blocker: Any, demo: Demo) -> None:
    """The support link navigates at once and its click still reaches the gate (keepalive)."""
    page = no_blocker
    page.route(BAIT, lambda route: route.abort())
    before = settled_funnel(demo)
    visit_client(page, demo)
    wait_for_wall(page)
    started = time.monotonic()
    with page.expect_navigation(url=demo.url("/demo/support"), wait_until="commit"):
        page.evaluate(PRESS, "support")
    assert time.monotonic() - started < 1.0
    wait_for_counts(demo, before, support_clicks=1)


def test_a_failed_event_changes_nothing_on_the_page(no_blocker: Any, demo: Demo) -> None:
    """With the events route failing, the wall's buttons work as before and no error is shown."""
    page = no_blocker
    page.route(BAIT, lambda route: route.abort())
    page.route("**/v1/sites/demo/events", lambda route: route.abort())
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    visit_client(page, demo)
    wait_for_wall(page)
    with page.expect_response(is_decide):
        page.evaluate(PRESS, "recheck")
    page.wait_for_function(ANNOUNCED_BLOCKED)
    assert wall_is_up(page)
    assert errors == []


@pytest.fixture
def nags(request: pytest.FixtureRequest, demo: Demo) -> Iterator[None]:
    """The demo site's policy is soft (a nag, not a wall) for the test; hard again afterwards."""
    request.getfixturevalue("browsers")

    def wait_for(decision: str) -> None:
        deadline = time.monotonic() + 20
        while demo.decide(adblock="blocked", visitor=secrets.token_urlsafe(12))["decision"] != decision:
            assert time.monotonic() < deadline, f"decide does not answer {decision} after the policy change"
            time.sleep(0.2)

    assert demo.api.patch(f"/v1/admin/sites/{SITE}", json={"policy": {"mode": "soft"}}).status_code == 200
    wait_for("nag")
    yield
    demo.api.patch(f"/v1/admin/sites/{SITE}", json={"policy": {"mode": "hard"}})
    wait_for("wall")


@pytest.mark.usefixtures("nags")
def test_a_dismissed_nag_is_counted(easylist: Any, demo: Demo) -> None:
    """Closing the nag with its button, and with Escape on another view, each count one dismissal."""
    before = settled_funnel(demo)
    for close in ("button", "Escape"):
        assert visit_client(easylist, demo)["decision"] == "nag"
        wait_for_wall(easylist)
        if close == "button":
            easylist.evaluate(PRESS, "close")
        else:
            easylist.keyboard.press("Escape")
        easylist.wait_for_function(WALL_GONE)
    wait_for_counts(demo, before, nag_dismissals=2)
