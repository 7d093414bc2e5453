"""The claims of access tokens and passes, and the per-site pseudonyms in them."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from collections.abc import AsyncIterator

import pytest

from supportgate.store import Store, connect
from supportgate.tokens.claims import access_claims, pass_claims, pseudonym
from supportgate.tokens.lifetimes import ACCESS_LIFETIME, PASS_LIFETIME
from supportgate.tokens.stored_secrets import PseudonymSecret
from tests.conftest import FakeClock
from tests.tokens_helpers import ISSUER, OTHER_SITE, SECRET, SITE, vault


def make_pass(clock: FakeClock, *, site: str = SITE, supporter: str = "sup-1") -> dict[str, object]:
    return pass_claims(
        supporter_id=supporter,
        site_id=site,
        tier="supporter",
        entitlements=["adblock_ok", "no_nag", "adblock_ok"],
        session_id="ses-1",
        issuer=ISSUER,
        pseudonym_secret=SECRET,
        now=clock(),
    )


def test_pseudonym_is_the_hmac_of_site_and_supporter() -> None:
    """A pseudonym is base64url HMAC-SHA256(secret, "site:supporter"), computed independently here."""
    expected = hmac.new(SECRET, b"news-example:sup-1", hashlib.sha256).digest()
    assert pseudonym(SECRET, SITE, "sup-1") == base64.urlsafe_b64encode(expected).rstrip(b"=").decode()


def test_pass_claims_name_one_site_and_a_pseudonym(clock: FakeClock) -> None:
    """A pass's aud is its site alone; sub and sid are that site's pseudonyms, never the real ids."""
    claims = make_pass(clock)
    issued = int(clock().timestamp())
    assert claims == {
        "iss": ISSUER,
        "aud": SITE,
        "sub": pseudonym(SECRET, SITE, "sup-1"),
        "sid": pseudonym(SECRET, SITE, "session:ses-1"),
        "tier": "supporter",
        "ent": ["adblock_ok", "no_nag"],
        "iat": issued,
        "exp": issued + int(PASS_LIFETIME.total_seconds()),
        "jti": claims["jti"],
    }
    assert "sup-1" not in str(claims)
    assert "ses-1" not in str(claims)


def test_two_sites_cannot_link_one_supporter(clock: FakeClock) -> None:
    """The same supporter and session get unrelated sub and sid on two sites, and every pass a fresh jti."""
    here, there = make_pass(clock), make_pass(clock, site=OTHER_SITE)
    assert here["sub"] != there["sub"]
    assert here["sid"] != there["sid"]
    assert here["jti"] != there["jti"]
    assert make_pass(clock)["sub"] == here["sub"]
    assert make_pass(clock, supporter="sup-2")["sub"] != here["sub"]


def test_access_claims_are_for_the_gate_itself(clock: FakeClock) -> None:
    """An access token's audience is the issuer, its subject the supporter, and it lasts 15 minutes."""
    claims = access_claims(supporter_id="sup-1", session_id="ses-1", issuer=ISSUER, now=clock())
    assert (claims["iss"], claims["aud"], claims["sub"], claims["sid"]) == (ISSUER, ISSUER, "sup-1", "ses-1")
    assert claims["exp"] - claims["iat"] == ACCESS_LIFETIME.total_seconds()


@pytest.fixture
async def stores(store_url: str) -> AsyncIterator[list[Store]]:
    opened = [Store(connect(store_url)) for _ in range(4)]
    yield opened
    for store in opened:
        await store.close()


async def test_the_pseudonym_secret_is_made_once(stores: list[Store]) -> None:
    """Processes racing to create the pseudonym secret all get the same 32 bytes, and keep them."""
    secrets = await asyncio.gather(*(PseudonymSecret(vault(store)).get() for store in stores))
    assert len(set(secrets)) == 1
    assert len(secrets[0]) == 32
    assert await PseudonymSecret(vault(stores[0])).get() == secrets[0]
