"""GET /metrics and the access log: counts that follow real requests, the scrape's auth, several workers, no secrets."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from prometheus_client import Histogram, values
from prometheus_client.parser import text_string_to_metric_families
from redis.exceptions import ConnectionError as StoreConnectionError

from supportgate.app import create_app
from supportgate.errors import StoreUnavailable
from supportgate.gate.stats import StatsBuffer
from supportgate.http.access_log import ACCESS_LOGGER
from supportgate.mail import Mail
from supportgate.metrics import CONTENT_TYPE, MULTIPROCESS_ENV, PAGE_VIEW_BUCKETS, Metrics, use_multiprocess_dir
from supportgate.services import Services
from supportgate.settings import Settings
from supportgate.store import Store, connect
from supportgate.store.hot_path import HotPath
from tests.conftest import FakeClock
from tests.gate_helpers import NEWS_ORIGIN, decide, decided, make_world, pass_for, view
from tests.processes import free_port, start_supportgate, stop
from tests.readers_helpers import emailed_code

Client = AsyncTestClient[Litestar]
METRICS_TOKEN = "metrics-token-for-the-tests-0123"
READER = "fan@example.com"
UNREACHABLE = "redis://127.0.0.1:1"


@pytest.fixture
def settings(store_url: str, tmp_path: Path) -> Settings:
    return Settings(
        redis_url=store_url, data_dir=tmp_path / "data", decide_deadline_seconds=1.0, metrics_token=METRICS_TOKEN
    )


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(scraped: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    """One sample's value; 0 when the series does not exist yet."""
    return scraped.get((name, frozenset(labels.items())), 0.0)


async def scrape(client: Client, token: str = METRICS_TOKEN) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    answer = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == CONTENT_TYPE
    return samples(answer.text)


