"""The OpenAPI document is the contract: schemathesis checks the app against it, in process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, given, strategies
from litestar import Litestar
from litestar.testing import AsyncTestClient
from schemathesis.generation import GenerationMode
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import positive_data_acceptance

from supportgate.catalog.schemas import SiteIn
from supportgate.gate.anonymous_limit import stated
from supportgate.gate.controllers import MAX_DECIDE_BYTES
from supportgate.gate.events import EVENT_LIMIT
from supportgate.gate.reports import REPORT_LIMIT
from supportgate.http.contract import PROBLEMS
from supportgate.readers import codes
from supportgate.services import Services
from supportgate.settings import Settings
from tests.conftest import suite_settings

# Addresses at special-use domains (.test, .invalid) are refused by rule (email-validator); real TLDs are not.
schemathesis.openapi.format("email", strategies.emails())

_EXAMPLES = 8
"""Examples per operation and generation mode: enough to reach each documented status, fast enough for every run."""


@pytest.fixture
def settings(store_url: str, tmp_path: Path) -> Settings:
    """The suite's settings with a Stripe signing secret, so that the Stripe webhook is checked as it runs."""
    return suite_settings(store_url, tmp_path, stripe_webhook_secret="whsec_contract_check")


@pytest.fixture
async def admin_key(services: Services) -> str:
    """An admin key, with a site and a tier in the store so that some named things exist."""
    await services.sites.create(SiteIn(id="example", name="Example", origins=["https://example.com"]), actor="cli")
    return (await services.api_keys.create("admin", name="schemathesis", actor="cli")).key


pytestmark = pytest.mark.filterwarnings(
    # Schemathesis's own strategies draw from `random`; derandomize still makes every run the same.
    "ignore::hypothesis.errors.HypothesisDeprecationWarning"
)

_SEMANTIC_400: frozenset[str] = frozenset(
    {
        # A cursor is opaque: only one the listing returned is valid, which no schema can say.
        "GET /v1/admin/supporters",
        "GET /v1/admin/audit",
        # A well-formed code that was never issued, or has been used, is the client's mistake: 400 invalid-code.
        "POST /v1/auth/activate",
        "POST /v1/auth/code/verify",
        # Activation codes are for active supporters only; the state is the store's, not the request's.
        "POST /v1/admin/supporters/{supporter_id}/activation-codes",
        # A supporter's tier must exist.
        "POST /v1/admin/supporters",
        "PATCH /v1/admin/supporters/{supporter_id}",
        # At most 400 days, `from` not after `to`.
        "GET /v1/admin/stats",
        # An IPv6 origin must hold an address, which the documented pattern says only roughly.
        "POST /v1/admin/sites",
        "PATCH /v1/admin/sites/{site_id}",
        # A CSV import's header must name known columns, its tier must exist: no string schema says so.
        "POST /v1/admin/supporters/import",
        # An export's tier must exist.
        "GET /v1/admin/supporters/export",
        # The site a reader came from must exist.
        "POST /v1/auth/code/request",
        # A well-formed Stripe event still needs Stripe's signature over its bytes, which no schema can make.
        "POST /v1/webhooks/stripe",
    }
)
"""Operations whose well-formed input may still be refused with 400, by a rule about stored state."""


def _integers_as_written(value: Any) -> Any:
    """``value`` with each whole float written as an int.

    JSON Schema counts ``76.0`` as an integer, so schemathesis sends it as one; the API decodes
    without coercion (docs/admin-api.md) and refuses it, on purpose. No body field is a float.
    """
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_integers_as_written(item) for item in value]
    if isinstance(value, dict):
        return {key: _integers_as_written(item) for key, item in value.items()}
    return value


def _as_written(case: schemathesis.Case) -> schemathesis.Case:
    case.body = _integers_as_written(case.body)
    return case


def _check(operation: Any, mode: GenerationMode, headers: dict[str, str], failures: list[str]) -> None:
    strategy = operation.as_strategy(generation_mode=mode, headers=headers)

    @hypothesis.settings(
        max_examples=_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    )
    @given(case=strategy.map(_as_written) if mode is GenerationMode.POSITIVE else strategy)
    def run(case: schemathesis.Case) -> None:
        excluded = [positive_data_acceptance] if operation.label in _SEMANTIC_400 else None
        case.call_and_validate(excluded_checks=excluded)

    try:
        run()
    except hypothesis.errors.Unsatisfiable:
        return  # nothing to make invalid: the operation takes no parameters and no body
    except BaseException as exc:  # noqa: BLE001 - every operation's failure is collected and reported together
        failures.append(f"{operation.label} [{mode.value}]: {str(exc)[:1500]}")


