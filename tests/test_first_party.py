"""A site's first-party URL for the gate (policy.first_party_url): its checks, and every URL the gate gives out."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from supportgate.catalog.policy import Policy
from supportgate.catalog.schemas import Site, SiteIn
from supportgate.gate.interstitial import render_interstitial
from supportgate.services import Services
from supportgate.settings import Settings
from tests.test_console import admin_key, sign_in
from tests.test_gate_assets import Page

Client = AsyncTestClient[Litestar]
ORIGIN = "https://news.example"
FIRST_PARTY = f"{ORIGIN}/sg/"
BASE = f"{ORIGIN}/sg"
SITE: dict[str, Any] = {"id": "news", "name": "The News", "origins": [ORIGIN, "https://www.news.example"]}


async def create_site(admin: Client, **policy: Any) -> dict[str, Any]:
    answer = await admin.post("/v1/admin/sites", json={**SITE, "policy": policy})
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def anonymous(client: Client) -> Client:
    """The same client without the admin key, as a reader's browser calls."""
    client.headers.pop("Authorization", None)
    return client


# The policy field


async def test_a_first_party_url_is_kept_canonical(admin: Client) -> None:
    """A first-party URL on one of the site's origins is stored with that origin's canonical spelling."""
    site = await create_site(admin, first_party_url="https://WWW.News.Example:443/sg/gate/")
    assert site["policy"]["first_party_url"] == "https://www.news.example/sg/gate/"
    assert (await admin.get("/v1/admin/sites/news")).json()["policy"]["first_party_url"] == (
        "https://www.news.example/sg/gate/"
    )


async def test_without_a_first_party_url_the_policy_says_none(admin: Client) -> None:
    """A site created without the field has it null: readers reach the gate itself."""
    assert (await create_site(admin))["policy"]["first_party_url"] is None


BAD_URLS = [
    ("https://blog.example/sg/", "another host than the site's origins"),
    ("http://news.example/sg/", "another scheme than the site's origins"),
    ("https://news.example:8443/sg/", "another port than the site's origins"),
    ("https://news.example/sg", "no final slash"),
    ("https://news.example/", "the origin's root: the site's own pages"),
    ("https://news.example", "no path at all"),
    ("https://news.example/sg/?via=gate", "a query"),
    ("https://news.example/sg/?", "an empty query"),
    ("https://news.example/sg/#top", "a fragment"),
    ("https://news.example/sg/../", "a dot-dot segment"),
    ("https://news.example/./sg/", "a dot segment"),
    ("https://news.example//sg/", "an empty segment"),
    ("https://news.example/%2e%2e/", "an escaped character"),
    ("https://news.example/s g/", "a space"),
    ("https://user@news.example/sg/", "credentials"),
    ("https://news.example:99999/sg/", "a bad port"),
    ("ftp://news.example/sg/", "not http(s)"),
    ("/sg/", "a path alone"),
    ("https://news.example/" + "a/" * 250, "over 500 characters"),
]


@pytest.mark.parametrize(("url", "why"), BAD_URLS)
async def test_a_bad_first_party_url_is_refused_on_create(admin: Client, url: str, why: str) -> None:
    """Creating a site with a first-party URL that is not a path on its origins is a 400 naming the field ({why})."""
    answer = await admin.post("/v1/admin/sites", json={**SITE, "policy": {"first_party_url": url}})
    assert answer.status_code == 400, why
    assert answer.headers["content-type"] == "application/problem+json"
    assert "policy.first_party_url" in answer.json()["detail"], answer.json()
    assert (await admin.get("/v1/admin/sites")).json()["items"] == []


@pytest.mark.parametrize(("url", "why"), BAD_URLS)
async def test_a_bad_first_party_url_is_refused_on_change(admin: Client, url: str, why: str) -> None:
    """Changing the policy to a bad first-party URL is a 400 naming the field, and the site stays as it was ({why})."""
    before = await create_site(admin, first_party_url=FIRST_PARTY)
    answer = await admin.patch("/v1/admin/sites/news", json={"policy": {"first_party_url": url}})
    assert answer.status_code == 400, why
    assert "policy.first_party_url" in answer.json()["detail"], answer.json()
    assert (await admin.get("/v1/admin/sites/news")).json() == before


async def test_origins_that_drop_the_first_party_url_are_refused(admin: Client) -> None:
    """New origins without the first-party URL's origin are a 400 naming policy.first_party_url; nothing changes."""
    before = await create_site(admin, first_party_url=FIRST_PARTY)
    answer = await admin.patch("/v1/admin/sites/news", json={"origins": ["https://www.news.example"]})
    assert answer.status_code == 400
    assert "policy.first_party_url" in answer.json()["detail"]
    assert (await admin.get("/v1/admin/sites/news")).json() == before


