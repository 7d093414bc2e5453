"""The claims of the two signed tokens: the access token and the per-site supporter pass."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from supportgate.tokens.lifetimes import ACCESS_LIFETIME, PASS_LIFETIME

__all__ = ["access_claims", "pass_claims", "pseudonym"]


def pseudonym(secret: bytes, site_id: str, supporter_id: str) -> str:
    """The supporter as one site knows them: HMAC-SHA256 of ``site_id:supporter_id``.

    Site ids are slugs without ``:``, so the joined input names one pair only. Two sites
    get unrelated values for one supporter; only the holder of ``secret`` can link them.
    """
    message = f"{site_id}:{supporter_id}".encode()
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _times(now: datetime, lifetime: timedelta) -> dict[str, Any]:
    issued = int(now.timestamp())
    return {
        "iat": issued,
        "exp": issued + int(lifetime.total_seconds()),
        "jti": secrets.token_urlsafe(16),
    }


def access_claims(
    *,
    supporter_id: str,
    session_id: str,
    issuer: str,
    now: datetime,
    lifetime: timedelta = ACCESS_LIFETIME,
    jkt: str | None = None,
) -> dict[str, Any]:
    """Claims of an access token: for the gate's own API, so ``aud`` is the issuer.

    A token of a session bound to a DPoP key carries that key's thumbprint as ``cnf.jkt`` (RFC 9449 §6.1).
    """
    return {
        "iss": issuer,
        "aud": issuer,
        "sub": supporter_id,
        "sid": session_id,
        **({} if jkt is None else {"cnf": {"jkt": jkt}}),
        **_times(now, lifetime),
    }


def pass_claims(
    *,
    supporter_id: str,
    site_id: str,
    tier: str,
    entitlements: Iterable[str],
    session_id: str,
    issuer: str,
    pseudonym_secret: bytes,
    now: datetime,
    lifetime: timedelta = PASS_LIFETIME,
) -> dict[str, Any]:
    """Claims of a pass for one site: ``aud`` is that site alone.

    ``sub`` and ``sid`` are per-site pseudonyms of the supporter and the session, so two
    sites comparing passes cannot tell they saw the same reader. The gate can still
    recognise a session by computing its pseudonym for the site.
    """
    return {
        "iss": issuer,
        "aud": site_id,
        "sub": pseudonym(pseudonym_secret, site_id, supporter_id),
        "sid": pseudonym(pseudonym_secret, site_id, f"session:{session_id}"),
        "tier": tier,
        "ent": list(dict.fromkeys(entitlements)),
        **_times(now, lifetime),
    }
