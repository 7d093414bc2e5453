"""DPoP proofs (RFC 9449): reading and verifying one, the key's thumbprint, and the ``ath`` of a token.

Pure: no store, no clock of its own, no web framework. The caller gives the request's method and
URL and the time; :mod:`supportgate.readers.dpop` adds what needs the store (the replay memory)
and the binding rules of sessions.

A proof is a compact JWS with ``typ`` ``dpop+jwt``, ``alg`` ``ES256`` and the public P-256 key in
its ``jwk`` header; its payload names the request (``htm``, ``htu``), the time (``iat``), a unique
``jti`` and, when it goes with an access token, that token's hash (``ath``). Every refusal is
:class:`~supportgate.errors.InvalidDpopProof` with a detail naming the rule broken.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from datetime import datetime, timedelta
from typing import Any, Final
from urllib.parse import urlsplit

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.hashes import SHA256

from supportgate.errors import InvalidDpopProof
from supportgate.tokens.lifetimes import DPOP_PROOF_MAX_AGE, DPOP_PROOF_MAX_AHEAD

__all__ = [
    "MAX_PROOF_LENGTH",
    "PROOF_ALGORITHM",
    "PROOF_TYPE",
    "DpopProof",
    "access_token_hash",
    "jwk_thumbprint",
    "normalise_uri",
    "verify_proof",
]

PROOF_TYPE: Final = "dpop+jwt"
"""Header ``typ`` of a DPoP proof."""
PROOF_ALGORITHM: Final = "ES256"
"""The only ``alg`` a proof may use: ECDSA on P-256 with SHA-256, the signature as raw ``r || s``."""
MAX_PROOF_LENGTH: Final = 4096
"""Longest proof looked at; a longer one is refused before any parsing."""

_SEGMENT = re.compile(r"[A-Za-z0-9_-]*")
_COORDINATE = re.compile(r"[A-Za-z0-9_-]{43}")
_JTI_LENGTH = range(16, 257)
# Larger is no time at all (and would not fit a float): year 33658.
_LATEST_IAT = 10**12
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")


class DpopProof(msgspec.Struct, frozen=True):
    """A proof that passed every check that needs no store: who signed it and its one-time id."""

    jkt: str
    """RFC 7638 SHA-256 thumbprint of the proof's public key: what a session is bound to."""
    jti: str
    """The proof's unique id, remembered for the proof's lifetime so it cannot be replayed."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str, what: str) -> bytes:
    if not _SEGMENT.fullmatch(text) or len(text) % 4 == 1:
        raise InvalidDpopProof(f"The DPoP proof's {what} is not base64url.")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise InvalidDpopProof(f"The DPoP proof's {what} is not base64url.") from None


def _json_object(segment: str, what: str) -> dict[str, Any]:
    raw = _unb64url(segment, what)
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        value = None
    if not isinstance(value, dict):
        raise InvalidDpopProof(f"The DPoP proof's {what} is not a JSON object.")
    return value


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """The RFC 7638 SHA-256 thumbprint of a public P-256 JWK (its required members only, in order)."""
    canonical = json.dumps(
        {"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"], "y": jwk["y"]}, separators=(",", ":"), sort_keys=True
    )
    return _b64url(hashlib.sha256(canonical.encode("ascii")).digest())


def access_token_hash(access_token: str) -> str:
    """The ``ath`` a proof carries for an access token: base64url (no padding) of its SHA-256."""
    return _b64url(hashlib.sha256(access_token.encode("ascii")).digest())


def normalise_uri(uri: str) -> str | None:
    """``uri`` as RFC 9449 §4.3 compares ``htu``: no query or fragment, lowercase scheme and host, no default port.

    Percent-encodings are normalised as RFC 3986 §6.2.2 says (unreserved characters decoded, hex in
    upper case), and an empty path is ``/``. Returns None if ``uri`` is not an absolute http(s) URI.
    """
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    if scheme not in _DEFAULT_PORTS or not host or parts.username is not None or parts.password is not None:
        return None
    if ":" in host:
        host = f"[{host}]"
    authority = host if port in {None, _DEFAULT_PORTS[scheme]} else f"{host}:{port}"
    path = _PERCENT.sub(_percent, parts.path) or "/"
    return f"{scheme}://{authority}{path}"


def _percent(found: re.Match[str]) -> str:
    character = chr(int(found[1], 16))
    return character if character in _UNRESERVED else f"%{found[1].upper()}"


def verify_proof(
    proof: str,
    *,
    method: str,
    uri: str,
    now: datetime,
    access_token: str | None = None,
    max_age: timedelta = DPOP_PROOF_MAX_AGE,
    max_ahead: timedelta = DPOP_PROOF_MAX_AHEAD,
) -> DpopProof:
    """The key and ``jti`` of ``proof`` if it is a valid proof for this request at ``now``.

    Checks, in RFC 9449 §4.3's order: three base64url parts of JSON objects; ``typ`` ``dpop+jwt``;
    ``alg`` ``ES256``; a public P-256 ``jwk`` with no private part; the signature; ``jti``
    (16 to 256 characters), ``htm`` (``method`` exactly), ``htu`` (``uri``, normalised), an
    integer ``iat`` no more than ``max_age`` old nor ``max_ahead`` ahead; and, when an access
    token goes with it, ``ath``. Whether ``jti`` was seen before is the caller's to check.

    Raises:
        InvalidDpopProof: naming the first rule the proof breaks.
    """
    if len(proof) > MAX_PROOF_LENGTH:
        raise InvalidDpopProof(f"The DPoP proof is longer than {MAX_PROOF_LENGTH} characters.")
    parts = proof.split(".")
    if len(parts) != 3:  # a compact JWS
        raise InvalidDpopProof("The DPoP proof is not a compact JWS of three dot-separated parts.")
    header = _json_object(parts[0], "header")
    payload = _json_object(parts[1], "payload")
    signature = _unb64url(parts[2], "signature")
    if header.get("typ") != PROOF_TYPE:
        raise InvalidDpopProof(f"The DPoP proof's header typ must be {PROOF_TYPE!r}.")
    if header.get("alg") != PROOF_ALGORITHM:
        raise InvalidDpopProof(f"The DPoP proof's header alg must be {PROOF_ALGORITHM!r}.")
    if "crit" in header:
        raise InvalidDpopProof("The DPoP proof's header names critical extensions (crit); none are understood.")
    jwk = header.get("jwk")
    key = _public_key(jwk)
    _check_signature(key, f"{parts[0]}.{parts[1]}".encode("ascii"), signature)
    _check_claims(payload, method=method, uri=uri, now=now, max_age=max_age, max_ahead=max_ahead)
    if access_token is not None:
        ath = payload.get("ath")
        if not isinstance(ath, str):
            raise InvalidDpopProof("The DPoP proof has no ath: it must carry the hash of the access token sent.")
        if not access_token.isascii() or not hmac.compare_digest(ath, access_token_hash(access_token)):
            raise InvalidDpopProof("The DPoP proof's ath is not the hash of the access token sent with it.")
    assert isinstance(jwk, dict)  # _public_key checked it
    return DpopProof(jkt=jwk_thumbprint(jwk), jti=payload["jti"])


def _public_key(jwk: object) -> ec.EllipticCurvePublicKey:
    if not isinstance(jwk, dict):
        raise InvalidDpopProof("The DPoP proof's header has no jwk object with the public key.")
    if "d" in jwk:
        raise InvalidDpopProof("The DPoP proof's jwk holds a private key (d); send the public key only.")
    if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise InvalidDpopProof("The DPoP proof's jwk must be an EC key on P-256 (kty 'EC', crv 'P-256').")
    x, y = jwk.get("x"), jwk.get("y")
    if not (isinstance(x, str) and _COORDINATE.fullmatch(x) and isinstance(y, str) and _COORDINATE.fullmatch(y)):
        raise InvalidDpopProof("The DPoP proof's jwk x and y must each be 32 bytes in base64url.")
    numbers = ec.EllipticCurvePublicNumbers(
        int.from_bytes(_unb64url(x, "jwk x"), "big"), int.from_bytes(_unb64url(y, "jwk y"), "big"), ec.SECP256R1()
    )
    try:
        return numbers.public_key()
    except ValueError:
        raise InvalidDpopProof("The DPoP proof's jwk is not a point on P-256.") from None


def _check_signature(key: ec.EllipticCurvePublicKey, signing_input: bytes, signature: bytes) -> None:
    if len(signature) != 64:  # ES256 is r || s, 32 bytes each
        raise InvalidDpopProof("The DPoP proof's signature is not 64 bytes (ES256 is r || s).")
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    try:
        key.verify(encode_dss_signature(r, s), signing_input, ec.ECDSA(SHA256()))
    except InvalidSignature:
        raise InvalidDpopProof("The DPoP proof's signature does not verify with its jwk.") from None


def _check_claims(
    payload: dict[str, Any], *, method: str, uri: str, now: datetime, max_age: timedelta, max_ahead: timedelta
) -> None:
    jti, htm, htu, iat = (payload.get(name) for name in ("jti", "htm", "htu", "iat"))
    if not isinstance(jti, str) or len(jti) not in _JTI_LENGTH:
        raise InvalidDpopProof("The DPoP proof's jti must be a string of 16 to 256 characters.")
    if not isinstance(htm, str):
        raise InvalidDpopProof("The DPoP proof has no htm: the request's method.")
    if htm != method:
        raise InvalidDpopProof(f"The DPoP proof is for another method: htm must be {method!r}.")
    if not isinstance(htu, str):
        raise InvalidDpopProof("The DPoP proof has no htu: the request's URL.")
    expected = normalise_uri(uri)
    if expected is None or normalise_uri(htu) != expected:
        raise InvalidDpopProof(f"The DPoP proof is for another URL: htu must be {expected!r}.")
    if not isinstance(iat, int) or isinstance(iat, bool) or abs(iat) > _LATEST_IAT:
        raise InvalidDpopProof("The DPoP proof's iat must be an integer number of seconds.")
    age = now.timestamp() - iat
    if age > max_age.total_seconds():
        raise InvalidDpopProof(
            f"The DPoP proof is too old: its iat is more than {int(max_age.total_seconds())} s ago; make a new one."
        )
    if -age > max_ahead.total_seconds():
        raise InvalidDpopProof(
            f"The DPoP proof's iat is more than {int(max_ahead.total_seconds())} s in the future; check the clock."
        )
