"""The gate's routes: the decision per page view, false-positive reports, and their admin views."""

from __future__ import annotations

import contextlib
import functools
from datetime import date
from typing import Annotated, Any, Final, cast

import msgspec
from litestar import Controller, Litestar, Request, Response, Router, asgi, get, post, route
from litestar.datastructures import CacheControlHeader
from litestar.di import NamedDependency
from litestar.enums import HttpMethod
from litestar.exceptions import ClientException, MethodNotAllowedException
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.spec import PathItem, Schema
from litestar.params import JSONBody, PathParameter, QueryParameter
from litestar.types import (
    HTTPReceiveMessage,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    HTTPScope,
    Receive,
    Scope,
    Send,
)

from supportgate.admin.auth import bearer
from supportgate.dto import Body, decode_strict
from supportgate.errors import BadRequest, Forbidden, PayloadTooLarge
from supportgate.gate.schemas import DecideIn, Decision, Report, ReportIn, Stats
from supportgate.readers.controllers import client_ip
from supportgate.services import Services

__all__ = ["MAX_DECIDE_BYTES", "PASS_HEADER", "GateAdminController", "document_decide", "gate_router"]

MAX_DECIDE_BYTES: Final = 4096
"""The largest decide or report body; larger ones get 413."""
PASS_HEADER: Final = "supportgate-pass"  # noqa: S105 - a header name, not a secret
"""The header a server-side caller may send a pass in, instead of the body."""
_PREFLIGHT_MAX_AGE = "600"
_NO_STORE = CacheControlHeader(no_store=True)
_encode = msgspec.json.Encoder().encode

AnyRequest = Request[Any, Any, Any]
SitePath = Annotated[
    str,
    PathParameter(pattern=r"^[a-z0-9-]{1,64}$", description="A site id: 1 to 64 lowercase letters, digits or '-'."),
]


async def caller_site(authorization: str | None, services: Services) -> str | None:
    """The site of the site key in an ``Authorization`` header, None if there is none; 401 for a bad one."""
    token = bearer(authorization)
    return None if token is None else await services.decide.key_site(token)


def cors_headers(origin: str | None) -> dict[str, str]:
    """``Vary: Origin``, and the origin allowed back when a browser was let in by it."""
    if origin is None:
        return {"Vary": "Origin"}
    return {"Vary": "Origin", "Access-Control-Allow-Origin": origin}


def day_param(name: str, value: str | None) -> date | None:
    """A ``YYYY-MM-DD`` query parameter as a date; BadRequest naming it otherwise."""
    if value is None:
        return None
    if len(value) == len("2026-11-24"):  # fromisoformat alone would also take 20261124
        with contextlib.suppress(ValueError):
            return date.fromisoformat(value)
    raise BadRequest(f"{name}: {value!r} is not a day such as 2026-11-24")


def _preflight_headers(origin: str, methods: str) -> dict[str, str]:
    return {
        **cors_headers(origin),
        "Access-Control-Allow-Methods": methods,
        "Access-Control-Allow-Headers": "Content-Type, Supportgate-Pass",
        "Access-Control-Max-Age": _PREFLIGHT_MAX_AGE,
    }


def preflight(origin: str, methods: str) -> Response[None]:
    """The answer to a CORS preflight from an allowed origin: no credentials."""
    return Response(None, status_code=204, headers=_preflight_headers(origin, methods))


@asgi("/v1/decide", is_mount=False, copy_scope=False)
async def decide(scope: Scope, receive: Receive, send: Send) -> None:
    """``POST /v1/decide`` and its CORS preflight, as a plain ASGI endpoint.

    Every page view comes here, and Litestar's request and response machinery costs several
    times the decision itself (bench/README.md). So this endpoint reads and strictly decodes its
    own body and writes its own response; errors are still raised as Problems and rendered by the
    app's exception handlers, and :func:`document_decide` puts the contract in the OpenAPI schema.
    """
    http = cast("HTTPScope", scope)
    headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in http["headers"]}
    services: Services = http["app"].state.services
    origin = headers.get("origin")
    method = http["method"]
    if method == "OPTIONS":
        if origin is None or not await services.decide.origin_known(origin):
            raise Forbidden(f"The origin {origin!r} is not one of any site's origins.")
        await _answer(send, 204, b"", _preflight_headers(origin, "POST"))
        return
    if method != "POST":
        raise MethodNotAllowedException(headers={"Allow": "POST, OPTIONS"})
    data = decode_strict(await _read_body(receive, headers.get("content-length")), DecideIn)
    site = await caller_site(headers.get("authorization"), services)
    decision = await services.decide.decide(
        data,
        pass_header=headers.get(PASS_HEADER),
        caller_site=site,
        origin=origin,
        user_agent=headers.get("user-agent"),
        peer_ip=client_ip(scope),
    )
    answer_headers = cors_headers(origin if site is None else None)
    answer_headers["Cache-Control"] = "no-store"
    answer_headers["Content-Type"] = "application/json"
    await _answer(send, 200, _encode(decision), answer_headers)


def document_decide(app: Litestar) -> None:
    """Add ``POST /v1/decide`` to the app's OpenAPI schema, which lists only Litestar's HTTP routes."""
    path_item, schemas = _decide_openapi()
    openapi = app.openapi_schema
    openapi.paths = {**(openapi.paths or {}), "/v1/decide": path_item}
    openapi.components.schemas = {**schemas, **openapi.components.schemas}