async def test_decisions_and_pass_checks_are_counted_by_site_and_reason(client: Client, services: Services) -> None:
    """A wall, an allow, a valid pass and a refused one move their series; the latency histogram counts them."""
    world = await make_world(services)
    token = await pass_for(services, world.supporter_id)
    before = await scrape(client)
    assert (await decided(client, view("blocked")))["decision"] == "wall"
    assert (await decided(client, view("clear")))["reason"] == "no_adblock"
    assert (await decided(client, view("blocked", **{"pass": token})))["reason"] == "supporter"
    refused = await decided(client, view("blocked", **{"pass": "not.a.pass"}))
    assert refused["pass_error"] == "malformed"
    assert (await decide(client, view("clear", site="nowhere"))).status_code == 404
    after = await scrape(client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    decisions = "supportgate_decisions_total"
    assert moved(decisions, site="news", decision="wall", reason="adblock") == 2
    assert moved(decisions, site="news", decision="allow", reason="no_adblock") == 1
    assert moved(decisions, site="news", decision="allow", reason="supporter") == 1
    assert not any(dict(labels).get("site") == "nowhere" for name, labels in after), "an unknown site is no label"
    assert moved("supportgate_pass_checks_total", outcome="valid") == 1
    assert moved("supportgate_pass_checks_total", outcome="malformed") == 1
    assert moved("supportgate_decide_duration_seconds_count") == 5
    assert moved("supportgate_decide_duration_seconds_bucket", le="+Inf") == 5
    assert moved("supportgate_store_page_view_seconds_count") >= 1, "the valid pass's cutoff was read"


async def test_sign_ins_and_refreshes_are_counted_by_outcome(
    client: Client, services: Services, settings: Settings
) -> None:
    """A code sent, a wrong code, the right one, a bad refresh token and a good one: each outcome counted."""
    await make_world(services)
    before = await scrape(client)
    assert (await client.post("/v1/auth/code/request", json={"email": READER})).status_code == 202
    code = await emailed_code(settings.data_dir / "outbox", READER)
    wrong = "000000" if code != "000000" else "111111"
    refused = await client.post("/v1/auth/code/verify", json={"email": READER, "code": wrong, "device": "t"})
    assert refused.status_code == 400
    signed_in = await client.post("/v1/auth/code/verify", json={"email": READER, "code": code, "device": "t"})
    assert signed_in.status_code == 200, signed_in.text
    bad = await client.post("/v1/auth/refresh", json={"refresh_token": "sgr_nothing"})
    assert bad.status_code == 401
    good = await client.post("/v1/auth/refresh", json={"refresh_token": signed_in.json()["refresh_token"]})
    assert good.status_code == 200, good.text
    after = await scrape(client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("supportgate_signin_total", step="code_request", outcome="ok") == 1
    assert moved("supportgate_signin_total", step="code_verify", outcome="invalid-code") == 1
    assert moved("supportgate_signin_total", step="code_verify", outcome="ok") == 1
    assert moved("supportgate_refreshes_total", outcome="invalid-refresh-token") == 1
    assert moved("supportgate_refreshes_total", outcome="ok") == 1
    assert ("supportgate_mail_queue_depth", frozenset({("state", "queued")})) in after


@pytest.mark.parametrize(
    ("authorization", "status"),
    [
        (None, 401),
        ("Bearer not-the-token", 401),
        ("Bearer sga_0000000000000000000000000000000000000000", 401),
        (f"Basic {METRICS_TOKEN}", 401),
        (f"Bearer {METRICS_TOKEN}", 200),
    ],
)
async def test_metrics_need_the_token_or_an_admin_key(client: Client, authorization: str | None, status: int) -> None:
    """Without the metrics token or an admin key a scrape is refused with a 401 problem."""
    headers = {"Authorization": authorization} if authorization else {}
    answer = await client.get("/metrics", headers=headers)
    assert answer.status_code == status, answer.text
    if status == 401:
        assert answer.headers["content-type"] == "application/problem+json"
        assert "supportgate_" not in answer.text


async def test_an_admin_key_reads_the_metrics(admin: Client) -> None:
    """An admin key, as the admin API takes it, reads the metrics too."""
    answer = await admin.get("/metrics")
    assert answer.status_code == 200, answer.text
    assert "# TYPE supportgate_decisions_total counter" in answer.text


async def test_without_a_metrics_token_only_admin_keys_read(store_url: str, tmp_path: Path) -> None:
    """With no SUPPORTGATE_METRICS_TOKEN set, no bearer token but an admin key is taken."""
    app = create_app(Settings(redis_url=store_url, data_dir=tmp_path / "data"))
    async with AsyncTestClient(app) as client:
        assert (await client.get("/metrics", headers={"Authorization": "Bearer " + "x" * 40})).status_code == 401


def test_a_short_metrics_token_is_refused_by_name() -> None:
    """A guessable metrics token stops the start, naming the variable and not the value."""
    with pytest.raises(Exception, match="SUPPORTGATE_METRICS_TOKEN") as raised:
        Settings.from_env({"SUPPORTGATE_METRICS_TOKEN": "short"})
    assert "short" not in str(raised.value)


async def test_store_errors_are_counted_by_operation_and_kind() -> None:
    """A write to a store that is not there, and page-view calls that fail or run late, are counted by kind."""
    metrics = Metrics()
    store = Store(connect(UNREACHABLE, timeout=0.5), metrics=metrics)

    async def write(pipe: Any) -> None:
        pipe.multi()
        pipe.set("k", "v")

    with pytest.raises(StoreConnectionError):
        await store.atomically(write)
    await store.close()
    hot = HotPath(budget=2.0, probe=lambda: asyncio.sleep(0), metrics=metrics, cooldown=0.01)
    store = Store(connect(UNREACHABLE, timeout=0.5))
    with pytest.raises(StoreUnavailable):
        await hot.run(None, store.ping)
    await store.close()
    await asyncio.sleep(0.05)  # the cooldown ends and the probe answers
    while not hot.available():
        await asyncio.sleep(0.01)
    with pytest.raises(StoreUnavailable):
        await hot.run(asyncio.get_running_loop().time() + 0.01, lambda: asyncio.sleep(1))
    await hot.stop()
    scraped = samples(metrics.exposition().decode())
    assert value(scraped, "supportgate_store_errors_total", operation="write", kind="connection") == 1
    assert value(scraped, "supportgate_store_errors_total", operation="page_view", kind="connection") == 1
    assert value(scraped, "supportgate_store_errors_total", operation="page_view", kind="deadline") == 1


@pytest.mark.parametrize("multiprocess", [False, True])
def test_page_view_timings_scrape_as_prometheus_observes_them(
    multiprocess: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Times kept in plain numbers and flushed show the same buckets and sum as the histogram's own observe."""
    reference = Histogram("supportgate_decide_duration_seconds", "", buckets=PAGE_VIEW_BUCKETS, registry=None)
    if multiprocess:
        monkeypatch.setattr(values, "ValueClass", values.ValueClass)  # use_multiprocess_dir changes it
        monkeypatch.setenv(MULTIPROCESS_ENV, str(tmp_path))
        use_multiprocess_dir(tmp_path / "metrics")
    ours = Metrics()
    for seconds in [0.0004, 0.0005, 0.001, 0.0099, 0.02, 0.5, 5.0, 0.001]:
        ours.decide_time.observe(seconds)
        reference.observe(seconds)
    scraped = samples(ours.exposition().decode())
    shown = [sample for sample in reference.collect()[0].samples if not sample.name.endswith("_created")]
    assert len(shown) == len(PAGE_VIEW_BUCKETS) + 3  # the buckets, +Inf, the count and the sum
    for sample in shown:
        assert value(scraped, sample.name, **sample.labels) == pytest.approx(sample.value), sample
    assert value(scraped, "supportgate_decide_duration_seconds_bucket", le="0.001") == 4


async def test_the_stats_backlog_shows_counts_a_failed_flush_kept(clock: FakeClock) -> None:
    """Counts that could not reach the store stay in the backlog gauge until a flush succeeds."""
    metrics = Metrics()
    store = Store(connect(UNREACHABLE, timeout=0.5))
    stats = StatsBuffer(store, clock, metrics=metrics)
    stats.count("news", "views", "blocked")
    stats.count("news", "views")
    await stats.flush()
    await store.close()
    assert value(samples(metrics.exposition().decode()), "supportgate_stats_backlog") == 3


async def test_the_mail_queue_depth_is_read_from_the_store(services: Services) -> None:
    """A mail no consumer has taken yet is in the queue's depth."""
    assert await services.mail.depth() == (0, 0)
    await services.mail.send(Mail(to="fan@example.com", subject="s", text="t"))
    assert await services.mail.depth() == (1, 0)
    services.metrics.mail_queue(*await services.mail.depth())
    assert value(samples(services.metrics.exposition().decode()), "supportgate_mail_queue_depth", state="queued") == 1


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def access_lines() -> Iterator[list[str]]:
    """The lines the access logger writes during the test."""
    logger = logging.getLogger(ACCESS_LOGGER)
    handler, level = _Lines(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler.lines
    logger.removeHandler(handler)
    logger.setLevel(level)


SECRETS = ("s3cr3t-query", "sgr_refresh-secret", "123456", "fan@example.com", "cookie-secret", "Bearer")


async def test_the_access_log_names_the_route_and_nothing_secret(
    settings: Settings, services: Services, access_lines: list[str], clock: FakeClock
) -> None:
    """One JSON line per request with the route template, status and time; no token, code, email, query or cookie."""
    world = await make_world(services)
    app = create_app(Settings(**{**_fields(settings), "access_log": True}), clock=clock)
    secret_headers = {"Cookie": "session=cookie-secret", "Authorization": "Bearer sgr_refresh-secret"}
    async with AsyncTestClient(app) as client:
        assert (
            await client.get("/v1/sites/news/gate.js?token=s3cr3t-query", headers=secret_headers)
        ).status_code == 200
        verify = {"email": "fan@example.com", "code": "123456", "device": "t"}
        assert (await client.post("/v1/auth/code/verify?c=s3cr3t-query", json=verify)).status_code == 400
        assert (await client.get("/no/such/page?email=fan@example.com")).status_code == 404
        answer = await decide(client, view("clear"), headers={"X-Request-ID": "req-42", **world.site_key()})
        assert answer.status_code == 200
        await client.get("/healthz", headers={"X-Request-ID": "no spaces\nor newlines"})
        assert (await client.delete("/healthz")).status_code == 405
    lines = access_lines
    assert len(lines) == 6, lines
    entries = [json.loads(line) for line in lines]
    for line, entry in zip(lines, entries, strict=True):
        assert not any(secret in line for secret in SECRETS), line
        assert entry["duration_ms"] >= 0
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["time"])
    served, verified, missing, decided_view, health, not_allowed = entries
    assert served | {"time": 0, "duration_ms": 0} == {
        "time": 0,
        "method": "GET",
        "route": "/v1/sites/{site}/gate.js",
        "status": 200,
        "duration_ms": 0,
        "site": "news",
    }
    assert (verified["route"], verified["status"], "site" in verified) == ("/v1/auth/code/verify", 400, False)
    assert (missing["route"], missing["status"]) == (None, 404)
    assert (decided_view["route"], decided_view["site"], decided_view["request_id"]) == ("/v1/decide", "news", "req-42")
    assert "request_id" not in health
    assert (not_allowed["route"], not_allowed["status"]) == (None, 405)


async def test_the_access_log_is_off_unless_asked(client: Client, access_lines: list[str]) -> None:
    """The default settings (and so the tests) write no access lines."""
    assert (await client.get("/healthz")).status_code == 200
    assert access_lines == []


def test_access_log_setting_takes_on_or_off_only() -> None:
    """SUPPORTGATE_ACCESS_LOG is on or off; anything else names the variable."""
    assert Settings.from_env({"SUPPORTGATE_ACCESS_LOG": "ON"}).access_log is True
    assert Settings.from_env({}).access_log is False
    with pytest.raises(Exception, match="SUPPORTGATE_ACCESS_LOG"):
        Settings.from_env({"SUPPORTGATE_ACCESS_LOG": "yes"})


async def _scraped_decisions(base: str) -> tuple[float, float]:
    """The decisions and decide times a scrape on a new connection counts."""
    async with httpx.AsyncClient(base_url=base, timeout=5) as http:
        scraped = await http.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert scraped.status_code == 200, scraped.text
    counted = samples(scraped.text)
    decisions = value(counted, "supportgate_decisions_total", site="news", decision="allow", reason="no_adblock")
    return decisions, value(counted, "supportgate_decide_duration_seconds_count")


async def _decide_on_a_new_connection(base: str) -> int:
    async with httpx.AsyncClient(base_url=base, timeout=5) as http:
        reply = await http.post("/v1/decide", json=view("clear"), headers={"Origin": NEWS_ORIGIN})
        return reply.status_code


def _fields(settings: Settings) -> dict[str, Any]:
    return {name: getattr(settings, name) for name in Settings.__dataclass_fields__}


@pytest.mark.slow
# This test once failed in CI because a worker's last access lines were lost at the stop (fixed: the
# app's shutdown flushes them, see test_serve_writes_every_access_line_when_stopped_at_once). Twice,
# in runs of several test files just after another test run, `serve` also took over 15 s to stop
# here and was killed (-9); that cause is not found (like every test, a failure runs it a second time).
async def test_two_workers_sum_their_counts(services: Services, settings: Settings, tmp_path: Path) -> None:
    """`serve --workers 2`: N decides, whichever worker took them, scrape as exactly N from either worker."""
    await make_world(services)
    port = free_port()
    log = tmp_path / "serve.log"
    env = {
        **os.environ,
        "SUPPORTGATE_REDIS_URL": str(settings.redis_url),
        "SUPPORTGATE_DATA_DIR": str(settings.data_dir),
        "SUPPORTGATE_METRICS_TOKEN": METRICS_TOKEN,
        "SUPPORTGATE_EXTENSION_SOURCE": str(tmp_path / "no-extension-here"),
    }
    server = start_supportgate("serve", "--port", str(port), "--workers", "2", env=env, log=log)
    base = f"http://127.0.0.1:{port}"
    sent = 0
    try:
        async with httpx.AsyncClient(base_url=base, timeout=5) as http:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    if (await http.get("/readyz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    await asyncio.sleep(0.2)
                assert server.poll() is None, log.read_text()
            # New connections, a few at once, until both workers have taken some (the kernel deals them out).
            sent = 0
            counted_by = (settings.data_dir / "metrics").glob
            while len(list(counted_by("counter_*.db"))) < 2 and sent < 600:
                replies = await asyncio.gather(*(_decide_on_a_new_connection(base) for _ in range(6)))
                assert replies == [200] * 6
                sent += 6
            assert len(list(counted_by("counter_*.db"))) == 2, "both workers took decides"
            # Each worker adds its page-view counts to the shared files every second.
            deadline = time.monotonic() + 10
            while await _scraped_decisions(base) != (sent, sent) and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            for _ in range(6):  # new connections: whichever worker answers, the same sums
                assert await _scraped_decisions(base) == (sent, sent)
    finally:
        assert stop(server, timeout=15) == 0
    decide_lines = [
        json.loads(line) for line in log.read_text().splitlines() if line.startswith("{") and "/v1/decide" in line
    ]
    assert len(decide_lines) == sent, "serve writes the access log to stdout by default"
    assert {line["site"] for line in decide_lines} == {"news"}


async def test_the_document_describes_the_scrape(client: Client) -> None:
    """GET /metrics is in the OpenAPI document: the text format, its two credentials, and its 401 problem."""
    operation = (await client.get("/schema/openapi.json")).json()["paths"]["/metrics"]["get"]
    assert list(operation["responses"]["200"]["content"]) == ["text/plain; version=0.0.4"]
    assert operation["security"] == [{"AdminKey": []}, {"MetricsToken": []}]
    assert list(operation["responses"]["401"]["content"]) == ["application/problem+json"]


@pytest.mark.parametrize("workers", [1, 2])
async def test_serve_writes_every_access_line_when_stopped_at_once(
    settings: Settings, tmp_path: Path, workers: int
) -> None:
    """Lines queued in the last half second before a stop are written too: the app's shutdown flushes them."""
    port = free_port()
    log = tmp_path / "serve.log"
    env = {
        **os.environ,
        "SUPPORTGATE_REDIS_URL": str(settings.redis_url),
        "SUPPORTGATE_DATA_DIR": str(settings.data_dir),
        "SUPPORTGATE_EXTENSION_SOURCE": str(tmp_path / "no-extension-here"),
    }
    settings.ensure_data_dir()
    server = start_supportgate("serve", "--port", str(port), "--workers", str(workers), env=env, log=log)
    base = f"http://127.0.0.1:{port}"
    started = [f"Started worker-{n}" for n in range(1, workers + 1)]
    try:
        # Every worker started, not only the one that answers first: a stop while a worker is still
        # starting was seen to hang Granian's shutdown, which is not what this test is about.
        deadline = time.monotonic() + 30
        while not all(line in log.read_text() for line in started) and time.monotonic() < deadline:
            assert server.poll() is None, log.read_text()
            await asyncio.sleep(0.1)
        for _ in range(4):  # a connection each, so that every worker may take some
            async with httpx.AsyncClient(base_url=base, timeout=5) as http:
                replies = [(await http.get("/healthz")).status_code for _ in range(5)]
            assert replies == [200] * 5
    finally:
        assert stop(server, timeout=15) == 0  # at once: well within the half second between flushes
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert [line["route"] for line in lines].count("/healthz") == 20, log.read_text()
