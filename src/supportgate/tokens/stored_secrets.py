"""Secrets the service makes once and keeps in the store: the pseudonym and code secrets.

Like the signing keys, they are kept in the clear: whoever reads the store can link a
supporter's pseudonyms across sites or check guesses at codes, so guard it as a secret store.
"""

from __future__ import annotations

import secrets

from redis.asyncio import Redis

from supportgate.errors import SupportgateError
from supportgate.store import Store, names

__all__ = ["CodeSecret", "PseudonymSecret", "StoredSecret"]


class StoredSecret:
    """A 32-byte secret kept in the store: made once, never changed, cached once read."""

    def __init__(self, store: Store, key: str) -> None:
        self._store = store
        self._key = key
        self._secret: bytes | None = None

    async def get(self) -> bytes:
        """The secret, created in the store on first use; safe to race."""
        if self._secret is None:
            redis = self._store.redis

            async def create(one: Redis) -> None:
                await one.set(self._key, secrets.token_bytes(32), nx=True)

            await self._store.durably(create)
            stored = await redis.get(self._key)
            if not isinstance(stored, bytes) or len(stored) != 32:
                raise SupportgateError(f"the secret {self._key} in the store is not 32 bytes")
            self._secret = stored
        return self._secret


def PseudonymSecret(store: Store) -> StoredSecret:  # noqa: N802 - reads as the thing it makes
    """The secret that keys per-site supporter pseudonyms."""
    return StoredSecret(store, names.pseudonym_secret())


def CodeSecret(store: Store) -> StoredSecret:  # noqa: N802 - reads as the thing it makes
    """The secret that keys the HMACs under which sign-in and activation codes are stored."""
    return StoredSecret(store, names.code_secret())
