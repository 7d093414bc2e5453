"""Fixtures: a private store started for the test session, the app, an admin client, a clock."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from litestar import Litestar
from litestar.testing import AsyncTestClient

from supportgate.app import create_app
from supportgate.mail import mailer_for
from supportgate.mail_queue import MailQueue
from supportgate.services import Services
from supportgate.settings import Settings
from supportgate.store import EmbeddedStore, Store, connect, open_store
from supportgate.store.server import find_server_binary
from supportgate.tokens.sealing import MasterKey
from tests.cluster_helpers import ValkeyCluster
from tests.node_deps import ensure_node_modules
from tests.smtp_helpers import SmtpServers
from tests.tokens_helpers import MASTER_KEY

NO_DNS: tuple[str, int] = ("127.0.0.1", 9)
"""The DNS server of tests that start none: a loopback port where nothing answers, so that no test asks
the machine's own resolver about a crawler's address (tests/test_crawlers.py starts real ones)."""


EVERY_STORE = pytest.mark.parametrize("store_server", ["valkey", "redis", "cluster"], indirect=True, scope="session")
"""Run a module's or a test's store-backed tests on a Valkey Cluster too (six servers), not only on one server."""

CLUSTER_ONLY = pytest.mark.parametrize("store_server", ["cluster"], indirect=True, scope="session")
"""Run a test of a cluster's own behaviour (slots, replicas) on the Valkey Cluster alone."""


@dataclass
class FakeClock:
    """A clock the tests move by hand."""

    now: datetime = field(default_factory=lambda: datetime(2026, 11, 24, 12, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        """The time the test has set."""
        return self.now

    def advance(self, **delta: float) -> None:
        """Move the clock on by a timedelta's keyword arguments."""
        self.now += timedelta(**delta)


@pytest.fixture(scope="session", autouse=True)
def node_modules() -> None:
    """The JavaScript dev dependencies, installed by `npm ci` once per session where they are stale."""
    ensure_node_modules()


def server_binary(kind: str) -> str:
    """The server binary for a backend, or skip the tests on it with the reason."""
    if kind == "valkey":
        return find_server_binary()
    found = shutil.which("redis-server")
    if found is None:
        pytest.skip("redis-server is not on PATH (.ci/run installs it): the Redis backend is not tested here")
    return found


# SUPPORTGATE_TEST_STORES=cluster (or valkey,redis,cluster) runs every store-backed test on those instead.
_STORES = os.environ.get("SUPPORTGATE_TEST_STORES", "valkey,redis").split(",")


@pytest.fixture(scope="session", params=_STORES)
def store_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EmbeddedStore | ValkeyCluster]:
    """A private store for the whole session, started as the CLI would: Valkey 8 and Redis 7 in turn.

    Tests marked :data:`EVERY_STORE` also get ``cluster``: a Valkey Cluster of three primaries and
    three replicas on loopback ports.
    """
    with _memory_backed(tmp_path_factory, request.param) as root:
        if request.param == "cluster":
            with ValkeyCluster(root) as cluster:
                yield cluster
            return
        with EmbeddedStore(root, binary=server_binary(request.param)) as server:
            yield server


@contextmanager
def _memory_backed(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[Path]:
    """A directory for a session store's AOF: in ``/dev/shm`` where it has room, else under pytest's tmp.

    The session stores keep ``appendfsync everysec``, as the service runs them. On a busy disk an
    fsync can take seconds and a server waiting on its disk stops answering: a test would then see a
    store timeout that is the disk's, not the code's. On tmpfs an fsync returns at once. The Redis
    timeouts CI saw went on after this: their cause is not the disk (see pyproject's addopts).
    Tests of durability across a crash start stores of their own, on disk (``own_store``).
    """
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free >= _SHM_ROOM:
        with tempfile.TemporaryDirectory(prefix=f"sg-{name}-", dir=shm) as root:
            yield Path(root)
    else:
        yield tmp_path_factory.mktemp(name)


_SHM_ROOM = 2 << 30
"""Free space ``/dev/shm`` needs to hold the session stores' AOFs (each is rewritten past 64 MiB)."""


@pytest.fixture(params=["valkey", "redis"])
def own_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EmbeddedStore]:
    """A store of the test's own, which it may stop, freeze, kill or restart: Valkey 8 and Redis 7 in turn."""
    server = EmbeddedStore(tmp_path / "data", binary=server_binary(request.param))
    server.start()
    yield server
    if server.pid:
        os.kill(server.pid, signal.SIGCONT)
    server.stop()


@pytest.fixture
async def own_services(own_store: EmbeddedStore, clock: FakeClock) -> AsyncIterator[Services]:
    """The services over the test's own store (see ``own_store``), with the tests' master key."""
    settings = Settings(redis_url=own_store.url)
    store = Store(connect(own_store.url))
    mail = MailQueue(store, mailer_for(settings))
    yield Services.build(store, settings, mail, MASTER_KEY, clock)
    await store.close()


@pytest.fixture
def store_url(store_server: EmbeddedStore | ValkeyCluster) -> str:
    """The session store's URL, emptied before each test (a cluster: every primary)."""
    if isinstance(store_server, ValkeyCluster):
        store_server.flushall()
        return store_server.url
    with redis.Redis.from_url(store_server.url) as client:
        client.flushall()
    return store_server.url


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def suite_settings(store_url: str, tmp_path: Path, **changes: Any) -> Settings:
    """Settings on the session store with a data dir in ``tmp_path``, changed by ``changes``.

    Generous budgets for a page view (1 s) and a store call (5 s): a loaded test machine must not turn a
    slow answer into store_unavailable; and no DNS server (:data:`NO_DNS`) unless ``changes`` names one.
    """
    changes.setdefault("dns_resolver", NO_DNS)
    changes.setdefault("store_timeout_seconds", 5.0)
    return Settings(redis_url=store_url, data_dir=tmp_path / "data", decide_deadline_seconds=1.0, **changes)


@pytest.fixture
def settings(store_url: str, tmp_path: Path) -> Settings:
    return suite_settings(store_url, tmp_path)


@pytest.fixture
def app(settings: Settings, clock: FakeClock) -> Litestar:
    return create_app(settings, clock=clock)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """An HTTP client with no credentials."""
    async with AsyncTestClient(app) as test_client:
        yield test_client


@pytest.fixture
async def services(store_url: str, settings: Settings, clock: FakeClock) -> AsyncIterator[Services]:
    """The services over their own connection (the app's lives on the test client's loop)."""
    store = await open_store(store_url)
    mail = MailQueue(store, mailer_for(settings))
    yield Services.build(store, settings, mail, MasterKey(settings.load_master_key()), clock)
    await store.close()


@pytest.fixture
async def admin(client: AsyncTestClient[Litestar], services: Services) -> AsyncTestClient[Litestar]:
    """The same client, sending a fresh admin key."""
    created = await services.api_keys.create("admin", name="tests", actor="cli")
    client.headers["Authorization"] = f"Bearer {created.key}"
    return client


@pytest.fixture
def smtp_server() -> Iterator[SmtpServers]:
    """Start aiosmtpd servers on free local ports with the given options; stop them after the test."""
    servers = SmtpServers()
    yield servers
    servers.stop()
