"""The mail queue in the store, against a real store and a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

import pytest
from litestar.testing import AsyncTestClient

from supportgate.app import create_app
from supportgate.errors import MailQueueFull
from supportgate.mail import Mail, Mailer, SmtpMailer, sign_in_code_mail
from supportgate.mail_queue import GROUP, MailQueue
from supportgate.services import Services
from supportgate.settings import Settings
from supportgate.store import Store, connect, names
from supportgate.tokens.sealing import MasterKey
from tests.conftest import FakeClock
from tests.readers_helpers import body, mails_to
from tests.smtp_helpers import StartServer

SENDER = "News Example <no-reply@news.example>"
READER = "reader@example.com"
CODE = "428913"


def code_mail(to: str = READER) -> Mail:
    return sign_in_code_mail(to=to, code=CODE, minutes=15, site_name="News Example")


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait for ``condition`` to hold, checking often; fail after ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "the condition never held"
        await asyncio.sleep(0.01)


@dataclass
class Stuck:
    """A mailer whose send never ends: a worker caught mid-delivery."""

    started: asyncio.Event

    async def send(self, mail: Mail) -> None:  # noqa: ARG002 - the Mailer signature
        """Say the send started, then hang."""
        self.started.set()
        await asyncio.Event().wait()


Queues = Callable[..., MailQueue]


@pytest.fixture
async def queues(store_url: str, clock: FakeClock) -> AsyncIterator[Queues]:
    """Make queues, each on a store connection of its own like a worker process; stop them after the test."""
    made: list[tuple[MailQueue, Store]] = []

    def make(mailer: Mailer, **options: object) -> MailQueue:
        store = Store(connect(store_url))
        queue = MailQueue(store, mailer, clock=clock, block=0.05, **options)  # type: ignore[arg-type]
        made.append((queue, store))
        return queue

    yield make
    for queue, store in made:
        await queue.stop(timeout=1)
        await store.close()


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    """A connection for looking at the store from outside the queues."""
    client = Store(connect(store_url))
    yield client
    await client.close()


@pytest.fixture(autouse=True)
def no_address_in_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every test here also checks that nothing logged names a recipient's address or the code."""
    with caplog.at_level(logging.DEBUG, logger="supportgate"):
        yield
    assert "@example.com" not in caplog.text
    assert CODE not in caplog.text


def smtp(port: int) -> SmtpMailer:
    return SmtpMailer(f"smtp://127.0.0.1:{port}", sender=SENDER, timeout=2)


async def left_in_store(store: Store) -> tuple[int, int, int]:
    """Entries in the stream, mails awaiting a retry, and entries pending with a consumer."""
    queue = names.mail_queue()
    pending = await store.redis.xpending(queue, GROUP)
    return int(await store.redis.xlen(queue)), int(await store.redis.zcard(names.mail_retries())), pending["pending"]


async def emptied(store: Store, timeout: float = 5.0) -> None:
    """Wait until the queue holds nothing: every mail acknowledged and deleted, none awaiting a retry."""
    deadline = asyncio.get_running_loop().time() + timeout
    while (left := await left_in_store(store)) != (0, 0, 0):
        assert asyncio.get_running_loop().time() < deadline, f"left in the store: {left}"
        await asyncio.sleep(0.01)


async def test_a_queued_mail_is_delivered_then_deleted_from_the_store(
    queues: Queues, smtp_server: StartServer, store: Store
) -> None:
    """A queued mail reaches the SMTP server and then leaves nothing in the store: its code is kept no longer."""
    recorder, port = smtp_server()
    queue = queues(smtp(port))
    await queue.start()
    await queue.send(code_mail())
    await until(lambda: len(recorder.delivered) == 1)
    assert recorder.delivered[0].rcpt_tos == [READER]
    assert CODE in str(recorder.delivered[0].message.get_body(("plain",)))
    await emptied(store)


async def test_mail_a_crashed_worker_left_is_delivered_once_by_a_new_one(
    queues: Queues, smtp_server: StartServer, store: Store
) -> None:
    """A mail caught mid-send by a crash, and one queued while no worker ran, are each delivered once after restart."""
    started = asyncio.Event()
    crashed = queues(Stuck(started), claim_after=0.1)
    await crashed.start()
    await crashed.send(code_mail("first@example.com"))
    await started.wait()
    await crashed.stop(timeout=0)
    await crashed.send(code_mail("second@example.com"))
    assert await left_in_store(store) == (2, 0, 1)

    recorder, port = smtp_server()
    restarted = queues(smtp(port), claim_after=0.1)
    await restarted.start()
    await until(lambda: len(recorder.delivered) == 2)
    await asyncio.sleep(0.3)  # a few more rounds of reading and claiming: nothing is sent again
    assert sorted(d.rcpt_tos[0] for d in recorder.delivered) == ["first@example.com", "second@example.com"]
    await emptied(store)


