"""Tokens: signing keys, the JWKS, rotation, claims, lifetimes, and the offline pass verifier.

``lifetimes`` holds every token lifetime; ``jose`` is the pure sign-and-verify core; ``claims``
what each token says; ``signing_keys`` and ``stored_secrets`` the key material in the store,
sealed by ``vault`` under the master key with ``sealing``; ``jwt`` signs and verifies with it;
``verifier`` is what a site runs offline.

The package imports nothing itself: ``jose`` and ``verifier`` must not pull in the store client.
"""

from __future__ import annotations

__all__: list[str] = []
