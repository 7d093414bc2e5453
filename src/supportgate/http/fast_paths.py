"""The page-view endpoints, answered before Litestar's router and middleware.

Every page view calls decide, or forward-auth behind a reverse proxy. Both are plain ASGI functions
that read their own body and write their own answer, and neither uses anything the framework
adds on the way: routing, the exception middleware, the request deadline (they keep their own)
and the HTML page headers (they answer JSON or nothing). Under Granian that way still cost about as
much CPU as the decision itself (bench/README.md). So this wrapper, outside the app's own stack,
sends exactly their paths to them and every other request on to Litestar.

They stay registered as Litestar routes, which document them in the OpenAPI schema. An error they
raise is rendered by the app's own exception handlers, as Litestar would render it, so an answer
is the same whichever way the request went.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

from litestar import Request, Response
from litestar.types import ASGIApp, Receive, Scope, Send

__all__ = ["ExceptionHandlers", "fast_paths"]

ExceptionHandlers = Mapping[type[Exception] | int, Callable[[Request[Any, Any, Any], Any], Response[Any]]]
"""The app's exception handlers, by exception class (the nearest in the class's MRO is used)."""


def fast_paths(app: ASGIApp, routes: Mapping[str, ASGIApp], handlers: ExceptionHandlers) -> ASGIApp:
    """``app``, with requests for exactly the paths in ``routes`` sent straight to their functions.

    ``app`` is the Litestar app's ``asgi_handler``: the app has already put itself in the scope.
    """

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = routes.get(scope["path"]) if scope["type"] == "http" else None  # type: ignore[comparison-overlap]  # lifespan scopes pass here too
        if endpoint is None:
            await app(scope, receive, send)
            return
        # The access log names the route as Litestar's router would have.
        cast("dict[str, Any]", scope)["path_template"] = scope["path"]
        try:
            await endpoint(scope, receive, send)
        except Exception as exc:  # noqa: BLE001 - every error leaves as problem+json, as through Litestar
            await _render(exc, handlers, scope, receive, send)

    return dispatch


async def _render(exc: Exception, handlers: ExceptionHandlers, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer with the app's exception handler for ``exc`` (the endpoints raise before they answer)."""
    handler = _handler_for(exc, handlers)
    if handler is None:
        raise exc
    request: Request[Any, Any, Any] = Request(scope, receive, send)
    response = handler(request, exc)
    await response.to_asgi_response(app=None, request=request)(scope, receive, send)


def _handler_for(
    exc: Exception, handlers: ExceptionHandlers
) -> Callable[[Request[Any, Any, Any], Any], Response[Any]] | None:
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and status in handlers:
        return handlers[status]
    for kind in type(exc).__mro__:
        if kind in handlers:
            return handlers[kind]
    return None
