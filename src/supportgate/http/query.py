"""Refusing query parameters an operation does not take: a typo in a filter must not be ignored.

A router (the admin API) sets :func:`refuse_unknown_query` as its ``before_request`` hook: the
query parameters a handler declares (by their names on the wire, aliases included) are read off
its signature once, and a request naming any other answers 400 naming it, before anything runs.
"""

from __future__ import annotations

import weakref
from typing import Any, cast

from litestar import Request
from litestar.handlers import HTTPRouteHandler

from supportgate.errors import BadRequest

__all__ = ["refuse_unknown_query"]

_declared: weakref.WeakKeyDictionary[HTTPRouteHandler, frozenset[str]] = weakref.WeakKeyDictionary()
"""The query parameter names of each handler seen (forgotten with the app that holds the handler)."""


def _query_names(handler: HTTPRouteHandler, path_parameters: set[str]) -> frozenset[str]:
    known = _declared.get(handler)
    if known is None:
        # Only the names of the path parameters matter here (they are not query parameters).
        model = handler.create_kwargs_model(path_parameters=cast("dict[str, Any]", dict.fromkeys(path_parameters)))
        known = frozenset(param.field_alias for param in model.expected_query_params)
        _declared[handler] = known
    return known


async def refuse_unknown_query(request: Request[Any, Any, Any]) -> None:
    """Answer 400 naming the first query parameter the operation does not declare.

    Raises:
        BadRequest: if the request's query names a parameter the handler does not take.
    """
    handler = request.route_handler
    if not isinstance(handler, HTTPRouteHandler):
        return
    query = request.query_params
    if not query:
        return
    known = _query_names(handler, set(request.path_params))
    unknown = sorted(name for name in query if name not in known)
    if unknown:
        accepted = ", ".join(sorted(known)) or "none"
        raise BadRequest(
            f"{unknown[0]}: this operation takes no such query parameter (it takes: {accepted}).",
            errors=[{"key": name, "source": "query", "message": "unknown parameter"} for name in unknown],
        )
