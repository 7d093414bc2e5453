"""PassVerifier (supportgate-verify): sites verify passes offline against the JWKS, with the service's rules."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import supportgate_verify.jose
from supportgate.store import Store, connect
from supportgate.tokens import jose
from supportgate.tokens.claims import pass_claims, pseudonym
from supportgate.tokens.jose import ACCESS_TYPE, PASS_TYPE, public_jwk, thumbprint
from supportgate.tokens.jwt import Tokens
from supportgate.tokens.signing_keys import SigningKeys
from supportgate.tokens.stored_secrets import PseudonymSecret
from supportgate_verify import JWKS_REFETCH_INTERVAL, InvalidToken, PassVerifier, VerifiedPass
from tests.conftest import FakeClock
from tests.tokens_helpers import ISSUER, OTHER_SITE, SECRET, SITE, LocalServer, forge, good_claims, vault


class Signer:
    """A key that signs passes the way the gate does, without a store."""

    def __init__(self) -> None:
        self.key = Ed25519PrivateKey.generate()
        self.kid = thumbprint(self.key.public_key())
        self.jwk = public_jwk(self.key.public_key())

    def sign(self, claims: dict[str, Any], typ: jose.TokenType = PASS_TYPE) -> str:
        """A token of ``typ`` with exactly ``claims``."""
        return jose.sign(claims, typ=typ, key=self.key, kid=self.kid)

    def pass_for(self, now: datetime, *, site: str = SITE, supporter: str = "sup-1") -> str:
        """A good pass for ``site``, issued at ``now``."""
        claims = pass_claims(
            supporter_id=supporter,
            site_id=site,
            tier="supporter",
            entitlements=["adblock_ok"],
            session_id="ses-1",
            issuer=ISSUER,
            pseudonym_secret=SECRET,
            now=now,
        )
        return self.sign(claims)


@pytest.fixture
def signer() -> Signer:
    return Signer()


@pytest.fixture
def jwks_server(signer: Signer) -> Iterator[LocalServer]:
    """The gate's JWKS, served with the gate's Cache-Control."""
    with LocalServer({"keys": [signer.jwk]}, cache_control="public, max-age=300") as server:
        yield server


@pytest.fixture
def verifier(jwks_server: LocalServer, clock: FakeClock) -> PassVerifier:
    return PassVerifier(f"{jwks_server.url}/.well-known/jwks.json", site=SITE, issuer=ISSUER, clock=clock)


def test_a_good_pass_verifies(verifier: PassVerifier, signer: Signer, clock: FakeClock) -> None:
    """A pass for this site says who holds it, their tier, entitlements, session and expiry."""
    verified = verifier.verify(signer.pass_for(clock()))
    assert verified == VerifiedPass(
        sub=pseudonym(SECRET, SITE, "sup-1"),
        tier="supporter",
        entitlements=("adblock_ok",),
        session=pseudonym(SECRET, SITE, "session:ses-1"),
        expires_at=clock() + timedelta(hours=1),
    )


def test_the_jwks_is_fetched_once_per_max_age(
    verifier: PassVerifier, signer: Signer, jwks_server: LocalServer, clock: FakeClock
) -> None:
    """Many passes cost one JWKS fetch until its max-age runs out, then one more."""
    for n in range(50):
        verifier.verify(signer.pass_for(clock(), supporter=f"sup-{n}"))
    assert jwks_server.hits == ["/.well-known/jwks.json"]
    clock.advance(seconds=299)
    verifier.verify(signer.pass_for(clock(), supporter="late"))
    assert len(jwks_server.hits) == 1
    clock.advance(seconds=1)
    verifier.verify(signer.pass_for(clock(), supporter="later"))
    assert len(jwks_server.hits) == 2


def test_an_unknown_kid_refetches_at_most_once_a_minute(
    verifier: PassVerifier, signer: Signer, jwks_server: LocalServer, clock: FakeClock
) -> None:
    """A pass from a key not yet seen refetches the JWKS, but never sooner than a minute after the last fetch."""
    verifier.verify(signer.pass_for(clock()))
    newer = Signer()
    jwks_server.document = {"keys": [signer.jwk, newer.jwk]}
    with pytest.raises(InvalidToken, match="unknown_key"):
        verifier.verify(newer.pass_for(clock()))
    assert len(jwks_server.hits) == 1

    clock.advance(seconds=JWKS_REFETCH_INTERVAL.total_seconds())
    assert verifier.verify(newer.pass_for(clock())).tier == "supporter"
    assert len(jwks_server.hits) == 2

    stranger = Signer()
    for _ in range(3):
        with pytest.raises(InvalidToken, match="unknown_key"):
            verifier.verify(stranger.pass_for(clock()))
    assert len(jwks_server.hits) == 2


def test_keys_are_kept_when_a_refetch_fails(
    verifier: PassVerifier, signer: Signer, jwks_server: LocalServer, clock: FakeClock
) -> None:
    """If the JWKS cannot be fetched again, the keys already held go on verifying."""
    verifier.verify(signer.pass_for(clock()))
    jwks_server.stop()
    clock.advance(hours=2)
    assert verifier.verify(signer.pass_for(clock(), supporter="sup-2")).tier == "supporter"


def test_no_jwks_at_all_is_keys_unavailable(signer: Signer, clock: FakeClock) -> None:
    """With no JWKS ever fetched, passes are refused as keys_unavailable rather than as forged."""
    with LocalServer(None) as gone:
        verifier = PassVerifier(f"{gone.url}/jwks.json", site=SITE, issuer=ISSUER, clock=clock)
        with pytest.raises(InvalidToken) as refused:
            verifier.verify(signer.pass_for(clock()))
    assert refused.value.reason == "keys_unavailable"


def _expired(signer: Signer, now: datetime) -> str:
    return signer.sign(good_claims(now - timedelta(hours=2)))


BAD_PASSES: dict[str, tuple[Callable[[Signer, datetime], str], str]] = {
    "expired": (_expired, "expired"),
    "other site": (lambda s, now: s.pass_for(now, site=OTHER_SITE), "wrong_audience"),
    "access token": (lambda s, now: s.sign(good_claims(now), ACCESS_TYPE), "wrong_type"),
    "other issuer": (lambda s, now: s.sign({**good_claims(now), "iss": "https://evil.example"}), "wrong_issuer"),
    "alg none": (
        lambda s, now: forge({"alg": "none", "kid": s.kid, "typ": PASS_TYPE}, good_claims(now)),
        "bad_algorithm",
    ),
    "forged": (lambda _s, now: Signer().sign(good_claims(now)).rsplit(".", 1)[0] + ".AAAA", "unknown_key"),
    "bad signature": (
        lambda s, now: forge({"alg": "EdDSA", "kid": s.kid, "typ": PASS_TYPE}, good_claims(now), Signer().key.sign),
        "bad_signature",
    ),
    "path kid": (
        lambda _s, _now: forge({"alg": "EdDSA", "kid": "../../etc/passwd", "typ": PASS_TYPE}, {}),
        "malformed",
    ),
    "huge": (lambda _s, _now: "e" * 10_000, "malformed"),
    "no tier": (lambda s, now: s.sign({k: v for k, v in good_claims(now).items() if k != "tier"}), "missing_claim"),
}


@pytest.mark.parametrize("case", list(BAD_PASSES))
def test_bad_passes_are_refused(verifier: PassVerifier, signer: Signer, clock: FakeClock, case: str) -> None:
    """The verifier refuses what the service refuses, with the same reason."""
    make, reason = BAD_PASSES[case]
    token = make(signer, clock())
    with pytest.raises(InvalidToken) as refused:
        verifier.verify(token)
    assert refused.value.reason == reason


def test_verified_passes_are_remembered_until_they_expire(
    signer: Signer, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pass seen before is answered from the cache, until its exp; then it is checked again and refused."""
    calls = _count_verifications(monkeypatch)
    verifier = PassVerifier(keys={"keys": [signer.jwk]}, site=SITE, issuer=ISSUER, clock=clock)
    token = signer.pass_for(clock())
    first = verifier.verify(token)
    clock.advance(minutes=59, seconds=59)
    assert [verifier.verify(token) for _ in range(5)] == [first] * 5
    assert len(calls) == 1
    clock.advance(seconds=31)
    with pytest.raises(InvalidToken, match="expired"):
        verifier.verify(token)
    assert len(calls) == 2


