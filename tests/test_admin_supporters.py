"""The admin API for supporters."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from supportgate.catalog.schemas import SupporterIn
from supportgate.services import Services
from tests.conftest import FakeClock

Client = AsyncTestClient[Litestar]


@pytest.fixture
async def tiers(admin: Client) -> None:
    for tier_id in ("supporter", "patron"):
        answer = await admin.post(
            "/v1/admin/tiers",
            json={"id": tier_id, "name": tier_id.title(), "entitlements": ["adblock_ok"], "max_devices": 3},
        )
        assert answer.status_code == 201


async def grant(admin: Client, email: str, tier: str = "supporter", **extra: Any) -> dict[str, Any]:
    answer = await admin.post("/v1/admin/supporters", json={"email": email, "tier": tier, **extra})
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


@pytest.mark.usefixtures("tiers")
async def test_compatibility_forms_are_the_same_address(admin: Client) -> None:
    """Granting reader@example.com spelt with a fullwidth r (U+FF52) when it exists is a 409 naming the holder."""
    holder = await grant(admin, "reader@example.com")
    answer = await admin.post("/v1/admin/supporters", json={"email": "\uff52eader@example.com", "tier": "supporter"})
    assert answer.status_code == 409, answer.text
    assert answer.json()["existing_supporter"] == holder["id"]
    assert (await grant(admin, "\uff32eader2@\uff45xample.com"))["email"] == "reader2@example.com"


@pytest.mark.usefixtures("tiers")
async def test_grant_normalises_the_address(admin: Client) -> None:
    """A grant stores the address trimmed and lowercased, and answers with every field."""
    body = await grant(admin, "  Reader@Example.COM ", note="met at the fair")
    assert body["email"] == "reader@example.com"
    assert body["status"] == "active"
    assert set(body) == {"id", "email", "tier", "status", "expires_at", "created_at", "updated_at", "note"}


@pytest.mark.usefixtures("tiers")
async def test_second_grant_for_an_address_names_the_first(admin: Client) -> None:
    """Granting an address twice answers 409 with the existing supporter's id."""
    first = await grant(admin, "reader@example.com")
    again = await admin.post("/v1/admin/supporters", json={"email": "READER@example.com", "tier": "patron"})
    assert again.status_code == 409
    assert again.json()["existing_supporter"] == first["id"]
    assert first["id"] in again.json()["detail"]


@pytest.mark.usefixtures("tiers")
async def test_parallel_grants_of_one_address_make_one_supporter(services: Services, admin: Client) -> None:
    """Ten simultaneous grants of one address: one succeeds, nine conflict, one record exists."""
    results = await asyncio.gather(
        *(
            services.supporters.create(SupporterIn(email="race@example.com", tier="supporter"), actor="t")
            for _ in range(10)
        ),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    listed = await admin.get("/v1/admin/supporters")
    assert [s["email"] for s in listed.json()["items"]] == ["race@example.com"]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"email": "not-an-address", "tier": "supporter"}, "email"),
        ({"email": "a@example.com", "tier": "gold"}, "tier"),
        ({"email": "a@example.com", "tier": "Bad Tier"}, "tier"),
        ({"email": "a@example.com", "tier": "supporter", "colour": "red"}, "colour"),
        ({"email": "a@example.com", "tier": "supporter", "expires_at": "tomorrow"}, "expires_at"),
        ({"email": "a@example.com", "tier": "supporter", "expires_at": "2027-01-01T00:00:00"}, "expires_at"),
        ({"email": 42, "tier": "supporter"}, "email"),
        ({"tier": "supporter"}, "email"),
    ],
)
@pytest.mark.usefixtures("tiers")
async def test_bad_grants_name_the_field_and_write_nothing(admin: Client, body: dict[str, Any], named: str) -> None:
    """A grant with a bad field answers 400 problem+json naming it, and stores nothing."""
    answer = await admin.post("/v1/admin/supporters", json=body)
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert named in answer.json()["detail"]
    assert (await admin.get("/v1/admin/supporters")).json()["items"] == []


