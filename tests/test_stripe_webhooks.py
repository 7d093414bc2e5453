"""Stripe webhooks: events signed as Stripe signs them, through the real route and a real store."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from supportgate.app import create_app
from supportgate.errors import SettingsError
from supportgate.services import Services
from supportgate.settings import Settings
from supportgate.store import names
from tests.cluster_helpers import every_key, sync_client
from tests.conftest import EVERY_STORE, FakeClock
from tests.smtp_helpers import Recorder, StartServer

Client = AsyncTestClient[Litestar]
SECRET = "whsec_5f1c0ffee0ddba11deadbeefcafe1234"
GOLD_PRICE = "price_1QgoldMonthly"
SILVER_PRICE = "price_1QsilverMonthly"
ADDRESS = "fan@example.com"
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
PERIOD_END = NOW + timedelta(days=30)
TIERS: list[dict[str, Any]] = [
    {"id": "gold", "name": "Gold", "entitlements": ["adblock_ok"], "max_devices": 3, "stripe_price_ids": [GOLD_PRICE]},
    {
        "id": "silver",
        "name": "Silver",
        "entitlements": ["adblock_ok"],
        "max_devices": 1,
        "stripe_price_ids": [SILVER_PRICE],
    },
]


def signature(payload: bytes, *, secret: str = SECRET, at: int | None = None) -> str:
    """The Stripe-Signature header as Stripe computes it: HMAC-SHA256 of "<t>.<payload>" under the secret."""
    timestamp = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


async def deliver(client: Client, event: dict[str, Any], **signing: Any) -> httpx.Response:
    """POST an event the way Stripe does: its JSON, signed."""
    payload = json.dumps(event, indent=2).encode()
    return await client.post(
        "/v1/webhooks/stripe",
        content=payload,
        headers={"Content-Type": "application/json; charset=utf-8", "Stripe-Signature": signature(payload, **signing)},
    )


def zulu(moment: datetime) -> str:
    """A time as the API writes it."""
    return moment.isoformat().replace("+00:00", "Z")


def _ts(moment: datetime) -> int:
    return int(moment.timestamp())


def envelope(event_id: str, kind: str, obj: dict[str, Any], *, created: int) -> dict[str, Any]:
    """An event as Stripe sends it (snapshot payload)."""
    return {
        "id": event_id,
        "object": "event",
        "api_version": "2025-03-31.basil",
        "created": created,
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": kind,
    }


def invoice_paid(
    event_id: str,
    *,
    price: str = GOLD_PRICE,
    period_end: datetime = PERIOD_END,
    subscription: str = "sub_1Qfan",
    created: int = 1_764_000_000,
    basil: bool = True,
    kind: str = "invoice.paid",
    email: str | None = ADDRESS,
) -> dict[str, Any]:
    """An invoice.paid event: basil puts the price in pricing.price_details, older versions in price.id."""
    period = {"start": _ts(period_end - timedelta(days=30)), "end": _ts(period_end)}
    line: dict[str, Any] = {"id": "il_1Q", "object": "line_item", "amount": 500, "currency": "eur", "period": period}
    invoice: dict[str, Any] = {
        "id": "in_1Q",
        "object": "invoice",
        "customer": "cus_Fan",
        "customer_email": email,
        "status": "paid",
        "amount_paid": 500,
        "lines": {"object": "list", "data": [line], "has_more": False},
    }
    if basil:
        line["pricing"] = {"type": "price_details", "price_details": {"price": price, "product": "prod_Q"}}
        line["parent"] = {
            "type": "subscription_item_details",
            "subscription_item_details": {
                "subscription": subscription,
                "subscription_item": "si_Q",
                "proration": False,
            },
        }
        invoice["parent"] = {"type": "subscription_details", "subscription_details": {"subscription": subscription}}
    else:
        line["price"] = {"id": price, "object": "price", "recurring": {"interval": "month"}}
        line["subscription"] = subscription
        invoice["subscription"] = subscription
    return envelope(event_id, kind, invoice, created=created)


def checkout_session(
    session_id: str, mode: str, *, customer: str | None, details: dict[str, str], subscription: str | None, **more: Any
) -> dict[str, Any]:
    """A paid ``checkout.session`` object in ``mode`` (``payment`` or ``subscription``)."""
    return {
        "id": session_id,
        "object": "checkout.session",
        "mode": mode,
        "payment_status": "paid",
        "customer": customer,
        "customer_details": details,
        "subscription": subscription,
        **more,
    }


def subscription_event(
    event_id: str,
    kind: str,
    *,
    price: str = GOLD_PRICE,
    status: str = "active",
    period_end: datetime = PERIOD_END,
    created: int = 1_764_000_100,
    basil: bool = True,
) -> dict[str, Any]:
    """A customer.subscription.* event: basil keeps the period on the items, older versions on the subscription."""
    item: dict[str, Any] = {"id": "si_Q", "object": "subscription_item", "price": {"id": price, "object": "price"}}
    subscription: dict[str, Any] = {
        "id": "sub_1Qfan",
        "object": "subscription",
        "customer": "cus_Fan",
        "status": status,
        "items": {"object": "list", "data": [item]},
    }
    if basil:
        item["current_period_end"] = _ts(period_end)
    else:
        subscription["current_period_end"] = _ts(period_end)
    return envelope(event_id, kind, subscription, created=created)


@pytest.fixture
async def paying(settings: Settings, clock: FakeClock, services: Services) -> AsyncIterator[Client]:
    """An admin client of an app with a Stripe signing secret, and two tiers mapped to prices."""
    signed = Settings(redis_url=settings.redis_url, data_dir=settings.data_dir, stripe_webhook_secret=SECRET)
    async with AsyncTestClient(create_app(signed, clock=clock)) as client:
        key = await services.api_keys.create("admin", name="tests", actor="cli")
        client.headers["Authorization"] = f"Bearer {key.key}"
        for tier in TIERS:
            assert (await client.post("/v1/admin/tiers", json=tier)).status_code == 201
        yield client


async def store_state(services: Services) -> dict[bytes, bytes | None]:
    """Every catalog key with its serialised value: what "nothing written" compares."""
    redis = services.store.redis
    return {key: await redis.dump(key) for key in sorted(await redis.keys("sg:{dir}:*"))}


async def supporter(client: Client) -> dict[str, Any]:
    found = (await client.get("/v1/admin/supporters", params={"q": "fan@"})).json()["items"]
    assert len(found) == 1, found
    return dict(found[0])


async def test_no_secret_configured_is_not_found(client: Client) -> None:
    """Without SUPPORTGATE_STRIPE_WEBHOOK_SECRET the route answers 404 problem+json, as an unknown path does."""
    payload = json.dumps(invoice_paid("evt_none")).encode()
    answer = await client.post(
        "/v1/webhooks/stripe",
        content=payload,
        headers={"Content-Type": "application/json", "Stripe-Signature": signature(payload)},
    )
    unknown = await client.post("/v1/webhooks/paypal", content=payload, headers={"Content-Type": "application/json"})
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["detail"] == unknown.json()["detail"]


@pytest.mark.parametrize(
    ("signing", "named"),
    [
        ({"secret": "whsec_someone_elses_secret"}, "no v1 signature matches"),
        ({"at": int(time.time()) - 301}, "more than 300 s old"),
    ],
    ids=["wrong-secret", "stale"],
)
async def test_a_signature_that_does_not_verify_is_refused(
    paying: Client, services: Services, signing: dict[str, Any], named: str
) -> None:
    """A signature under another secret, or older than 300 s, is a 400 naming why, and nothing is written."""
    before = await store_state(services)
    answer = await deliver(paying, invoice_paid("evt_bad"), **signing)
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"] == "urn:supportgate:problem:invalid-stripe-signature"
    assert named in answer.json()["detail"]
    assert await store_state(services) == before


async def test_a_changed_body_or_a_missing_header_is_refused(paying: Client, services: Services) -> None:
    """A body changed after signing, or no Stripe-Signature at all, is a 400 naming the header; nothing written."""
    before = await store_state(services)
    payload = json.dumps(invoice_paid("evt_tampered")).encode()
    header = signature(payload)
    tampered = payload.replace(b"500", b"900")
    changed = await paying.post(
        "/v1/webhooks/stripe",
        content=tampered,
        headers={"Content-Type": "application/json", "Stripe-Signature": header},
    )
    assert changed.status_code == 400
    assert "no v1 signature matches" in changed.json()["detail"]
    missing = await paying.post("/v1/webhooks/stripe", content=payload, headers={"Content-Type": "application/json"})
    assert missing.status_code == 400
    assert missing.json()["detail"].startswith("Stripe-Signature: the Stripe-Signature header is missing")
    garbled = await paying.post(
        "/v1/webhooks/stripe",
        content=payload,
        headers={"Content-Type": "application/json", "Stripe-Signature": "v1=abc"},
    )
    assert garbled.status_code == 400
    assert "t=<unix time>,v1=<hex signature>" in garbled.json()["detail"]
    assert await store_state(services) == before


async def test_a_body_over_the_limit_is_refused(paying: Client, services: Services) -> None:
    """A body over 256 KiB is a 413 problem, whatever its signature."""
    event = invoice_paid("evt_huge")
    event["data"]["object"]["description"] = "x" * (256 * 1024)
    before = await store_state(services)
    answer = await deliver(paying, event)
    assert answer.status_code == 413
    assert answer.headers["content-type"] == "application/problem+json"
    assert await store_state(services) == before


@pytest.mark.parametrize("basil", [True, False], ids=["pricing.price_details", "price.id"])
async def test_a_paid_invoice_grants_a_new_supporter(paying: Client, basil: bool) -> None:
    """invoice.paid from an unknown address creates the supporter on the price's tier until period end plus grace."""
    answer = await deliver(paying, invoice_paid("evt_grant", basil=basil))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"received": True, "handled": True, "detail": "Granted tier 'gold'."}
    granted = await supporter(paying)
    assert granted["tier"] == "gold"
    assert granted["status"] == "active"
    assert granted["expires_at"] == zulu(PERIOD_END + timedelta(days=3))
    audit = (await paying.get("/v1/admin/audit", params={"actor": "stripe"})).json()["items"]
    assert [entry["action"] for entry in audit] == ["supporter.create"]
    assert audit[0]["target"] == f"supporter:{granted['id']}"
    assert audit[0]["after"]["stripe_event"] == {"id": "evt_grant", "type": "invoice.paid"}


