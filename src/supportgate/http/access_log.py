"""The access log: one JSON line per request on the ``supportgate.access`` logger, as plain ASGI.

A line names the route as written in the code (``/v1/sites/{site}/reports``), never the path a
client sent, so it holds no query string, token, code or address by construction; nor does it
copy any header but a well-formed ``X-Request-ID``.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
import time
from datetime import UTC, datetime
from time import perf_counter
from typing import Any, Final, cast

import msgspec
from litestar.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["ACCESS_LOGGER", "access_logged", "log_access_to_stdout", "note_site"]

ACCESS_LOGGER: Final = "supportgate.access"
"""The logger every access line goes to, at INFO."""

_SITE: Final = "supportgate.site"
"""The scope key a plain ASGI route (decide) notes its site under, once the site was found."""
_SITE_PARAMS: Final = ("site", "site_id")
_REQUEST_ID: Final = re.compile(rb"[A-Za-z0-9._:-]{1,64}")
_encode = msgspec.json.Encoder().encode


def note_site(scope: Scope, site: str) -> None:
    """Name in the access line the site a route that takes it from its body found (decide)."""
    cast("dict[str, Any]", scope)[_SITE] = site


def access_logged(app: ASGIApp) -> ASGIApp:
    """``app``, writing one access line per HTTP request once it has answered."""
    log = logging.getLogger(ACCESS_LOGGER)

    async def logged(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # type: ignore[comparison-overlap]  # lifespan scopes pass here too
            await app(scope, receive, send)
            return
        started = perf_counter()
        status = 500  # what the server answers for an app that fails before answering

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await app(scope, receive, sending)
        finally:
            if log.isEnabledFor(logging.INFO):
                # Logger.info would also walk the stack for the caller's file and line, a third of
                # the cost of a line; an access line has no caller worth naming.
                line = _line(scope, status, perf_counter() - started).decode()
                log.handle(log.makeRecord(ACCESS_LOGGER, logging.INFO, __name__, 0, line, (), None))

    return logged


def _line(scope: Scope, status: int, seconds: float) -> bytes:
    raw = cast("dict[str, Any]", scope)
    template = raw.get("path_template")
    line: dict[str, object] = {
        "time": _now(),
        "method": raw.get("method"),
        "route": _route(template) if isinstance(template, str) else None,
        "status": status,
        "duration_ms": round(seconds * 1000, 2),
    }
    site = raw.get(_SITE)
    if site is None and status < 400:  # a path's site is named once the route found it
        params = raw.get("path_params")
        if params:
            site = next((params[name] for name in _SITE_PARAMS if isinstance(params.get(name), str)), None)
    if site is not None:
        line["site"] = site
    for name, value in raw["headers"]:
        if name == b"x-request-id":
            if _REQUEST_ID.fullmatch(value):
                line["request_id"] = value.decode("ascii")
            break
    return _encode(line)


@functools.cache
def _route(template: str) -> str:
    """A matched route's template with its parameters' types left out: ``/v1/sites/{site}/reports``."""
    return re.sub(r"\{(\w+):[^}]*\}", r"{\1}", template)


def _now() -> str:
    """Now, UTC, to the millisecond: ``2026-12-01T19:36:01.421Z``."""
    now = time.time()
    second = int(now)
    return f"{_second(second)}.{int((now - second) * 1000):03d}Z"


@functools.lru_cache(maxsize=2)
def _second(second: int) -> str:
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def log_access_to_stdout() -> None:
    """Send the access lines, bare, to standard output (``serve``), apart from the other logs."""
    log = logging.getLogger(ACCESS_LOGGER)
    if not any(getattr(handler, "supportgate_access", False) for handler in log.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler.supportgate_access = True  # type: ignore[attr-defined]  # marks the handler added here
        log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
