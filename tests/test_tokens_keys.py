"""Signing keys: bootstrap, rotation by pre-publication, retirement, kids, and the per-process cache."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from supportgate.errors import Conflict, InvalidToken
from supportgate.store import Store, connect, names
from supportgate.tokens.claims import access_claims
from supportgate.tokens.jose import ACCESS_TYPE, public_jwk, thumbprint
from supportgate.tokens.jwt import Tokens
from supportgate.tokens.lifetimes import JWKS_MAX_AGE, KEY_SET_MAX_AGE, PUBLICATION_DELAY
from supportgate.tokens.signing_keys import KeyState, SigningKeys
from tests.conftest import FakeClock
from tests.tokens_helpers import ISSUER, MASTER_KEY, b64url, vault

HOUR = timedelta(hours=1)


@pytest.fixture
async def stores(store_url: str) -> AsyncIterator[list[Store]]:
    """Three connections to the test store, one per simulated process."""
    opened = [Store(connect(store_url)) for _ in range(3)]
    yield opened
    for store in opened:
        await store.close()


@pytest.fixture
def store(stores: list[Store]) -> Store:
    return stores[0]


@pytest.fixture
def signing_keys(store: Store, clock: FakeClock) -> SigningKeys:
    return SigningKeys(vault(store), clock)


@pytest.fixture
def tokens(signing_keys: SigningKeys, clock: FakeClock) -> Tokens:
    return Tokens(signing_keys, clock)


def kids(jwks: dict[str, list[dict[str, str]]]) -> set[str]:
    return {jwk["kid"] for jwk in jwks["keys"]}


async def sign_access(tokens: Tokens, clock: FakeClock) -> str:
    claims = access_claims(supporter_id="sup-1", session_id="ses-1", issuer=ISSUER, now=clock())
    return await tokens.sign(claims, ACCESS_TYPE)


async def verify_access(tokens: Tokens, token: str) -> dict[str, Any]:
    return await tokens.verify(token, typ=ACCESS_TYPE, audience=ISSUER, issuer=ISSUER)


def header_kid(token: str) -> str:
    kid: str = jwt.get_unverified_header(token)["kid"]
    return kid


async def test_parallel_ensure_creates_one_key_set(stores: list[Store], clock: FakeClock) -> None:
    """Several processes bootstrapping at once end up sharing one active and one next key."""
    processes = [SigningKeys(vault(store), clock) for store in stores for _ in range(3)]
    seen = await asyncio.gather(*(p.ensure() for p in processes))
    assert all(states == seen[0] for states in seen)
    assert [k.state for k in seen[0]] == ["active", "next"]
    assert len({json.dumps(await p.jwks(), sort_keys=True) for p in processes}) == 1


async def test_ensure_keeps_an_existing_key_set(signing_keys: SigningKeys, store: Store, clock: FakeClock) -> None:
    """ensure() on a store that already has keys changes nothing, even from a fresh process."""
    first = await signing_keys.ensure()
    clock.advance(hours=2)
    assert await SigningKeys(vault(store), clock).ensure() == first


def test_kid_matches_the_rfc8037_example_thumbprint() -> None:
    """The kid of RFC 8037's example Ed25519 key is the thumbprint RFC 8037 appendix A.3 gives."""
    seed = base64.urlsafe_b64decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=")
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    assert public_jwk(public)["x"] == "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    assert thumbprint(public) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


async def test_published_kids_are_rfc7638_thumbprints(signing_keys: SigningKeys) -> None:
    """Each JWKS entry is a public Ed25519 JWK whose kid is the SHA-256 of its canonical crv/kty/x JSON."""
    published = (await signing_keys.jwks())["keys"]
    assert len(published) == 2
    for jwk in published:
        assert set(jwk) == {"kty", "crv", "x", "kid", "alg", "use"}
        assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]) == ("OKP", "Ed25519", "EdDSA", "sig")
        canonical = json.dumps({"kty": "OKP", "x": jwk["x"], "crv": "Ed25519"}, separators=(",", ":"), sort_keys=True)
        assert jwk["kid"] == b64url(hashlib.sha256(canonical.encode()).digest())


