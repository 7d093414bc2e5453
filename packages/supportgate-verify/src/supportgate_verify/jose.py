"""The one verify function of supportgate's tokens, the key thumbprint, and reading a JWKS.

No I/O, no clock of its own, no store: the gate (``supportgate.tokens.jwt.Tokens``) and a site's
offline :class:`~supportgate_verify.PassVerifier` both verify through :func:`verify`, so the rules
are written once. The gate signs with ``supportgate.tokens.jose``, on top of this module.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import math
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Final, Literal

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from supportgate_verify.errors import InvalidToken

__all__ = [
    "ACCESS_TYPE",
    "ALGORITHM",
    "DEFAULT_LEEWAY",
    "MAX_TOKEN_LENGTH",
    "PASS_TYPE",
    "REQUIRED_CLAIMS",
    "TokenType",
    "b64url",
    "keys_from_jwks",
    "thumbprint",
    "verify",
]

ALGORITHM: Final = "EdDSA"
"""The only ``alg`` signed or accepted."""
ACCESS_TYPE: Final = "sg-access+jwt"
"""Header ``typ`` of an access token (reader ↔ gate only)."""
PASS_TYPE: Final = "sg-pass+jwt"  # noqa: S105 - a token type, not a password
"""Header ``typ`` of a supporter pass (what sites see)."""
TokenType = Literal["sg-access+jwt", "sg-pass+jwt"]
"""The two kinds of token, told apart by their header ``typ``."""
MAX_TOKEN_LENGTH: Final = 4096
"""Longest token looked at; longer ones are refused before any parsing."""
REQUIRED_CLAIMS: Final = ("exp", "iat", "iss", "aud", "sub", "jti")
"""Claims every token must carry."""
DEFAULT_LEEWAY: Final = timedelta(seconds=30)
"""Clock skew forgiven on ``exp``, ``nbf`` and ``iat``."""

# Every kid we issue is an RFC 7638 SHA-256 thumbprint: 43 base64url characters.
_KID = re.compile(r"[A-Za-z0-9_-]{43}")
_jwt = jwt.PyJWT(
    options={
        "require": list(REQUIRED_CLAIMS),
        # Times are checked below against the caller's clock, which pyjwt cannot take.
        "verify_exp": False,
        "verify_nbf": False,
        "verify_iat": False,
        "strict_aud": True,
    },
)


def b64url(data: bytes) -> str:
    """``data`` in unpadded base64url, as JOSE writes keys and thumbprints."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


def thumbprint(public_key: Ed25519PublicKey) -> str:
    """The RFC 7638 SHA-256 JWK thumbprint of a key: its ``kid``."""
    x = b64url(public_key.public_bytes_raw())
    canonical = f'{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}'
    return b64url(hashlib.sha256(canonical.encode("ascii")).digest())


def keys_from_jwks(document: object) -> dict[str, Ed25519PublicKey]:
    """The Ed25519 signing keys of a JWKS (or a list of JWKs), by thumbprint.

    Entries that are not Ed25519 signing keys are skipped, as are entries whose
    ``kid`` is not their thumbprint: a kid here only ever names the key it hashes.

    Raises:
        TypeError: if ``document`` is neither a JWKS object nor a list.
    """
    entries = document.get("keys") if isinstance(document, dict) else document
    if not isinstance(entries, list):
        raise TypeError("a JWKS is an object with a 'keys' list")
    found: dict[str, Ed25519PublicKey] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        key = _ed25519_key(entry)
        if key is None:
            continue
        kid = thumbprint(key)
        if entry.get("kid", kid) == kid:
            found[kid] = key
    return found


def _ed25519_key(entry: dict[str, Any]) -> Ed25519PublicKey | None:
    if entry.get("kty") != "OKP" or entry.get("crv") != "Ed25519":
        return None
    if entry.get("alg", ALGORITHM) != ALGORITHM or entry.get("use", "sig") != "sig":
        return None
    x = entry.get("x")
    if not isinstance(x, str) or len(x) != 43:
        return None
    try:
        return Ed25519PublicKey.from_public_bytes(_unb64url(x))
    except (binascii.Error, ValueError):
        return None


