"""Admin and site API keys over HTTP: listing, revoking, last use, and deleting a site."""

from __future__ import annotations

import json
from typing import Any

from supportgate.services import Services
from supportgate.settings import Settings
from supportgate.store import names
from tests.cluster_helpers import sync_client
from tests.conftest import EVERY_STORE, FakeClock
from tests.gate_helpers import NEWS_ORIGIN, Client, decide, flush_stats, view

pytestmark = EVERY_STORE
SITE: dict[str, Any] = {"id": "news", "name": "News Example", "origins": [NEWS_ORIGIN]}


def audit_actions(settings: Settings) -> list[str]:
    """Every audit entry's action, straight from the store."""
    with sync_client(settings.redis_url or "") as store:
        entries = [json.loads(raw) for raw in store.hvals(names.audit_entries())]
    return sorted(entry["action"] for entry in entries)


async def test_admin_keys_are_listed_without_secrets(admin: Client, services: Services) -> None:
    """GET /keys lists id, name, created_at and last_used_at: no key, no hash."""
    other = await services.api_keys.create("admin", name="ops", actor="cli")
    answer = await admin.get("/v1/admin/keys")
    assert answer.status_code == 200, answer.text
    listed = answer.json()["items"]
    assert {key["name"] for key in listed} == {"tests", "ops"}
    assert all(set(key) == {"id", "name", "created_at", "last_used_at"} for key in listed)
    assert other.key.split("_")[2] not in answer.text
    assert "hash" not in answer.text


async def test_last_use_is_noted_at_most_once_a_minute(admin: Client, clock: FakeClock, settings: Settings) -> None:
    """The key used is noted with the time of use; another use within the minute writes nothing."""
    assert (await admin.get("/v1/admin/tiers")).status_code == 200
    admin.blocking_portal.call(admin.app.state.services.api_keys.settle)  # type: ignore[attr-defined]
    listed = (await admin.get("/v1/admin/keys")).json()["items"]
    assert listed[0]["last_used_at"] == "2026-11-24T12:00:00Z"
    with sync_client(settings.redis_url or "") as store:
        store.hdel(names.key_last_used(), f"admin:{listed[0]['id']}")
    clock.advance(seconds=59)
    await admin.get("/v1/admin/tiers")
    admin.blocking_portal.call(admin.app.state.services.api_keys.settle)  # type: ignore[attr-defined]
    with sync_client(settings.redis_url or "") as store:
        assert store.hget(names.key_last_used(), f"admin:{listed[0]['id']}") is None
    clock.advance(seconds=1)
    await admin.get("/v1/admin/tiers")
    admin.blocking_portal.call(admin.app.state.services.api_keys.settle)  # type: ignore[attr-defined]
    listed = (await admin.get("/v1/admin/keys")).json()["items"]
    assert listed[0]["last_used_at"] == "2026-11-24T12:01:00Z"


async def test_a_revoked_admin_key_answers_401_at_once(admin: Client, services: Services) -> None:
    """DELETE /keys/{id} answers 204, is audited, and the key is refused on the very next request."""
    other = await services.api_keys.create("admin", name="leaked", actor="cli")
    assert (await admin.get("/v1/admin/tiers", headers={"Authorization": f"Bearer {other.key}"})).status_code == 200
    answer = await admin.delete(f"/v1/admin/keys/{other.id}")
    assert answer.status_code == 204, answer.text
    assert (await admin.get("/v1/admin/tiers", headers={"Authorization": f"Bearer {other.key}"})).status_code == 401
    assert [key["name"] for key in (await admin.get("/v1/admin/keys")).json()["items"]] == ["tests"]
    revoked = (await admin.get("/v1/admin/audit?action=admin-key.revoke")).json()["items"]
    assert [(entry["target"], entry["before"]["name"]) for entry in revoked] == [(f"admin-key:{other.id}", "leaked")]