async def stored_key_set(store: Store) -> Any:
    """The signing key set as stored, unsealed with the tests' master key."""
    return json.loads(MASTER_KEY.unseal(names.signing_keys(), await store.redis.get(names.signing_keys())))


async def test_private_keys_are_stored_sealed_as_pkcs8_pem(signing_keys: SigningKeys, store: Store) -> None:
    """The store holds the key set sealed; unsealed, each private key is PKCS8 PEM that loads to the published key."""
    published = {jwk["kid"]: jwk for jwk in (await signing_keys.jwks())["keys"]}
    assert (await store.redis.get(names.signing_keys())).startswith(b"sg-sealed:v1:")
    stored = await stored_key_set(store)
    assert {entry["kid"] for entry in stored} == set(published)
    for entry in stored:
        assert entry["private_pem"].startswith("-----BEGIN PRIVATE KEY-----")
        private = load_pem_private_key(entry["private_pem"].encode(), password=None)
        assert isinstance(private, Ed25519PrivateKey)
        assert public_jwk(private.public_key()) == published[entry["kid"]]


async def test_rotation_signs_only_with_a_key_published_beforehand(
    signing_keys: SigningKeys, tokens: Tokens, clock: FakeClock
) -> None:
    """After a rotation the signing key is the one published a full delay earlier; the old one stays published."""
    active, upcoming = await signing_keys.ensure()
    before = await sign_access(tokens, clock)
    assert header_kid(before) == active.kid
    assert upcoming.kid in kids(await signing_keys.jwks())

    clock.advance(seconds=PUBLICATION_DELAY.total_seconds())
    rotated = await signing_keys.rotate(HOUR)

    assert rotated[0] == KeyState(upcoming.kid, "active", upcoming.published_at)
    assert rotated[1].state == "next"
    assert rotated[1].kid not in {active.kid, upcoming.kid}
    assert rotated[2] == KeyState(active.kid, "retiring", active.published_at, retire_until=clock.now + HOUR)
    after = await sign_access(tokens, clock)
    assert header_kid(after) == upcoming.kid
    assert kids(await signing_keys.jwks()) == {active.kid, upcoming.kid, rotated[1].kid}
    assert (await verify_access(tokens, before))["sub"] == "sup-1"
    assert (await verify_access(tokens, after))["sub"] == "sup-1"


async def test_rotating_too_soon_is_refused(signing_keys: SigningKeys, store: Store, clock: FakeClock) -> None:
    """Rotating before next was published for the JWKS max-age plus the cache age is refused, changing nothing."""
    await signing_keys.ensure()
    stored = await store.redis.get(names.signing_keys())
    clock.advance(seconds=JWKS_MAX_AGE.total_seconds())
    with pytest.raises(Conflict, match="published for only 300 s") as refused:
        await signing_keys.rotate(HOUR)
    assert refused.value.extra["ready_at"] == (clock.now + KEY_SET_MAX_AGE).isoformat()
    assert await store.redis.get(names.signing_keys()) == stored


async def test_forced_rotation_skips_the_wait(signing_keys: SigningKeys) -> None:
    """force=True rotates at once, for when the active key must go now."""
    active, upcoming = await signing_keys.ensure()
    rotated = await signing_keys.rotate(HOUR, force=True)
    assert [(k.kid, k.state) for k in rotated if k.kid in {active.kid, upcoming.kid}] == [
        (upcoming.kid, "active"),
        (active.kid, "retiring"),
    ]


async def test_parallel_rotations_rotate_once(stores: list[Store], clock: FakeClock) -> None:
    """Two processes rotating at once make one rotation; the other finds a brand-new next key and is refused."""
    first, second = SigningKeys(vault(stores[0]), clock), SigningKeys(vault(stores[1]), clock)
    await first.ensure()
    clock.advance(seconds=PUBLICATION_DELAY.total_seconds())
    results = await asyncio.gather(first.rotate(HOUR), second.rotate(HOUR), return_exceptions=True)
    assert sorted(type(r).__name__ for r in results) == ["Conflict", "list"]
    assert [k.state for k in await first.describe()] == ["active", "next", "retiring"]


