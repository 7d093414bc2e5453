"""The gate's routes for browsers and site backends: decide, reports, funnel events, gate.js and the wall.

Controllers only parse, call a service and answer. Decide runs as plain ASGI (its figures are in
bench/README.md); :mod:`supportgate.gate.openapi` documents it.
"""

from __future__ import annotations

from time import perf_counter
from typing import Annotated, Any, Final, cast

import msgspec
from litestar import Request, Response, Router, asgi, get, post, route
from litestar.datastructures import CacheControlHeader
from litestar.di import NamedDependency
from litestar.enums import HttpMethod
from litestar.exceptions import MethodNotAllowedException
from litestar.openapi import ResponseSpec
from litestar.params import HeaderParameter, JSONBody, QueryParameter
from litestar.types import ASGIApp, HTTPScope, Receive, Scope, Send

from supportgate.catalog.policy import gate_base
from supportgate.errors import Forbidden
from supportgate.gate.access import SiteAccess
from supportgate.gate.decide import DecideService
from supportgate.gate.events import EventService
from supportgate.gate.forward_auth import FORWARD_AUTH_PATH, forward_auth
from supportgate.gate.interstitial import render_interstitial
from supportgate.gate.messages import negotiate_language
from supportgate.gate.reports import ReportService
from supportgate.gate.schemas import PASS_HEADER, DecideIn, EventIn, ReportIn, SiteAbout
from supportgate.gate.script import BAIT_SCRIPT, CONTROL_SCRIPT, accepts_gzip, etag_matches, script_for
from supportgate.http.access_log import note_site
from supportgate.http.asgi import read_body, send_answer
from supportgate.http.auth import bearer
from supportgate.http.body import Body, decode_strict, require_json
from supportgate.http.client import client_ip
from supportgate.http.cors import cors_headers, preflight, preflight_headers
from supportgate.http.deadline import OWN_DEADLINE
from supportgate.http.params import SitePath
from supportgate.languages import LANGUAGE_QUERY_PATTERN
from supportgate.store.hot_path import HotPath

__all__ = ["MAX_DECIDE_BYTES", "PAGE_VIEW_ENDPOINTS", "gate_assets_router", "gate_router"]

MAX_DECIDE_BYTES: Final = 4096
"""The largest decide or report body; larger ones get 413."""
"""The header a server-side caller may send a pass in, instead of the body."""
_NO_STORE = CacheControlHeader(no_store=True)
_encode = msgspec.json.Encoder().encode

AnyRequest = Request[Any, Any, Any]
LangQuery = Annotated[
    str | None,
    QueryParameter(
        pattern=LANGUAGE_QUERY_PATTERN,
        max_length=35,
        description="The reader's language (en, de-AT, …); Accept-Language decides when absent or not built in.",
    ),
]

_JS = "text/javascript"  # Litestar adds "; charset=utf-8" to text types
_HTML = "text/html"  # likewise
_SCRIPT_HEADERS = {"Cross-Origin-Resource-Policy": "cross-origin", "X-Content-Type-Options": "nosniff"}
_NO_STORE_SCRIPT = {**_SCRIPT_HEADERS, "Cache-Control": "no-store"}
_PUBLIC_ABOUT = {"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"}


@asgi("/v1/decide", is_mount=False, copy_scope=False, opt={OWN_DEADLINE: True})
async def decide(scope: Scope, receive: Receive, send: Send) -> None:
    """``POST /v1/decide`` and its CORS preflight, as a plain ASGI endpoint.

    Every page view comes here, and Litestar's request and response machinery costs several
    times the decision itself (bench/README.md). So this endpoint reads and strictly decodes its
    own body and writes its own response, and the app sends it page views before its router and
    middleware (:data:`PAGE_VIEW_ENDPOINTS`). Errors are still raised as Problems and rendered by the
    app's exception handlers, and :func:`~supportgate.gate.openapi.document_decide` puts the
    contract in the OpenAPI schema.
    """
    started = perf_counter()
    services = scope["app"].state.services
    try:
        await _decide(scope, receive, send, services)
    finally:
        services.metrics.decide_time.observe(perf_counter() - started)


