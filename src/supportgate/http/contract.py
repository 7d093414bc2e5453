"""Completing the OpenAPI document: every problem an operation can answer, and strict request bodies.

Litestar documents what a handler returns, not what the app's exception handlers answer on its
behalf. This one step, run once the document is built, adds those answers to every operation by
rules read off the operation (a path that names a thing can be 404, a body can be 413 and 415…)
and, for the few problems that depend on what a route does (403, 409, 429), from :data:`PROBLEMS`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, Final

import msgspec
from litestar.openapi.spec import (
    OpenAPI,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    Reference,
    RequestBody,
    Schema,
)

from supportgate.http.limits import MAX_HEADER_BYTES, MAX_TARGET_BYTES
from supportgate.http.problems import PROBLEM_JSON
from supportgate.store.limits import RateLimit

__all__ = ["DPOP_OPERATIONS", "OPTIONAL_BODIES", "PROBLEMS", "complete_contract"]

PROBLEMS: Final[dict[tuple[str, str], tuple[int, ...]]] = {
    ("POST", "/v1/decide"): (403, 429),
    # A site deleted while its key is still in the gate's 5-s cache. 403 is forward-auth's wall, never a problem.
    ("GET", "/v1/forward-auth"): (404,),
    ("POST", "/v1/sites/{site}/reports"): (401, 403, 429),
    ("POST", "/v1/sites/{site}/events"): (401, 403, 429),
    ("POST", "/v1/auth/code/request"): (429,),
    ("POST", "/v1/auth/code/verify"): (401, 409, 429),
    ("POST", "/v1/auth/activate"): (401, 409, 429),
    ("POST", "/v1/auth/refresh"): (401, 409),
    ("POST", "/v1/auth/logout"): (401,),
    ("POST", "/v1/passes"): (403,),
    ("POST", "/v1/admin/tiers"): (409,),
    ("PATCH", "/v1/admin/tiers/{tier_id}"): (409,),
    ("DELETE", "/v1/admin/tiers/{tier_id}"): (409,),
    ("POST", "/v1/admin/supporters"): (409,),
    ("PATCH", "/v1/admin/supporters/{supporter_id}"): (409,),
    ("POST", "/v1/admin/sites"): (409,),
    ("POST", "/v1/admin/keys/rotate"): (409,),
    ("POST", "/v1/admin/signing-keys/rotate"): (409,),
    ("DELETE", "/v1/admin/keys/{key_id}"): (409,),
    ("GET", "/v1/admin/stats"): (404,),
    ("POST", "/v1/webhooks/stripe"): (404,),
    ("GET", "/extension/supportgate-chromium.zip"): (404,),
    ("GET", "/extension/supportgate-firefox.zip"): (404,),
}
"""The problems an operation answers because of what it does, by method and path; the rest follow rules."""

DPOP_OPERATIONS: Final = frozenset(
    {
        ("POST", "/v1/auth/code/verify"),
        ("POST", "/v1/auth/activate"),
        ("POST", "/v1/auth/refresh"),
        ("POST", "/v1/auth/logout"),
        ("GET", "/v1/me"),
        ("DELETE", "/v1/me/sessions/{session_id}"),
        ("POST", "/v1/passes"),
    }
)
"""The operations that read a ``DPoP`` proof header (RFC 9449): sign-in binds, the rest need it when bound."""

OPTIONAL_BODIES: Final = frozenset({("POST", "/v1/admin/sites/{site_id}/keys")})
"""The operations whose JSON body may be left out altogether (every field of it has a default)."""

_DPOP_HEADER: Final = Parameter(
    name="DPoP",
    param_in="header",
    required=False,
    description=(
        "A DPoP proof (RFC 9449): a compact JWS, `typ` `dpop+jwt`, `alg` `ES256`, the public P-256 key as `jwk`; "
        "claims `jti`, `htm`, `htu` (the service's public URL and this path), `iat`, and `ath` when an access "
        "token goes with it. At sign-in it binds the new session to the key; a bound session needs one on every "
        "refresh, logout and access-token use. One header at most; a bad one is refused with 401 "
        "`invalid-dpop-proof`."
    ),
    schema=Schema(type=OpenAPIType.STRING),
)

_STORELESS: Final = frozenset(
    {
        ("GET", "/"),
        ("GET", "/healthz"),
        ("GET", "/extension/supportgate-chromium.zip"),
        ("GET", "/extension/supportgate-firefox.zip"),
        # Not from memory: a store that does not answer lets the page through (200, store_unavailable).
        ("GET", "/v1/forward-auth"),
    }
)
"""Operations that never answer 503: they answer from memory, or (forward-auth) fail open."""

STRICT_QUERY_PREFIX: Final = "/v1/admin/"
"""Operations under here refuse a query parameter they do not take (``http/query.py``): 400 for each."""

_WHY: Final[dict[int, str]] = {
    400: (
        "The request breaks a rule: a parameter or a body field is missing, malformed or out of range,"
        " or a query parameter the operation does not take is sent."
    ),
    401: "No credentials, or wrong ones; `invalid-dpop-proof` when a DPoP proof is missing, bad or replayed.",
    403: "The credentials or the `Origin` do not allow this.",
    404: "The thing the path names does not exist.",
    409: "The change clashes with what is stored.",
    413: "The body is larger than this endpoint accepts.",
    414: f"The path and query are longer than {MAX_TARGET_BYTES} bytes.",
    415: "The body is not sent as `Content-Type: application/json`.",
    429: "A rate limit was hit; `Retry-After` says when to try again.",
    431: f"The request headers are larger than {MAX_HEADER_BYTES} bytes.",
    503: "The store did not answer in time; `Retry-After` says when to try again.",
}

_PROBLEM_REF: Final = Reference(ref="#/components/schemas/Problem")
_WWW_AUTHENTICATE: Final = OpenAPIHeader(
    schema=Schema(type=OpenAPIType.STRING),
    description='The scheme to use: `Bearer realm="supportgate"`, or `DPoP algs="ES256", error="invalid_dpop_proof"`.',
)
_RETRY_AFTER: Final = OpenAPIHeader(
    schema=Schema(type=OpenAPIType.INTEGER, minimum=1), description="Seconds to wait before trying again."
)

PROBLEM_SCHEMA: Final = Schema(
    type=OpenAPIType.OBJECT,
    title="Problem",
    description="An error, as RFC 9457 problem details. Some problems add the extension members listed here.",
    required=["type", "title", "status", "detail"],
    properties={
        "type": Schema(
            type=OpenAPIType.STRING,
            pattern="^urn:supportgate:problem:[a-z0-9-]+$",
            description="What kind of problem this is; the last part is a short machine-readable name.",
        ),
        "title": Schema(type=OpenAPIType.STRING, description="A short summary of the kind of problem."),
        "status": Schema(type=OpenAPIType.INTEGER, minimum=400, maximum=599, description="The HTTP status."),
        "detail": Schema(type=OpenAPIType.STRING, description="What went wrong with this request, and how to fix it."),
        "errors": Schema(
            type=OpenAPIType.ARRAY,
            items=Schema(type=OpenAPIType.OBJECT),
            description="400 on a parameter: each parameter that was refused, with its `key`, `source` and `message`.",
        ),
        "existing": Schema(type=OpenAPIType.STRING, description="409 on create: the id that is already taken."),
        "existing_supporter": Schema(
            type=OpenAPIType.STRING, description="409: the supporter that already has this address."
        ),
        "supporters": Schema(type=OpenAPIType.INTEGER, description="409 on deleting a tier: how many it still has."),
        "price": Schema(
            type=OpenAPIType.STRING,
            description="409 on a tier's `stripe_price_ids`: the Stripe price another tier has.",
        ),
        "tier": Schema(
            type=OpenAPIType.STRING, description="409 on a tier's `stripe_price_ids`: the tier that has it."
        ),
        "sessions": Schema(
            type=OpenAPIType.ARRAY,
            items=Schema(type=OpenAPIType.OBJECT),
            description="409 device limit: the sessions one of which to end, in `end_sessions`.",
        ),
        "max_devices": Schema(type=OpenAPIType.INTEGER, description="409 device limit: the tier's device limit."),
    },
)
"""The one schema of every error body."""


def complete_contract(
    openapi: OpenAPI,
    *,
    max_body_bytes: int,
    body_limits: Mapping[tuple[str, str], int] | None = None,
    rate_limits: Mapping[tuple[str, str], Sequence[RateLimit]] | None = None,
) -> None:
    """Add to ``openapi`` the problems each operation can answer, its limits, and close the strict request bodies.

    Args:
        openapi: The app's document, changed in place.
        max_body_bytes: The app's body limit, shown in the 413 of operations that take a body.
        body_limits: The operations, by method and path, with a body limit of their own.
        rate_limits: The rate limits of each operation, by method and path, stated in its
            description and its 429 (which the operation must answer: :data:`PROBLEMS`).
    """
    openapi.components.schemas = {**openapi.components.schemas, "Problem": PROBLEM_SCHEMA}
    for path, path_item in (openapi.paths or {}).items():
        for method in ("get", "put", "post", "delete", "patch"):
            operation: Operation | None = getattr(path_item, method)
            if operation is not None:
                key = (method.upper(), path)
                if key in DPOP_OPERATIONS:
                    operation.parameters = [*(operation.parameters or []), _DPOP_HEADER]
                if key in OPTIONAL_BODIES and isinstance(operation.request_body, RequestBody):
                    operation.request_body.required = False
                statuses = _statuses(*key, operation)
                limit = (body_limits or {}).get(key, max_body_bytes)
                rates = tuple((rate_limits or {}).get(key, ()))
                if rates and 429 not in statuses:
                    raise ValueError(f"{method.upper()} {path} has rate limits but does not answer 429 in PROBLEMS")
                _add_problems(operation, statuses, body_limit=limit, rate_limits=rates)
                _state_limits(operation, body_limit=limit if 413 in statuses else None, rate_limits=rates)
    openapi.components.schemas = {**openapi.components.schemas, **_strict_schemas()}


def _statuses(method: str, path: str, operation: Operation) -> set[int]:
    statuses = {414, 431, *PROBLEMS.get((method, path), ())}
    if operation.parameters or operation.request_body is not None or path.startswith(STRICT_QUERY_PREFIX):
        statuses.add(400)
    if any(requirement for requirement in operation.security or ()):
        statuses.add(401)
    if "{" in path:
        statuses.add(404)
    if operation.request_body is not None:
        statuses |= {413, 415}
    if (method, path) not in _STORELESS:
        statuses.add(503)
    return statuses


def _add_problems(
    operation: Operation, statuses: set[int], *, body_limit: int, rate_limits: Sequence[RateLimit]
) -> None:
    responses = dict(operation.responses or {})
    for status in sorted(statuses):
        why = _WHY[status]
        if status == 413:
            why = f"The body is larger than {body_limit} bytes."
        elif status == 415:
            why = _unsupported_media(operation)
        elif status == 429 and rate_limits:
            why = f"{why} The limits: {_sentences(rate_limits)}."
        headers: dict[str, OpenAPIHeader | Reference] | None = (
            {"Retry-After": _RETRY_AFTER}
            if status in {429, 503}
            else {"WWW-Authenticate": _WWW_AUTHENTICATE}
            if status == 401
            else None
        )
        responses[str(status)] = OpenAPIResponse(
            description=why, content={PROBLEM_JSON: OpenAPIMediaType(schema=_PROBLEM_REF)}, headers=headers
        )
    operation.responses = responses


def _unsupported_media(operation: Operation) -> str:
    """The 415 of an operation, naming the media type its body is documented in (JSON unless said otherwise)."""
    body = operation.request_body
    media_types = list(body.content) if body is not None and not isinstance(body, Reference) else []
    if not media_types or media_types == ["application/json"]:
        return _WHY[415]
    return f"The body is not sent as `Content-Type: {media_types[0]}`."


def _state_limits(operation: Operation, *, body_limit: int | None, rate_limits: Sequence[RateLimit]) -> None:
    """Say in the operation's description how large its body and how frequent its calls may be."""
    limits = []
    if body_limit is not None:
        limits.append(f"a body of at most {body_limit} bytes (larger: 413)")
    if rate_limits:
        limits.append(f"{_sentences(rate_limits)} (past a limit: 429 with `Retry-After`)")
    if limits:
        said = (operation.description or "").rstrip()
        operation.description = f"{said}\n\nLimits: {'; '.join(limits)}.".lstrip()


def _sentences(rate_limits: Sequence[RateLimit]) -> str:
    return "; ".join(limit.describe() for limit in rate_limits)


@functools.cache
def _strict_schemas() -> dict[str, Any]:
    """The schemas of the Structs that refuse unknown fields, as msgspec decodes them, by component name.

    Litestar drops what annotates the items of a list (an entitlement's pattern) and does not say
    that unknown fields are refused; msgspec's own schema is the decoder's rules, so it replaces them.
    """
    strict: list[type[msgspec.Struct]] = []
    pending: list[type[msgspec.Struct]] = [msgspec.Struct]
    while pending:
        struct = pending.pop()
        pending.extend(struct.__subclasses__())
        if struct.__module__.startswith("supportgate.") and struct.__struct_config__.forbid_unknown_fields:
            strict.append(struct)
    strict.sort(key=lambda struct: struct.__qualname__)
    _, components = msgspec.json.schema_components(strict, ref_template="#/components/schemas/{name}")
    return components
