"""Connecting to the store, and the one way multi-key changes are made: atomically.

The store is one server (Redis 7+, Valkey 8, the embedded one) or a Redis / Valkey Cluster;
:func:`open_store` asks the server which (``INFO cluster``) and picks the client. On a cluster a
change is one transaction on the primary that holds its keys' slot, so every key it touches shares
one hash tag (``names.py``); a durable write waits until a replica holds it as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeAlias, TypeVar, cast

from redis.asyncio import ConnectionPool, Redis, RedisCluster
from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.connection import AbstractConnection, Connection
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import (
    AskError,
    ClusterCrossSlotError,
    ClusterError,
    MovedError,
    OutOfMemoryError,
    ReadOnlyError,
    ResponseError,
    SlotNotCoveredError,
    TryAgainError,
    WatchError,
)
from redis.exceptions import ConnectionError as StoreConnectionError
from redis.exceptions import TimeoutError as StoreTimeoutError

from supportgate.errors import StoreUnavailable
from supportgate.metrics import Metrics

__all__ = ["STORE_ERRORS", "Client", "Store", "begin", "connect", "open_store", "stopping", "text", "texts"]

Client: TypeAlias = Redis | RedisCluster
"""The client a :class:`Store` holds: one server's, or a cluster's (which routes each key to its slot's node)."""

T = TypeVar("T")
_log = logging.getLogger("supportgate.store")
_MAX_RETRIES = 20

STORE_ERRORS = (
    StoreConnectionError,
    StoreTimeoutError,
    ReadOnlyError,
    OutOfMemoryError,
    ClusterError,
    TryAgainError,
    SlotNotCoveredError,
)
"""What the store client raises when the store is down, hung, loading, read-only or full.

A store that is still loading its data raises ``BusyLoadingError``, a kind of connection error; a
store at its ``maxmemory`` under ``noeviction`` refuses writes with ``OutOfMemoryError``. On a
cluster, a slot whose primary is gone and not yet replaced gives ``ClusterDownError`` (a
``ClusterError``), ``TryAgainError`` or ``SlotNotCoveredError``, or a connection error.
"""
_REPLICA_WAIT_MS = 2000


def connect(url: str, *, timeout: float = 2.0) -> Redis:
    """An asyncio client for ``url`` (``redis://``, ``rediss://`` or ``unix://``)."""
    return Redis.from_url(
        url,
        # One quick retry rides out a dropped connection; more would only delay the 503 a
        # client gets while the store is down (redis-py's default backs off for seconds). A
        # command that timed out is not retried: that would double the wait on a hung store.
        retry=Retry(ExponentialBackoff(cap=0.05, base=0.01), 1, supported_errors=(StoreConnectionError,)),
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=30,
        max_connections=256,
    )


async def open_store(
    url: str, *, socket_timeout: float = 2.0, batch_timeout: float | None = None, metrics: Metrics | None = None
) -> Store:
    """The store at ``url``: one server, or the Redis / Valkey Cluster that ``url``'s node belongs to.

    The server says which (``INFO cluster`` → ``cluster_enabled:1``); on a cluster, the client
    learns the rest of the nodes from that one and follows the cluster's changes (a failover, a
    slot moved) by itself. Raises one of :data:`STORE_ERRORS` when the store cannot be reached.
    """
    single = connect(url, timeout=socket_timeout)
    try:
        info = await single.info("cluster")
    except BaseException:
        await single.aclose()
        raise
    if not info.get("cluster_enabled"):
        return Store(single, batch_timeout=batch_timeout, metrics=metrics)
    await single.aclose()
    cluster = RedisCluster.from_url(
        url,
        # As for one server: few quick retries (a retry follows a MOVED, or rediscovers the nodes
        # after a connection error), so a slot without a primary answers fast with an error.
        retry=Retry(ExponentialBackoff(cap=0.05, base=0.01), 2),
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_timeout,
        health_check_interval=30,
        max_connections=256,
    )
    try:
        await cluster.initialize()
    except BaseException:
        await cluster.aclose()
        raise
    return Store(cluster, batch_timeout=batch_timeout, metrics=metrics)


def stopping() -> bool:
    """Whether the running task was asked to stop (cancelled).

    A cancellation that lands inside the store client may come back as the client's own
    connection error; a background loop that rides out store errors asks this before it goes on.
    """
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def begin(pipe: Pipeline) -> None:
    """Open the MULTI block of a transaction whose reads are done: what follows is queued."""
    pipe.multi()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated


def text(value: object) -> str:
    """A reply the store sent as bytes, as text."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, str):
        return value
    raise TypeError(f"expected a bytes reply from the store, got {type(value).__name__}")


def texts(values: object) -> list[str]:
    """A list or set reply of bytes, as a list of text."""
    if not isinstance(values, list | set | tuple):
        raise TypeError(f"expected a list or set reply from the store, got {type(values).__name__}")
    return [text(v) for v in values]


class Store:
    """The store as services see it: a client plus atomic, durable writes.

    ``redis`` is one server's client or a cluster's (:data:`Client`); single-key commands and
    multi-key commands within one hash tag go through it alike.
    """

    def __init__(self, redis: Client, *, batch_timeout: float | None = None, metrics: Metrics | None = None) -> None:
        self.redis: Client = redis
        self._batch_timeout = batch_timeout
        self._metrics = metrics
        self._waitaof: bool | None = None
        self._pending_gets: list[tuple[str, asyncio.Future[bytes | None]]] = []

    @property
    def cluster(self) -> bool:
        """Whether the store is a Redis / Valkey Cluster."""
        return isinstance(self.redis, RedisCluster)

    def by_node(self, keys: Iterable[str]) -> list[list[str]]:
        """``keys`` in groups that one connection reaches, in their order: all, or per primary on a cluster.

        Keys of different hash tags are written without a common transaction: a write that spans
        them goes group by group, one :meth:`durably` each.
        """
        redis = self.redis
        if not isinstance(redis, RedisCluster):
            every = list(keys)
            return [every] if every else []
        groups: dict[str, list[str]] = {}
        for key in keys:
            node = redis.get_node_from_key(key)
            groups.setdefault(node.name if node is not None else "", []).append(key)
        return list(groups.values())

    async def get_batched(self, key: str) -> bytes | None:
        """GET ``key``, sent with every other GET asked for in the same turn of the event loop.

        On the per-page-view path many requests wait on the store at once; one pipeline for all
        of them costs the client far less than a round trip each, and the answer is as fresh.
        A batch gets ``batch_timeout`` seconds, so a hung store does not hold it longer. On a
        cluster the batch goes to each key's node (GETs need no common slot).
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bytes | None] = loop.create_future()
        if not self._pending_gets:
            loop.call_soon(lambda: asyncio.ensure_future(self._flush_gets()))
        self._pending_gets.append((key, future))
        return await future

    async def _flush_gets(self) -> None:
        batch, self._pending_gets = self._pending_gets, []
        try:
            async with asyncio.timeout(self._batch_timeout), self.redis.pipeline(transaction=False) as pipe:
                for key, _ in batch:
                    pipe.get(key)
                values = await pipe.execute()
        except Exception as exc:  # noqa: BLE001 - every waiter gets the store's error to handle
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), value in zip(batch, values, strict=True):
            if not future.done():
                future.set_result(value if isinstance(value, bytes) else None)

    async def atomically(self, change: Callable[[Pipeline], Awaitable[T]], *watch: str) -> T:
        """Run ``change`` as one optimistic transaction over the ``watch`` keys, then wait for the disk.

        ``change`` reads through the pipeline (immediate mode), calls ``pipe.multi()`` and queues
        its writes; they are applied all together or, when a watched key changed meanwhile, not at
        all and ``change`` runs again. Raising from ``change`` writes nothing. Once applied, the
        writes are on disk (and, on a cluster, on a replica) where the server can say so
        (:meth:`durably`).

        On a cluster the transaction runs on the primary of the slot of the first watched key (or,
        watching none, of the first queued command's key): every key it touches must share that
        slot, or the server refuses it (``CROSSSLOT``). A slot that moved meanwhile (``MOVED``)
        refreshes the client's map of the cluster and runs ``change`` again there.
        """
        with self._counting_errors():
            return await self._atomically(change, watch)

    async def _atomically(self, change: Callable[[Pipeline], Awaitable[T]], watch: tuple[str, ...]) -> T:
        for _ in range(_MAX_RETRIES):
            async with self._one_connection(*watch) as lent:
                pipe = Pipeline(
                    cast("ConnectionPool", lent), self.redis.response_callbacks, transaction=True, shard_hint=None
                )
                lent.follow(pipe)
                async with pipe:
                    try:
                        if watch:
                            await pipe.watch(*watch)
                        result = await change(pipe)
                        await pipe.execute()
                    except WatchError:
                        continue
                    except (MovedError, AskError) as exc:
                        await self._moved(exc, lent)
                        continue
                    finally:
                        await pipe.reset()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
                    await self._wait_for_copies(lent.taken)
                    return result
        raise StoreUnavailable("The change kept clashing with concurrent changes; try again.")

    async def durably(self, write: Callable[[Redis], Awaitable[T]], key: str) -> T:
        """Run ``write`` with a client of one connection, then wait until its writes are on disk.

        ``WAITAOF`` waits for the writes of the connection it is sent on, so the writes and the
        wait must share one. ``write`` may send commands or pipelines through its client, one
        after the other (they share the connection, so never concurrently). ``key`` names the
        slot the writes are in: on a cluster, the connection is to that slot's primary, and
        every key ``write`` touches must share its hash tag.
        """
        with self._counting_errors():
            async with self._one_connection(key) as lent:
                try:
                    result = await write(Redis(connection_pool=cast("ConnectionPool", lent)))
                except (MovedError, AskError) as exc:
                    await self._moved(exc, lent)
                    raise StoreUnavailable("The store's cluster moved that data just now; try again.") from exc
                await self._wait_for_copies(lent.taken)
                return result

    @contextmanager
    def _counting_errors(self) -> Iterator[None]:
        """Count a store error raised inside in ``supportgate_store_errors_total``, and let it go on."""
        try:
            yield
        except STORE_ERRORS as exc:
            if self._metrics is not None:
                self._metrics.store_error("write", exc)
            raise

    @asynccontextmanager
    async def multi(self, key: str) -> AsyncIterator[Pipeline]:
        """A ``MULTI``/``EXEC`` pipeline for commands on ``key``'s hash tag, applied together, not waited on.

        On a cluster it runs on one connection to the primary of ``key``'s slot (redis-py's own
        cluster transactions run each queued command through a thread of its own); a slot that
        moved meanwhile updates the client's map and answers :class:`StoreUnavailable`.
        """
        redis = self.redis
        if not isinstance(redis, RedisCluster):
            async with redis.pipeline(transaction=True) as pipe:
                yield pipe
            return
        async with self._one_connection(key) as lent:
            pipe = Pipeline(cast("ConnectionPool", lent), redis.response_callbacks, transaction=True, shard_hint=None)
            async with pipe:
                try:
                    yield pipe
                except (MovedError, AskError) as exc:
                    await self._moved(exc, lent)
                    raise StoreUnavailable("The store's cluster moved that data just now; try again.") from exc

    @asynccontextmanager
    async def _one_connection(self, *keys: str) -> AsyncIterator[_Lent]:
        """A pool that lends its clients one connection till the end: to the store, or to ``keys``' primary."""
        redis = self.redis
        if isinstance(redis, RedisCluster):
            lent = _Lent(redis, _ClusterTaker(redis, keys))
        else:
            lent = _Lent(redis.connection_pool, _PoolTaker(redis.connection_pool))
        try:
            yield lent
        except (StoreConnectionError, StoreTimeoutError, ClusterError):
            if isinstance(redis, RedisCluster):
                # The node may be gone: relearn the cluster so the next change finds its new primary.
                with contextlib.suppress(*STORE_ERRORS):
                    await redis.nodes_manager.initialize()
            raise
        finally:
            await lent.give_back()

    async def _moved(self, error: AskError, lent: _Lent) -> None:
        """Learn where a slot went (a failover or a resharding), so the next try goes there.

        A redirection for another slot than the change's is no move: the change touched keys of
        two slots, which a cluster cannot apply together; that fails loudly, like ``CROSSSLOT``.
        """
        if not isinstance(self.redis, RedisCluster):
            raise error
        if error.slot_id != lent.slot:
            raise ClusterCrossSlotError(
                f"CROSSSLOT a change in slot {lent.slot} touched slot {error.slot_id}: its keys must share a hash tag"
            ) from error
        await self.redis.nodes_manager.move_slot(error)

    async def _wait_for_copies(self, connection: AbstractConnection | None) -> None:
        """Wait until ``connection``'s writes are fsynced to the AOF (and, on a cluster, on a replica)."""
        if connection is None:
            return  # the change queued no write
        if self.cluster:
            await self._wait_for_replica(connection)
        else:
            await self._wait_for_aof(connection)

    async def _wait_for_aof(self, connection: AbstractConnection) -> None:
        """Wait until ``connection``'s writes are fsynced to the AOF, where the server can say so."""
        if self._waitaof is False:
            return
        try:
            await connection.send_command("WAITAOF", 1, 0, 2000)
            await connection.read_response()
            self._waitaof = True
        except ResponseError as exc:
            message = str(exc).lower()
            if "unknown command" in message or "appendonly" in message:
                # Servers before Redis 7.2, or without AOF: acknowledged is the best they offer.
                _log.info("store has no WAITAOF (%s); writes are acknowledged, not awaited on disk", exc)
                self._waitaof = False
            else:
                raise

    async def _wait_for_replica(self, connection: AbstractConnection) -> None:
        """On a cluster: wait until a replica holds ``connection``'s writes, then for the primary's AOF.

        ``WAIT 1`` returns as soon as a replica has applied the writes (it asks the replicas for
        their offset at once); ``WAITAOF 1 1`` would also wait for the replica's own fsync, up to a
        second later under ``appendfsync everysec``, which a sign-in cannot afford. So a write is
        acknowledged once it is in a replica's memory and on the primary's disk: losing it takes
        losing both. A write no replica confirmed in time is applied on the primary but not
        acknowledged: the caller gets :class:`StoreUnavailable` (a 503).
        """
        await connection.send_command("WAIT", 1, _REPLICA_WAIT_MS)
        if int(await connection.read_response()) < 1:
            raise StoreUnavailable("No replica confirmed the change in time; it may not be kept. Try again.")
        await self._wait_for_aof(connection)

    async def ping(self) -> bool:
        """Whether the store answers (on a cluster, every node the client knows)."""
        return bool(await self.redis.ping())

    async def close(self) -> None:
        """Close the connection pool (a cluster's: every node's)."""
        await self.redis.aclose()


