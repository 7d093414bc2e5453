"""Signing in over HTTP: emailed codes, activation codes, the device limit, refresh and logout."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from supportgate.settings import Settings
from tests.cluster_helpers import sync_client
from tests.conftest import EVERY_STORE, FakeClock
from tests.readers_helpers import body, emailed_code, mails_to, sign_in

pytestmark = EVERY_STORE
Client = AsyncTestClient[Litestar]
READER = "reader@example.com"


@pytest.fixture
def outbox(settings: Settings) -> Path:
    return settings.data_dir / "outbox"


@pytest.fixture
async def supporter(admin: Client) -> dict[str, Any]:
    """A tier allowing two devices, and READER as an active supporter on it."""
    tier = {"id": "supporter", "name": "Supporter", "entitlements": ["adblock_ok"], "max_devices": 2}
    assert (await admin.post("/v1/admin/tiers", json=tier)).status_code == 201
    made = await admin.post("/v1/admin/supporters", json={"email": READER, "tier": "supporter"})
    assert made.status_code == 201
    result: dict[str, Any] = made.json()
    return result


async def test_supporter_signs_in_with_the_emailed_code(
    client: Client, outbox: Path, supporter: dict[str, Any]
) -> None:
    """A supporter gets a 6-digit code by email and trades it for tokens and their supporter summary."""
    signed_in = await sign_in(client, outbox, READER)
    assert signed_in["token_type"] == "Bearer"
    assert signed_in["expires_in"] == 900
    assert signed_in["refresh_token"].startswith("sgr_")
    assert signed_in["supporter"] == {
        "id": supporter["id"],
        "tier": "supporter",
        "entitlements": ["adblock_ok"],
        "expires_at": None,
    }
    mail = (await mails_to(outbox, READER))[0]
    assert "code" in mail["Subject"].lower()
    assert await emailed_code(outbox, READER) not in mail["Subject"]


async def test_a_compatibility_form_of_the_address_reaches_the_supporter(
    client: Client, outbox: Path, supporter: dict[str, Any]
) -> None:
    """A code asked for with a fullwidth r (U+FF52) in the address reaches reader@example.com and signs them in."""
    asked = await client.post("/v1/auth/code/request", json={"email": "\uff52eader@example.com"})
    assert asked.status_code == 202, asked.text
    code = await emailed_code(outbox, READER)
    answer = await client.post(
        "/v1/auth/code/verify", json={"email": "\uff52eader@example.com", "code": code, "device": "Test browser"}
    )
    assert answer.status_code == 200, answer.text
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {answer.json()['access_token']}"})
    assert me.json()["id"] == supporter["id"]


async def test_anyone_else_gets_the_same_answer_and_a_how_to_mail(client: Client, outbox: Path, admin: Client) -> None:
    """An address with no support gets the same 202 body, a "no active support" mail, and no working code."""
    await admin.post("/v1/admin/tiers", json={"id": "t", "name": "T", "entitlements": [], "max_devices": 1})
    await admin.post("/v1/admin/supporters", json={"email": READER, "tier": "t"})
    known = await client.post("/v1/auth/code/request", json={"email": READER})
    unknown = await client.post("/v1/auth/code/request", json={"email": "stranger@example.com"})
    assert (known.status_code, known.json()) == (unknown.status_code, unknown.json())
    mail = (await mails_to(outbox, "stranger@example.com"))[0]
    assert "support" in body(mail).lower()
    assert not any(ch.isdigit() for ch in body(mail).split("support")[0][-40:])
    wrong_for_stranger = await client.post(
        "/v1/auth/code/verify", json={"email": "stranger@example.com", "code": "123456", "device": "x"}
    )
    wrong_for_reader = await client.post(
        "/v1/auth/code/verify", json={"email": READER, "code": "000000", "device": "x"}
    )
    never_asked = await client.post(
        "/v1/auth/code/verify", json={"email": "nobody@example.com", "code": "123456", "device": "x"}
    )
    answers = {
        (r.status_code, r.json()["type"], r.json()["detail"])
        for r in (wrong_for_stranger, wrong_for_reader, never_asked)
    }
    assert len(answers) == 1
    assert answers.pop()[0] == 400


@pytest.mark.usefixtures("supporter")
async def test_codes_are_stored_only_as_hmacs(client: Client, outbox: Path, store_url: str) -> None:
    """Neither the code nor the address appears anywhere in the store's keys or code records."""
    await client.post("/v1/auth/code/request", json={"email": READER})
    code = await emailed_code(outbox, READER)
    with sync_client(store_url) as raw:
        code_keys = [k for k in raw.scan_iter("sg:{code:*") if True]
        assert len(code_keys) == 1
        stored = raw.get(code_keys[0]) or b""
        assert code.encode() not in stored
        assert READER.encode() not in code_keys[0]
        assert READER.encode() not in stored


