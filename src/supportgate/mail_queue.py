"""The mail queue: a mail waits in the store until a worker of any process has sent it.

Mail is a stream read by one consumer group, so with several worker processes each mail goes to
one of them; a mail a dead worker left unacknowledged is claimed by another after a while. A
failed delivery leaves the stream for a sorted set scored by when to try again, and comes back
when due. A sent mail is acknowledged and deleted at once: the bodies hold sign-in codes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Sequence
from contextlib import suppress
from typing import Any, Final, cast

import msgspec
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import ResponseError

from supportgate.clock import Clock, utc_now
from supportgate.errors import MailQueueFull
from supportgate.mail import Mail, Mailer, describe_error, recipient_domain
from supportgate.store import STORE_ERRORS, Store, begin, names, stopping

__all__ = ["GROUP", "MailQueue"]

GROUP: Final = "mailers"
"""The consumer group every process reads the queue with."""

_log = logging.getLogger("supportgate.mail")
_FIELD: Final = "mail"
_STORE_PAUSE: Final = 1.0
"""Seconds the consumer waits after the store failed before it tries again."""


class _Queued(msgspec.Struct, frozen=True):
    """A mail as the store holds it."""

    mail: Mail
    nonce: str
    """Tells two equal mails apart in the retry set, which keeps one copy of equal members."""
    tries: int = 0
    """Deliveries tried and failed so far."""


# A script, not a watched transaction: every send and every acknowledgement changes the stream,
# so under load a WATCH on it would clash again and again. -1 means queued, else how many wait.
# MAXLEN is a backstop only: the count keeps the stream under it, so it never trims a mail.
_ADD: Final = """
local waiting = redis.call('XLEN', KEYS[1]) + redis.call('ZCARD', KEYS[2])
if waiting >= tonumber(ARGV[1]) then return waiting end
redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[1], '*', 'mail', ARGV[2])
return -1
"""

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(_Queued).decode


class MailQueue:
    """Mail kept in the store and sent in the background by every process's consumer.

    Args:
        store: where the queue lives.
        mailer: what sends each mail.
        clock: the source of "now" for retry times (tests move it).
        limit: how many mails may wait (queued, being sent or waiting to be retried) before
            :meth:`send` refuses more.
        attempts: deliveries tried before a mail is dropped.
        backoff: seconds before each retry, in order; the last one repeats.
        claim_after: seconds a mail may stay unacknowledged with one consumer before another
            takes it over (its worker died); longer than any delivery may take.
        send_timeout: seconds one delivery may take before it counts as failed.
        block: seconds one read waits for new mail; shorter than the store timeout.
        batch: mails one consumer sends at once.
    """

    def __init__(
        self,
        store: Store,
        mailer: Mailer,
        *,
        clock: Clock = utc_now,
        limit: int = 10_000,
        attempts: int = 5,
        backoff: Sequence[float] = (60.0, 300.0, 1800.0, 7200.0),
        claim_after: float = 300.0,
        send_timeout: float = 120.0,
        block: float = 1.0,
        batch: int = 8,
    ) -> None:
        if attempts < 1 or limit < 1 or batch < 1:
            raise ValueError("attempts, limit and batch must be at least 1")
        self._store = store
        self._mailer = mailer
        self._clock = clock
        self._limit = limit
        self._attempts = attempts
        self._backoff = tuple(backoff) or (0.0,)
        self._claim_after_ms = int(claim_after * 1000)
        self._send_timeout = send_timeout
        self._block_ms = max(1, int(block * 1000))
        self._batch = batch
        self.consumer = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        """This process's name in the consumer group."""
        self._add = store.redis.register_script(_ADD)
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._sending: set[asyncio.Task[None]] = set()

    async def send(self, mail: Mail) -> None:
        """Queue ``mail`` in the store, on disk before this returns; a consumer sends it soon after.

        Raises:
            MailQueueFull: ``limit`` mails are waiting already; this one was not queued.
        """
        entry = _encode(_Queued(mail=mail, nonce=secrets.token_hex(8)))
        keys = [names.mail_queue(), names.mail_retries()]

        async def add(redis: Redis) -> int:
            return int(await self._add(keys=keys, args=[self._limit, entry], client=redis))

        waiting = await self._store.durably(add, names.mail_queue())
        if waiting >= 0:
            raise MailQueueFull(f"{waiting} mails are waiting to be sent, the most the queue holds")

    async def depth(self) -> tuple[int, int]:
        """How many mails wait: in the stream (queued or being sent), and in the retry set."""
        async with self._store.redis.pipeline(transaction=False) as pipe:
            pipe.xlen(names.mail_queue())
            pipe.zcard(names.mail_retries())
            queued, retrying = await pipe.execute()
        return int(queued), int(retrying)

    async def start(self) -> None:
        """Join the consumer group and send mail in the background until :meth:`stop`."""
        await self._join()
        self._stopping = False
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109 - past the timeout it cancels, not just stops waiting
        """Stop reading; mails being sent get ``timeout`` seconds, then stay in the store for another consumer."""
        if self._task is not None:
            # The flag too: a cancellation that lands inside the store client may come back as a
            # connection error, which the loop rides out.
            self._stopping = True
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._sending:
            await asyncio.wait(set(self._sending), timeout=timeout)
        if self._sending:
            late = set(self._sending)
            _log.warning(
                "%d mail(s) still being sent after %g s left in the queue for another worker", len(late), timeout
            )
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
            return
        with suppress(*STORE_ERRORS, ResponseError):
            # Nothing of ours is pending (every send finished): leave the group tidy.
            pending = await self._store.redis.xpending_range(
                names.mail_queue(), GROUP, min="-", max="+", count=1, consumername=self.consumer
            )
            if not pending:
                await self._store.redis.xgroup_delconsumer(names.mail_queue(), GROUP, self.consumer)

    async def _join(self) -> None:
        try:
            await self._store.redis.xgroup_create(names.mail_queue(), GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _run(self) -> None:
        while not self._stopping and not stopping():
            try:
                await self._step()
            except ResponseError as exc:
                if "NOGROUP" in str(exc):
                    # The stream or its group went away (a flushed store): make them again.
                    await self._rejoin()
                else:
                    await self._pause(exc)
            except Exception as exc:  # noqa: BLE001 - the consumer outlives any one failure, the store's above all
                await self._pause(exc)

    async def _pause(self, exc: Exception) -> None:
        _log.warning("the mail queue could not be read (%s: %s); trying again shortly", type(exc).__name__, exc)
        await asyncio.sleep(_STORE_PAUSE)

    async def _rejoin(self) -> None:
        try:
            await self._join()
        except (*STORE_ERRORS, ResponseError) as exc:
            _log.warning("the mail queue's consumer group could not be made (%s); trying again shortly", exc)
            await asyncio.sleep(_STORE_PAUSE)

    async def _step(self) -> None:
        """Requeue due retries, then send what a dead consumer left or else what is new."""
        await self._release_due_retries()
        redis = self._store.redis
        queue = names.mail_queue()
        claimed = await redis.xautoclaim(
            queue, GROUP, self.consumer, min_idle_time=self._claim_after_ms, start_id="0-0", count=self._batch
        )
        entries: list[tuple[bytes, dict[bytes, bytes] | None]] = list(claimed[1])
        if not entries:
            read: Any = await redis.xreadgroup(
                GROUP, self.consumer, {queue: ">"}, count=self._batch, block=self._block_ms
            )
            entries = [entry for _stream, stream_entries in read or [] for entry in stream_entries]
        tasks = []
        for entry_id, fields in entries:
            if fields is None:
                continue  # deleted since it was read: nothing to send
            task = asyncio.get_running_loop().create_task(self._deliver(entry_id, fields))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)
            tasks.append(task)
        if tasks:
            # wait, not gather: cancelling the reader must leave the sends running for stop() to wait on.
            await asyncio.wait(tasks)

    async def _release_due_retries(self) -> None:
        retries, queue = names.mail_retries(), names.mail_queue()
        now = self._clock().timestamp()
        if not await self._store.redis.zcount(retries, "-inf", now):
            return

        async def release(pipe: Pipeline) -> None:
            due = await pipe.zrangebyscore(retries, "-inf", now, start=0, num=self._batch)
            if not due:
                return
            begin(pipe)
            pipe.zrem(retries, *due)
            for member in cast("list[bytes]", due):
                pipe.xadd(queue, {_FIELD: member})

        await self._store.atomically(release, retries)

    async def _deliver(self, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        try:
            await self._send_and_settle(entry_id, fields)
        except STORE_ERRORS as exc:
            # Left pending: another consumer claims it later, so it may be sent twice, never lost.
            _log.warning("a mail could not be settled in the queue (%s); it stays pending", exc)

    async def _send_and_settle(self, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        try:
            queued = _decode(fields[_FIELD.encode()])
        except (KeyError, msgspec.DecodeError):
            _log.error("an unreadable entry in the mail queue dropped")
            await self._settle(entry_id, None, 0.0)
            return
        try:
            async with asyncio.timeout(self._send_timeout):
                await self._mailer.send(queued.mail)
        except Exception as exc:  # noqa: BLE001 - any failure is retried, then logged: the caller has moved on
            await self._failed(entry_id, queued, exc)
        else:
            await self._settle(entry_id, None, 0.0)

    async def _failed(self, entry_id: bytes, queued: _Queued, exc: Exception) -> None:
        tries = queued.tries + 1
        domain = recipient_domain(queued.mail.to)
        reason = describe_error(exc, queued.mail.to)
        if tries >= self._attempts:
            await self._settle(entry_id, None, 0.0)
            _log.error("mail to a recipient at %s dropped after %d attempt(s): %s", domain, tries, reason)
            return
        delay = self._backoff[min(tries, len(self._backoff)) - 1]
        retry = msgspec.structs.replace(queued, tries=tries)
        await self._settle(entry_id, retry, self._clock().timestamp() + delay)
        _log.warning(
            "mail to a recipient at %s not sent (attempt %d of %d), trying again in %g s: %s",
            domain,
            tries,
            self._attempts,
            delay,
            reason,
        )

    async def _settle(self, entry_id: bytes, retry: _Queued | None, due: float) -> None:
        """Acknowledge and delete an entry; if ``retry`` is given, keep it to try again at ``due``."""
        queue = names.mail_queue()

        async def settle(pipe: Pipeline) -> None:
            begin(pipe)
            pipe.xack(queue, GROUP, entry_id)
            pipe.xdel(queue, entry_id)
            if retry is not None:
                pipe.zadd(names.mail_retries(), {_encode(retry): due})

        await self._store.atomically(settle)
