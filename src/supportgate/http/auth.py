"""Bearer credentials: the one parser of ``Authorization: Bearer <token>``."""

from __future__ import annotations

from litestar.connection import ASGIConnection

__all__ = ["bearer", "bearer_token"]


def bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer …`` header value, if it is one."""
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def bearer_token(connection: ASGIConnection) -> str | None:  # type: ignore[type-arg]
    """The token of the request's ``Authorization: Bearer`` header, if there is one."""
    return bearer(connection.headers.get("authorization"))