def test_the_cache_holds_at_most_cache_size_passes(
    signer: Signer, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The least recently used pass leaves the cache when it is full."""
    calls = _count_verifications(monkeypatch)
    verifier = PassVerifier(keys=[signer.jwk], site=SITE, issuer=ISSUER, cache_size=2, clock=clock)
    first, second, third = (signer.pass_for(clock(), supporter=f"sup-{n}") for n in range(3))
    for token in (first, second, first, third, first, second):
        verifier.verify(token)
    assert len(calls) == 4


def test_cache_size_zero_verifies_every_time(signer: Signer, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """With cache_size=0 every pass is verified in full."""
    calls = _count_verifications(monkeypatch)
    verifier = PassVerifier(keys=[signer.jwk], site=SITE, issuer=ISSUER, cache_size=0, clock=clock)
    token = signer.pass_for(clock())
    for _ in range(3):
        verifier.verify(token)
    assert len(calls) == 3


def _count_verifications(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real_verify = supportgate_verify.jose.verify

    def counting(token: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        calls.append(token)
        return real_verify(token, *args, **kwargs)

    monkeypatch.setattr(supportgate_verify.jose, "verify", counting)
    return calls


@pytest.mark.parametrize(
    ("url", "keys"),
    [(None, None), ("https://gate.example/jwks.json", []), ("file:///etc/passwd", None), ("ftp://gate.example/", None)],
    ids=["neither", "both", "file", "ftp"],
)
def test_a_verifier_needs_one_http_source_of_keys(url: str | None, keys: list[Any] | None) -> None:
    """A verifier takes either an http(s) JWKS URL or keys, never both, never another scheme."""
    with pytest.raises(ValueError, match="jwks_url"):
        PassVerifier(url, keys=keys, site=SITE, issuer=ISSUER)


def test_jwks_entries_that_are_not_our_keys_are_skipped(signer: Signer, clock: FakeClock) -> None:
    """Only Ed25519 signing keys whose kid is their thumbprint are taken from a JWKS."""
    impostor = Signer()
    keys = [
        {**impostor.jwk, "kid": signer.kid},
        {**signer.jwk, "use": "enc"},
        {"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "rsa"},
        "not a key",
    ]
    verifier = PassVerifier(keys={"keys": keys}, site=SITE, issuer=ISSUER, clock=clock)
    with pytest.raises(InvalidToken, match="unknown_key"):
        verifier.verify(signer.pass_for(clock()))


def test_importing_it_needs_nothing_of_the_service() -> None:
    """supportgate_verify imports without supportgate, Litestar, msgspec or the redis client."""
    probe = (
        "import sys, supportgate_verify; "
        "loaded = sorted({m.split('.')[0] for m in sys.modules} & {'supportgate', 'litestar', 'msgspec', 'redis'}); "
        "print(loaded)"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    opened = Store(connect(store_url))
    yield opened
    await opened.close()


async def test_passes_the_service_signs_verify_offline(store: Store, clock: FakeClock) -> None:
    """A pass signed by the service verifies with PassVerifier fed the service's JWKS."""
    keys = SigningKeys(vault(store), clock)
    secret = await PseudonymSecret(vault(store)).get()
    claims = pass_claims(
        supporter_id="sup-9",
        site_id=SITE,
        tier="patron",
        entitlements=["adblock_ok", "no_nag"],
        session_id="ses-9",
        issuer=ISSUER,
        pseudonym_secret=secret,
        now=clock(),
    )
    token = await Tokens(keys, clock).sign(claims, PASS_TYPE)
    verifier = PassVerifier(keys=await keys.jwks(), site=SITE, issuer=ISSUER, clock=clock)
    verified = verifier.verify(token)
    assert (verified.tier, verified.entitlements) == ("patron", ("adblock_ok", "no_nag"))
    assert verified.sub == pseudonym(secret, SITE, "sup-9")
    assert verified.expires_at == datetime.fromtimestamp(claims["exp"], UTC)
