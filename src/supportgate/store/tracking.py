"""Store values kept in the process, dropped when the server says they changed (``CLIENT TRACKING``).

A page view with a pass reads its revocation cutoff; almost every cutoff is absent and almost
none changes, so each process keeps what it read, absent keys included, and reads the store again
only when the server says a key changed. That is Redis's server-assisted client-side caching in
redirect mode (RESP2):

- one *invalidation* connection per server is subscribed to ``__redis__:invalidate``;
- one *read* connection per server has ``CLIENT TRACKING ON REDIRECT <the first one's id>``: the
  server remembers every key read on it, present or not, and when one is written (or expires, or
  is evicted) publishes its name to the invalidation connection, once;
- a message without keys (``FLUSHALL``, or the server's tracking table full) drops everything.

On a cluster each primary has its pair (a redirect must go to a client of the same node) and a key
is read on its slot's node. A read that races with an invalidation must not keep a stale value:
each key being read is marked, an invalidation of it spoils the mark, and a spoiled read is
answered but not kept. While a pair is down (a connection dropped or went silent, a failover, a
slot moved) nothing is kept and every read goes through the store as before; the pairs are
rebuilt in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any, Final

from redis.asyncio import RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from supportgate.bounded import BoundedDict
from supportgate.store.client import Store, stopping

__all__ = ["INVALIDATION_CHANNEL", "TrackedReads"]

INVALIDATION_CHANNEL: Final = "__redis__:invalidate"
"""Where the server publishes the names of tracked keys that changed, to a redirect client."""

_log = logging.getLogger("supportgate.store")
_Held = tuple[bytes | None]
"""A value kept: what the store held under the key, ``None`` for an absent key."""


class _Pair:
    """One server's invalidation connection and tracking read connection, and the reads waiting on the latter."""

    def __init__(self, name: str, invalidations: AbstractConnection, reads: AbstractConnection) -> None:
        self.name = name
        self.invalidations = invalidations
        self.reads = reads
        self.lock = asyncio.Lock()
        self.heard = asyncio.get_running_loop().time()
        self.pending: list[tuple[str, asyncio.Future[bytes | None]]] = []

    async def close(self) -> None:
        for connection in (self.invalidations, self.reads):
            with contextlib.suppress(Exception):
                await connection.disconnect()