async def test_a_redelivered_event_changes_nothing(paying: Client, services: Services) -> None:
    """The same event delivered twice is applied once: the second answer is 200 and nothing is written."""
    first = await deliver(paying, invoice_paid("evt_twice", kind="invoice.payment_succeeded"))
    assert first.json()["handled"] is True
    before = await store_state(services)
    again = await deliver(paying, invoice_paid("evt_twice", kind="invoice.payment_succeeded"))
    assert again.status_code == 200
    assert again.json()["handled"] is False
    assert "applied already" in again.json()["detail"]
    assert await store_state(services) == before


async def test_a_later_invoice_extends(paying: Client) -> None:
    """The next period's invoice moves the end to that period's end plus grace; the supporter stays the same."""
    await deliver(paying, invoice_paid("evt_first"))
    granted = await supporter(paying)
    later = PERIOD_END + timedelta(days=31)
    answer = await deliver(paying, invoice_paid("evt_second", period_end=later, created=1_766_600_000, basil=False))
    assert answer.json()["handled"] is True
    extended = await supporter(paying)
    assert extended["id"] == granted["id"]
    assert extended["expires_at"] == zulu(later + timedelta(days=3))


@pytest.mark.parametrize("basil", [True, False], ids=["items.current_period_end", "current_period_end"])
async def test_a_subscription_moved_to_another_price_moves_the_tier(paying: Client, basil: bool) -> None:
    """customer.subscription.updated to a price of another tier moves the supporter there, found by subscription."""
    await deliver(paying, invoice_paid("evt_paid"))
    answer = await deliver(
        paying, subscription_event("evt_moved", "customer.subscription.updated", price=SILVER_PRICE, basil=basil)
    )
    assert answer.json()["handled"] is True, answer.json()
    moved = await supporter(paying)
    assert moved["tier"] == "silver"
    assert moved["expires_at"] == zulu(PERIOD_END + timedelta(days=3))
    tiers = {tier["id"]: tier["supporters"] for tier in (await paying.get("/v1/admin/tiers")).json()["items"]}
    assert tiers == {"gold": 0, "silver": 1}


