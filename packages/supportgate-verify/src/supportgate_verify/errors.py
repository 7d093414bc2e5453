"""The one exception a verification raises, and the reasons it gives."""

from __future__ import annotations

from typing import Literal

__all__ = ["InvalidToken", "TokenFailure"]

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
"""Why a token was refused: the short, machine-readable part of :class:`InvalidToken`.

``revoked`` is the gate's alone: an offline verifier cannot see a revocation before the pass expires.
"""


class InvalidToken(Exception):
    """A token failed verification; ``reason`` says why in one word a machine can read."""

    def __init__(self, reason: TokenFailure, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason: TokenFailure = reason
        self.detail = detail