class TrackedReads:
    """GETs answered from the process while the server tracks them, else from the store.

    Args:
        store: The store (one server or a cluster) whose keys are read.
        limit: How many keys the process keeps; past it the key kept longest ago is dropped.
        keepalive: Seconds between the PINGs that check both connections of each server.
        silence: Seconds without a word on a connection after which it is taken for dropped.
        retry: Seconds between attempts to set tracking up again after a drop.
    """

    def __init__(
        self,
        store: Store,
        *,
        limit: int = 100_000,
        keepalive: float = 0.5,
        silence: float = 2.0,
        retry: float = 0.5,
    ) -> None:
        self._store = store
        self._limit = limit
        self._keepalive = keepalive
        self._silence = silence
        self._retry = retry
        self._values: BoundedDict[str, _Held] = BoundedDict(limit)
        self._pairs: dict[str, _Pair] = {}
        self._live = False
        self._epoch = 0
        self._reading: dict[str, int] = {}
        self._spoiled: set[str] = set()
        self._dropped = asyncio.Event()
        self._why = "dropped"
        self._runner: asyncio.Task[None] | None = None
        self._stopping = False
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def live(self) -> bool:
        """Whether the server tracks this process's reads now: only then are values kept."""
        return self._live

    def __len__(self) -> int:
        return len(self._values)

    def cached(self, key: str) -> _Held | None:
        """``(value,)`` if ``key`` is kept (``(None,)``: kept as absent), else None: read it."""
        return self._values.get(key)

    async def read(self, key: str) -> bytes | None:
        """GET ``key`` from the store, kept for the next call if the server tracks it."""
        held = self._values.get(key)
        if held is not None:
            return held[0]
        pair = self._pair_of(key) if self._live else None
        if pair is None:
            return await self._store.get_batched(key)
        epoch = self._epoch
        self._reading[key] = self._reading.get(key, 0) + 1
        try:
            value = await self._read_on(pair, key)
        except (RedisError, OSError):
            # Tracking just dropped (it is being set up again): this read goes through the store.
            return await self._store.get_batched(key)
        finally:
            spoiled = key in self._spoiled
            left = self._reading[key] - 1
            if left:
                self._reading[key] = left
            else:
                del self._reading[key]
                self._spoiled.discard(key)
        if not spoiled and epoch == self._epoch and self._live:
            self._values.put(key, (value,))
        return value

    async def start(self) -> None:
        """Set tracking up in the background; reads go through the store until it is."""
        if self._runner is None:
            self._runner = asyncio.create_task(self._run(), name="supportgate tracked reads")

    async def stop(self) -> None:
        """Stop tracking and close its connections (the app is stopping)."""
        self._stopping = True
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
            self._runner = None
        await self._drop("stopping", quiet=True)

    def _pair_of(self, key: str) -> _Pair | None:
        redis = self._store.redis
        if not isinstance(redis, RedisCluster):
            return self._pairs.get("")
        node = redis.get_node_from_key(key)
        pair = self._pairs.get(node.name) if node is not None else None
        if pair is None:
            self._dropped.set()  # the slot's primary is not one tracking was set up on: the cluster changed
        return pair

    def _forget(self, keys: list[bytes] | None) -> None:
        """What an invalidation message says: these keys changed (None: all of them may have)."""
        if keys is None:
            self._flush()
            return
        for raw in keys:
            key = raw.decode() if isinstance(raw, bytes) else str(raw)
            self._values.pop(key)
            if key in self._reading:
                self._spoiled.add(key)

    def _flush(self) -> None:
        self._values = BoundedDict(self._limit)
        self._epoch += 1
        self._spoiled.update(self._reading)

    async def _drop(self, why: str, *, quiet: bool = False) -> None:
        """Keep nothing and read through the store until tracking is set up again."""
        was_live, self._live = self._live, False
        self._flush()
        pairs, self._pairs = list(self._pairs.values()), {}
        for pair in pairs:
            for _, future in pair.pending:
                if not future.done():
                    future.set_exception(ConnectionError(f"tracking dropped: {why}"))
            pair.pending.clear()
        for task in list(self._tasks):
            if task is not asyncio.current_task():
                task.cancel()
        for pair in pairs:
            await pair.close()
        if was_live and not quiet:
            _log.warning("store tracking dropped (%s); revocation cutoffs read through the store", why)

    async def _run(self) -> None:
        """Set tracking up, watch it, and set it up again after each drop, until stopped."""
        while True:
            self._dropped.clear()
            try:
                topology = await self._set_up()
            except Exception as exc:
                if self._stopping or stopping():
                    raise
                _log.debug("store tracking not set up: %r", exc)
                await self._drop("set-up failed", quiet=True)
                await asyncio.sleep(self._retry)
                continue
            self._live = True
            _log.info("store tracking on (%d node(s)); revocation cutoffs kept in the process", len(self._pairs))
            why = await self._watch(topology)
            if self._stopping or stopping():
                raise asyncio.CancelledError
            await self._drop(why)
            await asyncio.sleep(self._retry)

    async def _set_up(self) -> object:
        """Open every server's pair; what the cluster's slot map looked like then (None: one server)."""
        redis = self._store.redis
        if isinstance(redis, RedisCluster):
            await redis.nodes_manager.initialize()
            for node in redis.get_primaries():
                options = _own(node.connection_kwargs)
                self._pairs[node.name] = await self._open_pair(
                    node.name, functools.partial(node.connection_class, **options)
                )
            first = next(iter(self._pairs.values()))
            return await self._ask(first, "CLUSTER", "SLOTS")
        pool = redis.connection_pool
        options = _own(pool.connection_kwargs)
        self._pairs[""] = await self._open_pair("", functools.partial(pool.connection_class, **options))
        return None

    async def _open_pair(self, name: str, new: Callable[[], AbstractConnection]) -> _Pair:
        invalidations, reads = new(), new()
        try:
            await invalidations.connect()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
            await invalidations.send_command("CLIENT", "ID")
            client_id = int(await invalidations.read_response())
            await invalidations.send_command("SUBSCRIBE", INVALIDATION_CHANNEL)
            await invalidations.read_response(push_request=True)
            await reads.connect()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
            await reads.send_command("CLIENT", "TRACKING", "ON", "REDIRECT", client_id)
            await reads.read_response()
        except BaseException:
            for connection in (invalidations, reads):
                with contextlib.suppress(Exception):
                    await connection.disconnect()
            raise
        pair = _Pair(name, invalidations, reads)
        self._spawn(self._listen(pair), f"supportgate invalidations {name}")
        return pair

    def _spawn(self, work: Awaitable[None], name: str) -> None:
        task = asyncio.ensure_future(work)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _listen(self, pair: _Pair) -> None:
        """Read a pair's invalidation messages (and the answers to its PINGs) until it drops."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                # The parser may take a subscribed connection's messages for push messages: ask for those too.
                message = await pair.invalidations.read_response(timeout=math.inf, push_request=True)
                pair.heard = loop.time()
                if isinstance(message, list) and len(message) == 3 and message[0] in (b"message", "message"):
                    data = message[2]
                    self._forget(data if isinstance(data, list) or data is None else [data])
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of the connection ends tracking on it
            self._lost(pair, f"invalidation connection of {pair.name or 'the store'} lost: {exc!r}")

    def _lost(self, pair: _Pair, why: str) -> None:
        """A connection of ``pair`` failed: drop everything, unless the pair was dropped already."""
        if self._pairs.get(pair.name) is pair:
            self._why = why
            self._dropped.set()

    async def _watch(self, topology: object) -> str:
        """Wait until a pair drops, goes silent or the cluster changes; say which."""
        loop = asyncio.get_running_loop()
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._keepalive):
                    await self._dropped.wait()
            if self._dropped.is_set():
                return self._why
            now = loop.time()
            for pair in list(self._pairs.values()):
                if now - pair.heard > self._silence:
                    return f"no word from {pair.name or 'the store'} for {now - pair.heard:.1f} s"
                try:
                    await pair.invalidations.send_command("PING")
                    await self._ask(pair, "PING")
                except Exception as exc:  # noqa: BLE001 - a connection that fails its PING is dropped
                    return f"PING to {pair.name or 'the store'} failed: {exc!r}"
            if topology is not None:
                try:
                    if await self._ask(next(iter(self._pairs.values())), "CLUSTER", "SLOTS") != topology:
                        return "the cluster's slots moved"
                except Exception as exc:  # noqa: BLE001 - as a failed PING
                    return f"CLUSTER SLOTS failed: {exc!r}"
        # The client may turn the cancellation of a stop into a timeout or its own connection error.
        return "stopping"

    async def _ask(self, pair: _Pair, *command: str) -> Any:  # noqa: ANN401 - whatever the server answers
        """One command on the pair's read connection, between its batches of reads."""
        async with pair.lock:
            await pair.reads.send_command(*command)
            return await pair.reads.read_response(timeout=self._silence)

    async def _read_on(self, pair: _Pair, key: str) -> bytes | None:
        """GET ``key`` on the pair's read connection, with every GET asked for in the same turn of the loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bytes | None] = loop.create_future()
        if not pair.pending:
            loop.call_soon(self._spawn, self._send_batch(pair), "supportgate tracked batch")
        pair.pending.append((key, future))
        return await future

    async def _send_batch(self, pair: _Pair) -> None:
        async with pair.lock:
            batch, pair.pending = pair.pending, []
            if not batch:
                return
            try:
                await pair.reads.send_packed_command(pair.reads.pack_commands([("GET", key) for key, _ in batch]))
                values = [await pair.reads.read_response(timeout=self._silence) for _ in batch]
            except (Exception, asyncio.CancelledError) as exc:
                # An error reply (a MOVED: the cluster changed) leaves the connection's replies
                # unread; any failure drops the pair, and the waiting reads go through the store.
                for _, future in batch:
                    if not future.done():
                        future.set_exception(
                            exc if isinstance(exc, RedisError | OSError) else ConnectionError("tracked read cut short")
                        )
                self._lost(pair, f"read connection of {pair.name or 'the store'} failed: {exc!r}")
                if isinstance(exc, asyncio.CancelledError):
                    raise
                return
        for (_, future), value in zip(batch, values, strict=True):
            if not future.done():
                future.set_result(value if isinstance(value, bytes) else None)


def _own(kwargs: dict[str, Any]) -> dict[str, Any]:
    """A connection's options for tracking: no silent reconnects (tracking would be off after one), no health checks.

    And RESP2: the invalidations arrive as messages on a channel (RESP3 would send them as pushes).
    """
    return {**kwargs, "retry": Retry(NoBackoff(), 0), "health_check_interval": 0, "protocol": 2}
