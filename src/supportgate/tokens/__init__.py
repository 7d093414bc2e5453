"""Tokens: signing keys, the JWKS, rotation, claims and lifetimes.

``lifetimes`` holds every token lifetime; ``jose`` is the pure sign-and-verify core (its verify
half is the ``supportgate_verify`` package's, which sites install to check passes offline);
``claims`` what each token says; ``signing_keys`` and ``stored_secrets`` the key material in the
store, sealed by ``vault`` under the master key with ``sealing``; ``jwt`` signs and verifies with it.

The package imports nothing itself: ``jose`` must not pull in the store client.
"""

from __future__ import annotations

__all__: list[str] = []