@pytest.mark.usefixtures("supporter")
async def test_a_new_request_replaces_the_old_code(client: Client, outbox: Path) -> None:
    """Asking again makes the first code stop working."""
    await client.post("/v1/auth/code/request", json={"email": READER})
    first = await emailed_code(outbox, READER)
    await client.post("/v1/auth/code/request", json={"email": READER})
    second = await emailed_code(outbox, READER, nth=2)
    if first != second:
        old = await client.post("/v1/auth/code/verify", json={"email": READER, "code": first, "device": "x"})
        assert old.status_code == 400
    new = await client.post("/v1/auth/code/verify", json={"email": READER, "code": second, "device": "x"})
    assert new.status_code == 200


@pytest.mark.usefixtures("supporter")
async def test_five_wrong_tries_destroy_the_code(client: Client, outbox: Path) -> None:
    """After five wrong codes the right one no longer works."""
    await client.post("/v1/auth/code/request", json={"email": READER})
    code = await emailed_code(outbox, READER)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(5):
        answer = await client.post("/v1/auth/code/verify", json={"email": READER, "code": wrong, "device": "x"})
        assert answer.status_code == 400
    late = await client.post("/v1/auth/code/verify", json={"email": READER, "code": code, "device": "x"})
    assert late.status_code == 400
    assert late.json()["type"] == "urn:supportgate:problem:invalid-code"


@pytest.mark.usefixtures("supporter")
async def test_codes_expire_after_fifteen_minutes(client: Client, outbox: Path, clock: FakeClock) -> None:
    """A code older than fifteen minutes is refused."""
    await client.post("/v1/auth/code/request", json={"email": READER})
    code = await emailed_code(outbox, READER)
    clock.advance(minutes=15, seconds=1)
    answer = await client.post("/v1/auth/code/verify", json={"email": READER, "code": code, "device": "x"})
    assert answer.status_code == 400


async def test_a_code_only_works_for_its_address(client: Client, outbox: Path, admin: Client) -> None:
    """One supporter's code does not sign in another supporter."""
    await admin.post("/v1/admin/tiers", json={"id": "t", "name": "T", "entitlements": [], "max_devices": 3})
    for address in (READER, "other@example.com"):
        await admin.post("/v1/admin/supporters", json={"email": address, "tier": "t"})
        await client.post("/v1/auth/code/request", json={"email": address})
    code = await emailed_code(outbox, READER)
    crossed = await client.post(
        "/v1/auth/code/verify", json={"email": "other@example.com", "code": code, "device": "x"}
    )
    assert crossed.status_code == 400


@pytest.mark.usefixtures("supporter")
async def test_parallel_verifies_of_one_code_make_one_session(client: Client, outbox: Path) -> None:
    """Ten simultaneous verifications of one code: one session, nine refusals."""
    await client.post("/v1/auth/code/request", json={"email": READER})
    code = await emailed_code(outbox, READER)
    answers = await asyncio.gather(
        *(
            client.post("/v1/auth/code/verify", json={"email": READER, "code": code, "device": f"d{n}"})
            for n in range(10)
        )
    )
    assert sorted(a.status_code for a in answers) == [200] + [400] * 9
    token = next(a.json()["access_token"] for a in answers if a.status_code == 200)
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert len(me.json()["sessions"]) == 1


