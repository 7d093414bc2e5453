"""``POST /v1/webhooks/stripe``: Stripe's events, signed with the endpoint's secret (docs/payments.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import stripe
from litestar import Request, post
from litestar.di import NamedDependency
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, Parameter, RequestBody, Schema

from supportgate.errors import BadRequest, NotFound
from supportgate.http.body import decode_strict, require_json
from supportgate.payments.events import HANDLED_TYPES, StripeEvent
from supportgate.payments.schemas import Receipt
from supportgate.payments.service import PaymentService
from supportgate.settings import Settings

__all__ = ["MAX_STRIPE_EVENT_BYTES", "SIGNATURE_TOLERANCE_SECONDS", "stripe_webhook"]

MAX_STRIPE_EVENT_BYTES: Final = 256 * 1024
"""The largest event body taken; larger ones get 413 (Stripe's events are a few KiB)."""
SIGNATURE_TOLERANCE_SECONDS: Final = 300
"""How old a signature's timestamp may be: older is a replay (or a clock far off), refused with 400."""
_SIGNATURE_HEADER: Final = "Stripe-Signature"

_DESCRIPTION: Final = (
    "Stripe's events about payments, sent by Stripe to the endpoint set up in its dashboard (docs/payments.md). "
    f"The `{_SIGNATURE_HEADER}` header is the authentication: an HMAC-SHA256 of the raw body under the "
    f"endpoint's signing secret (`SUPPORTGATE_STRIPE_WEBHOOK_SECRET`), at most {SIGNATURE_TOLERANCE_SECONDS} s old. "
    "Without that setting the route does not exist (404). A missing, malformed, wrong or stale signature is a 400 "
    "with nothing written. Acted on: " + ", ".join(f"`{kind}`" for kind in HANDLED_TYPES) + "; any other type is "
    "answered `handled: false`. Each event is applied once (its id is kept 30 days) and never over a newer event "
    "about the same subscription; every change is in the audit log with actor `stripe`."
)


@dataclass
class _StripeEventOperation(Operation):
    """The webhook's operation: a signed JSON body read as raw bytes, and its signature header."""

    def __post_init__(self) -> None:
        self.parameters = [
            *(self.parameters or []),
            Parameter(
                name=_SIGNATURE_HEADER,
                param_in="header",
                required=False,
                description=(
                    '`t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" under the signing secret>` '
                    "(several `v1` while a secret is rolled). Missing or wrong: 400."
                ),
                schema=Schema(type=OpenAPIType.STRING),
            ),
        ]
        self.request_body = RequestBody(
            required=True,
            description="A Stripe event object, exactly as Stripe sent it (the signature covers the raw bytes).",
            content={
                "application/json": OpenAPIMediaType(
                    schema=Schema(
                        type=OpenAPIType.OBJECT,
                        required=["id", "type", "created", "data"],
                        properties={
                            "id": Schema(type=OpenAPIType.STRING, examples=["evt_1QzX2aLkdIwHu7ix"]),
                            "type": Schema(type=OpenAPIType.STRING, examples=["invoice.paid"]),
                            "created": Schema(type=OpenAPIType.INTEGER, description="Unix time the event was made."),
                            "data": Schema(
                                type=OpenAPIType.OBJECT,
                                required=["object"],
                                properties={"object": Schema(type=OpenAPIType.OBJECT)},
                            ),
                        },
                    )
                )
            },
        )


@post(
    "/v1/webhooks/stripe",
    status_code=200,
    request_max_body_size=MAX_STRIPE_EVENT_BYTES,
    operation_class=_StripeEventOperation,
    description=_DESCRIPTION,
    tags=("payments",),
    response_description="The event was taken (Stripe does not send it again); `handled` says if it changed anything.",
    summary="Receive a Stripe event: grant, extend, move or end a supporter's support",
)
async def stripe_webhook(request: Request[Any, Any, Any], payments: NamedDependency[PaymentService]) -> Receipt:
    """Check the signature over the raw body, then apply the event (the OpenAPI description says how)."""
    settings: Settings = request.app.state.settings
    secret = settings.stripe_webhook_secret
    if secret is None:
        raise NotFound("Not Found", title="Not Found")
    body = await request.body()
    require_json(request.headers.get("content-type"))
    try:
        body.decode()
    except UnicodeDecodeError as exc:
        raise BadRequest(
            f"The body is not valid JSON: it is not UTF-8 ({exc.reason}).", title="Invalid request"
        ) from None
    # Decoding first names what is wrong with a malformed body; nothing is acted on before the signature.
    event = decode_strict(body, StripeEvent)
    verify_signature(body, request.headers.get(_SIGNATURE_HEADER), secret)
    return await payments.apply(event)


def verify_signature(body: bytes, header: str | None, secret: str) -> None:
    """Refuse (400, naming what is wrong) a UTF-8 body whose ``Stripe-Signature`` is missing, wrong or stale."""
    if not header:
        raise _bad_signature(f"the {_SIGNATURE_HEADER} header is missing; Stripe signs every event it sends.")
    try:
        stripe.WebhookSignature.verify_header(body, header, secret, tolerance=SIGNATURE_TOLERANCE_SECONDS)
    except stripe.SignatureVerificationError as exc:
        message = str(exc.user_message or exc)
        if "tolerance" in message:
            reason = (
                f"its timestamp is more than {SIGNATURE_TOLERANCE_SECONDS} s old: a replayed event, "
                "or this server's clock is wrong."
            )
        elif "matching" in message:
            reason = (
                "no v1 signature matches the body under this endpoint's signing secret: the body was changed, "
                "or SUPPORTGATE_STRIPE_WEBHOOK_SECRET is not this endpoint's secret."
            )
        elif "No signatures found" in message:
            reason = "it carries no v1 signature."
        else:
            reason = "it is not of the form t=<unix time>,v1=<hex signature>."
        raise _bad_signature(f"the {_SIGNATURE_HEADER} header does not verify: {reason}") from None


def _bad_signature(detail: str) -> BadRequest:
    return BadRequest(
        f"{_SIGNATURE_HEADER}: {detail}", title="Invalid Stripe signature", slug="invalid-stripe-signature"
    )
