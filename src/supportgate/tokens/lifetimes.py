"""How long every token and every cache of keys lives: the one place each lifetime is written.

The JWKS ``Cache-Control``, the rotation's publication delay, the access token's ``exp`` and
``expires_in``, the bounds of a tier's ``pass_ttl_seconds`` and how long a pass revocation is
kept all derive from these, so changing one here changes every place that must agree with it
(``tests/test_lifetimes.py`` ties them together). ``JWKS_MAX_AGE`` alone is written in
``supportgate-verify``, whose offline verifier assumes it when a JWKS response names no max-age,
and is re-exported here.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from supportgate_verify.verifier import JWKS_MAX_AGE

__all__ = [
    "ACCESS_LIFETIME",
    "DPOP_PROOF_LIFETIME",
    "DPOP_PROOF_MAX_AGE",
    "DPOP_PROOF_MAX_AHEAD",
    "JWKS_MAX_AGE",
    "KEY_SET_MAX_AGE",
    "LONGEST_PASS",
    "PASS_LIFETIME",
    "PUBLICATION_DELAY",
    "REFRESH_RACE_WINDOW",
    "SESSION_IDLE_LIFETIME",
    "SHORTEST_PASS",
]

ACCESS_LIFETIME: Final = timedelta(minutes=15)
"""How long an access token (reader ↔ gate) is good for."""
PASS_LIFETIME: Final = timedelta(hours=1)
"""How long a pass is good for when its tier does not say."""
SHORTEST_PASS: Final = timedelta(seconds=60)
"""The least a tier may set as its pass lifetime."""
LONGEST_PASS: Final = timedelta(days=7)
"""The most a tier may set as its pass lifetime: no pass lives longer, so revocations need last no longer."""
SESSION_IDLE_LIFETIME: Final = timedelta(days=30)
"""A session (its refresh token) ends after this long unused."""
REFRESH_RACE_WINDOW: Final = timedelta(seconds=10)
"""A replaced refresh token presented this soon after its replacement is a retry or lost a race (409); later, reuse."""
DPOP_PROOF_MAX_AGE: Final = timedelta(seconds=60)
"""A DPoP proof whose ``iat`` is further in the past than this is refused."""
DPOP_PROOF_MAX_AHEAD: Final = timedelta(seconds=5)
"""A DPoP proof whose ``iat`` is further in the future than this is refused: the clock skew forgiven."""
DPOP_PROOF_LIFETIME: Final = DPOP_PROOF_MAX_AGE + DPOP_PROOF_MAX_AHEAD
"""How long a DPoP proof's ``jti`` is remembered: as long as the proof could be accepted, so never twice."""
KEY_SET_MAX_AGE: Final = timedelta(seconds=30)
"""How long a process uses the key set it loaded before reading the store again."""
PUBLICATION_DELAY: Final = JWKS_MAX_AGE + KEY_SET_MAX_AGE
"""How long a new key must have been published before it may sign.

A process may serve a key set up to ``KEY_SET_MAX_AGE`` old, and sites may keep what it served
for ``JWKS_MAX_AGE``: only after both has every site had the chance to see the new key.
"""