async def _decide(scope: Scope, receive: Receive, send: Send, services: Any) -> None:  # noqa: ANN401 - the app's Services
    http = cast("HTTPScope", scope)
    headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in http["headers"]}
    access: SiteAccess = services.access
    hot: HotPath = services.hot
    origin = headers.get("origin")
    method = http["method"]
    if method == "OPTIONS":
        if origin is None or not await access.origin_known(origin, deadline=hot.deadline()):
            raise Forbidden(f"The origin {origin!r} is not one of any site's origins.")
        await send_answer(send, 204, b"", preflight_headers(origin, "POST"))
        return
    if method != "POST":
        raise MethodNotAllowedException(headers={"Allow": "POST, OPTIONS"})
    require_json(headers.get("content-type"))
    body = await read_body(receive, headers.get("content-length"), limit=MAX_DECIDE_BYTES)
    data = decode_strict(body, DecideIn)
    deadline = hot.deadline()
    site = await access.caller_site(bearer(headers.get("authorization")), deadline=deadline)
    deciding: DecideService = services.decide
    decision = await deciding.decide(
        data,
        pass_header=headers.get(PASS_HEADER),
        caller_site=site,
        origin=origin,
        user_agent=headers.get("user-agent"),
        request_ip=client_ip(scope),
        deadline=deadline,
    )
    note_site(scope, data.site)
    answer_headers = cors_headers(origin if site is None else None)
    answer_headers["Cache-Control"] = "no-store"
    answer_headers["Content-Type"] = "application/json"
    await send_answer(send, 200, _encode(decision), answer_headers)


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
    site: SitePath,
    data: JSONBody[ReportIn],
    request: AnyRequest,
    access: NamedDependency[SiteAccess],
    reports: NamedDependency[ReportService],
    hot: NamedDependency[HotPath],
) -> Response[None]:
    """Kept for the site's admins and counted in ``false_positive_reports``."""
    headers = await _admit(site, request, access, hot)
    await reports.add(site, data, user_agent=request.headers.get("user-agent"), client_ip=client_ip(request.scope))
    return Response(None, status_code=202, headers=headers)


@route("/v1/sites/{site:str}/reports", http_method=HttpMethod.OPTIONS, include_in_schema=False)
async def report_preflight(site: SitePath, request: AnyRequest, access: NamedDependency[SiteAccess]) -> Response[None]:
    """CORS for browsers on the site's own origins."""
    return await _site_preflight(site, request, access)


@post(
    "/v1/sites/{site:str}/events",
    dto=Body[EventIn],
    return_dto=None,
    status_code=204,
    request_max_body_size=MAX_DECIDE_BYTES,
    cache_control=_NO_STORE,
    summary="Count what a reader did after the wall: re-checked, allowlisted, clicked support or sign-in, closed a nag",
)
async def count_event(
    site: SitePath,
    data: JSONBody[EventIn],
    request: AnyRequest,
    access: NamedDependency[SiteAccess],
    events: NamedDependency[EventService],
    hot: NamedDependency[HotPath],
) -> Response[None]:
    """Adds one to the site's counter for the event today (``GET /v1/admin/stats``); keeps nothing of the reader."""
    headers = await _admit(site, request, access, hot)
    await events.add(site, data.event, client_ip=client_ip(request.scope))
    return Response(None, status_code=204, headers=headers)


@route("/v1/sites/{site:str}/events", http_method=HttpMethod.OPTIONS, include_in_schema=False)
async def event_preflight(site: SitePath, request: AnyRequest, access: NamedDependency[SiteAccess]) -> Response[None]:
    """CORS for browsers on the site's own origins."""
    return await _site_preflight(site, request, access)


async def _admit(site: str, request: AnyRequest, access: SiteAccess, hot: HotPath) -> dict[str, str]:
    """Check a caller of ``site``'s browser routes (its key, or one of its origins); the answer's CORS headers."""
    deadline = hot.deadline()
    key_site = await access.caller_site(bearer(request.headers.get("authorization")), deadline=deadline)
    origin = request.headers.get("origin")
    await access.site_for(site, caller_site=key_site, origin=origin, deadline=deadline)
    return cors_headers(origin if key_site is None else None)


async def _site_preflight(site: str, request: AnyRequest, access: SiteAccess) -> Response[None]:
    """The CORS preflight of ``site``'s POST routes: allowed from its own origins only."""
    origin = request.headers.get("origin")
    if origin is None:
        raise Forbidden("A CORS preflight comes with an Origin; this one has none.")
    await access.site_for(site, caller_site=None, origin=origin)
    return preflight(origin, "POST")


def _gate_url(request: AnyRequest) -> str:
    public_url: str = request.app.state.settings.public_url
    return public_url.rstrip("/")


