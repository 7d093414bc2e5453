"""Tokens: signing keys, the JWKS, rotation, access tokens and supporter passes.

The package imports nothing itself: :mod:`supportgate.tokens.jose` is pure and is
also what the offline :class:`supportgate.passes.PassVerifier` runs on, so importing it
must not pull in the store client.
"""

from __future__ import annotations

__all__: list[str] = []