@functools.cache
def _decide_openapi() -> tuple[PathItem, dict[str, Schema]]:
    """Decide's path item and schemas, as Litestar documents an HTTP handler of the same signature."""

    @post(
        "/v1/decide",
        status_code=200,
        tags=["gate"],
        summary="Decide on one page view: allow, nag or wall",
        description=(
            "Every page view asks once. A bad pass never fails the request: the visitor is anonymous "
            "and `pass_error` says why. Bodies over 4 KB get 413. See docs/gate.md for the rules."
        ),
        responses={
            400: ResponseSpec(None, description="A field is invalid; `detail` names it."),
            401: ResponseSpec(None, description="No site key and no browser Origin."),
            403: ResponseSpec(None, description="A site key or Origin of another site."),
            404: ResponseSpec(None, description="No such site."),
            413: ResponseSpec(None, description="The body is over 4 KB."),
        },
        security=[{"SiteKey": []}, {}],
    )
    async def decide_contract(data: JSONBody[DecideIn]) -> Decision:
        raise NotImplementedError  # documentation only: never routed

    spec = Litestar([decide_contract], openapi_config=OpenAPIConfig(title="decide", version="1")).openapi_schema
    assert spec.paths is not None
    return spec.paths["/v1/decide"], dict(spec.components.schemas)


async def _read_body(receive: Receive, content_length: str | None) -> bytes:
    """The request body, refusing (413) one over MAX_DECIDE_BYTES before or while reading it."""
    if content_length is not None and content_length.isdigit() and int(content_length) > MAX_DECIDE_BYTES:
        raise PayloadTooLarge("The request body is larger than this endpoint accepts.")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = cast("HTTPReceiveMessage", await receive())
        if message["type"] == "http.disconnect":
            raise ClientException("The client went away before sending the whole body.")
        chunk = message["body"]
        size += len(chunk)
        if size > MAX_DECIDE_BYTES:
            raise PayloadTooLarge("The request body is larger than this endpoint accepts.")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _answer(send: Send, status: int, body: bytes, headers: dict[str, str]) -> None:
    raw = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
    raw.append((b"content-length", str(len(body)).encode()))
    await send(HTTPResponseStartEvent(type="http.response.start", status=status, headers=raw))
    await send(HTTPResponseBodyEvent(type="http.response.body", body=body, more_body=False))


@post(
    "/v1/sites/{site:str}/reports",
    dto=Body[ReportIn],
    return_dto=None,
    status_code=202,
    request_max_body_size=MAX_DECIDE_BYTES,
    cache_control=_NO_STORE,
    summary="Report that the gate saw an ad blocker that is not there",
)
async def report_false_positive(
    site: SitePath, data: JSONBody[ReportIn], request: AnyRequest, services: NamedDependency[Services]
) -> Response[None]:
    """Kept for the site's admins and counted in ``false_positive_reports``."""
    key_site = await caller_site(request.headers.get("authorization"), services)
    origin = request.headers.get("origin")
    await services.decide.site_for(site, caller_site=key_site, origin=origin)
    await services.reports.add(
        site, data, user_agent=request.headers.get("user-agent"), client_ip=client_ip(request.scope)
    )
    return Response(None, status_code=202, headers=cors_headers(origin if key_site is None else None))


@route("/v1/sites/{site:str}/reports", http_method=HttpMethod.OPTIONS, include_in_schema=False)
async def report_preflight(site: SitePath, request: AnyRequest, services: NamedDependency[Services]) -> Response[None]:
    """CORS for browsers on the site's own origins."""
    origin = request.headers.get("origin")
    if origin is None:
        raise Forbidden("A CORS preflight comes with an Origin; this one has none.")
    await services.decide.site_for(site, caller_site=None, origin=origin)
    return preflight(origin, "POST")


class GateAdminController(Controller):
    """What the gate saw: counters per day, and false-positive reports."""

    path = "/"
    tags = ("admin: gate",)

    @get("/stats", summary="A site's counters per day and in total")
    async def get_stats(
        self,
        services: NamedDependency[Services],
        site: Annotated[str, QueryParameter(pattern=r"^[a-z0-9-]{1,64}$", description="The site's id.")],
        from_date: Annotated[
            str | None,
            QueryParameter(
                name="from", max_length=10, description="First day, YYYY-MM-DD (default: 29 days before to)."
            ),
        ] = None,
        to_date: Annotated[
            str | None,
            QueryParameter(name="to", max_length=10, description="Last day, YYYY-MM-DD (default: today, UTC)."),
        ] = None,
    ) -> Stats:
        """Every day of the range (at most 400), zeros included, and the totals; 400 for a bad range."""
        first, last = day_param("from", from_date), day_param("to", to_date)
        await services.sites.get(site)
        return await services.stats.read(site, first, last)

    @get("/sites/{site_id:str}/reports", summary="A site's latest false-positive reports, newest first")
    async def list_reports(
        self,
        site_id: SitePath,
        services: NamedDependency[Services],
        limit: Annotated[int, QueryParameter(ge=1, le=1000, description="How many (1 to 1000).")] = 100,
    ) -> dict[str, list[Report]]:
        """The latest of the 1,000 kept: when, which path, the User-Agent and the probes' signals."""
        await services.sites.get(site_id)
        return {"items": await services.reports.latest(site_id, limit)}


gate_router = Router(
    path="/",
    # Each preflight handler before its POST: registered after it, Litestar's own OPTIONS handler,
    # added to a path that has none yet, would answer instead.
    route_handlers=[decide, report_preflight, report_false_positive],
    tags=["gate"],
)
