"""The exceptions that need neither Litestar nor the store client.

They live apart from :mod:`supportgate.errors` (which re-exports them) so that
:mod:`supportgate.passes`, the offline verifier a site installs supportgate for, can
raise them without importing the web framework.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["InvalidToken", "SupportgateError", "TokenFailure"]

TokenFailure = Literal[
    "malformed",
    "bad_algorithm",
    "unknown_key",
    "keys_unavailable",
    "bad_signature",
    "wrong_type",
    "missing_claim",
    "wrong_issuer",
    "wrong_audience",
    "expired",
    "not_yet_valid",
    "revoked",
]
"""Why a token was refused: the short, machine-readable part of :class:`InvalidToken`."""


class SupportgateError(Exception):
    """Base of every error supportgate raises on purpose."""


class InvalidToken(SupportgateError):
    """A token failed verification; ``reason`` says why in one word a machine can read."""

    def __init__(self, reason: TokenFailure, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason: TokenFailure = reason
        self.detail = detail