async def test_the_last_admin_key_cannot_be_revoked(admin: Client, settings: Settings) -> None:
    """Revoking the only admin key answers 409 and changes nothing; an unknown id is 404."""
    own = (await admin.get("/v1/admin/keys")).json()["items"][0]["id"]
    before = audit_actions(settings)
    answer = await admin.delete(f"/v1/admin/keys/{own}")
    assert answer.status_code == 409
    assert answer.headers["content-type"] == "application/problem+json"
    assert "last admin key" in answer.json()["detail"]
    assert (await admin.delete("/v1/admin/keys/0123456789ab")).status_code == 404
    assert (await admin.get("/v1/admin/tiers")).status_code == 200
    assert audit_actions(settings) == before


async def browser_decide(client: Client) -> int:
    """Decide as a browser on the site's origin, without the admin key the client sends; the status."""
    admin_key = client.headers.pop("Authorization")
    try:
        return (await decide(client, view())).status_code
    finally:
        client.headers["Authorization"] = admin_key


async def poll_decide(client: Client, key: str, clock: FakeClock, want: int) -> int:
    """Decide with ``key`` each second of the clock for up to 6 s, until it answers ``want``; the last status."""
    status = 0
    for _ in range(7):
        status = (await decide(client, view(), origin=None, headers={"Authorization": f"Bearer {key}"})).status_code
        if status == want:
            return status
        clock.advance(seconds=1)
    return status


async def test_site_keys_listed_and_revoked(admin: Client, clock: FakeClock, settings: Settings) -> None:
    """A named site key is listed (no secret), decides, and answers 401 within the 5 s cache once revoked."""
    await admin.post("/v1/admin/sites", json=SITE)
    made = await admin.post("/v1/admin/sites/news/keys", json={"name": "cms"})
    assert made.status_code == 201, made.text
    created = made.json()
    assert created["name"] == "cms"
    unnamed = (await admin.post("/v1/admin/sites/news/keys")).json()
    assert unnamed["name"] == "news"
    listed = (await admin.get("/v1/admin/sites/news/keys")).json()["items"]
    assert {key["id"] for key in listed} == {created["id"], unnamed["id"]}
    assert created["key"] not in str(listed)
    assert await poll_decide(admin, created["key"], clock, want=200) == 200
    assert (await admin.delete(f"/v1/admin/sites/news/keys/{created['id']}")).status_code == 204
    assert await poll_decide(admin, created["key"], clock, want=401) == 401
    assert await poll_decide(admin, unnamed["key"], clock, want=200) == 200
    assert [key["id"] for key in (await admin.get("/v1/admin/sites/news/keys")).json()["items"]] == [unnamed["id"]]
    assert "site-key.revoke" in audit_actions(settings)


async def test_site_key_refusals_write_nothing(admin: Client, settings: Settings) -> None:
    """Unknown site or key is 404, another site's key is 404, a bad name is 400; nothing is written."""
    await admin.post("/v1/admin/sites", json=SITE)
    await admin.post("/v1/admin/sites", json={**SITE, "id": "blog", "origins": ["https://blog.example"]})
    blog_key = (await admin.post("/v1/admin/sites/blog/keys")).json()
    before = audit_actions(settings)
    assert (await admin.get("/v1/admin/sites/nowhere/keys")).status_code == 404
    assert (await admin.delete(f"/v1/admin/sites/news/keys/{blog_key['id']}")).status_code == 404
    assert (await admin.delete(f"/v1/admin/sites/nowhere/keys/{blog_key['id']}")).status_code == 404
    bad = await admin.post("/v1/admin/sites/news/keys", json={"name": ""})
    assert bad.status_code == 400
    assert "name" in bad.json()["detail"]
    assert (await admin.post("/v1/admin/sites/news/keys", json={"nom": "x"})).status_code == 400
    assert audit_actions(settings) == before
    assert (await admin.get("/v1/admin/sites/news/keys")).json()["items"] == []


