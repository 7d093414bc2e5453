"""Verifying supporter passes offline, for sites: no call to the gate per page view.

A site builds one :class:`PassVerifier` per process and asks it about each pass (the package's
docstring shows how). The rules are the gate's own: the gate verifies through the same
:func:`supportgate_verify.jose.verify`.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from typing import Any, Final
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from supportgate_verify import jose
from supportgate_verify.bounded import BoundedDict
from supportgate_verify.clock import Clock, utc_now
from supportgate_verify.errors import InvalidToken

__all__ = ["JWKS_MAX_AGE", "JWKS_REFETCH_INTERVAL", "InvalidToken", "PassVerifier", "VerifiedPass"]

JWKS_MAX_AGE: Final = timedelta(seconds=300)
"""The ``Cache-Control: max-age`` the gate serves its JWKS with; a verifier assumes it when a response names none."""
JWKS_REFETCH_INTERVAL: Final = timedelta(minutes=1)
"""Least time between two fetches of the JWKS, whatever its max-age or the kids seen."""
_MAX_JWKS_BYTES = 256 * 1024
_USER_AGENT: Final = f"supportgate-pass-verifier/{version('supportgate-verify')}"
_log = logging.getLogger("supportgate.verifier")


@dataclass(frozen=True, slots=True)
class VerifiedPass:
    """What a valid pass says about its holder."""

    sub: str
    """The supporter's pseudonym for this site: the same in all their passes to it."""
    tier: str
    """The supporter's tier id."""
    entitlements: tuple[str, ...]
    """What the tier entitles its supporters to, e.g. ``adblock_ok``."""
    session: str
    """The pseudonym of the signed-in session the pass was issued to."""
    expires_at: datetime
    """When the pass stops being valid."""

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> VerifiedPass:
        """Read a verified pass's claims.

        Raises:
            InvalidToken: if ``tier``, ``ent`` or ``sid`` is missing or of the wrong type.
        """
        for name in ("tier", "ent", "sid"):
            if name not in claims:
                raise InvalidToken("missing_claim", f"no {name} claim")
        tier, ent, sid = claims["tier"], claims["ent"], claims["sid"]
        if not isinstance(ent, list) or not all(isinstance(e, str) for e in ent):
            raise InvalidToken("malformed", "ent must be a list of strings")
        if not isinstance(tier, str) or not isinstance(sid, str):
            raise InvalidToken("malformed", "tier and sid must be strings")
        try:
            expires_at = datetime.fromtimestamp(claims["exp"], UTC)
        except (OverflowError, ValueError, OSError):
            raise InvalidToken("malformed", "exp is out of range") from None
        return cls(
            sub=claims["sub"],
            tier=tier,
            entitlements=tuple(ent),
            session=sid,
            expires_at=expires_at,
        )


