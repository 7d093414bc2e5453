"""Verify supportgate supporter passes offline: no call to the gate per page view.

A site builds one :class:`PassVerifier` per process, fed the gate's JWKS URL (or the JWKS
itself), and asks it about each pass; :class:`InvalidToken` says why one was refused::

    from supportgate_verify import InvalidToken, PassVerifier

    verifier = PassVerifier(
        "https://gate.example/.well-known/jwks.json",
        site="news-example",
        issuer="https://gate.example",
    )
    try:
        supporter = verifier.verify(token)
    except InvalidToken as exc:
        supporter = None  # exc.reason says why: "expired", "wrong_audience", ...

It needs PyJWT (with ``cryptography``) and nothing else.
"""

from __future__ import annotations

from importlib.metadata import version

from supportgate_verify.errors import InvalidToken, TokenFailure
from supportgate_verify.verifier import JWKS_REFETCH_INTERVAL, PassVerifier, VerifiedPass

__all__ = ["JWKS_REFETCH_INTERVAL", "InvalidToken", "PassVerifier", "TokenFailure", "VerifiedPass", "__version__"]

__version__ = version("supportgate-verify")