async def test_deleting_a_site(admin: Client, clock: FakeClock, settings: Settings) -> None:
    """DELETE /sites/{id}: 204, its keys revoked, decide/gate.js/about 404, its stats and reports gone."""
    await admin.post("/v1/admin/sites", json=SITE)
    key = (await admin.post("/v1/admin/sites/news/keys")).json()["key"]
    assert await browser_decide(admin) == 200
    flush_stats(admin)
    reported = await admin.post(
        "/v1/sites/news/reports", json={"path": "/a", "signals": {}}, headers={"Authorization": f"Bearer {key}"}
    )
    assert reported.status_code == 202, reported.text
    with sync_client(settings.redis_url or "") as store:
        assert len(list(store.scan_iter(match=names.site_traffic("news")))) >= 2
    answer = await admin.delete("/v1/admin/sites/news")
    assert answer.status_code == 204, answer.text
    with sync_client(settings.redis_url or "") as store:
        assert store.hlen(names.site_keys()) == 0
        assert list(store.scan_iter(match=names.site_traffic("news"))) == []
    assert (await admin.get("/v1/admin/sites/news")).status_code == 404
    assert (await admin.get("/v1/admin/stats?site=news")).status_code == 404
    assert (await admin.get("/v1/sites/news/gate.js")).status_code == 404
    assert (await admin.get("/v1/sites/news/about")).status_code == 404
    status = 0
    for _ in range(7):
        status = await browser_decide(admin)
        if status == 404:
            break
        clock.advance(seconds=1)
    assert status == 404
    assert await poll_decide(admin, key, clock, want=401) == 401
    deleted = (await admin.get("/v1/admin/audit?action=site.delete")).json()["items"]
    assert deleted[0]["target"] == "site:news"
    assert (await admin.delete("/v1/admin/sites/news")).status_code == 404


async def test_unknown_query_parameters_are_refused(admin: Client) -> None:
    """Any admin operation names a query parameter it does not take in a 400; declared ones pass."""
    for path in ("/v1/admin/keys?sort=name", "/v1/admin/tiers?x=1", "/v1/admin/supporters?teir=gold"):
        answer = await admin.get(path)
        assert answer.status_code == 400, path
        assert answer.headers["content-type"] == "application/problem+json"
        assert path.split("?")[1].split("=")[0] in answer.json()["detail"]
    assert (await admin.get("/v1/admin/supporters?limit=5&status=active")).status_code == 200
    stats = await admin.get("/v1/admin/stats?site=nowhere&from=2026-11-01&frm=1")
    assert stats.status_code == 400
    assert "frm" in stats.json()["detail"]
    assert (await admin.delete("/v1/admin/tiers/x?forget=true")).status_code == 400


async def test_audit_filters(admin: Client, clock: FakeClock) -> None:
    """action, actor, target, since and until each filter; bad times are 400 naming the parameter."""
    tier = {"id": "gold", "name": "Gold", "entitlements": ["adblock_ok"], "max_devices": 3}
    await admin.post("/v1/admin/tiers", json=tier)
    clock.advance(hours=1)
    await admin.post("/v1/admin/tiers", json={**tier, "id": "silver"})
    await admin.patch("/v1/admin/tiers/gold", json={"name": "Golden"})
    await admin.post("/v1/admin/sites", json=SITE)

    async def found(query: str) -> list[tuple[str, str]]:
        answer = await admin.get(f"/v1/admin/audit?{query}")
        assert answer.status_code == 200, answer.text
        return [(entry["action"], entry["target"]) for entry in answer.json()["items"]]

    assert await found("action=tier.create") == [("tier.create", "tier:silver"), ("tier.create", "tier:gold")]
    assert await found("target=tier:gold") == [("tier.update", "tier:gold"), ("tier.create", "tier:gold")]
    assert await found("actor=admin:tests&action=site.create") == [("site.create", "site:news")]
    assert await found("actor=admin:someone") == []
    assert await found("until=2026-11-24T12:30:00Z&action=tier.create") == [("tier.create", "tier:gold")]
    assert [action for action, _ in await found("until=2026-11-24T12:30:00Z")] == ["tier.create", "admin-key.create"]
    assert len(await found("since=2026-11-24T12:30:00%2B00:00")) == 3
    assert await found("since=2026-11-24T13:00:00Z&action=tier.create&limit=1") == [("tier.create", "tier:silver")]
    first = (await admin.get("/v1/admin/audit?action=tier.create&limit=1")).json()
    assert first["next_cursor"] is not None
    rest = (await admin.get(f"/v1/admin/audit?action=tier.create&limit=1&cursor={first['next_cursor']}")).json()
    assert [entry["target"] for entry in rest["items"]] == ["tier:gold"]
    for bad in ("since=yesterday", "until=2026-11-24", "since=2026-11-24T12:00:00"):
        answer = await admin.get(f"/v1/admin/audit?{bad}")
        assert answer.status_code == 400, bad
        assert bad.split("=")[0] in answer.json()["detail"]