class PassVerifier:
    """Verifies one site's passes against the gate's published keys.

    With ``jwks_url`` the keys are fetched with ``urllib`` when first needed, again when
    the response's ``max-age`` runs out, and again when a pass names a kid not in them,
    but never more than once per ``JWKS_REFETCH_INTERVAL``; if a fetch fails the keys
    already held are kept. With ``keys`` (a JWKS or a list of JWKs) nothing is fetched.

    Valid passes are remembered, by token, until they expire or ``cache_size`` newer
    ones push them out (``cache_size=0`` turns this off). Safe to share between threads;
    ``verify`` blocks only when it fetches.
    """

    def __init__(
        self,
        jwks_url: str | None = None,
        *,
        keys: Mapping[str, Any] | list[Any] | None = None,
        site: str,
        issuer: str,
        cache_size: int = 10_000,
        leeway: timedelta = jose.DEFAULT_LEEWAY,
        timeout: float = 5.0,
        clock: Clock = utc_now,
    ) -> None:
        if (jwks_url is None) == (keys is None):
            raise ValueError("give either jwks_url or keys")
        if jwks_url is not None and urlsplit(jwks_url).scheme not in {"http", "https"}:
            raise ValueError(f"jwks_url must be an http(s) URL, not {jwks_url!r}")
        if cache_size < 0:
            raise ValueError("cache_size must not be negative")
        self._url = jwks_url
        self._site = site
        self._issuer = issuer
        self._leeway = leeway
        self._timeout = timeout
        self._clock = clock
        self._keys: Mapping[str, Ed25519PublicKey] = {}
        if keys is not None:
            self._keys = jose.keys_from_jwks(keys)
        self._keys_fresh_until: datetime | None = None
        self._fetched_at: datetime | None = None
        self._fetch_lock = threading.Lock()
        self._cache: BoundedDict[str, VerifiedPass] | None = BoundedDict(cache_size) if cache_size else None
        self._cache_lock = threading.Lock()

    def verify(self, token: str) -> VerifiedPass:
        """The pass's holder, if ``token`` is a valid pass for this site.

        Raises:
            InvalidToken: with the reason (``expired``, ``wrong_audience``,
                ``bad_signature``, ``unknown_key``, ``keys_unavailable``, ...).
        """
        now = self._clock()
        cached = self._cached(token, now)
        if cached is not None:
            return cached
        verified = VerifiedPass.from_claims(self._check(token, now))
        if self._cache is not None and now < verified.expires_at:
            with self._cache_lock:
                self._cache.put(token, verified)
        return verified

    def _check(self, token: str, now: datetime) -> dict[str, Any]:
        try:
            return self._verify_with(self._current_keys(now), token, now)
        except InvalidToken as exc:
            if exc.reason != "unknown_key" or not self._fetch(now):
                raise
        return self._verify_with(self._keys, token, now)

    def _verify_with(
        self,
        keys: Mapping[str, Ed25519PublicKey],
        token: str,
        now: datetime,
    ) -> dict[str, Any]:
        return jose.verify(
            token,
            keys,
            typ=jose.PASS_TYPE,
            audience=self._site,
            issuer=self._issuer,
            now=now,
            leeway=self._leeway,
        )

    def _current_keys(self, now: datetime) -> Mapping[str, Ed25519PublicKey]:
        fresh_until = self._keys_fresh_until
        if self._url is None or (fresh_until is not None and now < fresh_until):
            return self._keys
        self._fetch(now)
        if not self._keys:
            raise InvalidToken("keys_unavailable", f"could not fetch {self._url}")
        return self._keys

    def _fetch(self, now: datetime) -> bool:
        """Fetch the JWKS unless one was fetched lately; whether new keys came."""
        if self._url is None:
            return False
        with self._fetch_lock:
            last = self._fetched_at
            if last is not None and last <= now < last + JWKS_REFETCH_INTERVAL:
                return False
            self._fetched_at = now
            try:
                document, max_age = _download(self._url, self._timeout)
                self._keys = jose.keys_from_jwks(document)
            except (OSError, ValueError, TypeError, http.client.HTTPException) as exc:
                _log.warning("could not fetch the JWKS at %s: %s", self._url, exc)
                return False
            self._keys_fresh_until = now + max(max_age, JWKS_REFETCH_INTERVAL)
            return True

    def _cached(self, token: str, now: datetime) -> VerifiedPass | None:
        if self._cache is None:
            return None
        with self._cache_lock:
            found = self._cache.get(token)
            if found is None:
                return None
            if now >= found.expires_at:
                self._cache.pop(token)
                return None
            self._cache.put(token, found)  # the least recently used goes first
            return found


def _download(url: str, timeout: float) -> tuple[Any, timedelta]:
    # The scheme was checked to be http(s) when the verifier was made.
    request = urllib.request.Request(  # noqa: S310
        url,
        headers={
            "Accept": "application/jwk-set+json, application/json",
            "User-Agent": _USER_AGENT,
        },
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        body = response.read(_MAX_JWKS_BYTES + 1)
        cache_control = response.headers.get("Cache-Control", "")
    if len(body) > _MAX_JWKS_BYTES:
        raise ValueError(f"the JWKS is larger than {_MAX_JWKS_BYTES} bytes")
    return json.loads(body), _max_age(cache_control)


def _max_age(cache_control: str) -> timedelta:
    for directive in cache_control.lower().split(","):
        name, _, value = directive.strip().partition("=")
        if name in {"no-store", "no-cache"}:
            return timedelta(0)
        if name == "max-age" and value.strip().isdigit():
            return timedelta(seconds=int(value.strip()))
    return JWKS_MAX_AGE
