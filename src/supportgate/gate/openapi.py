"""Putting the plain ASGI endpoints (decide, forward-auth) into the OpenAPI schema like any other route."""

from __future__ import annotations

import functools
from typing import Annotated, Final, get_args

from litestar import Litestar, get, post
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.spec import OpenAPIHeader, OpenAPIResponse, OpenAPIType, PathItem, Schema
from litestar.params import CookieParameter, HeaderParameter, JSONBody

from supportgate.gate.forward_auth import (
    FORWARD_AUTH_PATH,
    SITE_HEADER,
    VISITOR_COOKIE,
    VISITOR_MAX_AGE,
)
from supportgate.gate.schemas import ADBLOCK_COOKIE, DecideIn, Decision, Reason

__all__ = ["document_decide", "document_forward_auth"]


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


def document_forward_auth(app: Litestar) -> None:
    """Add ``GET /v1/forward-auth`` (plain ASGI, like decide) to the app's OpenAPI schema."""
    openapi = app.openapi_schema
    openapi.paths = {**(openapi.paths or {}), FORWARD_AUTH_PATH: _forward_auth_openapi()}


_DECISION_HEADERS: Final = {
    "Supportgate-Decision": OpenAPIHeader(
        schema=Schema(type=OpenAPIType.STRING, enum=["allow", "nag", "wall"]),
        required=True,
        description="The decision, for the proxy to pass on to the site's backend.",
    ),
    "Supportgate-Reason": OpenAPIHeader(
        schema=Schema(type=OpenAPIType.STRING, enum=list(get_args(Reason))),
        required=True,
        description="The rule that decided (docs/gate.md).",
    ),
}
_SET_VISITOR: Final = OpenAPIHeader(
    schema=Schema(type=OpenAPIType.STRING),
    description=(
        f"`{VISITOR_COOKIE}=<id>; Path=/; Max-Age={VISITOR_MAX_AGE}; HttpOnly; SameSite=Lax` (plus `Secure` when "
        "`X-Forwarded-Proto` is `https`): a new visitor id, when the meter counted a view of a reader who had none. "
        "The proxy passes it on to the reader."
    ),
)


@functools.cache
def _forward_auth_openapi() -> PathItem:
    """Forward-auth's path item, as Litestar documents a GET handler taking the same headers and cookies."""

    @get(
        FORWARD_AUTH_PATH,
        tags=["gate"],
        summary="Decide on a page a reverse proxy is about to serve: 200 to serve it, 403 for the wall",
        description=(
            "For nginx `auth_request`, Caddy `forward_auth` and Traefik `forwardAuth` (docs/proxy.md). The site's "
            "key and id come in headers the proxy adds, the page in `X-Original-URI` (nginx) or `X-Forwarded-Uri` "
            "(Caddy, Traefik; one of the two is required), and the reader's own `Cookie` (`sg_adblock`, "
            "`sg_visitor`), `Supportgate-Pass` and `User-Agent` as the proxy passes them on. The client address is "
            "the request's peer, or whom a proxy in `SUPPORTGATE_TRUSTED_PROXIES` forwarded for. The rules are "
            "decide's. The body is decide's answer.\n\n"
            "A store that does not answer in time lets the page through: 200 with reason `store_unavailable`, "
            "never 503. The key is checked before anything else, so a wrong key is 401 whatever else was sent; "
            "nginx's `auth_request` answers the reader 401 too, so a misconfigured key shows on the first page "
            "view. A site deleted in the last 5 seconds, while its key is still cached, is 404 "
            "(`There is no site '…'.`); once the cache is stale, its revoked key is 401."
        ),
        responses={
            403: ResponseSpec(Decision, description="A wall: the proxy shows the wall instead of the page."),
        },
        response_description="Allow or nag: the proxy serves the page.",
        security=[{"SiteKey": []}],
    )
    async def forward_auth_contract(
        site: Annotated[
            str,
            HeaderParameter(
                name=SITE_HEADER,
                pattern=r"^[a-z0-9-]{1,64}$",
                description="The site's id; the key must be this site's (otherwise 401).",
            ),
        ],
        original_uri: Annotated[
            str | None,
            HeaderParameter(
                name="X-Original-URI",
                pattern="^/",
                description="nginx: the page's URI (`$request_uri`); cut to 2,000 characters.",
            ),
        ] = None,
        forwarded_uri: Annotated[
            str | None,
            HeaderParameter(
                name="X-Forwarded-Uri",
                pattern="^/",
                description="Caddy, Traefik: the page's URI, when `X-Original-URI` is absent; cut to 2,000 characters.",
            ),
        ] = None,
        supporter_pass: Annotated[
            str | None,
            HeaderParameter(
                name="Supportgate-Pass",
                required=False,
                description="The reader's pass, as the extension sends it; a bad one leaves the reader anonymous.",
            ),
        ] = None,
        adblock: Annotated[
            str | None,
            CookieParameter(
                name=ADBLOCK_COOKIE,
                required=False,
                description="What `gate.js` found: `blocked`, `clear` or `inconclusive`; any other value is `unknown`.",
            ),
        ] = None,
        visitor: Annotated[
            str | None,
            CookieParameter(
                name=VISITOR_COOKIE,
                required=False,
                description="The reader's visitor id for the meter; one not of 8-64 of `A-Za-z0-9_-` is replaced.",
            ),
        ] = None,
    ) -> Decision:
        raise NotImplementedError  # documentation only: never routed

    spec = Litestar([forward_auth_contract], openapi_config=OpenAPIConfig(title="forward-auth", version="1"))
    schema = spec.openapi_schema
    assert schema.paths is not None
    path_item = schema.paths[FORWARD_AUTH_PATH]
    assert path_item.get is not None
    assert path_item.get.responses is not None
    for status in ("200", "403"):
        response = path_item.get.responses[status]
        assert isinstance(response, OpenAPIResponse)
        response.headers = {**_DECISION_HEADERS, "Set-Cookie": _SET_VISITOR}
    return path_item