async def test_two_workers_deliver_each_mail_once(queues: Queues, smtp_server: StartServer, store: Store) -> None:
    """Two consumers of one queue, as in two worker processes, deliver every mail exactly once between them."""
    recorder, port = smtp_server()
    workers = [queues(smtp(port), batch=2), queues(smtp(port), batch=2)]
    for worker in workers:
        await worker.start()
    addresses = [f"r{n}@example.com" for n in range(20)]
    await asyncio.gather(*(workers[n % 2].send(code_mail(address)) for n, address in enumerate(addresses)))
    await until(lambda: len(recorder.delivered) == len(addresses))
    await asyncio.sleep(0.2)
    assert sorted(d.rcpt_tos[0] for d in recorder.delivered) == sorted(addresses)
    await emptied(store)


async def test_a_refusing_server_is_retried_with_backoff_then_the_mail_dropped(
    queues: Queues, smtp_server: StartServer, store: Store, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A refused mail is retried after each backoff delay on the clock, then dropped with a line naming its domain."""
    recorder, port = smtp_server()
    recorder.refuse = "451 4.3.0 Try again later"
    queue = queues(smtp(port), attempts=3, backoff=(60, 300))
    await queue.start()
    await queue.send(code_mail())
    await until(lambda: recorder.attempts == 1)
    await until(lambda: "attempt 1 of 3" in caplog.text)
    assert await left_in_store(store) == (0, 1, 0)
    clock.advance(seconds=59)
    await asyncio.sleep(0.2)
    assert recorder.attempts == 1
    clock.advance(seconds=1)
    await until(lambda: "attempt 2 of 3" in caplog.text)
    clock.advance(seconds=300)
    await until(lambda: recorder.attempts == 3)
    await until(lambda: "dropped" in caplog.text)
    [dropped] = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert dropped.startswith("mail to a recipient at example.com dropped after 3 attempt(s): SMTPDataError")
    assert recorder.delivered == []
    await emptied(store)


async def test_a_mail_refused_once_is_delivered_on_its_retry(
    queues: Queues, smtp_server: StartServer, store: Store, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A mail the server refused once goes through when its retry comes due."""
    recorder, port = smtp_server()
    recorder.refuse = "451 4.3.0 Try again later"
    queue = queues(smtp(port), backoff=(60,))
    await queue.start()
    await queue.send(code_mail())
    await until(lambda: "attempt 1 of" in caplog.text)
    recorder.refuse = None
    clock.advance(seconds=60)
    await until(lambda: len(recorder.delivered) == 1)
    await emptied(store)


async def test_an_error_naming_the_recipient_is_logged_with_its_domain_only(
    queues: Queues, smtp_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A server refusal that repeats the address is logged with the address replaced and only the domain named."""
    recorder, port = smtp_server()
    recorder.refuse = f"550 5.1.1 <{READER}>: no such mailbox"
    queue = queues(smtp(port), attempts=1)
    await queue.start()
    await queue.send(code_mail())
    await until(lambda: "dropped" in caplog.text)
    [dropped] = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert "example.com dropped after 1 attempt(s)" in dropped
    assert "<recipient>" in dropped


async def test_a_full_queue_refuses_new_mail(queues: Queues, store: Store) -> None:
    """With ``limit`` mails waiting the queue refuses the next with MailQueueFull and keeps what it has."""
    queue = queues(Stuck(asyncio.Event()), limit=2)
    await queue.send(code_mail("a@example.com"))
    await queue.send(code_mail("b@example.com"))
    with pytest.raises(MailQueueFull, match="2 mails are waiting"):
        await queue.send(code_mail("c@example.com"))
    assert int(await store.redis.xlen(names.mail_queue())) == 2


async def test_a_code_request_answers_the_same_when_the_queue_is_full(
    store: Store, settings: Settings, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A sign-in code request returns as usual with the queue full, and logs the refusal by domain only."""
    queue = MailQueue(store, Stuck(asyncio.Event()), clock=clock, limit=1)
    services = Services.build(store, settings, queue, MasterKey(settings.load_master_key()), clock)
    await services.signing_keys.ensure()
    assert await services.codes.request("first@example.com", site=None, client_ip="192.0.2.1") is None
    assert await services.codes.request("second@example.com", site=None, client_ip="192.0.2.1") is None
    [refused] = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert refused.startswith("a sign-in mail to a recipient at example.com was not queued")
    assert int(await store.redis.xlen(names.mail_queue())) == 1


async def test_mail_queued_while_the_service_was_down_is_sent_when_it_starts(
    services: Services, settings: Settings, clock: FakeClock
) -> None:
    """Mail queued while no process of the service ran is written to the outbox once the app starts."""
    await services.mail.send(code_mail())
    outbox = settings.data_dir / "outbox"
    assert not outbox.exists()
    async with AsyncTestClient(create_app(settings, clock=clock)):
        [mail] = await mails_to(outbox, READER)
    assert CODE in body(mail)
    await emptied(services.store)