class _PoolTaker:
    """Takes a connection from one server's pool, and gives it back."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool

    async def take(self, _pipe: Pipeline | None) -> AbstractConnection:
        connection: AbstractConnection = await self._pool.get_connection()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
        return connection

    async def give_back(self, connection: AbstractConnection) -> None:
        await self._pool.release(connection)


class _ClusterTaker:
    """Takes a connection to the primary of a slot: the given keys', else the first queued command's key."""

    def __init__(self, cluster: RedisCluster, keys: tuple[str, ...]) -> None:
        self._cluster = cluster
        self._keys = keys
        self._node: ClusterNode | None = None
        self.slot: int | None = None

    async def take(self, pipe: Pipeline | None) -> AbstractConnection:
        key = self._keys[0] if self._keys else _first_key(pipe)
        self.slot = self._cluster.keyslot(key)
        node = self._cluster.get_node_from_key(key)
        if node is None:
            raise SlotNotCoveredError(f"no primary holds the slot of {key}")
        connection = node.acquire_connection()
        try:
            await connection.connect()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
        except BaseException:
            await connection.disconnect()
            node.release(connection)
            raise
        self._node = node
        return connection

    async def give_back(self, connection: AbstractConnection) -> None:
        if self._node is not None:
            self._node.release(cast("Connection", connection))


def _first_key(pipe: Pipeline | None) -> str:
    """The key of the first command a transaction queued: where a change that watches nothing runs."""
    for args, _ in pipe.command_stack if pipe is not None else ():
        if len(args) > 1 and isinstance(args[1], str | bytes):
            return args[1] if isinstance(args[1], str) else args[1].decode()
    raise StoreUnavailable("A change on a cluster must name a key to find its slot's node.")


class _Lent:
    """A stand-in for a pool that lends one connection and keeps it when a client gives it back.

    redis-py returns a pipeline's connection to the pool as soon as ``EXEC`` has run, before
    :meth:`Store.atomically` can wait on it; so the pipelines and clients of a durable write take
    their connection from here, and the store gives it back once the wait is over. The connection
    is taken when first asked for (on a cluster, from the node of the slot the change is in).
    Everything else is the real pool's (or the cluster client's: encoder, connection options).
    """

    def __init__(self, base: ConnectionPool | RedisCluster, taker: _PoolTaker | _ClusterTaker) -> None:
        self._base = base
        self._taker = taker
        self._pipe: Pipeline | None = None
        self.taken: AbstractConnection | None = None

    @property
    def slot(self) -> int | None:
        """On a cluster, the slot whose primary the connection goes to, once taken."""
        return self._taker.slot if isinstance(self._taker, _ClusterTaker) else None

    def follow(self, pipe: Pipeline) -> None:
        """The pipeline whose queued commands say where a change that watches nothing runs."""
        self._pipe = pipe

    @property
    def connection_kwargs(self) -> dict[str, Any]:
        """The connection options of the real pool, or of the cluster's nodes."""
        if isinstance(self._base, RedisCluster):
            return self._base.get_connection_kwargs()
        return self._base.connection_kwargs

    async def get_connection(self, *_args: object, **_options: object) -> AbstractConnection:
        """The lent connection, every time (taken the first time)."""
        if self.taken is None:
            self.taken = await self._taker.take(self._pipe)
        return self.taken

    async def release(self, connection: AbstractConnection) -> None:
        """Keep the connection: the store gives it back."""

    async def give_back(self) -> None:
        """Return the connection, if one was taken, to where it came from."""
        if self.taken is not None:
            taken, self.taken = self.taken, None
            await self._taker.give_back(taken)

    def __getattr__(self, name: str) -> Any:  # noqa: ANN401 - whatever the real pool has
        return getattr(self._base, name)
