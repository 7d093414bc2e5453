"""The admin console over HTTP: sign-in, the session cookie, CSRF, fixation, the rate limit, each page and form."""

from __future__ import annotations

import dataclasses
import re
from datetime import timedelta
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from supportgate.app import create_app
from supportgate.catalog.schemas import SiteIn, SitePatch, SupporterIn, TierIn
from supportgate.console.controllers import SESSION_COOKIE
from supportgate.console.sessions import IDLE_LIFETIME, SIGN_INS_PER_IP
from supportgate.http.pages import CONSOLE_POLICY
from supportgate.services import Services
from supportgate.settings import Settings
from supportgate.store import names
from tests.conftest import FakeClock

Client = AsyncTestClient[Litestar]
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def admin_key(services: Services) -> str:
    return (await services.api_keys.create("admin", name="console-tests", actor="cli")).key


async def login(client: Client, data: dict[str, str]) -> Any:
    """POST the sign-in form as the browser would: with the token of the form just fetched."""
    form = await client.get("/admin/login")
    token = _CSRF.search(form.text)
    assert token is not None
    return await client.post("/admin/login", data={"csrf": token[1], **data}, follow_redirects=False)


def session_cookie(answer: Any) -> str:
    """The ``Set-Cookie`` of the console session in ``answer``."""
    found = [line for line in answer.headers.get_list("set-cookie") if line.startswith(f"{SESSION_COOKIE}=")]
    assert len(found) == 1, answer.headers
    return str(found[0])


async def sign_in(client: Client, key: str) -> str:
    """Sign in; return the CSRF token of the session."""
    answer = await login(client, {"key": key, "next": "/admin/"})
    assert answer.status_code == 303, answer.text
    page = await client.get("/admin/")
    assert page.status_code == 200
    found = _CSRF.search(page.text)
    assert found is not None
    return found[1]


async def seed(services: Services) -> None:
    await services.tiers.create(
        TierIn(id="member", name="Member", entitlements=["adblock_ok"], max_devices=3), actor="cli"
    )
    await services.sites.create(SiteIn(id="news", name="News", origins=["https://news.example"]), actor="cli")


async def test_unauthenticated_pages_redirect_to_login(client: Client) -> None:
    for path in ("/admin/", "/admin/supporters?q=x", "/admin/tiers", "/admin/sites", "/admin/keys", "/admin/audit"):
        answer = await client.get(path, follow_redirects=False)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/admin/login?next=")
    login = await client.get("/admin/login")
    assert login.status_code == 200
    assert 'name="key"' in login.text
    assert "Content-Security-Policy" in login.headers
    assert "frame-ancestors 'none'" in login.headers["content-security-policy"]
    assert login.headers["cache-control"] == "no-store"


async def test_sign_in_sets_a_strict_cookie_and_stores_only_a_hash(client: Client, services: Services) -> None:
    key = await admin_key(services)
    answer = await login(client, {"key": key, "next": "/admin/tiers"})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/admin/tiers"
    cookie = session_cookie(answer)
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie or "samesite=strict" in cookie.lower()
    assert "Path=/admin" in cookie
    assert "Secure" not in cookie  # the public URL is http here
    session_id = cookie.split(";")[0].split("=", 1)[1]
    stored = [key async for key in services.store.redis.scan_iter(match="sg:{console:*")]
    assert len(stored) == 1
    assert session_id not in stored[0].decode()
    ttl = await services.store.redis.ttl(stored[0])
    assert 0 < ttl <= IDLE_LIFETIME.total_seconds()


async def test_secure_cookie_when_the_public_url_is_https(
    services: Services, settings: Settings, clock: FakeClock
) -> None:
    app = create_app(dataclasses.replace(settings, public_url="https://gate.example"), clock=clock)
    async with AsyncTestClient(app, base_url="https://gate.example") as client:
        key = await admin_key(services)
        answer = await login(client, {"key": key})
        assert answer.status_code == 303
        assert "Secure" in session_cookie(answer)


