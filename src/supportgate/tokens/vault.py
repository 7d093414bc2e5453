"""The vault: the secrets the service keeps in the store, sealed under the master key.

Every key in ``names.sealed()`` is read and written through it. A value found in the clear was
written by a version before sealing: the first read seals it and writes it back in one
transaction (``check``, run at start, does that for all of them), so after the first start the
store holds no plaintext secret. After sealing in place or re-wrapping, the store is asked to
rewrite its append-only file, so the values it no longer holds leave its disk too (snapshots and
backups taken before keep them). A value the master key does not open raises
:class:`~supportgate.errors.SealingError`, which ``check`` turns into a failed start rather than
an error on every request.
"""

from __future__ import annotations

import logging

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.client import Pipeline
from redis.exceptions import ResponseError

from supportgate.errors import SealingError, SupportgateError
from supportgate.store import Store, begin, names
from supportgate.tokens.sealing import MasterKey, sealed_by

__all__ = ["Vault"]

_log = logging.getLogger("supportgate.tokens")


class Vault:
    """Reads, creates and re-wraps the sealed secrets in the store."""

    def __init__(self, store: Store, master_key: MasterKey) -> None:
        self.store = store
        self._master = master_key
        self._sealed_in_place = False

    @property
    def master_key_id(self) -> str:
        """The id of the master key this vault seals with."""
        return self._master.id

    def seal(self, name: str, plaintext: bytes) -> bytes:
        """``plaintext`` sealed for the store key ``name``, to be written in a transaction."""
        return self._master.seal(name, plaintext)

    def open(self, name: str, raw: bytes | str) -> bytes:
        """The secret in ``raw``, as read from ``name`` in a transaction; a value from before sealing as it is.

        Raises:
            SealingError: if the master key does not open it.
        """
        blob = _blob(raw)
        return blob if sealed_by(blob) is None else self._master.unseal(name, blob)

    async def read(self, name: str) -> bytes | None:
        """The secret under ``name``, or None; a value from before sealing is sealed in the store first.

        Raises:
            SealingError: if the master key does not open it.
        """
        raw = await self.store.redis.get(name)
        if raw is None:
            return None
        blob = _blob(raw)
        if sealed_by(blob) is not None:
            return self._master.unseal(name, blob)
        return await self._migrate(name)

    async def create(self, name: str, plaintext: bytes) -> bytes:
        """The secret under ``name``: ``plaintext``, stored sealed, unless one is there already; safe to race.

        Raises:
            SealingError: if the master key does not open the one there.
        """
        sealed = self.seal(name, plaintext)

        async def create(one: Redis) -> None:
            await one.set(name, sealed, nx=True)

        await self.store.durably(create, name)
        stored = await self.read(name)
        if stored is None:
            raise SupportgateError(f"the secret {name} vanished as it was created")
        return stored

    async def check(self) -> None:
        """Open every secret in the store, sealing any from before sealing: the start-up check.

        Raises:
            SealingError: naming the secret and both key ids, if the master key does not open one.
        """
        for name in names.sealed():
            await self.read(name)
        if self._sealed_in_place:
            await self._rewrite_history()

    async def rewrap(self, new_key: MasterKey) -> list[str]:
        """Seal every secret under ``new_key`` instead, in one transaction; those already under it are left.

        Running it again, or after a crash part-way, changes nothing more: the transaction is all or
        nothing, and a value already sealed by ``new_key`` is skipped.

        Returns:
            The names of the secrets re-wrapped now.

        Raises:
            SealingError: if a secret is under neither this vault's master key nor ``new_key``;
                then nothing is written.
        """
        watched = names.sealed()

        async def change(pipe: Pipeline) -> list[str]:
            rewrapped: dict[str, bytes] = {}
            for name in watched:
                raw = await pipe.get(name)
                if raw is None or sealed_by(_blob(raw)) == new_key.id:
                    continue
                rewrapped[name] = new_key.seal(name, self.open(name, raw))
            if rewrapped:
                begin(pipe)
                for name, blob in rewrapped.items():
                    pipe.set(name, blob)
            return list(rewrapped)

        rewrapped = await self.store.atomically(change, *watched)
        if rewrapped:
            await self._rewrite_history()
        return rewrapped

    async def _rewrite_history(self) -> None:
        """Have the store rewrite its AOF, so values it replaced leave the disk and not only its memory."""
        try:
            redis = self.store.redis
            if isinstance(redis, RedisCluster):
                # Every node: the secrets' primary and its replicas each keep an AOF of their own.
                for node in redis.get_nodes():
                    if (await redis.info("persistence", target_nodes=node)).get("aof_enabled") == 1:
                        await redis.bgrewriteaof(target_nodes=node)
            elif (await redis.info("persistence")).get("aof_enabled") == 1:
                await redis.bgrewriteaof()
        except ResponseError as exc:
            # Not allowed here (a managed store's ACL, say): its next rewrite of its own drops them.
            _log.warning("the store did not rewrite its AOF (%s): replaced secrets stay on its disk until it does", exc)

    async def _migrate(self, name: str) -> bytes:
        async def change(pipe: Pipeline) -> bytes:
            raw = await pipe.get(name)
            if raw is None:
                raise SealingError(f"the secret {name} vanished as it was being sealed")
            blob = _blob(raw)
            if sealed_by(blob) is not None:
                return self._master.unseal(name, blob)
            begin(pipe)
            pipe.set(name, self.seal(name, blob))
            self._sealed_in_place = True
            return blob

        return await self.store.atomically(change, name)


def _blob(value: bytes | str) -> bytes:
    """A value as the store sent it: bytes (the client never decodes replies)."""
    if isinstance(value, str):
        raise TypeError("expected a bytes reply from the store, got str")
    return value
