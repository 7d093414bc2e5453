"""The admin API for sites and site keys."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from supportgate.services import Services

Client = AsyncTestClient[Litestar]
SITE: dict[str, Any] = {"id": "news", "name": "News Example", "origins": ["https://News.Example:443/"]}


async def test_create_site_with_default_policy(admin: Client) -> None:
    """A site gets canonical origins and the default policy (hard wall, adblock_ok unlocks)."""
    answer = await admin.post("/v1/admin/sites", json=SITE)
    assert answer.status_code == 201, answer.text
    site = answer.json()
    assert site["origins"] == ["https://news.example"]
    assert site["policy"]["mode"] == "hard"
    assert site["policy"]["unlock_entitlement"] == "adblock_ok"
    assert (await admin.get("/v1/admin/sites/news")).json() == site
    assert [s["id"] for s in (await admin.get("/v1/admin/sites")).json()["items"]] == ["news"]


@pytest.mark.parametrize(
    ("origin", "why"),
    [
        ("news.example", "no scheme"),
        ("ftp://news.example", "not http(s)"),
        ("https://news.example/path", "a path"),
        ("https://*.news.example", "a wildcard"),
        ("https://user@news.example", "credentials"),
        ("https://news.example:99999", "a bad port"),
        ("http://[0]", "brackets around no IPv6 address"),
    ],
)
async def test_bad_origins_are_refused(admin: Client, origin: str, why: str) -> None:
    """An origin that is not scheme://host[:port] answers 400 naming origins ({why})."""
    answer = await admin.post("/v1/admin/sites", json={**SITE, "origins": [origin]})
    assert answer.status_code == 400, why
    assert "origins" in answer.json()["detail"]
    assert (await admin.get("/v1/admin/sites")).json()["items"] == []


async def test_policy_patch_merges_fields(admin: Client) -> None:
    """PATCHing one policy field keeps the others as they were."""
    await admin.post("/v1/admin/sites", json={**SITE, "policy": {"free_views": 3, "meter_period": "week"}})
    changed = await admin.patch("/v1/admin/sites/news", json={"policy": {"mode": "soft"}})
    assert changed.status_code == 200, changed.text
    policy = changed.json()["policy"]
    assert (policy["mode"], policy["free_views"], policy["meter_period"]) == ("soft", 3, "week")


@pytest.mark.parametrize(
    ("policy", "named"),
    [
        ({"mode": "brutal"}, "policy.mode"),
        ({"free_views": -1}, "policy.free_views"),
        ({"free_views": "3"}, "policy.free_views"),
        ({"theme": {"accent": "red"}}, "policy.theme.accent"),
        ({"crawlers": {"ip_ranges": ["not-a-range"]}}, "policy.crawlers.ip_ranges[0]"),
        ({"surprise": True}, "surprise"),
    ],
)
async def test_bad_policy_patch_names_the_field(admin: Client, policy: dict[str, Any], named: str) -> None:
    """A policy change with a bad field answers 400 naming the field and changes nothing."""
    await admin.post("/v1/admin/sites", json=SITE)
    answer = await admin.patch("/v1/admin/sites/news", json={"policy": policy})
    assert answer.status_code == 400, answer.text
    assert named in answer.json()["detail"]
    assert (await admin.get("/v1/admin/sites/news")).json()["policy"]["mode"] == "hard"


async def test_site_key_is_shown_once_and_checks(admin: Client, services: Services) -> None:
    """A site key is returned once; the stored form checks it and names its site."""
    await admin.post("/v1/admin/sites", json=SITE)
    answer = await admin.post("/v1/admin/sites/news/keys")
    assert answer.status_code == 201
    key = answer.json()["key"]
    assert key.startswith("sgs_")
    checked = await services.api_keys.check("site", key)
    assert checked is not None
    assert checked.site == "news"
    assert await services.api_keys.check("site", key[:-1] + ("0" if key[-1] != "0" else "1")) is None
    assert await services.api_keys.check("admin", key) is None
    assert key not in (await admin.get("/v1/admin/audit")).text


async def test_key_for_a_missing_site_is_404(admin: Client) -> None:
    """Asking for a key of a site that does not exist answers 404."""
    assert (await admin.post("/v1/admin/sites/nowhere/keys")).status_code == 404
