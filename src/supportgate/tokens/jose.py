"""The pure part of tokens: public JWKs and signing here, over the one verify function of supportgate_verify.

No I/O, no clock of its own, no store. The verify half (the token constants, :func:`thumbprint`,
reading a JWKS and :func:`verify`) lives in ``supportgate_verify.jose``, in the distribution sites
install to check passes offline; what the service uses of it is re-exported here, so the service's
:class:`supportgate.tokens.jwt.Tokens` and the sites' ``PassVerifier`` verify by the same rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from supportgate_verify.jose import (
    ACCESS_TYPE,
    ALGORITHM,
    DEFAULT_LEEWAY,
    PASS_TYPE,
    REQUIRED_CLAIMS,
    TokenType,
    b64url,
    thumbprint,
    verify,
)

__all__ = [
    "ACCESS_TYPE",
    "ALGORITHM",
    "DEFAULT_LEEWAY",
    "PASS_TYPE",
    "REQUIRED_CLAIMS",
    "TokenType",
    "public_jwk",
    "sign",
    "thumbprint",
    "verify",
]


def public_jwk(public_key: Ed25519PublicKey) -> dict[str, str]:
    """The public JWK of a key as the JWKS publishes it."""
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": b64url(public_key.public_bytes_raw()),
        "kid": thumbprint(public_key),
        "alg": ALGORITHM,
        "use": "sig",
    }


def sign(
    claims: Mapping[str, Any],
    *,
    typ: TokenType,
    key: Ed25519PrivateKey,
    kid: str,
) -> str:
    """A compact JWS of ``claims``, signed EdDSA, with ``kid`` and ``typ`` in its header."""
    return jwt.encode(dict(claims), key, algorithm=ALGORITHM, headers={"kid": kid, "typ": typ})