@pytest.mark.parametrize(
    ("kind", "status"),
    [("customer.subscription.deleted", "canceled"), ("customer.subscription.updated", "unpaid")],
    ids=["deleted", "unpaid"],
)
async def test_an_ended_subscription_ends_support_at_the_period_end(paying: Client, kind: str, status: str) -> None:
    """A deleted (or unpaid) subscription sets expires_at to the period's end, no grace; support lasts until then."""
    await deliver(paying, invoice_paid("evt_paid"))
    answer = await deliver(paying, subscription_event("evt_end", kind, status=status, basil=False))
    assert answer.json()["handled"] is True
    ended = await supporter(paying)
    assert ended["expires_at"] == zulu(PERIOD_END)
    assert ended["status"] == "active"


async def test_an_older_event_does_not_undo_a_newer_one(paying: Client, services: Services) -> None:
    """An invoice made before the subscription's deletion, arriving after it, changes nothing."""
    await deliver(paying, invoice_paid("evt_paid", created=1_764_000_000))
    await deliver(
        paying,
        subscription_event("evt_deleted", "customer.subscription.deleted", status="canceled", created=1_764_000_500),
    )
    before = await store_state(services)
    late = await deliver(
        paying, invoice_paid("evt_late", period_end=PERIOD_END + timedelta(days=31), created=1_764_000_400)
    )
    assert late.status_code == 200
    assert late.json()["handled"] is False
    assert "newer event" in late.json()["detail"]
    assert await store_state(services) == before
    assert (await supporter(paying))["expires_at"] == zulu(PERIOD_END)