async def test_retired_key_is_dropped_after_its_window(
    signing_keys: SigningKeys, store: Store, clock: FakeClock
) -> None:
    """A retiring key is published until retire_until, then leaves the JWKS, and the store at the next rotation."""
    active, _ = await signing_keys.ensure()
    clock.advance(seconds=PUBLICATION_DELAY.total_seconds())
    await signing_keys.rotate(HOUR)
    clock.advance(seconds=HOUR.total_seconds() - 1)
    assert active.kid in kids(await signing_keys.jwks())
    clock.advance(seconds=1)
    assert active.kid not in kids(await signing_keys.jwks())
    assert active.kid not in await signing_keys.verification_keys()

    await signing_keys.rotate(HOUR)
    stored = await stored_key_set(store)
    assert active.kid not in {entry["kid"] for entry in stored}
    assert [entry["state"] for entry in stored] == ["active", "next", "retiring"]


async def test_cached_key_set_needs_no_store_round_trip(
    signing_keys: SigningKeys, tokens: Tokens, store: Store, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once loaded, signing, verifying and the JWKS read nothing from the store until the cache is 30 s old."""
    await signing_keys.ensure()
    reads: list[object] = []
    real_get = store.redis.get

    async def counting_get(name: str) -> object:
        reads.append(name)
        return await real_get(name)

    monkeypatch.setattr(store.redis, "get", counting_get)
    for _ in range(20):
        await verify_access(tokens, await sign_access(tokens, clock))
    await signing_keys.jwks()
    assert reads == []
    clock.advance(seconds=KEY_SET_MAX_AGE.total_seconds())
    await signing_keys.jwks()
    assert reads == [names.signing_keys()]


async def test_another_process_rotation_is_seen_within_the_cache_age(stores: list[Store], clock: FakeClock) -> None:
    """A process keeps signing with the key set it cached for up to 30 s after another process rotated."""
    rotator, bystander = SigningKeys(vault(stores[0]), clock), SigningKeys(vault(stores[1]), clock)
    bystander_tokens = Tokens(bystander, clock)
    active, upcoming = await bystander.ensure()
    clock.advance(seconds=PUBLICATION_DELAY.total_seconds())
    await bystander.jwks()
    await rotator.rotate(HOUR)
    assert header_kid(await sign_access(bystander_tokens, clock)) == active.kid
    clock.advance(seconds=KEY_SET_MAX_AGE.total_seconds())
    assert header_kid(await sign_access(bystander_tokens, clock)) == upcoming.kid


async def test_token_from_a_newer_key_reloads_once(stores: list[Store], clock: FakeClock) -> None:
    """A token signed by a key created after this process loaded its key set verifies after one reload."""
    rotator, verifier = SigningKeys(vault(stores[0]), clock), SigningKeys(vault(stores[1]), clock)
    await verifier.ensure()
    await rotator.rotate(HOUR, force=True)
    await rotator.rotate(HOUR, force=True)
    token = await sign_access(Tokens(rotator, clock), clock)
    assert header_kid(token) not in await verifier.verification_keys()
    assert (await verify_access(Tokens(verifier, clock), token))["sub"] == "sup-1"


async def test_unknown_kids_reload_at_most_once_a_second(
    signing_keys: SigningKeys, tokens: Tokens, store: Store, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tokens naming kids nobody published reload the key set at most once per second, and are refused."""
    await signing_keys.ensure()
    stranger = Ed25519PrivateKey.generate()
    claims = access_claims(supporter_id="sup-1", session_id="ses-1", issuer=ISSUER, now=clock())
    forged = jwt.encode(
        claims, stranger, algorithm="EdDSA", headers={"kid": thumbprint(stranger.public_key()), "typ": ACCESS_TYPE}
    )
    reads: list[object] = []
    real_get = store.redis.get

    async def counting_get(name: str) -> object:
        reads.append(name)
        return await real_get(name)

    monkeypatch.setattr(store.redis, "get", counting_get)
    for _ in range(5):
        with pytest.raises(InvalidToken) as refused:
            await verify_access(tokens, forged)
        assert refused.value.reason == "unknown_key"
        clock.advance(seconds=0.1)
    assert len(reads) == 1
    clock.advance(seconds=1)
    with pytest.raises(InvalidToken):
        await verify_access(tokens, forged)
    assert len(reads) == 2