@get(
    "/{site:str}/gate.js",
    summary="The gate's client script for a site",
    description=(
        "Detects an ad blocker, asks the extension for a pass, calls decide and applies the answer. "
        "Each encoding (gzip or none) has its own `ETag`; a request whose `If-None-Match` names it gets 304."
    ),
    media_type=_JS,
    cache_control=None,
    responses={
        304: ResponseSpec(
            None,
            description=(
                "`If-None-Match` names the script's current `ETag` (or is `*`): the cached copy is current. "
                "No body; the same `ETag`, `Cache-Control` and `Vary` as a 200."
            ),
        )
    },
)
async def gate_script(
    site: SitePath,
    access: NamedDependency[SiteAccess],
    request: AnyRequest,
    if_none_match: Annotated[
        str | None,
        HeaderParameter(name="If-None-Match", description="ETags of copies the client holds; a match answers 304."),
    ] = None,
) -> Response[bytes]:
    """``gate.js`` with the site and gate built in; gzipped when asked, with an ETag and a 5-minute cache.

    The gate built in is the site's first-party URL when its policy has one: every request the
    script makes then goes to the site's own origin.
    """
    found = await access.current(site)
    script = script_for(site, gate_base(found.policy, _gate_url(request)))
    gzipped = accepts_gzip(request.headers.get("accept-encoding"))
    body, etag = (script.gzipped, script.gzipped_etag) if gzipped else (script.body, script.etag)
    headers = {**_SCRIPT_HEADERS, "ETag": etag, "Cache-Control": "public, max-age=300", "Vary": "Accept-Encoding"}
    if etag_matches(if_none_match, etag):
        return Response(b"", status_code=304, headers=headers, media_type=_JS)
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    return Response(body, headers=headers, media_type=_JS)


@get("/{site:str}/probe.js", summary="Detection control: an innocuous script", media_type=_JS, cache_control=None)
async def control_script(site: SitePath, access: NamedDependency[SiteAccess]) -> Response[bytes]:
    """Sets ``window.supportgateControl``; no filter list blocks it."""
    await access.current(site)
    return Response(CONTROL_SCRIPT, headers=_NO_STORE_SCRIPT, media_type=_JS)


@get(
    "/{site:str}/ads/show.js", summary="Detection bait: a script filter lists block", media_type=_JS, cache_control=None
)
async def bait_script(site: SitePath, access: NamedDependency[SiteAccess]) -> Response[bytes]:
    """Sets ``window.supportgateBait``; EasyList blocks this URL (rule ``/ads/show.``)."""
    await access.current(site)
    return Response(BAIT_SCRIPT, headers=_NO_STORE_SCRIPT, media_type=_JS)


@get("/{site:str}/interstitial", summary="The wall, in the reader's language", media_type=_HTML, cache_control=None)
async def interstitial(
    site: SitePath,
    access: NamedDependency[SiteAccess],
    request: AnyRequest,
    lang: LangQuery = None,
    fragment: Annotated[bool, QueryParameter(description="Return the dialog alone, for gate.js.")] = False,
) -> Response[str]:
    """The wall as a page, or with ``fragment=1`` the dialog alone; any origin may fetch it."""
    found = await access.current(site)
    language, tag = negotiate_language(lang, request.headers.get("accept-language"))
    page = render_interstitial(found, tag, fragment=fragment, gate_url=_gate_url(request))
    headers = {
        "Content-Language": language,
        "Vary": "Accept-Language",
        "Cache-Control": "public, max-age=60",
        "Access-Control-Allow-Origin": "*",
        "X-Content-Type-Options": "nosniff",
    }
    return Response(page, headers=headers, media_type=_HTML)


@get(
    "/{site:str}/about",
    summary="A site's public name, logo and support page",
    description=(
        "For the extension's popup and the install page: how to name a site to a reader. Public,"
        " readable from any origin (`Access-Control-Allow-Origin: *`), cacheable for 5 minutes."
    ),
    cache_control=None,
)
async def site_about(site: SitePath, access: NamedDependency[SiteAccess]) -> Response[SiteAbout]:
    """The site's name, logo and support URL; 404 when there is no such site."""
    found = await access.current(site)
    about = SiteAbout(
        id=found.id, name=found.name, logo_url=found.policy.theme.logo_url, support_url=found.policy.support_url
    )
    return Response(about, headers=_PUBLIC_ABOUT)


gate_assets_router = Router(
    path="/v1/sites",
    route_handlers=[gate_script, control_script, bait_script, interstitial, site_about],
    tags=["gate: assets"],
)


PAGE_VIEW_ENDPOINTS: Final[dict[str, ASGIApp]] = {"/v1/decide": decide.fn, FORWARD_AUTH_PATH: forward_auth.fn}
"""The plain ASGI endpoints every page view calls, by path: the app answers them before its router
(:func:`supportgate.http.fast_paths.fast_paths`); their routes here document them."""

gate_router = Router(
    path="/",
    # Each preflight handler before its POST: registered after it, Litestar's own OPTIONS handler,
    # added to a path that has none yet, would answer instead.
    route_handlers=[decide, forward_auth, report_preflight, report_false_positive, event_preflight, count_event],
    tags=["gate"],
)