async def test_an_unknown_price_or_event_type_writes_nothing(paying: Client, services: Services) -> None:
    """A price no tier has, and an event type not acted on, are answered 200 handled false, with nothing written."""
    before = await store_state(services)
    unknown_price = await deliver(paying, invoice_paid("evt_other_price", price="price_1Qsomething_else"))
    assert unknown_price.status_code == 200
    assert unknown_price.json()["handled"] is False
    other_type = await deliver(paying, envelope("evt_refund", "charge.refunded", {"id": "ch_1"}, created=1_764_000_000))
    assert other_type.status_code == 200
    assert other_type.json()["received"] is True
    assert other_type.json()["handled"] is False
    assert await store_state(services) == before


async def test_a_one_off_checkout_grants_the_set_days(paying: Client, clock: FakeClock) -> None:
    """checkout.session.completed in payment mode grants the tier of metadata.price_id for 30 days, then 30 more."""
    session = checkout_session(
        "cs_test_a1",
        "payment",
        customer=None,
        details={"email": "Fan@Example.com", "name": "A Fan"},
        subscription=None,
        status="complete",
        metadata={"price_id": SILVER_PRICE},
    )
    first = await deliver(paying, envelope("evt_cs1", "checkout.session.completed", session, created=1_764_000_000))
    assert first.json()["handled"] is True
    granted = await supporter(paying)
    assert granted["tier"] == "silver"
    assert granted["expires_at"] == zulu(clock.now + timedelta(days=30))
    again = await deliver(paying, envelope("evt_cs2", "checkout.session.completed", session, created=1_764_000_100))
    assert again.json()["handled"] is True
    assert (await supporter(paying))["expires_at"] == zulu(clock.now + timedelta(days=60))


async def test_a_subscription_checkout_links_the_subscription(paying: Client, services: Services) -> None:
    """A paid subscription checkout grants nothing before its invoice, then links a later subscription event."""
    session = checkout_session(
        "cs_test_b1", "subscription", customer="cus_Other", details={"email": ADDRESS}, subscription="sub_1Qother"
    )
    before = await store_state(services)
    early = await deliver(
        paying, envelope("evt_cs_early", "checkout.session.completed", session, created=1_764_000_000)
    )
    assert early.json()["handled"] is False
    assert await store_state(services) == before
    await deliver(paying, invoice_paid("evt_paid", subscription="sub_1Qfan"))
    linked = await deliver(
        paying, envelope("evt_cs_late", "checkout.session.completed", session, created=1_764_000_001)
    )
    assert linked.json()["handled"] is True
    moved = subscription_event("evt_moved", "customer.subscription.updated", price=SILVER_PRICE)
    moved["data"]["object"].update(id="sub_1Qother", customer="cus_Other")
    assert (await deliver(paying, moved)).json()["handled"] is True
    assert (await supporter(paying))["tier"] == "silver"