@pytest.mark.usefixtures("supporter")
async def test_code_requests_are_limited_per_address(client: Client) -> None:
    """The sixth code request for one address from one network within the hour gets 429 with Retry-After."""
    for _ in range(5):
        assert (await client.post("/v1/auth/code/request", json={"email": READER})).status_code == 202
    limited = await client.post("/v1/auth/code/request", json={"email": READER})
    assert limited.status_code == 429
    assert 0 < int(limited.headers["retry-after"]) <= 3600
    assert limited.headers["content-type"] == "application/problem+json"


async def test_code_requests_are_limited_per_ip(client: Client) -> None:
    """The 21st code request from one address in the hour is refused, whatever the email."""
    for n in range(20):
        assert (await client.post("/v1/auth/code/request", json={"email": f"r{n}@example.com"})).status_code == 202
    limited = await client.post("/v1/auth/code/request", json={"email": "r99@example.com"})
    assert limited.status_code == 429
    assert "Retry-After" in limited.headers


@pytest.mark.usefixtures("supporter")
async def test_the_limit_window_moves_on(client: Client, clock: FakeClock) -> None:
    """Once the hour has passed, an address may ask for codes again."""
    for _ in range(5):
        await client.post("/v1/auth/code/request", json={"email": READER})
    clock.advance(hours=1)
    assert (await client.post("/v1/auth/code/request", json={"email": READER})).status_code == 202


@pytest.mark.usefixtures("supporter")
async def test_device_limit_lists_the_sessions_and_keeps_the_code(client: Client, outbox: Path) -> None:
    """Past max_devices sign-in is refused with a problem listing the sessions; ending one lets it through."""
    await sign_in(client, outbox, READER, device="Laptop")
    await sign_in(client, outbox, READER, device="Phone", nth=2)
    await client.post("/v1/auth/code/request", json={"email": READER})
    code = await emailed_code(outbox, READER, nth=3)
    refused = await client.post("/v1/auth/code/verify", json={"email": READER, "code": code, "device": "Tablet"})
    assert refused.status_code == 409, refused.text
    problem = refused.json()
    assert problem["max_devices"] == 2
    assert sorted(s["device"] for s in problem["sessions"]) == ["Laptop", "Phone"]
    laptop = next(s["id"] for s in problem["sessions"] if s["device"] == "Laptop")
    admitted = await client.post(
        "/v1/auth/code/verify", json={"email": READER, "code": code, "device": "Tablet", "end_sessions": [laptop]}
    )
    assert admitted.status_code == 200, admitted.text
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {admitted.json()['access_token']}"})
    assert sorted(s["device"] for s in me.json()["sessions"]) == ["Phone", "Tablet"]


async def test_activation_code_signs_in_once(client: Client, admin: Client, supporter: dict[str, Any]) -> None:
    """An admin's activation code signs the supporter in once, in any spelling, then never again."""
    made = await admin.post(f"/v1/admin/supporters/{supporter['id']}/activation-codes")
    assert made.status_code == 201, made.text
    code = made.json()["code"]
    assert len(code) == 19
    spelled = code.lower().replace("-", " ")
    first = await client.post("/v1/auth/activate", json={"code": spelled, "device": "Kiosk"})
    assert first.status_code == 200, first.text
    assert first.json()["supporter"]["id"] == supporter["id"]
    again = await client.post("/v1/auth/activate", json={"code": code, "device": "Kiosk"})
    assert again.status_code == 400
    audit = (await admin.get("/v1/admin/audit")).text
    assert "supporter.activation-code" in audit
    assert code not in audit


