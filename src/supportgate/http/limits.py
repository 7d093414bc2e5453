"""Request targets and headers too large to read: 414 and 431 as problem+json, before routing.

Granian answers first, with an empty body, for what it will not parse at all: a request target
of 64 KiB or more (414), more than 100 headers, or a request head over its read buffer (about
400 KiB; 431). The app never sees those. Below that it sees everything, and these limits make it
answer with a problem document instead of routing what no route takes.
"""

from __future__ import annotations

from typing import Final

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

from supportgate.errors import HeadersTooLarge, UriTooLong
from supportgate.http.problems import send_problem

__all__ = ["MAX_HEADER_BYTES", "MAX_TARGET_BYTES", "limit_request_head"]

MAX_TARGET_BYTES: Final = 8 * 1024
"""The longest path and query string read; longer ones get 414."""
MAX_HEADER_BYTES: Final = 64 * 1024
"""The most header bytes (names, values and their separators) read; more get 431."""


def limit_request_head(app: ASGIApp) -> ASGIApp:
    """``app`` behind the limits: HTTP requests over them are answered here and never reach it."""

    async def limited(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            raw_path = scope.get("raw_path")
            target = (len(raw_path) if raw_path else len(scope["path"])) + len(scope["query_string"])
            if target > MAX_TARGET_BYTES:
                await send_problem(
                    send, UriTooLong(f"The path and query are {target} bytes; at most {MAX_TARGET_BYTES} are read.")
                )
                return
            size = sum(len(name) + len(value) + 4 for name, value in scope["headers"])
            if size > MAX_HEADER_BYTES:
                detail = (
                    f"The headers are {size} bytes; at most {MAX_HEADER_BYTES} are read: send fewer or smaller ones."
                )
                await send_problem(send, HeadersTooLarge(detail))
                return
        await app(scope, receive, send)

    return limited