@pytest.mark.usefixtures("tiers")
async def test_patch_moves_tier_and_address(admin: Client) -> None:
    """PATCH can move a supporter to another tier and address; the indexes follow."""
    made = await grant(admin, "old@example.com")
    changed = await admin.patch(
        f"/v1/admin/supporters/{made['id']}", json={"email": "new@example.com", "tier": "patron", "note": None}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["tier"] == "patron"
    assert changed.json()["note"] is None
    assert (await admin.get("/v1/admin/supporters", params={"tier": "supporter"})).json()["items"] == []
    assert len((await admin.get("/v1/admin/supporters", params={"tier": "patron"})).json()["items"]) == 1
    await grant(admin, "old@example.com")  # the old address is free again


@pytest.mark.usefixtures("tiers")
async def test_patch_to_a_taken_address_conflicts(admin: Client) -> None:
    """Moving a supporter onto another supporter's address answers 409 and changes nothing."""
    first = await grant(admin, "one@example.com")
    await grant(admin, "two@example.com")
    clash = await admin.patch(f"/v1/admin/supporters/{first['id']}", json={"email": "two@example.com"})
    assert clash.status_code == 409
    assert (await admin.get(f"/v1/admin/supporters/{first['id']}")).json()["email"] == "one@example.com"


@pytest.mark.usefixtures("tiers")
async def test_expiry_shows_in_status(admin: Client, clock: FakeClock) -> None:
    """A supporter past expires_at reads as expired, and can be filtered so."""
    await grant(admin, "brief@example.com", expires_at="2026-11-25T12:00:00Z")
    await grant(admin, "lasting@example.com")
    clock.advance(days=2)
    expired = await admin.get("/v1/admin/supporters", params={"status": "expired"})
    assert [s["email"] for s in expired.json()["items"]] == ["brief@example.com"]
    active = await admin.get("/v1/admin/supporters", params={"status": "active"})
    assert [s["email"] for s in active.json()["items"]] == ["lasting@example.com"]


@pytest.mark.usefixtures("tiers")
async def test_delete_revokes_and_keeps_the_record(admin: Client) -> None:
    """DELETE revokes: the supporter stays, marked revoked, and can be reinstated."""
    made = await grant(admin, "gone@example.com")
    assert (await admin.delete(f"/v1/admin/supporters/{made['id']}")).status_code == 204
    assert (await admin.get(f"/v1/admin/supporters/{made['id']}")).json()["status"] == "revoked"
    back = await admin.patch(f"/v1/admin/supporters/{made['id']}", json={"status": "active"})
    assert back.json()["status"] == "active"


@pytest.mark.usefixtures("tiers")
async def test_forget_erases_the_person(admin: Client) -> None:
    """DELETE ?forget=true erases the record, frees the address and scrubs the audit log."""
    made = await grant(admin, "private@example.com", note="likes cats")
    await admin.patch(f"/v1/admin/supporters/{made['id']}", json={"note": "likes dogs"})
    assert (await admin.delete(f"/v1/admin/supporters/{made['id']}", params={"forget": "true"})).status_code == 204
    assert (await admin.get(f"/v1/admin/supporters/{made['id']}")).status_code == 404
    assert (await admin.get("/v1/admin/supporters", params={"q": "private"})).json()["items"] == []
    audit = (await admin.get("/v1/admin/audit", params={"limit": 200})).text
    assert "private@example.com" not in audit
    assert "cats" not in audit
    assert "dogs" not in audit
    assert "supporter.forget" in audit
    await grant(admin, "private@example.com")


@pytest.mark.usefixtures("tiers")
async def test_pagination_is_stable_while_supporters_are_added(admin: Client, clock: FakeClock) -> None:
    """Walking pages with the cursor sees every supporter once, even when some join meanwhile."""
    for n in range(25):
        clock.advance(seconds=1)
        await grant(admin, f"s{n:02d}@example.com")
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 10}
        if cursor:
            params["cursor"] = cursor
        page = (await admin.get("/v1/admin/supporters", params=params)).json()
        seen += [s["email"] for s in page["items"]]
        cursor = page["next_cursor"]
        clock.advance(seconds=1)
        await grant(admin, f"late{len(seen):02d}@example.com")  # newer: lands before the cursor
        if cursor is None:
            break
    assert seen == [f"s{n:02d}@example.com" for n in reversed(range(25))]


@pytest.mark.usefixtures("tiers")
async def test_search_by_address_or_note(admin: Client) -> None:
    """The q parameter matches part of the address or of the note, case-insensitively."""
    await grant(admin, "alice@example.com", note="Founding member")
    await grant(admin, "bob@example.org")
    by_mail = await admin.get("/v1/admin/supporters", params={"q": "EXAMPLE.ORG"})
    assert [s["email"] for s in by_mail.json()["items"]] == ["bob@example.org"]
    by_note = await admin.get("/v1/admin/supporters", params={"q": "founding"})
    assert [s["email"] for s in by_note.json()["items"]] == ["alice@example.com"]


@pytest.mark.usefixtures("tiers")
async def test_a_forged_cursor_is_refused(admin: Client) -> None:
    """A cursor the listing did not return answers 400 naming the cursor."""
    answer = await admin.get("/v1/admin/supporters", params={"cursor": "!!!"})
    assert answer.status_code == 400
    assert "cursor" in answer.json()["detail"]