async def test_activation_codes_expire_after_seven_days(
    client: Client, admin: Client, clock: FakeClock, supporter: dict[str, Any]
) -> None:
    """An activation code unused for seven days no longer works."""
    code = (await admin.post(f"/v1/admin/supporters/{supporter['id']}/activation-codes")).json()["code"]
    clock.advance(days=7, seconds=1)
    assert (await client.post("/v1/auth/activate", json={"code": code, "device": "x"})).status_code == 400


@pytest.mark.usefixtures("supporter")
async def test_refresh_rotates_and_logout_ends_the_session(client: Client, outbox: Path) -> None:
    """Refresh gives a new pair; the old refresh token is spent; logout ends the session."""
    signed_in = await sign_in(client, outbox, READER)
    renewed = await client.post("/v1/auth/refresh", json={"refresh_token": signed_in["refresh_token"]})
    assert renewed.status_code == 200, renewed.text
    pair = renewed.json()
    assert pair["refresh_token"] != signed_in["refresh_token"]
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {pair['access_token']}"})
    assert me.status_code == 200
    assert (await client.post("/v1/auth/logout", json={"refresh_token": pair["refresh_token"]})).status_code == 204
    assert (await client.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})).status_code == 401
    gone = await client.get("/v1/me", headers={"Authorization": f"Bearer {pair['access_token']}"})
    assert gone.status_code == 401


async def test_me_shows_tier_and_sessions(client: Client, outbox: Path, supporter: dict[str, Any]) -> None:
    """/v1/me shows the supporter, tier, entitlements and sessions, marking the current one; one can be ended."""
    laptop = await sign_in(client, outbox, READER, device="Laptop")
    await sign_in(client, outbox, READER, device="Phone", nth=2)
    headers = {"Authorization": f"Bearer {laptop['access_token']}"}
    me = (await client.get("/v1/me", headers=headers)).json()
    assert (me["id"], me["email"], me["tier"], me["entitlements"]) == (
        supporter["id"],
        READER,
        "supporter",
        ["adblock_ok"],
    )
    assert {s["device"]: s["current"] for s in me["sessions"]} == {"Laptop": True, "Phone": False}
    phone = next(s["id"] for s in me["sessions"] if s["device"] == "Phone")
    assert (await client.delete(f"/v1/me/sessions/{phone}", headers=headers)).status_code == 204
    assert [s["device"] for s in (await client.get("/v1/me", headers=headers)).json()["sessions"]] == ["Laptop"]


@pytest.mark.parametrize("header", [None, "Bearer nope", "Bearer sga_x_y"])
async def test_me_needs_an_access_token(client: Client, header: str | None) -> None:
    """/v1/me without a valid access token answers 401 problem+json."""
    answer = await client.get("/v1/me", headers={"Authorization": header} if header else {})
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"


async def test_admin_sign_out_everywhere(
    client: Client, admin: Client, outbox: Path, supporter: dict[str, Any]
) -> None:
    """DELETE /v1/admin/supporters/{id}/sessions ends every session: refresh and /v1/me stop working."""
    signed_in = await sign_in(client, outbox, READER)
    assert (await admin.delete(f"/v1/admin/supporters/{supporter['id']}/sessions")).status_code == 204
    assert (
        await client.post("/v1/auth/refresh", json={"refresh_token": signed_in["refresh_token"]})
    ).status_code == 401
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {signed_in['access_token']}"})
    assert me.status_code == 401


async def test_revoking_a_supporter_ends_their_sessions(
    client: Client, admin: Client, outbox: Path, supporter: dict[str, Any]
) -> None:
    """An admin revoking a supporter makes the next refresh fail."""
    signed_in = await sign_in(client, outbox, READER)
    await admin.delete(f"/v1/admin/supporters/{supporter['id']}")
    refreshed = await client.post("/v1/auth/refresh", json={"refresh_token": signed_in["refresh_token"]})
    assert refreshed.status_code == 401
