"""Passes over HTTP: issuing per site, the JWKS, key rotation, and revocation reaching the gate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from supportgate.errors import InvalidToken
from supportgate.services import Services
from supportgate.settings import Settings
from supportgate_verify import PassVerifier
from tests.conftest import EVERY_STORE, FakeClock
from tests.readers_helpers import sign_in

pytestmark = EVERY_STORE
Client = AsyncTestClient[Litestar]
READER = "reader@example.com"


@pytest.fixture
def outbox(settings: Settings) -> Path:
    return settings.data_dir / "outbox"


@pytest.fixture
async def signed_in(client: Client, admin: Client, outbox: Path) -> dict[str, Any]:
    """READER on tier `supporter` (adblock_ok), signed in; sites `news` and `blog` exist."""
    for tier_id, ents in (("supporter", ["adblock_ok"]), ("reader", ["newsletter"])):
        tier = {"id": tier_id, "name": tier_id, "entitlements": ents, "max_devices": 3, "pass_ttl_seconds": 600}
        assert (await admin.post("/v1/admin/tiers", json=tier)).status_code == 201
    for site in ("news", "blog"):
        made = await admin.post(
            "/v1/admin/sites", json={"id": site, "name": site, "origins": [f"https://{site}.example"]}
        )
        assert made.status_code == 201
    made = await admin.post("/v1/admin/supporters", json={"email": READER, "tier": "supporter"})
    result = await sign_in(client, outbox, READER)
    result["supporter_id"] = made.json()["id"]
    return result


async def get_pass(client: Client, signed_in: dict[str, Any], site: str) -> str:
    answer = await client.post(
        "/v1/passes", json={"site": site}, headers={"Authorization": f"Bearer {signed_in['access_token']}"}
    )
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["pass"]
    return token


async def verifier_for(client: Client, site: str, settings: Settings, clock: FakeClock) -> PassVerifier:
    jwks = (await client.get("/.well-known/jwks.json")).json()
    return PassVerifier(keys=jwks, site=site, issuer=settings.issuer, clock=clock)


async def test_jwks_is_public_and_cacheable(client: Client) -> None:
    """The JWKS lists Ed25519 signing keys with max-age caching and no secrets."""
    answer = await client.get("/.well-known/jwks.json")
    assert answer.status_code == 200
    assert "max-age=300" in answer.headers["cache-control"]
    keys = answer.json()["keys"]
    assert len(keys) >= 2
    assert all(k["kty"] == "OKP" and k["crv"] == "Ed25519" and k["alg"] == "EdDSA" for k in keys)
    assert not any("d" in k for k in keys)


async def test_a_pass_verifies_offline_for_its_site_only(
    client: Client, signed_in: dict[str, Any], settings: Settings, clock: FakeClock
) -> None:
    """A pass for news verifies offline for news with the tier and entitlements, and never for blog."""
    token = await get_pass(client, signed_in, "news")
    checked = (await verifier_for(client, "news", settings, clock)).verify(token)
    assert (checked.tier, checked.entitlements) == ("supporter", ("adblock_ok",))
    with pytest.raises(InvalidToken) as refused:
        (await verifier_for(client, "blog", settings, clock)).verify(token)
    assert refused.value.reason == "wrong_audience"


async def test_two_sites_see_unrelated_pseudonyms(
    client: Client, signed_in: dict[str, Any], settings: Settings, clock: FakeClock
) -> None:
    """The same supporter has a different, stable `sub` at each site, and neither is their id."""
    news = (await verifier_for(client, "news", settings, clock)).verify(await get_pass(client, signed_in, "news"))
    blog = (await verifier_for(client, "blog", settings, clock)).verify(await get_pass(client, signed_in, "blog"))
    again = (await verifier_for(client, "news", settings, clock)).verify(await get_pass(client, signed_in, "news"))
    assert news.sub != blog.sub
    assert news.sub == again.sub
    assert signed_in["supporter_id"] not in {news.sub, blog.sub}


async def test_pass_lifetime_follows_the_tier_and_the_support(
    client: Client, admin: Client, signed_in: dict[str, Any]
) -> None:
    """A pass lives pass_ttl_seconds, and never past the supporter's expiry."""
    headers = {"Authorization": f"Bearer {signed_in['access_token']}"}
    issued = (await client.post("/v1/passes", json={"site": "news"}, headers=headers)).json()
    assert issued["expires_at"].startswith("2026-11-24T12:10")
    await admin.patch(f"/v1/admin/supporters/{signed_in['supporter_id']}", json={"expires_at": "2026-11-24T12:05:00Z"})
    short = (await client.post("/v1/passes", json={"site": "news"}, headers=headers)).json()
    assert short["expires_at"].startswith("2026-11-24T12:05")