async def test_sign_in_needs_the_forms_own_token(client: Client, services: Services) -> None:
    key = await admin_key(services)
    for data in ({"key": key}, {"key": key, "csrf": "forged"}):
        answer = await client.post("/admin/login", data=data, follow_redirects=False)
        assert answer.status_code == 403
        assert f"{SESSION_COOKIE}=" not in answer.headers.get("set-cookie", "")
    assert [key async for key in services.store.redis.scan_iter(match="sg:{console:*")] == []
    form = await client.get("/admin/login")
    cookie = form.headers["set-cookie"]
    assert "Path=/admin/login" in cookie
    assert "HttpOnly" in cookie


async def test_wrong_key_shows_the_form_again_without_a_cookie(client: Client, services: Services) -> None:
    await admin_key(services)
    answer = await login(client, {"key": "sga_nope_nope"})
    assert answer.status_code == 401
    assert f"{SESSION_COOKIE}=" not in answer.headers.get("set-cookie", "")
    assert "not a valid admin key" in answer.text
    assert 'name="key"' in answer.text


async def test_sign_in_attempts_are_rate_limited_per_address(client: Client, services: Services) -> None:
    key = await admin_key(services)
    for _ in range(SIGN_INS_PER_IP.limit):
        assert (await login(client, {"key": "sga_x_y"})).status_code == 401
    answer = await login(client, {"key": key})
    assert answer.status_code == 429
    assert f"{SESSION_COOKIE}=" not in answer.headers.get("set-cookie", "")
    assert "Too many" in answer.text


async def test_a_planted_session_id_is_not_kept_at_sign_in(client: Client, services: Services) -> None:
    key = await admin_key(services)
    await sign_in(client, key)
    first = client.cookies.get(SESSION_COOKIE)
    assert first
    # Sign in again carrying the old id: a new id is given and the old one no longer works.
    answer = await login(client, {"key": key})
    second = session_cookie(answer).split(";")[0].split("=", 1)[1]
    assert second != first
    client.cookies.set(SESSION_COOKIE, first, path="/admin")
    assert (await client.get("/admin/", follow_redirects=False)).status_code == 303
    # An id made up by an attacker signs no one in.
    client.cookies.set(SESSION_COOKIE, "made-up-id", path="/admin")
    assert (await client.get("/admin/", follow_redirects=False)).status_code == 303


async def test_post_without_a_valid_csrf_token_is_refused_and_writes_nothing(
    client: Client, services: Services
) -> None:
    await seed(services)
    csrf = await sign_in(client, await admin_key(services))
    before = await services.audit.page(limit=200, cursor=None)
    for data in ({}, {"csrf": "wrong"}, {"csrf": csrf[:-1]}):
        answer = await client.post(
            "/admin/tiers",
            data={**data, "id": "gold", "name": "Gold", "max_devices": "2", "entitlements": "adblock_ok"},
        )
        assert answer.status_code == 403
        assert "Nothing was changed" in answer.text
    assert not await services.tiers.exists("gold")
    assert (await services.audit.page(limit=200, cursor=None)).items == before.items
    ok = await client.post(
        "/admin/tiers",
        data={"csrf": csrf, "id": "gold", "name": "Gold", "max_devices": "2", "entitlements": "adblock_ok"},
    )
    assert ok.status_code == 200
    assert await services.tiers.exists("gold")


async def test_a_post_without_a_session_is_refused(client: Client, services: Services) -> None:
    await seed(services)
    answer = await client.post("/admin/tiers", data={"csrf": "x", "id": "gold", "name": "Gold", "max_devices": "2"})
    assert answer.status_code == 403
    assert not await services.tiers.exists("gold")


