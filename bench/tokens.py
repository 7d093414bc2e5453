"""Pass verification throughput: PassVerifier cold and warm, against a plain ``jwt.decode``.

Run with ``uv run python bench/tokens.py [--seconds N]``. Cold is a verifier with its cache
of verified passes turned off (every call parses, checks the signature and the claims);
warm answers a pass it has verified before from that cache. The baseline is what a site
would do by hand: one ``jwt.decode`` of the same token with the public key.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from supportgate.tokens import jose
from supportgate.tokens.claims import pass_claims
from supportgate_verify import PassVerifier

SITE = "news-example"
ISSUER = "https://gate.example"


def per_second(call: Callable[[], object], seconds: float) -> float:
    """How many times a second ``call`` runs, measured over about ``seconds``."""
    for _ in range(200):
        call()
    done = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(500):
            call()
        done += 500
    return done / elapsed


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time spent on each row")
    seconds = parser.parse_args().seconds

    key = Ed25519PrivateKey.generate()
    public = key.public_key()
    claims = pass_claims(
        supporter_id="0123456789abcdef",
        site_id=SITE,
        tier="supporter",
        entitlements=["adblock_ok"],
        session_id="session",
        issuer=ISSUER,
        pseudonym_secret=b"s" * 32,
        now=datetime.now(UTC),
    )
    token = jose.sign(claims, typ=jose.PASS_TYPE, key=key, kid=jose.thumbprint(public))
    jwks = {"keys": [jose.public_jwk(public)]}
    cold = PassVerifier(keys=jwks, site=SITE, issuer=ISSUER, cache_size=0)
    warm = PassVerifier(keys=jwks, site=SITE, issuer=ISSUER)

    def by_hand() -> object:
        return jwt.decode(token, public, algorithms=["EdDSA"], audience=SITE, issuer=ISSUER)

    baseline = per_second(by_hand, seconds)
    rows = [
        ("jwt.decode (baseline)", baseline),
        ("PassVerifier, cold", per_second(lambda: cold.verify(token), seconds)),
        ("PassVerifier, warm", per_second(lambda: warm.verify(token), seconds)),
    ]
    print(f"{'pass verification':<24} {'per second':>12} {'µs each':>9} {'vs baseline':>12}")
    for name, rate in rows:
        print(f"{name:<24} {rate:>12,.0f} {1e6 / rate:>9.1f} {rate / baseline:>11.2f}x")


if __name__ == "__main__":
    main()