async def test_pass_requests_are_checked(client: Client, signed_in: dict[str, Any]) -> None:
    """No token → 401; an unknown site → 404; a bad site id → 400."""
    assert (await client.post("/v1/passes", json={"site": "news"})).status_code == 401
    headers = {"Authorization": f"Bearer {signed_in['access_token']}"}
    assert (await client.post("/v1/passes", json={"site": "nowhere"}, headers=headers)).status_code == 404
    assert (await client.post("/v1/passes", json={"site": "Bad Site"}, headers=headers)).status_code == 400


async def test_revocation_voids_passes_at_the_gate(
    client: Client, admin: Client, signed_in: dict[str, Any], services: Services
) -> None:
    """After an admin revokes the supporter, the gate's pass check refuses passes issued before."""
    token = await get_pass(client, signed_in, "news")
    assert (await services.pass_check.verify(token, "news")).tier == "supporter"
    await admin.delete(f"/v1/admin/supporters/{signed_in['supporter_id']}")
    with pytest.raises(InvalidToken) as refused:
        await services.pass_check.verify(token, "news")
    assert refused.value.reason == "revoked"
    headers = {"Authorization": f"Bearer {signed_in['access_token']}"}
    assert (await client.post("/v1/passes", json={"site": "news"}, headers=headers)).status_code in {401, 403}


async def test_logout_voids_the_sessions_passes(client: Client, signed_in: dict[str, Any], services: Services) -> None:
    """Signing out voids the passes of that session at the gate."""
    token = await get_pass(client, signed_in, "news")
    await client.post("/v1/auth/logout", json={"refresh_token": signed_in["refresh_token"]})
    with pytest.raises(InvalidToken):
        await services.pass_check.verify(token, "news")


async def test_tier_change_voids_old_passes_but_not_new_ones(
    client: Client, admin: Client, signed_in: dict[str, Any], services: Services
) -> None:
    """Moving to a tier without the entitlement voids old passes; a pass fetched after says the new tier."""
    old = await get_pass(client, signed_in, "news")
    await admin.patch(f"/v1/admin/supporters/{signed_in['supporter_id']}", json={"tier": "reader"})
    with pytest.raises(InvalidToken):
        await services.pass_check.verify(old, "news")
    fresh = await services.pass_check.verify(await get_pass(client, signed_in, "news"), "news")
    assert (fresh.tier, fresh.entitlements) == ("reader", ("newsletter",))


async def test_rotation_waits_for_publication_and_keeps_old_passes_valid(
    client: Client, admin: Client, signed_in: dict[str, Any], clock: FakeClock, services: Services
) -> None:
    """Rotation is refused until the next key has been published long enough; after it, old passes still verify."""
    before = await get_pass(client, signed_in, "news")
    too_soon = await admin.post("/v1/admin/keys/rotate", json={})
    assert too_soon.status_code == 409
    clock.advance(minutes=6)
    rotated = await admin.post("/v1/admin/keys/rotate", json={})
    assert rotated.status_code == 200, rotated.text
    states = sorted(k["state"] for k in rotated.json()["keys"])
    assert states == ["active", "next", "retiring"]
    published = {k["kid"] for k in (await client.get("/.well-known/jwks.json")).json()["keys"]}
    assert {k["kid"] for k in rotated.json()["keys"]} == published
    assert (await services.pass_check.verify(before, "news")).tier == "supporter"
    assert "signing-keys.rotate" in (await admin.get("/v1/admin/audit")).text


async def test_a_pass_is_only_for_the_sites_own_origins(client: Client, signed_in: dict[str, Any]) -> None:
    """Asking for news's pass on behalf of blog's origin is refused; news's own origin is fine."""
    headers = {"Authorization": f"Bearer {signed_in['access_token']}"}
    own = await client.post("/v1/passes", json={"site": "news", "origin": "https://news.example"}, headers=headers)
    assert own.status_code == 200
    other = await client.post("/v1/passes", json={"site": "news", "origin": "https://blog.example"}, headers=headers)
    assert other.status_code == 403
    assert other.json()["type"] == "urn:supportgate:problem:wrong-origin"