async def test_sign_out_ends_the_session_in_the_store(client: Client, services: Services) -> None:
    csrf = await sign_in(client, await admin_key(services))
    session_id = client.cookies.get(SESSION_COOKIE)
    answer = await client.post("/admin/logout", data={"csrf": csrf}, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/admin/login"
    assert [key async for key in services.store.redis.scan_iter(match="sg:{console:*")] == []
    client.cookies.set(SESSION_COOKIE, session_id or "", path="/admin")
    assert (await client.get("/admin/", follow_redirects=False)).status_code == 303


async def test_sessions_idle_out_after_twelve_hours(client: Client, services: Services, clock: FakeClock) -> None:
    await sign_in(client, await admin_key(services))
    clock.advance(hours=11)
    assert (await client.get("/admin/", follow_redirects=False)).status_code == 200
    clock.advance(hours=11)  # 11 h after the last use: still alive
    assert (await client.get("/admin/", follow_redirects=False)).status_code == 200
    clock.advance(hours=12)
    assert (await client.get("/admin/", follow_redirects=False)).status_code == 303


async def test_a_revoked_admin_key_ends_its_console_sessions(client: Client, services: Services) -> None:
    key = await admin_key(services)
    await sign_in(client, key)
    await services.api_keys.revoke_named("admin", "console-tests", actor="cli")
    assert (await client.get("/admin/", follow_redirects=False)).status_code == 303


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/admin/", "/elsewhere"])
async def test_sign_in_goes_only_to_console_pages(client: Client, services: Services, target: str) -> None:
    answer = await login(client, {"key": await admin_key(services), "next": target})
    assert answer.headers["location"] == "/admin/"


async def test_dashboard_draws_every_series_with_a_table(client: Client, services: Services) -> None:
    await seed(services)
    services.stats.count("news", "views", "blocked", "walls")
    services.stats.count("news", "views", "clear")
    await services.stats.flush()
    await sign_in(client, await admin_key(services))
    page = await client.get("/admin/?site=news&days=7")
    assert page.status_code == 200
    assert page.text.count('role="img"') == 15
    assert "Page views: 2" in page.text
    assert "Share blocked: 50.0%" in page.text
    assert page.text.count("<caption>") == 16  # a table per series and the funnel's
    for days in (30, 90):
        assert (await client.get(f"/admin/?days={days}")).status_code == 200
    assert (await client.get("/admin/?site=nope")).status_code == 404


async def test_dashboard_shows_the_funnel_after_the_wall(client: Client, services: Services) -> None:
    await seed(services)
    await services.sites.create(SiteIn(id="blog", name="Blog", origins=["https://blog.example"]), actor="cli")
    for _ in range(4):
        services.stats.count("news", "views", "blocked", "walls")
    services.stats.count("news", "rechecks", "rechecks", "allowlisted")
    services.stats.count("news", "support_clicks")
    services.stats.count("blog", "views", "blocked", "walls", "rechecks", "signin_clicks")
    services.stats.count("blog", "views", "nags", "nag_dismissals")
    await services.stats.flush()
    await sign_in(client, await admin_key(services))
    steps = re.compile(r'<tr><th scope="row">([^<]+)</th><td>([0-9,]+)</td><td>([0-9.]+%)</td></tr>')
    one = await client.get("/admin/?site=news&days=7")
    assert steps.findall(one.text) == [
        ("Wall shown", "4", "100.0%"),
        ("Check again pressed", "2", "50.0%"),
        ("Allowlisted", "1", "25.0%"),
        ("Become a supporter clicked", "1", "25.0%"),
        ("Sign in clicked", "0", "0.0%"),
    ]
    everything = await client.get("/admin/?days=7")
    assert steps.findall(everything.text) == [
        ("Wall shown", "5", "100.0%"),
        ("Check again pressed", "3", "60.0%"),
        ("Allowlisted", "1", "20.0%"),
        ("Become a supporter clicked", "1", "20.0%"),
        ("Sign in clicked", "1", "20.0%"),
    ]
    assert "Check again pressed: 3" in everything.text
    assert "Share of nags dismissed: 100.0%" in everything.text
    assert 'id="h-nag_dismissals"' in everything.text
    assert 'id="h-nag_dismissals-of-nags"' in everything.text


async def test_supporter_forms_write_through_the_services_and_the_audit_log(client: Client, services: Services) -> None:
    await seed(services)
    await services.tiers.create(
        TierIn(id="patron", name="Patron", entitlements=["adblock_ok"], max_devices=5), actor="cli"
    )
    csrf = await sign_in(client, await admin_key(services))
    bad = await client.post("/admin/supporters", data={"csrf": csrf, "email": "not-an-address", "tier": "member"})
    assert bad.status_code == 400
    assert "email" in bad.text
    granted = await client.post(
        "/admin/supporters",
        data={"csrf": csrf, "email": "Reader@Example.com", "tier": "member", "expires_at": "2027-01-31", "note": "hi"},
        follow_redirects=False,
    )
    assert granted.status_code == 303
    supporter_url = granted.headers["location"].split("?")[0]
    supporter_id = supporter_url.rsplit("/", 1)[1]
    listing = await client.get("/admin/supporters?q=reader")
    assert "reader@example.com" in listing.text
    assert "reader@example.com" not in (await client.get("/admin/supporters?status=revoked")).text
    moved = await client.post(
        supporter_url, data={"csrf": csrf, "tier": "patron", "expires_at": "2027-02-28", "note": ""}
    )
    assert moved.status_code == 200
    assert (await services.supporters.get(supporter_id)).tier == "patron"
    await client.post(f"{supporter_url}/extend", data={"csrf": csrf, "days": "10"})
    assert (await services.supporters.get(supporter_id)).expires_at.date().isoformat() == "2027-03-10"  # type: ignore[union-attr]
    code = await client.post(f"{supporter_url}/activation-code", data={"csrf": csrf})
    assert re.search(r"[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}", code.text)
    assert (await client.post(f"{supporter_url}/revoke", data={"csrf": csrf})).status_code == 200
    assert (await services.supporters.get(supporter_id)).status == "revoked"
    assert (await client.post(f"{supporter_url}/restore", data={"csrf": csrf})).status_code == 200
    assert (await services.supporters.get(supporter_id)).status == "active"
    assert (await client.post(f"{supporter_url}/sessions/end-all", data={"csrf": csrf})).status_code == 200
    confirm = await client.get(f"{supporter_url}/forget")
    assert "cannot be undone" in confirm.text
    refused = await client.post(f"{supporter_url}/forget", data={"csrf": csrf, "confirm": "someone@else.example"})
    assert refused.status_code == 400
    assert (await services.supporters.get(supporter_id)).email == "reader@example.com"
    erased = await client.post(f"{supporter_url}/forget", data={"csrf": csrf, "confirm": "reader@example.com"})
    assert erased.status_code == 200
    assert "erased" in erased.text
    actions = [entry.action for entry in (await services.audit.page(limit=200, cursor=None)).items]
    assert "supporter.create" in actions or any(a.startswith("supporter.") for a in actions)
    actors = {entry.actor for entry in (await services.audit.page(limit=200, cursor=None)).items}
    assert "admin:console-tests" in actors


async def test_supporter_list_paginates_with_the_cursor(client: Client, services: Services) -> None:
    await seed(services)
    for index in range(30):
        await services.supporters.create(SupporterIn(email=f"r{index:02}@example.com", tier="member"), actor="cli")
    await sign_in(client, await admin_key(services))
    first = await client.get("/admin/supporters")
    assert first.text.count('<th scope="row"><a href="/admin/supporters/') == 25
    found = re.search(r'href="/admin/supporters(\?[^"]*cursor=[^"]+)" rel="next"', first.text)
    assert found is not None
    second = await client.get("/admin/supporters" + found[1].replace("&amp;", "&"))
    assert second.text.count('<th scope="row"><a href="/admin/supporters/') == 5
    assert 'rel="next"' not in second.text


async def test_tiers_sites_keys_and_audit_pages(client: Client, services: Services) -> None:
    await seed(services)
    csrf = await sign_in(client, await admin_key(services))
    assert "Member" in (await client.get("/admin/tiers")).text
    edited = await client.post(
        "/admin/tiers/member",
        data={
            "csrf": csrf,
            "name": "Members",
            "description": "",
            "entitlements": "adblock_ok, extra",
            "max_devices": "4",
        },
    )
    assert edited.status_code == 200
    tier = await services.tiers.get("member")
    assert (tier.name, tier.entitlements, tier.max_devices) == ("Members", ["adblock_ok", "extra"], 4)
    bad_tier = await client.post(
        "/admin/tiers", data={"csrf": csrf, "id": "Bad Id", "name": "x", "max_devices": "1", "entitlements": ""}
    )
    assert bad_tier.status_code == 400
    created = await client.post(
        "/admin/sites",
        data={"csrf": csrf, "id": "blog", "name": "Blog", "origins": "https://blog.example\nhttps://www.blog.example"},
    )
    assert created.status_code == 200
    assert (await services.sites.get("blog")).origins == ["https://blog.example", "https://www.blog.example"]
    page = await client.get("/admin/sites/blog")
    assert "/v1/sites/blog/interstitial?lang=en" in page.text
    changed = await client.post(
        "/admin/sites/blog",
        data={
            "csrf": csrf,
            "name": "Blog",
            "origins": "https://blog.example",
            "mode": "soft",
            "free_views": "3",
            "meter_period": "week",
            "exempt_paths": "/about\n/legal/*",
            "unlock_entitlement": "adblock_ok",
            "support_url": "https://blog.example/support",
        },
    )
    assert changed.status_code == 200
    site = await services.sites.get("blog")
    assert (site.policy.mode, site.policy.free_views, site.policy.exempt_paths) == ("soft", 3, ["/about", "/legal/*"])
    key = await client.post("/admin/sites/blog/keys", data={"csrf": csrf})
    shown = re.search(r"sgs_[0-9a-f]+_[0-9a-f]+", key.text)
    assert shown is not None
    assert await services.api_keys.check("site", shown[0]) is not None
    keys = await client.get("/admin/keys")
    assert "active" in keys.text
    rotated = await client.post("/admin/keys/rotate", data={"csrf": csrf, "force": "on"})
    assert rotated.status_code == 200
    audit = await client.get("/admin/audit")
    assert "site.update" in audit.text or "site." in audit.text
    assert "admin:console-tests" in audit.text


async def test_audit_page_filters_and_keeps_the_filters_in_its_pages(
    client: Client, services: Services, clock: FakeClock
) -> None:
    await seed(services)
    for index in range(30):
        await services.supporters.create(SupporterIn(email=f"r{index:02}@example.com", tier="member"), actor="cli")
    await sign_in(client, await admin_key(services))
    await services.sites.update("news", SitePatch(name="Daily News"), actor="admin:someone")
    rows = re.compile(r'<tr><th scope="row">[^<]+</th><td>([^<]+)</td><td>([^<]+)</td><td>([^<]+)</td></tr>')
    by_target = await client.get("/admin/audit?target=site:news")
    assert [(row[0], row[2]) for row in rows.findall(by_target.text)] == [
        ("admin:someone", "site:news"),
        ("cli", "site:news"),
    ]
    assert 'value="site:news"' in by_target.text
    by_actor = await client.get("/admin/audit?actor=admin:someone")
    assert [row[0] for row in rows.findall(by_actor.text)] == ["admin:someone"]
    creates = await client.get("/admin/audit?action=supporter.create")
    assert [row[1] for row in rows.findall(creates.text)] == ["supporter.create"] * 25
    found = re.search(r'href="/admin/audit(\?[^"]*cursor=[^"]+)" rel="next"', creates.text)
    assert found is not None
    assert "action=supporter.create" in found[1]
    second = await client.get("/admin/audit" + found[1].replace("&amp;", "&"))
    assert [row[1] for row in rows.findall(second.text)] == ["supporter.create"] * 5
    assert 'href="/admin/audit?action=supporter.create">First page' in second.text
    today = clock.now.date()
    assert len(rows.findall((await client.get(f"/admin/audit?since={today}&until={today}")).text)) == 25
    earlier = today - timedelta(days=1)
    assert "Nothing yet." in (await client.get(f"/admin/audit?until={earlier}")).text
    assert "Nothing yet." in (await client.get(f"/admin/audit?since={today + timedelta(days=1)}")).text
    bad = await client.get("/admin/audit?since=yesterday")
    assert bad.status_code == 400
    assert "since" in bad.text


async def test_site_keys_are_listed_and_revoked_and_a_site_deleted_after_confirmation(
    client: Client, services: Services
) -> None:
    await seed(services)
    csrf = await sign_in(client, await admin_key(services))
    made = await services.api_keys.create("site", name="news-server", site="news", actor="cli")
    assert await services.api_keys.check("site", made.key) is not None
    await services.api_keys.settle()
    page = await client.get("/admin/sites/news")
    assert f"<code>{made.id}</code>" in page.text
    assert "news-server" in page.text
    revoke_url = f"/admin/sites/news/keys/{made.id}/revoke"
    assert f'action="{revoke_url}"' in page.text
    refused = await client.post(revoke_url, data={"csrf": "wrong"})
    assert refused.status_code == 403
    assert [key.id for key in await services.api_keys.list("site", site="news")] == [made.id]
    revoked = await client.post(revoke_url, data={"csrf": csrf}, follow_redirects=False)
    assert revoked.status_code == 303
    assert revoked.headers["location"] == "/admin/sites/news?done=site-key-revoked"
    assert await services.api_keys.list("site", site="news") == []
    assert "The site key was revoked." in (await client.get(revoked.headers["location"])).text
    again = await client.post(revoke_url, data={"csrf": csrf})
    assert again.status_code == 404
    assert made.id in again.text
    second = await services.api_keys.create("site", name="news", site="news", actor="cli")
    confirm = await client.get("/admin/sites/news/delete")
    assert "cannot be undone" in confirm.text
    no_csrf = await client.post("/admin/sites/news/delete", data={"csrf": "", "confirm": "news"})
    assert no_csrf.status_code == 403
    wrong = await client.post("/admin/sites/news/delete", data={"csrf": csrf, "confirm": "News"})
    assert wrong.status_code == 400
    assert (await services.sites.get("news")).id == "news"
    deleted = await client.post("/admin/sites/news/delete", data={"csrf": csrf, "confirm": "news"})
    assert deleted.status_code == 200
    assert "The site was deleted" in deleted.text
    assert (await client.get("/admin/sites/news")).status_code == 404
    assert await services.api_keys.check("site", second.key) is None
    entries = (await services.audit.page(limit=200, cursor=None)).items
    done = [(entry.actor, entry.action, entry.target) for entry in entries if entry.actor == "admin:console-tests"]
    assert done == [
        ("admin:console-tests", "site.delete", "site:news"),
        ("admin:console-tests", "site-key.revoke", "site:news"),
    ]


async def test_admin_keys_page_lists_revokes_and_refuses_the_last_key(client: Client, services: Services) -> None:
    own = await services.api_keys.create("admin", name="console-tests", actor="cli")
    csrf = await sign_in(client, own.key)
    other = await services.api_keys.create("admin", name="ops", actor="cli")
    page = await client.get("/admin/api-keys")
    assert page.status_code == 200
    assert "console-tests (this session's)" in page.text
    assert f"<code>{other.id}</code>" in page.text
    refused = await client.post(f"/admin/api-keys/{other.id}/revoke", data={"csrf": csrf + "x"})
    assert refused.status_code == 403
    assert len(await services.api_keys.list("admin")) == 2
    revoked = await client.post(f"/admin/api-keys/{other.id}/revoke", data={"csrf": csrf})
    assert revoked.status_code == 200
    assert "The admin key was revoked." in revoked.text
    assert [key.id for key in await services.api_keys.list("admin")] == [own.id]
    last = await client.post(f"/admin/api-keys/{own.id}/revoke", data={"csrf": csrf})
    assert last.status_code == 409
    assert "last admin key" in last.text
    assert [key.id for key in await services.api_keys.list("admin")] == [own.id]
    entries = (await services.audit.page(limit=200, cursor=None)).items
    assert [(e.actor, e.action, e.target) for e in entries if e.action == "admin-key.revoke"] == [
        ("admin:console-tests", "admin-key.revoke", f"admin-key:{other.id}")
    ]


async def test_a_tier_that_unlocks_no_site_is_shown_with_its_warning(client: Client, services: Services) -> None:
    await seed(services)
    csrf = await sign_in(client, await admin_key(services))
    fields = {"csrf": csrf, "name": "Typo", "description": "", "max_devices": "1"}
    created = await client.post("/admin/tiers", data={**fields, "id": "typo", "entitlements": "no_wall"})
    assert created.status_code == 200
    assert "Tier created." in created.text
    assert 'class="warning"' in created.text
    assert "unlocks a site" in created.text
    assert "adblock_ok" in created.text
    fixed = await client.post("/admin/tiers/typo", data={**fields, "entitlements": "adblock_ok"})
    assert fixed.status_code == 200
    assert 'class="warning"' not in fixed.text
    broken = await client.post("/admin/tiers/typo", data={**fields, "entitlements": "other"})
    assert 'class="warning"' in broken.text
    assert 'class="warning"' not in (await client.get("/admin/tiers/member")).text


async def test_supporters_export_and_import_as_csv(client: Client, services: Services) -> None:
    await seed(services)
    await services.supporters.create(SupporterIn(email="old@example.com", tier="member", note="=cmd"), actor="cli")
    await services.supporters.create(SupporterIn(email="other@example.com", tier="member"), actor="cli")
    csrf = await sign_in(client, await admin_key(services))
    listing = await client.get("/admin/supporters?q=old")
    assert 'href="/admin/supporters/export?q=old"' in listing.text
    exported = await client.get("/admin/supporters/export?q=old")
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    lines = exported.text.splitlines()
    assert lines[0] == "id,email,tier,status,expires_at,note,created_at"
    assert len(lines) == 2
    assert "old@example.com" in lines[1]
    assert "'=cmd" in lines[1]
    rows = ["email,tier,note", "new@example.com,member,hello", "old@example.com,member,changed", "bad,member,"]
    body = "\n".join([*rows, "x@example.com,nope,", ""])
    files = {"file": ("grants.csv", body.encode(), "text/csv")}
    before = await services.audit.page(limit=200, cursor=None)
    refused = await client.post("/admin/supporters/import", data={"csrf": "wrong"}, files=files)
    assert refused.status_code == 403
    dry = await client.post("/admin/supporters/import", data={"csrf": csrf, "dry_run": "on"}, files=files)
    assert dry.status_code == 200
    assert "Dry run, nothing was written: the import would create 1, update 1 and leave 0 unchanged" in dry.text
    assert "2 lines were not imported" in dry.text
    errors = re.findall(r'<tr><th scope="row">(\d+)</th><td>([^<]+)</td></tr>', dry.text)
    assert [line for line, _ in errors] == ["4", "5"]
    assert (await services.audit.page(limit=200, cursor=None)).items == before.items
    assert (await services.supporters.page(tier=None, status=None, q="new@", limit=5, cursor=None)).items == []
    done = await client.post("/admin/supporters/import", data={"csrf": csrf}, files=files)
    assert done.status_code == 200
    assert "Imported: 1 created, 1 updated, 0 unchanged" in done.text
    assert [
        s.note for s in (await services.supporters.page(tier=None, status=None, q="new@", limit=5, cursor=None)).items
    ] == ["hello"]
    actions = [(e.actor, e.action) for e in (await services.audit.page(limit=200, cursor=None)).items]
    assert ("admin:console-tests", "supporter.import") in actions
    not_utf8 = await client.post(
        "/admin/supporters/import",
        data={"csrf": csrf},
        files={"file": ("x.csv", b"email,tier\n\xff,member\n", "text/csv")},
    )
    assert not_utf8.status_code == 400
    assert "not UTF-8" in not_utf8.text
    no_file = await client.post(
        "/admin/supporters/import", data={"csrf": csrf}, files={"other": ("x", b"", "text/csv")}
    )
    assert no_file.status_code == 400
    assert "choose a CSV file" in no_file.text
    huge = b"email,tier\n" + b"a" * (20 * 1024 * 1024)
    too_big = await client.post("/admin/supporters/import", data={"csrf": csrf}, files={"file": ("big.csv", huge)})
    assert too_big.status_code == 413


async def test_console_pages_are_not_in_the_openapi_document(client: Client) -> None:
    document = (await client.get("/schema/openapi.json")).json()
    assert not [path for path in document["paths"] if path.startswith("/admin")]


async def test_console_session_key_name() -> None:
    assert names.console_session("abc") == "sg:{console:abc}"


async def test_an_unknown_record_is_an_html_page_with_its_status(client: Client, services: Services) -> None:
    await sign_in(client, await admin_key(services))
    for path in ("/admin/supporters/0123456789abcdef", "/admin/tiers/nope", "/admin/sites/nope", "/admin/?site=nope"):
        answer = await client.get(path)
        assert answer.status_code == 404, path
        assert answer.headers["content-type"].startswith("text/html")
        assert "Not Found" in answer.text
        assert "nope" in answer.text or "0123456789abcdef" in answer.text


async def test_every_console_page_runs_no_script_and_is_never_framed(client: Client, services: Services) -> None:
    await seed(services)
    await sign_in(client, await admin_key(services))
    pages = ("/admin/", "/admin/supporters", "/admin/tiers", "/admin/tiers/member", "/admin/sites", "/admin/keys")
    new_pages = ("/admin/sites/news", "/admin/sites/news/delete", "/admin/api-keys", "/admin/audit?action=x")
    for path in (*pages, *new_pages):
        answer = await client.get(path)
        assert answer.status_code == 200, path
        policy = answer.headers["content-security-policy"]
        assert policy == CONSOLE_POLICY
        assert "script-src" not in policy
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["cache-control"] == "no-store"
        assert "<script" not in answer.text
        assert answer.text.count("<h1>") == 1
    dashboard = await client.get("/admin/")
    assert '<a href="/admin/" aria-current="page">Dashboard</a>' in dashboard.text
    css = await client.get("/admin/console.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")


async def test_a_supporters_sessions_are_listed_and_one_can_be_ended(client: Client, services: Services) -> None:
    await seed(services)
    supporter = await services.supporters.create(SupporterIn(email="two@example.com", tier="member"), actor="cli")
    for device in ("Laptop", "Phone"):
        await services.sessions.start(supporter_id=supporter.id, max_devices=3, device=device)
    csrf = await sign_in(client, await admin_key(services))
    page = await client.get(f"/admin/supporters/{supporter.id}")
    assert "End the session on Laptop" in page.text
    assert "End the session on Phone" in page.text
    laptop = next(s for s in await services.sessions.list(supporter.id) if s.device == "Laptop")
    refused = await client.post(f"/admin/supporters/{supporter.id}/sessions/end", data={"session": laptop.id})
    assert refused.status_code == 403
    assert len(await services.sessions.list(supporter.id)) == 2
    ended = await client.post(
        f"/admin/supporters/{supporter.id}/sessions/end", data={"csrf": csrf, "session": laptop.id}
    )
    assert ended.status_code == 200
    assert "The session was ended." in ended.text
    assert [s.device for s in await services.sessions.list(supporter.id)] == ["Phone"]
    audit = (await services.audit.page(limit=50, cursor=None)).items
    assert any(e.action == "supporter.sign-out" and e.actor == "admin:console-tests" for e in audit)
