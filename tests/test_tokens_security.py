"""Token verification refuses every known way to forge or misuse a token."""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.request
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from supportgate.errors import InvalidToken, TokenFailure
from supportgate.store import Store, connect
from supportgate.tokens import jose
from supportgate.tokens.claims import access_claims
from supportgate.tokens.jose import ACCESS_TYPE, PASS_TYPE, TokenType, public_jwk, thumbprint
from supportgate.tokens.jwt import Tokens
from supportgate.tokens.lifetimes import PUBLICATION_DELAY
from supportgate.tokens.signing_keys import SigningKeys
from tests.conftest import FakeClock
from tests.tokens_helpers import ISSUER, OTHER_SITE, SITE, LocalServer, b64url, forge, good_claims, vault


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    opened = Store(connect(store_url))
    yield opened
    await opened.close()


@pytest.fixture
async def signing_keys(store: Store, clock: FakeClock) -> SigningKeys:
    keys = SigningKeys(vault(store), clock)
    await keys.ensure()
    return keys


@pytest.fixture
def tokens(signing_keys: SigningKeys, clock: FakeClock) -> Tokens:
    return Tokens(signing_keys, clock)


@pytest.fixture
async def active(signing_keys: SigningKeys) -> tuple[str, Ed25519PublicKey]:
    """The kid and public key that sign right now."""
    kid, private = await signing_keys.signing_key()
    return kid, private.public_key()


@pytest.fixture
def recorder() -> Iterator[LocalServer]:
    """A local server that answers every request with an attacker's JWKS, and counts them."""
    attacker = Ed25519PrivateKey.generate()
    with LocalServer({"keys": [public_jwk(attacker.public_key())]}) as server:
        yield server


async def refused(tokens: Tokens, token: str, *, typ: TokenType = PASS_TYPE, audience: str = SITE) -> TokenFailure:
    """The reason ``token`` is refused as a ``typ`` token for ``audience``; fails the test if it is accepted."""
    with pytest.raises(InvalidToken) as caught:
        await tokens.verify(token, typ=typ, audience=audience, issuer=ISSUER)
    return caught.value.reason


async def sign_anything(signing_keys: SigningKeys, claims: dict[str, Any]) -> str:
    """A pass signed by the active key with whatever claims, bypassing the signer's own checks."""
    kid, key = await signing_keys.signing_key()
    return jose.sign(claims, typ=PASS_TYPE, key=key, kid=kid)


def pass_header(kid: str, alg: Any = "EdDSA") -> dict[str, Any]:
    return {"alg": alg, "kid": kid, "typ": PASS_TYPE}


async def test_a_good_pass_is_accepted(tokens: Tokens, clock: FakeClock) -> None:
    """The control: a pass signed by the active key, for this site, verifies."""
    token = await tokens.sign(good_claims(clock()), PASS_TYPE)
    claims = await tokens.verify(token, typ=PASS_TYPE, audience=SITE, issuer=ISSUER)
    assert claims["aud"] == SITE