async def test_a_price_grants_one_tier_at_most(paying: Client) -> None:
    """A second tier claiming a price is a 409 naming the price and the tier; a released price can be claimed."""
    bronze = {"id": "bronze", "name": "Bronze", "entitlements": ["adblock_ok"], "max_devices": 1}
    taken = await paying.post("/v1/admin/tiers", json={**bronze, "stripe_price_ids": ["price_1Qnew", GOLD_PRICE]})
    assert taken.status_code == 409
    assert taken.headers["content-type"] == "application/problem+json"
    assert taken.json()["price"] == GOLD_PRICE
    assert taken.json()["tier"] == "gold"
    assert (await paying.get("/v1/admin/tiers/bronze")).status_code == 404
    assert (await paying.post("/v1/admin/tiers", json=bronze)).status_code == 201
    patched = await paying.patch("/v1/admin/tiers/bronze", json={"stripe_price_ids": [SILVER_PRICE]})
    assert patched.status_code == 409
    assert (patched.json()["price"], patched.json()["tier"]) == (SILVER_PRICE, "silver")
    released = await paying.patch("/v1/admin/tiers/silver", json={"stripe_price_ids": []})
    assert released.json()["stripe_price_ids"] == []
    claimed = await paying.patch("/v1/admin/tiers/bronze", json={"stripe_price_ids": [SILVER_PRICE]})
    assert claimed.status_code == 200
    assert (await paying.get("/v1/admin/tiers/bronze")).json()["stripe_price_ids"] == [SILVER_PRICE]
    assert (await deliver(paying, invoice_paid("evt_bronze", price=SILVER_PRICE))).json()["handled"] is True
    assert (await supporter(paying))["tier"] == "bronze"


async def test_a_deleted_tier_frees_its_prices(paying: Client) -> None:
    """Deleting a tier releases its prices: an event for one then grants nothing, and another tier may take it."""
    assert (await paying.delete("/v1/admin/tiers/silver")).status_code == 204
    unknown = await deliver(paying, invoice_paid("evt_silver", price=SILVER_PRICE))
    assert unknown.json()["handled"] is False
    assert (await paying.patch("/v1/admin/tiers/gold", json={"stripe_price_ids": [SILVER_PRICE]})).status_code == 200


@pytest.fixture
def smtp(smtp_server: StartServer) -> tuple[Recorder, int]:
    return smtp_server()


async def test_a_new_supporter_from_stripe_gets_the_welcome_mail(
    settings: Settings, clock: FakeClock, services: Services, smtp: tuple[Recorder, int]
) -> None:
    """A supporter created by a paid invoice gets the welcome mail, through a real SMTP server; an extension none."""
    recorder, port = smtp
    mailing = Settings(
        redis_url=settings.redis_url,
        data_dir=settings.data_dir,
        smtp_url=f"smtp://127.0.0.1:{port}",
        stripe_webhook_secret=SECRET,
    )
    async with AsyncTestClient(create_app(mailing, clock=clock)) as client:
        key = await services.api_keys.create("admin", name="tests", actor="cli")
        client.headers["Authorization"] = f"Bearer {key.key}"
        assert (await client.post("/v1/admin/tiers", json=TIERS[0])).status_code == 201
        assert (await deliver(client, invoice_paid("evt_welcome"))).json()["handled"] is True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while not recorder.delivered:
            assert loop.time() < deadline, "no welcome mail"
            await asyncio.sleep(0.02)
        assert recorder.delivered[0].rcpt_tos == [ADDRESS]
        assert recorder.delivered[0].message["Subject"] == "Your support is active: how to use it"
        later = invoice_paid("evt_renewal", period_end=PERIOD_END + timedelta(days=31), created=1_766_600_000)
        assert (await deliver(client, later)).json()["handled"] is True
        await asyncio.sleep(0.5)
        assert len(recorder.delivered) == 1


