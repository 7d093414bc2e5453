"""The gate's routes: the decision per page view, false-positive reports, and their admin views."""

from __future__ import annotations

import contextlib
from datetime import date
from typing import Annotated, Any, Final

from litestar import Controller, Request, Response, Router, get, post, route
from litestar.datastructures import CacheControlHeader
from litestar.di import NamedDependency
from litestar.enums import HttpMethod
from litestar.params import JSONBody, PathParameter, QueryParameter

from supportgate.admin.auth import bearer_token
from supportgate.dto import Body
from supportgate.errors import BadRequest, Forbidden
from supportgate.gate.schemas import DecideIn, Decision, Report, ReportIn, Stats
from supportgate.readers.controllers import client_ip
from supportgate.services import Services

__all__ = ["MAX_DECIDE_BYTES", "PASS_HEADER", "GateAdminController", "gate_router"]

MAX_DECIDE_BYTES: Final = 4096
"""The largest decide or report body; larger ones get 413."""
PASS_HEADER: Final = "supportgate-pass"  # noqa: S105 - a header name, not a secret
"""The header a server-side caller may send a pass in, instead of the body."""
_PREFLIGHT_MAX_AGE = "600"
_NO_STORE = CacheControlHeader(no_store=True)

AnyRequest = Request[Any, Any, Any]
SitePath = Annotated[
    str,
    PathParameter(pattern=r"^[a-z0-9-]{1,64}$", description="A site id: 1 to 64 lowercase letters, digits or '-'."),
]


async def caller_site(request: AnyRequest, services: Services) -> str | None:
    """The site of the site key the request sent, None if it sent none; 401 for a bad one."""
    token = bearer_token(request)
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


def preflight(origin: str, methods: str) -> Response[None]:
    """The answer to a CORS preflight from an allowed origin: no credentials."""
    return Response(
        None,
        status_code=204,
        headers={
            **cors_headers(origin),
            "Access-Control-Allow-Methods": methods,
            "Access-Control-Allow-Headers": "Content-Type, Supportgate-Pass",
            "Access-Control-Max-Age": _PREFLIGHT_MAX_AGE,
        },
    )


@post(
    "/v1/decide",
    dto=Body[DecideIn],
    return_dto=None,
    status_code=200,
    request_max_body_size=MAX_DECIDE_BYTES,
    cache_control=_NO_STORE,
    response_headers={"Vary": "Origin"},
    summary="Decide on one page view: allow, nag or wall",
)
async def decide(data: JSONBody[DecideIn], request: AnyRequest) -> Decision:
    """The rules of docs/gate.md; a bad pass makes the reader anonymous, never an error."""
    # Every page view comes here: the services are taken from the app state rather than through
    # dependency injection, and a plain Struct is returned unless CORS needs a header, which
    # together save about a quarter of the handler's time in Litestar (bench/http_decide.py).
    services: Services = request.app.state.services
    site = await caller_site(request, services)
    headers = request.headers
    origin = headers.get("origin")
    decision = await services.decide.decide(
        data,
        pass_header=headers.get(PASS_HEADER),
        caller_site=site,
        origin=origin,
        user_agent=headers.get("user-agent"),
        peer_ip=client_ip(request),
    )
    if site is None and origin is not None:
        # Litestar tells a Response from a body by its type when the handler returns; the
        # annotation says what the body is, for the OpenAPI schema.
        return Response(decision, headers={"Access-Control-Allow-Origin": origin})  # type: ignore[return-value]
    return decision


@route("/v1/decide", http_method=HttpMethod.OPTIONS, include_in_schema=False)
async def decide_preflight(request: AnyRequest, services: NamedDependency[Services]) -> Response[None]:
    """CORS for browsers on any site's origins: a preflight names no site, the POST is checked per site."""
    origin = request.headers.get("origin")
    if origin is None or not await services.decide.origin_known(origin):
        raise Forbidden(f"The origin {origin!r} is not one of any site's origins.")
    return preflight(origin, "POST")


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
    key_site = await caller_site(request, services)
    origin = request.headers.get("origin")
    await services.decide.site_for(site, caller_site=key_site, origin=origin)
    await services.reports.add(site, data, user_agent=request.headers.get("user-agent"), client_ip=client_ip(request))
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
    route_handlers=[decide_preflight, decide, report_preflight, report_false_positive],
    tags=["gate"],
)