def test_every_operation_keeps_the_contract(app: Litestar, admin_key: str) -> None:
    """Every operation, with valid and invalid input, answers only what the document says, in its shapes."""
    schema = schemathesis.openapi.from_asgi("/schema/openapi.json", app)
    # Unknown query parameters are ignored, as most HTTP APIs do; the API promises to refuse unknown body fields only.
    schema.config.generation.update(allow_extra_parameters=False)
    # A body over the limit is refused before it is read, so 413 is how invalid data that is also large is refused.
    rejection = schema.config.checks.negative_data_rejection
    rejection.expected_statuses = [*rejection.expected_statuses, "413"]
    headers = {"Authorization": f"Bearer {admin_key}"}
    failures: list[str] = []
    try:
        for result in schema.get_all_operations():
            operation = result.ok()
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                _check(operation, mode, headers, failures)
    finally:
        # Schemathesis keeps an app started until the process ends; this one's store is flushed for the next test.
        shutdown_lifespans()
    assert not failures, "\n\n".join(failures)


async def test_the_document_names_every_problem_the_table_adds(client: AsyncTestClient[Litestar]) -> None:
    """Each operation in contract.PROBLEMS exists, and answers its problems with the Problem schema."""
    document = (await client.get("/schema/openapi.json")).json()
    for (method, path), statuses in PROBLEMS.items():
        responses = document["paths"][path][method.lower()]["responses"]
        for status in statuses:
            content = responses[str(status)]["content"]
            assert content == {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


async def test_strict_bodies_are_documented_as_decoded(client: AsyncTestClient[Litestar]) -> None:
    """A body that refuses unknown fields says so, with the limits msgspec checks on its list items."""
    schemas = (await client.get("/schema/openapi.json")).json()["components"]["schemas"]
    assert schemas["DecideIn"]["additionalProperties"] is False
    assert schemas["Policy"]["additionalProperties"] is False
    assert schemas["TierIn"]["properties"]["entitlements"]["items"]["pattern"] == "^[a-z0-9_-]{1,64}$"
    assert "additionalProperties" not in schemas["Problem"]


async def test_only_what_never_reads_the_store_leaves_out_503(client: AsyncTestClient[Litestar]) -> None:
    """The keys, read from the store once their cache ages, can be a 503; the liveness answers cannot."""
    paths = (await client.get("/schema/openapi.json")).json()["paths"]
    assert "503" in paths["/.well-known/jwks.json"]["get"]["responses"]
    assert "503" not in paths["/healthz"]["get"]["responses"]
    assert "503" in paths["/readyz"]["get"]["responses"]


async def test_rate_limits_are_stated_with_their_values(client: AsyncTestClient[Litestar], settings: Settings) -> None:
    """Each rate-limited operation states its limits, from the values the code counts with, in its 429 and text."""
    paths = (await client.get("/schema/openapi.json")).json()["paths"]
    limited = {
        ("post", "/v1/auth/code/request"): [
            codes.REQUESTS_PER_IP,
            codes.REQUESTS_PER_ADDRESS_AND_IP,
            codes.REQUESTS_PER_ADDRESS,
        ],
        ("post", "/v1/auth/code/verify"): [codes.VERIFIES_PER_IP, codes.VERIFIES_PER_ADDRESS_ELSEWHERE],
        ("post", "/v1/auth/activate"): [codes.ACTIVATIONS_PER_IP],
        ("post", "/v1/sites/{site}/reports"): [REPORT_LIMIT],
        ("post", "/v1/sites/{site}/events"): [EVENT_LIMIT],
        ("post", "/v1/decide"): [stated(settings.anonymous_decides_per_minute)],
    }
    for (method, path), limits in limited.items():
        operation = paths[path][method]
        too_many = operation["responses"]["429"]
        assert too_many["headers"]["Retry-After"]["schema"] == {"type": "integer", "minimum": 1}
        for limit in limits:
            assert limit.describe() in too_many["description"], (path, limit)
            assert limit.describe() in operation["description"], (path, limit)
    decide = paths["/v1/decide"]["post"]
    assert f"at most {settings.anonymous_decides_per_minute} decides without a site key" in decide["description"]
    assert f"a body of at most {MAX_DECIDE_BYTES} bytes" in decide["description"]
    sign_in = paths["/v1/auth/code/request"]["post"]
    assert "at most 5 sign-in codes for this address from this network every hour" in sign_in["description"]
    assert f"a body of at most {settings.max_body_bytes} bytes" in sign_in["description"]


@pytest.mark.usefixtures("admin_key")  # it makes the site
async def test_the_scripts_conditional_get_is_documented_and_answered(client: AsyncTestClient[Litestar]) -> None:
    """gate.js documents If-None-Match and its 304, and answers 304 with no body to the ETag it gave."""
    gate_js = (await client.get("/schema/openapi.json")).json()["paths"]["/v1/sites/{site}/gate.js"]["get"]
    assert "304" in gate_js["responses"]
    assert {"name": "If-None-Match", "in": "header"}.items() <= next(
        parameter for parameter in gate_js["parameters"] if parameter["name"] == "If-None-Match"
    ).items()
    first = await client.get("/v1/sites/example/gate.js")
    assert first.status_code == 200
    again = await client.get("/v1/sites/example/gate.js", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == first.headers["etag"]