async def test_origins_and_url_may_move_together(admin: Client) -> None:
    """One change may move the site to a new origin and its first-party URL with it; it is audited."""
    await create_site(admin, first_party_url=FIRST_PARTY)
    answer = await admin.patch(
        "/v1/admin/sites/news",
        json={"origins": ["https://news2.example"], "policy": {"first_party_url": "https://news2.example/sg/"}},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["policy"]["first_party_url"] == "https://news2.example/sg/"
    entries = (await admin.get("/v1/admin/audit")).json()["items"]
    update = next(entry for entry in entries if entry["action"] == "site.update")
    assert update["before"]["policy"]["first_party_url"] == FIRST_PARTY
    assert update["after"]["policy"]["first_party_url"] == "https://news2.example/sg/"


async def test_the_first_party_url_can_be_cleared(admin: Client) -> None:
    """Setting the field to null gives readers the gate's own URL again."""
    await create_site(admin, first_party_url=FIRST_PARTY)
    answer = await admin.patch("/v1/admin/sites/news", json={"policy": {"first_party_url": None}})
    assert answer.status_code == 200, answer.text
    assert answer.json()["policy"]["first_party_url"] is None


# The URLs the gate gives out


async def test_gate_js_is_built_for_the_first_party_url(admin: Client, settings: Settings) -> None:
    """With a first-party URL gate.js's GATE is that URL, within 4 KB gzipped; cleared, it is the gate again."""
    await create_site(admin, first_party_url=FIRST_PARTY)
    key = admin.headers["Authorization"]
    client = anonymous(admin)
    served = await client.get("/v1/sites/news/gate.js", headers={"Accept-Encoding": "identity"})
    assert f"var GATE={json.dumps(BASE)};" in served.text
    assert settings.public_url not in served.text
    assert len(gzip.compress(served.content, 9)) <= 4096

    admin.headers["Authorization"] = key
    await admin.patch("/v1/admin/sites/news", json={"policy": {"first_party_url": None}})
    again = await anonymous(admin).get("/v1/sites/news/gate.js", headers={"Accept-Encoding": "identity"})
    assert f"var GATE={json.dumps(settings.public_url)};" in again.text
    assert again.headers["etag"] != served.headers["etag"]


async def test_decide_points_the_wall_at_the_first_party_url(admin: Client) -> None:
    """A browser on the site's origin, as through its proxy, is answered with the wall on the first-party URL."""
    await create_site(admin, first_party_url=FIRST_PARTY)
    client = anonymous(admin)
    answer = await client.post(
        "/v1/decide",
        json={"site": "news", "path": "/article", "adblock": "blocked", "lang": "de"},
        headers={"Origin": ORIGIN},
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["access-control-allow-origin"] == ORIGIN
    assert answer.json()["interstitial_url"] == f"{BASE}/v1/sites/news/interstitial?lang=de"


async def test_reports_and_events_take_the_sites_origin(admin: Client) -> None:
    """Reports and funnel events sent through the proxy carry the site's Origin, and are taken."""
    await create_site(admin, first_party_url=FIRST_PARTY)
    client = anonymous(admin)
    event = await client.post("/v1/sites/news/events", json={"event": "recheck"}, headers={"Origin": ORIGIN})
    assert event.status_code == 204, event.text
    report = await client.post(
        "/v1/sites/news/reports",
        json={"signals": {"control": "loaded"}, "path": "/article"},
        headers={"Origin": ORIGIN},
    )
    assert report.status_code == 202, report.text


async def test_the_wall_links_to_the_first_party_url(admin: Client) -> None:
    """The wall's install link and its page's gate.js are on the first-party URL, as a fragment and as a page."""
    await create_site(admin, first_party_url=FIRST_PARTY)
    client = anonymous(admin)
    fragment = Page((await client.get("/v1/sites/news/interstitial?fragment=1")).text)
    (install,) = [e for e in fragment.tags("a") if e.attrs.get("href", "").endswith("/extension?site=news")]
    assert install.attrs["href"] == f"{BASE}/extension?site=news"
    page = Page((await client.get("/v1/sites/news/interstitial")).text)
    (script,) = page.tags("script")
    assert script.attrs["src"] == f"{BASE}/v1/sites/news/gate.js"


def test_render_interstitial_uses_the_sites_first_party_url() -> None:
    """A site backend that renders the wall itself gets the first-party links too, whatever gate URL it passes."""
    now = datetime(2026, 12, 1, tzinfo=UTC)
    site = Site(
        id="news",
        name="The News",
        origins=[ORIGIN],
        policy=Policy(first_party_url=FIRST_PARTY),
        created_at=now,
        updated_at=now,
    )
    page = Page(render_interstitial(site, "en", fragment=False, gate_url="https://gate.example/"))
    assert page.tags("script")[0].attrs["src"] == f"{BASE}/v1/sites/news/gate.js"
    assert "gate.example" not in render_interstitial(site, "en", fragment=True, gate_url="https://gate.example")


# The console


async def test_the_console_site_form_sets_and_clears_the_first_party_url(client: Client, services: Services) -> None:
    """The site form shows the field and the script URL to embed, saves a good URL, and refuses a bad one by name."""
    await services.sites.create(SiteIn(id="news", name="News", origins=[ORIGIN]), actor="cli")
    csrf = await sign_in(client, await admin_key(services))
    page = await client.get("/admin/sites/news")
    assert 'name="first_party_url"' in page.text
    assert "/v1/sites/news/gate.js</code>" in page.text
    form = {
        "csrf": csrf,
        "name": "News",
        "origins": ORIGIN,
        "mode": "hard",
        "free_views": "0",
        "meter_period": "month",
        "exempt_paths": "",
        "unlock_entitlement": "adblock_ok",
        "support_url": "",
    }
    saved = await client.post("/admin/sites/news", data={**form, "first_party_url": FIRST_PARTY})
    assert saved.status_code == 200, saved.text
    assert (await services.sites.get("news")).policy.first_party_url == FIRST_PARTY
    shown = await client.get("/admin/sites/news")
    assert f'value="{FIRST_PARTY}"' in shown.text
    assert f"<code>{BASE}/v1/sites/news/gate.js</code>" in shown.text

    refused = await client.post("/admin/sites/news", data={**form, "first_party_url": "https://blog.example/sg/"})
    assert refused.status_code == 400
    assert "policy.first_party_url" in refused.text
    assert (await services.sites.get("news")).policy.first_party_url == FIRST_PARTY

    cleared = await client.post("/admin/sites/news", data={**form, "first_party_url": ""})
    assert cleared.status_code == 200
    assert (await services.sites.get("news")).policy.first_party_url is None
