"""The welcome mail of a new supporter, delivered through the mail queue to a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from supportgate.app import create_app
from supportgate.catalog.schemas import SupporterIn, TierIn
from supportgate.mail import mailer_for
from supportgate.mail_queue import MailQueue
from supportgate.services import Services
from supportgate.settings import Settings
from supportgate.store import names
from supportgate.tokens.sealing import MasterKey
from tests.conftest import FakeClock
from tests.smtp_helpers import Recorder, StartServer

Client = AsyncTestClient[Litestar]
GRANT: dict[str, Any] = {"email": "New.Fan@Example.com", "tier": "gold"}
ADDRESS = "new.fan@example.com"


@pytest.fixture
def smtp(smtp_server: StartServer) -> tuple[Recorder, int]:
    return smtp_server()


@pytest.fixture
async def mailing_admin(
    settings: Settings, clock: FakeClock, smtp: tuple[Recorder, int], services: Services
) -> AsyncIterator[Client]:
    """An admin client of an app that sends its mail to the SMTP server, with a tier and two sites, one unlocked."""
    _, port = smtp
    mailing = Settings(
        redis_url=settings.redis_url,
        data_dir=settings.data_dir,
        smtp_url=f"smtp://127.0.0.1:{port}",
        public_url="https://gate.example",
    )
    async with AsyncTestClient(create_app(mailing, clock=clock)) as client:
        key = await services.api_keys.create("admin", name="tests", actor="cli")
        client.headers["Authorization"] = f"Bearer {key.key}"
        tier = {"id": "gold", "name": "Gold Circle", "entitlements": ["adblock_ok"], "max_devices": 3}
        assert (await client.post("/v1/admin/tiers", json=tier)).status_code == 201
        news = {"id": "news", "name": "News Example", "origins": ["https://news.example"]}
        blog = {**news, "id": "blog", "name": "Members Blog", "policy": {"unlock_entitlement": "ad_free"}}
        for site in (news, blog):
            assert (await client.post("/v1/admin/sites", json=site)).status_code == 201
        yield client


async def until(condition: Any, timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_a_new_supporter_gets_the_welcome_mail(
    mailing_admin: Client, smtp: tuple[Recorder, int], caplog: pytest.LogCaptureFixture
) -> None:
    """Text and HTML: the tier, the sites it unlocks (not the others), the install page, how to sign in."""
    recorder, _ = smtp
    caplog.set_level(logging.DEBUG)
    answer = await mailing_admin.post("/v1/admin/supporters", json=GRANT)
    assert answer.status_code == 201, answer.text
    await until(lambda: len(recorder.delivered) == 1)
    delivered = recorder.delivered[0]
    assert delivered.rcpt_tos == [ADDRESS]
    message = delivered.message
    assert message["Subject"] == "Your support is active: how to use it"
    for kind in ("plain", "html"):
        part = message.get_body(preferencelist=(kind,))
        assert part is not None
        content = str(part.get_content())
        assert "Gold Circle" in content, kind
        assert "News Example" in content, kind
        assert "Members Blog" not in content, kind
        assert "https://gate.example/extension" in content, kind
        assert ADDRESS in content, kind
        assert "code" in content, kind
    html = message.get_body(preferencelist=("html",))
    assert html is not None
    assert '<a href="https://gate.example/extension">' in str(html.get_content())
    ours = [record.getMessage().lower() for record in caplog.records if record.name.startswith("supportgate")]
    assert not [line for line in ours if ADDRESS in line]


async def test_notify_false_sends_nothing(mailing_admin: Client, smtp: tuple[Recorder, int]) -> None:
    """With notify false, a grant sends no mail; a refused grant sends none either."""
    recorder, _ = smtp
    assert (await mailing_admin.post("/v1/admin/supporters", json={**GRANT, "notify": False})).status_code == 201
    past = {"email": "late@example.com", "tier": "gold", "expires_at": "2020-01-01T00:00:00Z"}
    assert (await mailing_admin.post("/v1/admin/supporters", json=past)).status_code == 400
    assert (await mailing_admin.post("/v1/admin/supporters", json={**GRANT, "notify": "no"})).status_code == 400
    other = {"email": "x@example.com", "tier": "gold", "notify": True}
    assert (await mailing_admin.post("/v1/admin/supporters", json=other)).status_code == 201
    await until(lambda: len(recorder.delivered) == 1)
    await asyncio.sleep(0.5)
    assert [d.rcpt_tos for d in recorder.delivered] == [["x@example.com"]]


async def test_a_full_mail_queue_does_not_stop_the_grant(
    services: Services, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """With the queue full, the grant is stored and audited anyway; the log names the supporter by id, not address."""
    full = MailQueue(services.store, mailer_for(settings), limit=1)
    granting = Services.build(services.store, settings, full, MasterKey(settings.load_master_key()))
    tier = TierIn(id="gold", name="Gold", entitlements=["adblock_ok"], max_devices=1)
    await granting.tiers.create(tier, actor="t")
    await granting.supporters.create(SupporterIn(email="first@example.com", tier="gold"), actor="t")
    assert await services.store.redis.xlen(names.mail_queue()) == 1
    caplog.set_level(logging.WARNING, logger="supportgate.welcome")
    made = await granting.supporters.create(SupporterIn(email="second@example.com", tier="gold"), actor="t")
    assert (await granting.supporters.get(made.id)).status == "active"
    assert await services.store.redis.xlen(names.mail_queue()) == 1
    assert made.id in caplog.text
    assert "second@example.com" not in caplog.text
    audited = await granting.audit.page(limit=10, cursor=None, target=f"supporter:{made.id}")
    assert [entry.action for entry in audited.items] == ["supporter.create"]
