"""CORS for browsers on a site's own origins: the answer headers and the preflight."""

from __future__ import annotations

from litestar import Response

__all__ = ["cors_headers", "preflight", "preflight_headers"]

_PREFLIGHT_MAX_AGE = "600"


def cors_headers(origin: str | None) -> dict[str, str]:
    """``Vary: Origin``, and the origin allowed back when a browser was let in by it."""
    if origin is None:
        return {"Vary": "Origin"}
    return {"Vary": "Origin", "Access-Control-Allow-Origin": origin}


def preflight_headers(origin: str, methods: str) -> dict[str, str]:
    """The headers of a preflight answer for ``origin``: no credentials, the pass header allowed."""
    return {
        **cors_headers(origin),
        "Access-Control-Allow-Methods": methods,
        "Access-Control-Allow-Headers": "Content-Type, Supportgate-Pass",
        "Access-Control-Max-Age": _PREFLIGHT_MAX_AGE,
    }


def preflight(origin: str, methods: str) -> Response[None]:
    """The answer to a CORS preflight from an allowed origin: no credentials."""
    return Response(None, status_code=204, headers=preflight_headers(origin, methods))
