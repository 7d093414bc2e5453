"""The admin API for tiers."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

Client = AsyncTestClient[Litestar]
SUPPORTER_TIER: dict[str, Any] = {
    "id": "supporter",
    "name": "Supporter",
    "entitlements": ["adblock_ok"],
    "max_devices": 3,
    "pass_ttl_seconds": 3600,
}


async def test_create_and_read_a_tier(admin: Client) -> None:
    """A created tier is returned with 201 and reads back the same, with its supporter count."""
    created = await admin.post("/v1/admin/tiers", json=SUPPORTER_TIER)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["entitlements"] == ["adblock_ok"]
    assert body["supporters"] == 0
    assert body.pop("warnings") == []
    fetched = await admin.get("/v1/admin/tiers/supporter")
    assert fetched.json() == body
    listed = await admin.get("/v1/admin/tiers")
    assert [t["id"] for t in listed.json()["items"]] == ["supporter"]


async def test_duplicate_tier_is_a_conflict(admin: Client) -> None:
    """Creating a tier whose id exists answers 409 and leaves the first one as it was."""
    await admin.post("/v1/admin/tiers", json=SUPPORTER_TIER)
    again = await admin.post("/v1/admin/tiers", json={**SUPPORTER_TIER, "name": "Other"})
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert (await admin.get("/v1/admin/tiers/supporter")).json()["name"] == "Supporter"


async def test_patch_changes_only_given_fields(admin: Client) -> None:
    """PATCH changes the fields it names and leaves the others."""
    await admin.post("/v1/admin/tiers", json=SUPPORTER_TIER)
    changed = await admin.patch("/v1/admin/tiers/supporter", json={"max_devices": 5})
    assert changed.status_code == 200
    assert changed.json()["max_devices"] == 5
    assert changed.json()["entitlements"] == ["adblock_ok"]


async def test_delete_refused_while_supporters_are_on_it(admin: Client) -> None:
    """A tier with supporters is not deleted (409) unless move_to names where they go."""
    await admin.post("/v1/admin/tiers", json=SUPPORTER_TIER)
    await admin.post("/v1/admin/tiers", json={**SUPPORTER_TIER, "id": "patron", "name": "Patron"})
    made = await admin.post("/v1/admin/supporters", json={"email": "a@example.com", "tier": "supporter"})
    refused = await admin.delete("/v1/admin/tiers/supporter")
    assert refused.status_code == 409
    assert "move_to" in refused.json()["detail"]
    assert (await admin.get("/v1/admin/tiers/supporter")).status_code == 200

    moved = await admin.delete("/v1/admin/tiers/supporter", params={"move_to": "patron"})
    assert moved.status_code == 204
    assert (await admin.get("/v1/admin/tiers/supporter")).status_code == 404
    supporter = (await admin.get(f"/v1/admin/supporters/{made.json()['id']}")).json()
    assert supporter["tier"] == "patron"
    assert (await admin.get("/v1/admin/tiers/patron")).json()["supporters"] == 1
    listed = await admin.get("/v1/admin/supporters", params={"tier": "patron"})
    assert [s["email"] for s in listed.json()["items"]] == ["a@example.com"]


async def test_delete_to_a_missing_tier_writes_nothing(admin: Client) -> None:
    """move_to naming no tier answers 400 and the tier stays with its supporters."""
    await admin.post("/v1/admin/tiers", json=SUPPORTER_TIER)
    await admin.post("/v1/admin/supporters", json={"email": "a@example.com", "tier": "supporter"})
    answer = await admin.delete("/v1/admin/tiers/supporter", params={"move_to": "gold"})
    assert answer.status_code == 400
    assert "move_to" in answer.json()["detail"]
    assert (await admin.get("/v1/admin/tiers/supporter")).json()["supporters"] == 1
