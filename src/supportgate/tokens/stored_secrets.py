"""Secrets the service makes once and keeps in the store: the pseudonym and code secrets.

Like the signing keys, they are sealed under the master key by the
:class:`~supportgate.tokens.vault.Vault`: without it, a copy of the store neither links a
supporter's pseudonyms across sites nor checks guesses at codes.
"""

from __future__ import annotations

import secrets

from supportgate.errors import SupportgateError
from supportgate.store import names
from supportgate.tokens.vault import Vault

__all__ = ["CodeSecret", "PseudonymSecret", "StoredSecret"]


class StoredSecret:
    """A 32-byte secret kept in the store: made once, never changed, cached once read."""

    def __init__(self, vault: Vault, key: str) -> None:
        self._vault = vault
        self._key = key
        self._secret: bytes | None = None

    async def get(self) -> bytes:
        """The secret, created in the store on first use; safe to race."""
        if self._secret is None:
            stored = await self._vault.create(self._key, secrets.token_bytes(32))
            if len(stored) != 32:
                raise SupportgateError(f"the secret {self._key} in the store is not 32 bytes")
            self._secret = stored
        return self._secret


def PseudonymSecret(vault: Vault) -> StoredSecret:  # noqa: N802 - reads as the thing it makes
    """The secret that keys per-site supporter pseudonyms."""
    return StoredSecret(vault, names.pseudonym_secret())


def CodeSecret(vault: Vault) -> StoredSecret:  # noqa: N802 - reads as the thing it makes
    """The secret that keys the HMACs under which sign-in and activation codes are stored."""
    return StoredSecret(vault, names.code_secret())