def verify(
    token: str,
    keys: Mapping[str, Ed25519PublicKey],
    *,
    typ: TokenType,
    audience: str,
    issuer: str,
    now: datetime,
    leeway: timedelta = DEFAULT_LEEWAY,
) -> dict[str, Any]:
    """The claims of ``token`` if it passes every rule; InvalidToken naming the first it breaks.

    The header is read without trusting it: ``alg`` must be EdDSA, ``kid`` is only ever a
    key of ``keys`` (never a path or URL), and ``jku``, ``jwk``, ``x5u`` and ``x5c`` are
    ignored, so nothing is fetched. The header ``typ`` must be ``typ`` exactly. The
    claims ``exp iat iss aud sub jti`` are required, ``aud`` must be ``audience`` alone,
    and ``exp``, ``nbf`` and ``iat`` are held against ``now`` with ``leeway``.

    Raises:
        InvalidToken: with the reason a machine can act on.
    """
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidToken("malformed", f"not a string of at most {MAX_TOKEN_LENGTH} characters")
    header = _unverified_header(token)
    if header.get("alg") != ALGORITHM:
        raise InvalidToken("bad_algorithm", f"alg must be {ALGORITHM}")
    kid = header.get("kid")
    if not isinstance(kid, str) or not _KID.fullmatch(kid):
        raise InvalidToken("malformed", "kid is not a key thumbprint")
    if header.get("typ") != typ:
        raise InvalidToken("wrong_type", f"typ must be {typ}")
    key = keys.get(kid)
    if key is None:
        raise InvalidToken("unknown_key", f"no published key {kid}")
    claims = _decode(token, key, audience=audience, issuer=issuer)
    _check_times(claims, now.timestamp(), leeway.total_seconds())
    return claims


def _unverified_header(token: str) -> dict[str, Any]:
    # Only the first segment is read here; pyjwt checks all three before the signature.
    segment, _, rest = token.partition(".")
    if rest.count(".") != 1:
        raise InvalidToken("malformed", "a token has three dot-separated parts")
    try:
        header = json.loads(_unb64url(segment))
    except (binascii.Error, ValueError, RecursionError):
        header = None
    if not isinstance(header, dict):
        raise InvalidToken("malformed", "the header is not a base64url JSON object")
    return header


def _decode(token: str, key: Ed25519PublicKey, *, audience: str, issuer: str) -> dict[str, Any]:
    try:
        claims = _jwt.decode(token, key, algorithms=[ALGORITHM], audience=audience, issuer=issuer)
    except jwt.InvalidSignatureError:
        raise InvalidToken("bad_signature") from None
    except jwt.MissingRequiredClaimError as exc:
        raise InvalidToken("missing_claim", f"no {exc.claim} claim") from None
    except jwt.InvalidAudienceError:
        raise InvalidToken("wrong_audience", f"aud must be {audience}") from None
    except jwt.InvalidIssuerError:
        raise InvalidToken("wrong_issuer", f"iss must be {issuer}") from None
    except jwt.InvalidAlgorithmError:
        raise InvalidToken("bad_algorithm", f"alg must be {ALGORITHM}") from None
    except jwt.InvalidTokenError as exc:
        raise InvalidToken("malformed", str(exc)[:200]) from None
    for name in ("sub", "jti"):
        if not isinstance(claims[name], str) or not claims[name]:
            raise InvalidToken("malformed", f"{name} must be a non-empty string")
    return claims


def _check_times(claims: Mapping[str, Any], now: float, leeway: float) -> None:
    if _numeric(claims, "exp") <= now - leeway:
        raise InvalidToken("expired")
    if _numeric(claims, "iat") > now + leeway:
        raise InvalidToken("not_yet_valid", "issued in the future")
    if "nbf" in claims and _numeric(claims, "nbf") > now + leeway:
        raise InvalidToken("not_yet_valid")


def _numeric(claims: Mapping[str, Any], name: str) -> float:
    value = claims[name]
    seconds = math.nan
    if isinstance(value, int | float) and not isinstance(value, bool):
        with contextlib.suppress(OverflowError):
            seconds = float(value)
    if not math.isfinite(seconds):
        raise InvalidToken("malformed", f"{name} must be a number of seconds")
    return seconds
