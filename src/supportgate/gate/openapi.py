"""Putting ``POST /v1/decide``, a plain ASGI endpoint, into the OpenAPI schema like any other route."""

from __future__ import annotations

import functools

from litestar import Litestar, post
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.spec import PathItem, Schema
from litestar.params import JSONBody

from supportgate.gate.schemas import DecideIn, Decision

__all__ = ["document_decide"]


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
