"""Where a request came from: the one place every feature asks for the client's address."""

from __future__ import annotations

from litestar.types import Scope

__all__ = ["client_ip"]


def client_ip(scope: Scope) -> str:
    """The address the request came from (the connection's peer), for rate limits and crawler ranges."""
    client = scope.get("client")
    return client[0] if client else "unknown"