async def test_the_console_tier_form_maps_prices(client: Client, services: Services) -> None:
    """The console's tier forms set and show stripe_price_ids; a price another tier has is shown as the 409."""
    from tests.test_console import sign_in  # noqa: PLC0415 - the console's sign-in, as a browser does it

    key = (await services.api_keys.create("admin", name="console", actor="cli")).key
    csrf = await sign_in(client, key)
    fields = {"csrf": csrf, "name": "Gold", "entitlements": "adblock_ok", "max_devices": "2"}
    made = await client.post(
        "/admin/tiers", data={**fields, "id": "gold", "stripe_price_ids": f"{GOLD_PRICE}, price_1Qb"}
    )
    assert made.status_code == 200, made.text
    assert (await services.tiers.get("gold")).stripe_price_ids == [GOLD_PRICE, "price_1Qb"]
    assert f"{GOLD_PRICE}, price_1Qb" in (await client.get("/admin/tiers")).text
    clash = await client.post("/admin/tiers", data={**fields, "id": "other", "stripe_price_ids": "price_1Qb"})
    assert clash.status_code == 409
    assert "price_1Qb" in clash.text
    assert not await services.tiers.exists("other")
    edited = await client.post("/admin/tiers/gold", data={**fields, "stripe_price_ids": SILVER_PRICE})
    assert edited.status_code == 200
    assert (await services.tiers.get("gold")).stripe_price_ids == [SILVER_PRICE]
    assert await services.store.redis.get(names.stripe_price(GOLD_PRICE)) is None
    assert await services.store.redis.get(names.stripe_price(SILVER_PRICE)) == b"gold"


def test_the_stripe_settings_are_read_and_checked() -> None:
    """The secret and day counts come from the environment; a secret not from Stripe or a bad count stops the start."""
    env = {"SUPPORTGATE_STRIPE_WEBHOOK_SECRET": SECRET, "SUPPORTGATE_STRIPE_GRACE_DAYS": "0"}
    read = Settings.from_env(env)
    assert (read.stripe_webhook_secret, read.stripe_grace, read.stripe_one_off) == (
        SECRET,
        timedelta(0),
        timedelta(days=30),
    )
    assert SECRET not in repr(read)
    for name, value, said in [
        ("STRIPE_WEBHOOK_SECRET", "sk_live_oops", "whsec_"),
        ("STRIPE_GRACE_DAYS", "-1", "STRIPE_GRACE_DAYS"),
        ("STRIPE_ONE_OFF_DAYS", "0", "STRIPE_ONE_OFF_DAYS"),
        ("STRIPE_ONE_OFF_DAYS", "99999", "STRIPE_ONE_OFF_DAYS"),
    ]:
        with pytest.raises(SettingsError, match=said):
            Settings.from_env({f"SUPPORTGATE_{name}": value})


async def test_racing_deliveries_apply_once(paying: Client) -> None:
    """The same new-supporter event delivered several times at once creates one supporter and one audit entry."""
    answers = await asyncio.gather(*(deliver(paying, invoice_paid("evt_race")) for _ in range(4)))
    assert [answer.status_code for answer in answers] == [200] * 4
    assert sorted(answer.json()["handled"] for answer in answers) == [False, False, False, True]
    granted = await supporter(paying)
    audit = (await paying.get("/v1/admin/audit", params={"actor": "stripe"})).json()["items"]
    assert [(entry["action"], entry["target"]) for entry in audit] == [
        ("supporter.create", f"supporter:{granted['id']}")
    ]


async def test_an_event_that_changed_nothing_does_not_make_older_ones_stale(paying: Client) -> None:
    """A checkout that only links a subscription, made after its invoice but delivered first, lets the invoice apply."""
    await deliver(paying, invoice_paid("evt_first", subscription="sub_1Qold"))
    session = checkout_session(
        "cs_test_c1", "subscription", customer="cus_Fan", details={"email": ADDRESS}, subscription="sub_1Qfan"
    )
    linked = await deliver(paying, envelope("evt_cs", "checkout.session.completed", session, created=1_766_600_010))
    assert linked.json()["handled"] is True
    later = PERIOD_END + timedelta(days=31)
    invoice = invoice_paid("evt_new_sub", period_end=later, subscription="sub_1Qfan", created=1_766_600_000)
    assert (await deliver(paying, invoice)).json()["handled"] is True
    assert (await supporter(paying))["expires_at"] == zulu(later + timedelta(days=3))