@pytest.mark.parametrize("alg", ["none", None, "nOnE", "NONE", ""], ids=repr)
async def test_alg_none_is_refused(
    tokens: Tokens, active: tuple[str, Ed25519PublicKey], clock: FakeClock, alg: str | None
) -> None:
    """An unsigned token (alg none in any spelling, or null) with an empty signature is refused."""
    token = forge(pass_header(active[0], alg), good_claims(clock()))
    assert await refused(tokens, token) == "bad_algorithm"


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _pem(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


@pytest.mark.parametrize(
    "secret",
    [_raw, lambda public: public_jwk(public)["x"].encode(), _pem],
    ids=["raw public key", "jwk x", "public PEM"],
)
async def test_hs256_keyed_with_our_public_key_is_refused(
    tokens: Tokens, active: tuple[str, Ed25519PublicKey], clock: FakeClock, secret: Any
) -> None:
    """An HS256 token whose HMAC key is our (public) key, in any encoding, is refused."""
    key = secret(active[1])
    token = forge(
        pass_header(active[0], "HS256"),
        good_claims(clock()),
        lambda data: hmac.new(key, data, hashlib.sha256).digest(),
    )
    assert await refused(tokens, token) == "bad_algorithm"


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
async def test_our_kid_with_another_algorithm_is_refused(
    tokens: Tokens, active: tuple[str, Ed25519PublicKey], clock: FakeClock, alg: str
) -> None:
    """A token naming our kid but signed with another algorithm (and the attacker's key) is refused."""
    private: Any = ec.generate_private_key(ec.SECP256R1()) if alg == "ES256" else rsa.generate_private_key(65537, 2048)
    token = jwt.encode(good_claims(clock()), private, algorithm=alg, headers={"kid": active[0], "typ": PASS_TYPE})
    assert await refused(tokens, token) == "bad_algorithm"


async def test_a_kid_nobody_published_is_refused(tokens: Tokens, clock: FakeClock) -> None:
    """A well-signed token whose kid is not one of ours is refused as from an unknown key."""
    stranger = Ed25519PrivateKey.generate()
    token = jwt.encode(
        good_claims(clock()), stranger, algorithm="EdDSA", headers=pass_header(thumbprint(stranger.public_key()))
    )
    assert await refused(tokens, token) == "unknown_key"


@pytest.mark.parametrize(
    "kid",
    ["../../etc/passwd", "/dev/zero", "https://attacker.example/key", "A" * 2048, "A" * 100_000, 42, ""],
    ids=["path", "device", "url", "2 KB", "100 KB", "number", "empty"],
)
async def test_a_kid_that_is_not_a_thumbprint_is_refused_without_reloading(
    tokens: Tokens, store: Store, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, kid: object
) -> None:
    """A path-like, URL, huge, numeric or empty kid is refused as it is, without even a store read."""
    stranger = Ed25519PrivateKey.generate()
    token = forge({"alg": "EdDSA", "kid": kid, "typ": PASS_TYPE}, good_claims(clock()), stranger.sign)
    reads: list[str] = []
    monkeypatch.setattr(store.redis, "get", reads.append)
    assert await refused(tokens, token) == "malformed"
    assert reads == []


@pytest.mark.parametrize("param", ["jku", "x5u", "jwk", "x5c"])
async def test_key_pointing_headers_are_ignored_and_never_fetched(
    tokens: Tokens,
    active: tuple[str, Ed25519PublicKey],
    clock: FakeClock,
    recorder: LocalServer,
    param: str,
) -> None:
    """A token signed by the attacker that offers the key in jku/x5u/jwk/x5c is refused and nothing is fetched."""
    attacker = Ed25519PrivateKey.generate()
    offered: dict[str, Any] = {
        "jku": f"{recorder.url}/jwks.json",
        "x5u": f"{recorder.url}/cert.pem",
        "jwk": {**public_jwk(attacker.public_key()), "jku": f"{recorder.url}/nested"},
        "x5c": [base64.b64encode(_pem(attacker.public_key())).decode()],
    }
    header = {**pass_header(active[0]), param: offered[param]}
    token = forge(header, good_claims(clock()), attacker.sign)
    assert await refused(tokens, token) == "bad_signature"
    assert recorder.hits == []
    with urllib.request.urlopen(f"{recorder.url}/probe") as answer:
        assert answer.status == 200
    assert recorder.hits == ["/probe"]


@pytest.mark.parametrize("claim", ["exp", "iat", "iss", "aud", "sub", "jti"])
async def test_a_missing_required_claim_is_refused(
    tokens: Tokens, signing_keys: SigningKeys, clock: FakeClock, claim: str
) -> None:
    """A validly signed token lacking any of exp, iat, iss, aud, sub or jti is refused."""
    claims = good_claims(clock())
    del claims[claim]
    token = await sign_anything(signing_keys, claims)
    assert await refused(tokens, token) == "missing_claim"


async def test_an_expired_token_is_refused(tokens: Tokens, clock: FakeClock) -> None:
    """A token is accepted up to 30 s past its exp (clock skew) and refused after."""
    token = await tokens.sign(good_claims(clock(), lifetime=timedelta(minutes=5)), PASS_TYPE)
    clock.advance(minutes=5, seconds=29)
    await tokens.verify(token, typ=PASS_TYPE, audience=SITE, issuer=ISSUER)
    clock.advance(seconds=1)
    assert await refused(tokens, token) == "expired"


@pytest.mark.parametrize("claim", ["nbf", "iat"])
async def test_a_token_from_the_future_is_refused(tokens: Tokens, clock: FakeClock, claim: str) -> None:
    """A token whose nbf or iat lies more than 30 s ahead is refused; 30 s ahead is forgiven."""
    now = int(clock().timestamp())
    skewed = await tokens.sign({**good_claims(clock()), claim: now + 30}, PASS_TYPE)
    await tokens.verify(skewed, typ=PASS_TYPE, audience=SITE, issuer=ISSUER)
    future = await tokens.sign({**good_claims(clock()), claim: now + 31}, PASS_TYPE)
    assert await refused(tokens, future) == "not_yet_valid"


@pytest.mark.parametrize("value", ["9999999999", True, 1e400, 10**400], ids=repr)
async def test_a_non_numeric_exp_is_refused(tokens: Tokens, clock: FakeClock, value: object) -> None:
    """An exp that is a string, a boolean, infinite or beyond a float is refused rather than read generously."""
    token = await tokens.sign({**good_claims(clock()), "exp": value}, PASS_TYPE)
    assert await refused(tokens, token) == "malformed"


async def test_a_wrong_issuer_is_refused(tokens: Tokens, clock: FakeClock) -> None:
    """A token signed by our key but naming another issuer is refused."""
    token = await tokens.sign({**good_claims(clock()), "iss": "https://gate.example.evil"}, PASS_TYPE)
    assert await refused(tokens, token) == "wrong_issuer"


async def test_a_pass_for_one_site_is_refused_by_another(tokens: Tokens, clock: FakeClock) -> None:
    """A pass for site A presented to site B is refused."""
    token = await tokens.sign(good_claims(clock(), audience=SITE), PASS_TYPE)
    assert await refused(tokens, token, audience=OTHER_SITE) == "wrong_audience"


async def test_a_pass_for_several_sites_is_refused(tokens: Tokens, clock: FakeClock) -> None:
    """A pass whose aud lists several sites, this one among them, is refused: aud must be the site alone."""
    token = await tokens.sign({**good_claims(clock()), "aud": [SITE, OTHER_SITE]}, PASS_TYPE)
    assert await refused(tokens, token) == "wrong_audience"


async def test_an_access_token_is_not_a_pass(tokens: Tokens, clock: FakeClock) -> None:
    """An access token presented as a pass is refused for its typ, even with the site as audience."""
    token = await tokens.sign(good_claims(clock(), audience=SITE), ACCESS_TYPE)
    assert await refused(tokens, token, typ=PASS_TYPE) == "wrong_type"


async def test_a_pass_is_not_an_access_token(tokens: Tokens, clock: FakeClock) -> None:
    """A pass presented as an access token is refused for its typ, even with the issuer as audience."""
    token = await tokens.sign(good_claims(clock(), audience=ISSUER), PASS_TYPE)
    assert await refused(tokens, token, typ=ACCESS_TYPE, audience=ISSUER) == "wrong_type"


@pytest.mark.parametrize("typ", ["JWT", "sg-pass+JWT", "sg-pass", None])
async def test_a_near_miss_typ_is_refused(
    tokens: Tokens, signing_keys: SigningKeys, clock: FakeClock, typ: str | None
) -> None:
    """The header typ must be sg-pass+jwt exactly: no case folding, no generic JWT, not absent."""
    kid, key = await signing_keys.signing_key()
    headers = {"kid": kid, "typ": typ}
    token = jwt.encode(good_claims(clock()), key, algorithm="EdDSA", headers=headers)
    assert await refused(tokens, token) == "wrong_type"


async def test_a_tampered_token_is_refused(tokens: Tokens, clock: FakeClock) -> None:
    """Changing the claims of a signed pass breaks its signature."""
    header, _, signature = (await tokens.sign(good_claims(clock()), PASS_TYPE)).split(".")
    tampered = b64url(f'{{"iss":"{ISSUER}","aud":"{SITE}","tier":"patron"}}'.encode())
    assert await refused(tokens, f"{header}.{tampered}.{signature}") == "bad_signature"


@pytest.mark.parametrize("token", ["", "a.b", "a.b.c", "..", "x" * 5000, "ey.ey.ey.ey"], ids=repr)
async def test_garbage_is_refused_as_malformed(tokens: Tokens, token: str) -> None:
    """Strings that are not compact JWS, or are longer than 4 KB, are refused as malformed."""
    assert await refused(tokens, token) == "malformed"


async def test_a_pass_from_a_key_retired_past_its_window_is_refused(
    signing_keys: SigningKeys, tokens: Tokens, clock: FakeClock
) -> None:
    """A still-unexpired pass signed by a key whose retirement window has passed is refused."""
    token = await tokens.sign(good_claims(clock(), lifetime=timedelta(hours=3)), PASS_TYPE)
    clock.advance(seconds=PUBLICATION_DELAY.total_seconds())
    await signing_keys.rotate(timedelta(hours=1))
    await tokens.verify(token, typ=PASS_TYPE, audience=SITE, issuer=ISSUER)
    clock.advance(hours=1)
    assert await refused(tokens, token) == "unknown_key"


async def test_access_claims_verify_as_an_access_token(tokens: Tokens, clock: FakeClock) -> None:
    """The control for typ: an access token verifies as one, with the issuer as its audience."""
    token = await tokens.sign(access_claims(supporter_id="s", session_id="x", issuer=ISSUER, now=clock()), ACCESS_TYPE)
    assert (await tokens.verify(token, typ=ACCESS_TYPE, audience=ISSUER, issuer=ISSUER))["sid"] == "x"
