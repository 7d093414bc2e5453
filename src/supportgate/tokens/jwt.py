"""Signing with the active key and verifying against the published ones: the one place."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from supportgate.clock import Clock
from supportgate.errors import InvalidToken
from supportgate.tokens import jose
from supportgate.tokens.jose import DEFAULT_LEEWAY, REQUIRED_CLAIMS, TokenType
from supportgate.tokens.signing_keys import SigningKeys

__all__ = ["Tokens"]


class Tokens:
    """Signs access tokens and passes, and verifies them, with the service's key set."""

    def __init__(self, keys: SigningKeys, clock: Clock) -> None:
        self._keys = keys
        self._clock = clock

    async def sign(self, claims: Mapping[str, Any], typ: TokenType) -> str:
        """A token of type ``typ`` carrying ``claims``, signed with the active key.

        Raises:
            ValueError: if a claim every token needs is missing.
        """
        missing = [name for name in REQUIRED_CLAIMS if name not in claims]
        if missing:
            raise ValueError(f"a token needs the claims {', '.join(missing)}")
        kid, key = await self._keys.signing_key()
        return jose.sign(claims, typ=typ, key=key, kid=kid)

    async def verify(
        self,
        token: str,
        *,
        typ: TokenType,
        audience: str,
        issuer: str,
        leeway: timedelta = DEFAULT_LEEWAY,
        stale_ok: bool = False,
    ) -> dict[str, Any]:
        """The claims of a valid token; the rules are :func:`supportgate.tokens.jose.verify`'s.

        A well-formed kid this process does not know reloads the key set first, at most
        once a second, in case another process rotated; nothing else touches the store.
        With ``stale_ok`` (the page-view path), a key set past its cache age is used while it
        reloads in the background, so a verification never waits for the store.

        Raises:
            InvalidToken: with the reason, which the gate reports as ``pass_error``.
        """

        def check(keys: Mapping[str, Ed25519PublicKey]) -> dict[str, Any]:
            return jose.verify(
                token,
                keys,
                typ=typ,
                audience=audience,
                issuer=issuer,
                now=self._clock(),
                leeway=leeway,
            )

        try:
            return check(await self._keys.verification_keys(stale_ok=stale_ok))
        except InvalidToken as exc:
            if exc.reason != "unknown_key" or not await self._keys.reload_for_unknown_key():
                raise
        return check(await self._keys.verification_keys())