async def test_a_proration_invoice_grants_the_new_price(paying: Client) -> None:
    """An invoice after a plan change credits the old price (a negative line) and charges the new: the new counts."""
    await deliver(paying, invoice_paid("evt_paid"))
    prorated = invoice_paid("evt_prorated", price=SILVER_PRICE, created=1_764_000_900)
    lines = prorated["data"]["object"]["lines"]["data"]
    credit = {**lines[0], "id": "il_credit", "amount": -250, "pricing": {"price_details": {"price": GOLD_PRICE}}}
    lines.insert(0, credit)
    lines.append({**credit, "id": "il_credit_again"})
    assert (await deliver(paying, prorated)).json()["handled"] is True
    assert (await supporter(paying))["tier"] == "silver"


# ---------------------------------------------------------------------------------------------
# Erasure: a supporter's Stripe links go with them


def stripe_keys(store_url: str) -> dict[str, object]:
    """Every ``stripe:`` key with what it holds (a string, a hash's fields, a set's members), read on every node."""
    held: dict[str, object] = {}
    with sync_client(store_url) as redis:
        for key in every_key(store_url):
            if ":stripe:" not in key:
                continue
            kind = redis.type(key).decode()
            if kind == "string":
                held[key] = redis.get(key)
            elif kind == "hash":
                held[key] = redis.hgetall(key)
            else:
                assert kind == "set", (key, kind)
                held[key] = redis.smembers(key)
    return held


def naming(store_url: str, *needles: str) -> list[str]:
    """The keys whose name, or whose ``stripe:`` value, contains one of ``needles``."""
    values = stripe_keys(store_url)
    return sorted(
        key
        for key in every_key(store_url)
        if any(needle in key or needle in repr(values.get(key, "")) for needle in needles)
    )


async def erase(client: Client, supporter_id: str) -> None:
    answer = await client.delete(f"/v1/admin/supporters/{supporter_id}", params={"forget": "true"})
    assert answer.status_code == 204, answer.text


@EVERY_STORE
async def test_erasing_a_supporter_deletes_their_stripe_links(paying: Client, store_url: str) -> None:
    """After a subscription grants, erasure leaves no key naming the supporter, their subscription or customer."""
    assert (await deliver(paying, invoice_paid("evt_grant"))).json()["handled"] is True
    session = checkout_session(
        "cs_test_e1", "subscription", customer="cus_FanToo", details={"email": ADDRESS}, subscription="sub_1Qtoo"
    )
    linked = await deliver(paying, envelope("evt_cs", "checkout.session.completed", session, created=1_764_000_050))
    assert linked.json()["handled"] is True
    granted = await supporter(paying)
    index = names.stripe_links(granted["id"])
    assert stripe_keys(store_url)[index] == {
        b"subscription:sub_1Qfan",
        b"customer:cus_Fan",
        b"subscription:sub_1Qtoo",
        b"customer:cus_FanToo",
    }
    await erase(paying, granted["id"])
    assert naming(store_url, "sub_1Qfan", "cus_Fan", "sub_1Qtoo") == []
    # Only the audit log keeps the id (its entries redacted to it, as for any erasure); no stripe: key names it.
    assert [key for key in naming(store_url, granted["id"]) if ":stripe:" in key] == []
    assert all(":audit" in key for key in naming(store_url, granted["id"]))
    audit = (await paying.get("/v1/admin/audit", params={"limit": 200})).text
    assert "sub_1Qfan" not in audit
    assert "cus_FanToo" not in audit