async def test_a_grant_that_has_expired_is_refused(admin: Client, settings: Settings) -> None:
    """A grant whose expires_at has passed answers 400 naming the field, and writes nothing."""
    tier = {"id": "gold", "name": "G", "entitlements": ["adblock_ok"], "max_devices": 1}
    await admin.post("/v1/admin/tiers", json=tier)
    before = audit_actions(settings)
    answer = await admin.post(
        "/v1/admin/supporters", json={"email": "a@example.com", "tier": "gold", "expires_at": "2026-11-24T11:59:59Z"}
    )
    assert answer.status_code == 400
    assert "expires_at" in answer.json()["detail"]
    assert audit_actions(settings) == before
    assert (await admin.get("/v1/admin/supporters")).json()["items"] == []
    later = await admin.post(
        "/v1/admin/supporters", json={"email": "a@example.com", "tier": "gold", "expires_at": "2026-11-24T12:00:01Z"}
    )
    assert later.status_code == 201
    assert later.json()["status"] == "active"


async def test_a_tier_that_unlocks_no_site_is_warned_about(admin: Client) -> None:
    """Entitlements no site unlocks with are accepted with a warning, on create and on update."""
    tier = {"id": "gold", "name": "Gold", "entitlements": ["no_wall"], "max_devices": 3}
    alone = await admin.post("/v1/admin/tiers", json=tier)
    assert alone.json()["warnings"] == []  # no site yet: nothing to unlock
    await admin.post("/v1/admin/sites", json=SITE)
    typo = await admin.post("/v1/admin/tiers", json={**tier, "id": "silver"})
    assert typo.status_code == 201
    assert typo.json()["entitlements"] == ["no_wall"]
    assert "no_wall" in typo.json()["warnings"][0]
    assert "adblock_ok" in typo.json()["warnings"][0]
    fixed = await admin.patch("/v1/admin/tiers/silver", json={"entitlements": ["adblock_ok"]})
    assert fixed.json()["warnings"] == []
    broken = await admin.patch("/v1/admin/tiers/silver", json={"entitlements": ["ad_free"]})
    assert broken.status_code == 200
    assert len(broken.json()["warnings"]) == 1
    assert "warnings" not in (await admin.get("/v1/admin/tiers/silver")).json()


async def test_the_contract_states_the_new_operations(admin: Client) -> None:
    """The OpenAPI document: 400 on every admin operation, 409 on revoking, an optional site-key body, warnings."""
    doc = (await admin.get("/schema/openapi.json")).json()
    paths = doc["paths"]
    assert "400" in paths["/v1/admin/keys"]["get"]["responses"]
    assert "400" in paths["/v1/admin/tiers"]["get"]["responses"]
    assert {"404", "409"} <= set(paths["/v1/admin/keys/{key_id}"]["delete"]["responses"])
    assert paths["/v1/admin/sites/{site_id}/keys"]["post"]["requestBody"]["required"] is False
    assert {"204", "404"} <= set(paths["/v1/admin/sites/{site_id}/keys/{key_id}"]["delete"]["responses"])
    assert "unlock_entitlement" in doc["components"]["schemas"]["TierWritten"]["properties"]["warnings"]["description"]
    assert {"action", "actor", "target", "since", "until"} <= {
        parameter["name"] for parameter in paths["/v1/admin/audit"]["get"]["parameters"]
    }
    assert "notify" in doc["components"]["schemas"]["SupporterIn"]["properties"]
