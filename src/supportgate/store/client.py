"""Connecting to the store, and the one way multi-key changes are made: atomically."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar, cast

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as StoreConnectionError
from redis.exceptions import OutOfMemoryError, ReadOnlyError, ResponseError, WatchError
from redis.exceptions import TimeoutError as StoreTimeoutError

from supportgate.errors import StoreUnavailable
from supportgate.metrics import Metrics

__all__ = ["STORE_ERRORS", "Store", "begin", "connect", "stopping", "text", "texts"]

T = TypeVar("T")
_log = logging.getLogger("supportgate.store")
_MAX_RETRIES = 20

STORE_ERRORS = (StoreConnectionError, StoreTimeoutError, ReadOnlyError, OutOfMemoryError)
"""What the store client raises when the store is down, hung, loading, read-only or full.

A store that is still loading its data raises ``BusyLoadingError``, a kind of connection error; a
store at its ``maxmemory`` under ``noeviction`` refuses writes with ``OutOfMemoryError``.
"""


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
    """The store as services see it: a client plus atomic, durable writes."""

    def __init__(self, redis: Redis, *, batch_timeout: float | None = None, metrics: Metrics | None = None) -> None:
        self.redis = redis
        self._batch_timeout = batch_timeout
        self._metrics = metrics
        self._waitaof: bool | None = None
        self._pending_gets: list[tuple[str, asyncio.Future[bytes | None]]] = []

    async def get_batched(self, key: str) -> bytes | None:
        """GET ``key``, sent with every other GET asked for in the same turn of the event loop.

        On the per-page-view path many requests wait on the store at once; one pipeline for all
        of them costs the client far less than a round trip each, and the answer is as fresh.
        A batch gets ``batch_timeout`` seconds, so a hung store does not hold it longer.
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
        writes are on disk where the server can say so (:meth:`durably`).
        """
        with self._counting_errors():
            return await self._atomically(change, watch)

    async def _atomically(self, change: Callable[[Pipeline], Awaitable[T]], watch: tuple[str, ...]) -> T:
        async with (
            self._one_connection() as (lent, connection),
            Pipeline(lent, self.redis.response_callbacks, transaction=True, shard_hint=None) as pipe,
        ):
            for _ in range(_MAX_RETRIES):
                try:
                    if watch:
                        await pipe.watch(*watch)
                    result = await change(pipe)
                    await pipe.execute()
                except WatchError:
                    continue
                else:
                    await self._wait_for_aof(connection)
                    return result
                finally:
                    await pipe.reset()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
        raise StoreUnavailable("The change kept clashing with concurrent changes; try again.")

    async def durably(self, write: Callable[[Redis], Awaitable[T]]) -> T:
        """Run ``write`` with a client of one connection, then wait until its writes are on disk.

        ``WAITAOF`` waits for the writes of the connection it is sent on, so the writes and the
        wait must share one. ``write`` may send commands or pipelines through its client, one
        after the other (they share the connection, so never concurrently).
        """
        with self._counting_errors():
            async with self._one_connection() as (lent, connection):
                result = await write(Redis(connection_pool=lent))
                await self._wait_for_aof(connection)
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
    async def _one_connection(self) -> AsyncIterator[tuple[ConnectionPool, AbstractConnection]]:
        """A connection taken from the pool till the end, and a pool that lends clients only it."""
        pool = self.redis.connection_pool
        connection = await pool.get_connection()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
        try:
            yield cast("ConnectionPool", _Lent(pool, connection)), connection
        finally:
            await pool.release(connection)

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

    async def ping(self) -> bool:
        """Whether the store answers."""
        return bool(await self.redis.ping())

    async def close(self) -> None:
        """Close the connection pool."""
        await self.redis.aclose()


class _Lent:
    """A stand-in for the pool that lends one connection and keeps it when a client gives it back.

    redis-py returns a pipeline's connection to the pool as soon as ``EXEC`` has run, before
    :meth:`Store.atomically` can wait on it; so the pipelines and clients of a durable write take
    their connection from here, and the store returns it to the real pool once the wait is over.
    Everything else is the real pool's.
    """

    def __init__(self, pool: ConnectionPool, connection: AbstractConnection) -> None:
        self._pool = pool
        self._connection = connection

    async def get_connection(self, *_args: object, **_options: object) -> AbstractConnection:
        """The lent connection, every time."""
        return self._connection

    async def release(self, connection: AbstractConnection) -> None:
        """Keep the connection: the store gives it back to the pool."""

    def __getattr__(self, name: str) -> Any:  # noqa: ANN401 - whatever the real pool has
        return getattr(self._pool, name)