@EVERY_STORE
async def test_after_erasure_an_old_event_changes_nothing_and_a_new_invoice_grants_afresh(
    paying: Client, store_url: str
) -> None:
    """A redelivered or older event about the erased subscription writes nothing; its next paid invoice grants anew."""
    await deliver(paying, invoice_paid("evt_grant"))
    erased = (await supporter(paying))["id"]
    await erase(paying, erased)
    before = stripe_keys(store_url), every_key(store_url)
    again = await deliver(paying, invoice_paid("evt_grant"))
    assert again.json() == {
        "received": True,
        "handled": False,
        "detail": "This event was applied already; nothing changed.",
    }
    stale = subscription_event(
        "evt_old_update", "customer.subscription.updated", price=SILVER_PRICE, created=1_764_000_010
    )
    answer = await deliver(paying, stale)
    assert answer.json()["handled"] is False
    assert "No supporter pays through this subscription" in answer.json()["detail"]
    ended = subscription_event("evt_old_end", "customer.subscription.deleted", status="canceled")
    assert (await deliver(paying, ended)).json()["handled"] is False
    assert (stripe_keys(store_url), every_key(store_url)) == before
    assert (await paying.get("/v1/admin/supporters", params={"q": "fan@"})).json()["items"] == []

    later = PERIOD_END + timedelta(days=31)
    renewed = await deliver(paying, invoice_paid("evt_renewed", period_end=later, created=1_766_600_000))
    assert renewed.json() == {"received": True, "handled": True, "detail": "Granted tier 'gold'."}
    fresh = await supporter(paying)
    assert fresh["id"] != erased
    assert fresh["expires_at"] == zulu(later + timedelta(days=3))
    links = stripe_keys(store_url)
    assert links[names.stripe_subscription("sub_1Qfan")][b"supporter"] == fresh["id"].encode()  # type: ignore[index]
    assert links[names.stripe_customer("cus_Fan")] == fresh["id"].encode()
    assert links[names.stripe_links(fresh["id"])] == {b"subscription:sub_1Qfan", b"customer:cus_Fan"}
    assert naming(store_url, erased) == [key for key in naming(store_url, erased) if ":audit" in key]


async def test_a_link_that_moves_leaves_the_former_supporters_index(paying: Client, store_url: str) -> None:
    """A customer paying for another address moves to that supporter: the first one's erasure keeps the link."""
    await deliver(paying, invoice_paid("evt_grant"))
    first = (await supporter(paying))["id"]
    made = await paying.post("/v1/admin/supporters", json={"email": "other@example.com", "tier": "silver"})
    second = made.json()["id"]
    moved = invoice_paid("evt_other", subscription="sub_1Qother", email="other@example.com", created=1_764_000_200)
    assert (await deliver(paying, moved)).json()["handled"] is True
    links = stripe_keys(store_url)
    assert links[names.stripe_links(first)] == {b"subscription:sub_1Qfan"}
    assert links[names.stripe_links(second)] == {b"subscription:sub_1Qother", b"customer:cus_Fan"}
    await erase(paying, first)
    links = stripe_keys(store_url)
    assert names.stripe_subscription("sub_1Qfan") not in links
    assert links[names.stripe_customer("cus_Fan")] == second.encode()
    await erase(paying, second)
    assert naming(store_url, "sub_1Qfan", "sub_1Qother", "cus_Fan") == []


async def test_links_from_before_the_index_are_indexed_once_and_orphans_dropped(paying: Client, store_url: str) -> None:
    """Links with no index entry (from before it existed) are found by the first erasure; a gone supporter's go."""
    await deliver(paying, invoice_paid("evt_grant"))
    fan = (await supporter(paying))["id"]
    other = invoice_paid("evt_other", subscription="sub_1Qother", email="other@example.com")
    other["data"]["object"]["customer"] = "cus_Other"
    await deliver(paying, other)
    kept = (await paying.get("/v1/admin/supporters", params={"q": "other@"})).json()["items"][0]["id"]
    with sync_client(store_url) as redis:
        # As an upgraded store has them: no index, and a link an earlier erasure left behind.
        redis.delete(names.stripe_links(fan))
        redis.delete(names.stripe_links(kept))
        redis.set(names.stripe_customer("cus_Erased"), "0badc0ffee000000")
    await erase(paying, fan)
    links = stripe_keys(store_url)
    assert naming(store_url, "sub_1Qfan", "cus_Fan", "cus_Erased", "0badc0ffee000000") == []
    assert links[names.stripe_links(kept)] == {b"subscription:sub_1Qother", b"customer:cus_Other"}
    assert names.stripe_links_indexed() in links
    audit = (await paying.get("/v1/admin/audit", params={"action": "stripe.links-indexed"})).json()["items"]
    forgot = (await paying.get("/v1/admin/audit", params={"action": "supporter.forget"})).json()["items"]
    assert [(entry["actor"], entry["after"]) for entry in audit] == [(forgot[0]["actor"], {"indexed": 4, "dropped": 1})]
    # Once through, the next erasure goes by the index alone: no second pass, no second entry.
    await erase(paying, kept)
    assert naming(store_url, "sub_1Qother", "cus_Other") == []
    assert len((await paying.get("/v1/admin/audit", params={"action": "stripe.links-indexed"})).json()["items"]) == 1
