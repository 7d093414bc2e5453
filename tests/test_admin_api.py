"""What every admin endpoint shares: authentication, problem+json errors, limits, the audit log."""

from __future__ import annotations

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from supportgate.services import Services

Client = AsyncTestClient[Litestar]
TIER = {"id": "supporter", "name": "Supporter", "entitlements": ["adblock_ok"], "max_devices": 3}


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer sga_nope_nope", "Basic dXNlcjpwYXNz", "sga_x_y"])
async def test_admin_routes_need_a_valid_key(client: Client, header: str | None) -> None:
    """Without a valid admin key the answer is 401 problem+json with a WWW-Authenticate challenge."""
    headers = {"Authorization": header} if header else {}
    answer = await client.post("/v1/admin/tiers", json=TIER, headers=headers)
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert "admin key" in answer.json()["detail"]


async def test_a_site_key_is_not_an_admin_key(admin: Client, client: Client) -> None:
    """A site API key does not open the admin API."""
    await admin.post("/v1/admin/sites", json={"id": "news", "name": "News", "origins": ["https://news.example"]})
    site_key = (await admin.post("/v1/admin/sites/news/keys")).json()["key"]
    answer = await client.get("/v1/admin/tiers", headers={"Authorization": f"Bearer {site_key}"})
    assert answer.status_code == 401


async def test_revoked_admin_key_stops_working(admin: Client, services: Services) -> None:
    """An admin key revoked by name is refused at once."""
    await services.api_keys.revoke_named("admin", "tests", actor="cli")
    assert (await admin.get("/v1/admin/tiers")).status_code == 401


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({**TIER, "id": "Supporter"}, "id"),
        ({**TIER, "id": "a" * 65}, "id"),
        ({**TIER, "id": "a/b"}, "id"),
        ({**TIER, "max_devices": "3"}, "max_devices"),
        ({**TIER, "max_devices": 0}, "max_devices"),
        ({**TIER, "entitlements": "adblock_ok"}, "entitlements"),
        ({**TIER, "pass_ttl_seconds": 10}, "pass_ttl_seconds"),
        ({**TIER, "extra": 1}, "extra"),
    ],
)
async def test_bad_tier_fields_are_named(admin: Client, body: dict[str, object], named: str) -> None:
    """Each bad field answers 400 problem+json whose detail names it; nothing is stored."""
    answer = await admin.post("/v1/admin/tiers", json=body)
    assert answer.status_code == 400, answer.text
    problem = answer.json()
    assert answer.headers["content-type"] == "application/problem+json"
    assert named in problem["detail"]
    assert problem["status"] == 400
    assert problem["title"]
    assert (await admin.get("/v1/admin/tiers")).json()["items"] == []


async def test_malformed_json_is_a_clear_400(admin: Client) -> None:
    """A body that is not JSON answers 400 saying so."""
    answer = await admin.post("/v1/admin/tiers", content=b"{nope", headers={"Content-Type": "application/json"})
    assert answer.status_code == 400
    assert "JSON" in answer.json()["detail"]


async def test_oversized_body_is_413(admin: Client) -> None:
    """A body over the limit answers 413 problem+json and writes nothing."""
    body = {**TIER, "description": "x" * 70_000}
    answer = await admin.post("/v1/admin/tiers", json=body)
    assert answer.status_code == 413
    assert answer.headers["content-type"] == "application/problem+json"
    assert (await admin.get("/v1/admin/tiers")).json()["items"] == []


@pytest.mark.parametrize("path", ["/v1/admin/tiers/Bad_Id", "/v1/admin/supporters/" + "a" * 65, "/v1/admin/sites/x.y"])
async def test_ids_in_paths_are_checked(admin: Client, path: str) -> None:
    """An id outside [a-z0-9-]{1,64} in a path answers 400, not a lookup."""
    answer = await admin.get(path)
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/problem+json"


async def test_unknown_things_are_404_problems(admin: Client) -> None:
    """Missing tiers, supporters, sites and routes answer 404 problem+json."""
    for path in ("/v1/admin/tiers/none", "/v1/admin/supporters/none", "/v1/admin/sites/none", "/v1/nothing"):
        answer = await admin.get(path)
        assert answer.status_code == 404, path
        assert answer.headers["content-type"] == "application/problem+json"


async def test_audit_records_who_did_what(admin: Client) -> None:
    """Each admin write is in the audit log, newest first, with actor, action, before and after."""
    await admin.post("/v1/admin/tiers", json=TIER)
    await admin.patch("/v1/admin/tiers/supporter", json={"max_devices": 4})
    entries = (await admin.get("/v1/admin/audit")).json()["items"]
    assert [e["action"] for e in entries] == ["tier.update", "tier.create", "admin-key.create"]
    update = entries[0]
    assert update["actor"] == "admin:tests"
    assert update["target"] == "tier:supporter"
    assert (update["before"]["max_devices"], update["after"]["max_devices"]) == (3, 4)
    assert entries[1]["before"] is None


async def test_audit_pages_with_a_cursor(admin: Client) -> None:
    """The audit log pages newest first with limit and cursor."""
    for n in range(5):
        await admin.post("/v1/admin/tiers", json={**TIER, "id": f"t{n}"})
    first = (await admin.get("/v1/admin/audit", params={"limit": 3})).json()
    second = (await admin.get("/v1/admin/audit", params={"limit": 3, "cursor": first["next_cursor"]})).json()
    targets = [e["target"] for e in first["items"] + second["items"]]
    assert targets[:5] == [f"tier:t{n}" for n in reversed(range(5))]
    assert targets[5].startswith("admin-key:")
    assert second["next_cursor"] is None


async def test_rejected_requests_leave_no_audit_entry(admin: Client) -> None:
    """A refused write writes nothing, not even an audit entry."""
    await admin.post("/v1/admin/tiers", json={**TIER, "max_devices": 0})
    await admin.post("/v1/admin/supporters", json={"email": "a@example.com", "tier": "missing"})
    actions = [e["action"] for e in (await admin.get("/v1/admin/audit")).json()["items"]]
    assert actions == ["admin-key.create"]


async def test_health_and_schema(client: Client) -> None:
    """The index, /healthz and /readyz answer without credentials; the OpenAPI schema lists the admin API."""
    assert (await client.get("/")).json()["links"]["api_docs"] == "/schema"
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {"status": "ready"}
    schema = (await client.get("/schema/openapi.json")).json()
    for path in (
        "/v1/admin/tiers",
        "/v1/admin/supporters/{supporter_id}",
        "/v1/admin/sites/{site_id}/keys",
        "/v1/admin/audit",
    ):
        assert path in schema["paths"], path
    assert "TierPatch" in schema["components"]["schemas"]
    decide = schema["paths"]["/v1/decide"]["post"]
    assert decide["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/DecideIn")
    assert {"DecideIn", "Decision"} <= set(schema["components"]["schemas"])
    assert schema["components"]["securitySchemes"]["AdminKey"]["scheme"] == "bearer"
