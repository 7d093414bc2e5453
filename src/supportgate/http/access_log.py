"""The access log: one JSON line per request on the ``supportgate.access`` logger, as plain ASGI.

A line names the route as written in the code (``/v1/sites/{site}/reports``), never the path a
client sent, so it holds no query string, token, code or address by construction; nor does it
copy any header but a well-formed ``X-Request-ID``.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import re
import sys
import threading
import time
from datetime import UTC, datetime
from time import perf_counter
from typing import Any, Final, cast

import msgspec
from litestar.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["ACCESS_LOGGER", "access_logged", "flush_access_log", "log_access_to_stdout", "note_site"]

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
            if _direct is not None:
                _direct.line(_line(scope, status, perf_counter() - started))
            elif log.isEnabledFor(logging.INFO):
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


class _BatchedStdout(logging.Handler):
    """Access lines to standard output in batches, flushed every half second and when the app stops.

    ``serve``'s access lines skip the logging machinery (a record, a lock, a formatter and a
    ``write`` system call per request cost more than the rest of a ``/healthz`` answer): they are
    kept in a list and written together by a thread of the process, started in each process that
    logs (Granian forks its workers after the app is imported). Anything else logged to the access
    logger through ``logging`` goes out the same way.
    """

    FLUSH_EVERY = 0.5

    def __init__(self) -> None:
        super().__init__()
        self._pending: list[bytes] = []
        self._swap = threading.Lock()
        self._flushing = False
        self.supportgate_access = True  # marks the handler added here
        os.register_at_fork(after_in_child=self._forked)

    def line(self, line: bytes) -> None:
        """Queue one line (without its newline)."""
        with self._swap:
            self._pending.append(line)
        if not self._flushing:
            self._flushing = True
            threading.Thread(target=self._flush_often, name="access-log-flush", daemon=True).start()
            atexit.register(self.flush)

    def _forked(self) -> None:
        """In a forked worker: no flushing thread yet, and none of the parent's lines to write again."""
        self._pending = []
        self._swap = threading.Lock()
        self._flushing = False

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.line(self.format(record).encode())
        except Exception:  # noqa: BLE001 - logging's own rule: a failing handler reports and goes on
            self.handleError(record)

    def flush(self) -> None:
        with self._swap:
            pending, self._pending = self._pending, []
        if pending:
            sys.stdout.buffer.write(b"\n".join(pending) + b"\n")
            sys.stdout.buffer.flush()

    def _flush_often(self) -> None:
        while True:
            time.sleep(self.FLUSH_EVERY)
            self.flush()


_direct: _BatchedStdout | None = None
"""The handler ``serve`` writes its access lines to directly, when it is the logger's only one."""


def log_access_to_stdout() -> None:
    """Send the access lines, bare, to standard output (``serve``), apart from the other logs."""
    global _direct  # noqa: PLW0603 - one handler per process, set once at start
    log = logging.getLogger(ACCESS_LOGGER)
    if not any(getattr(handler, "supportgate_access", False) for handler in log.handlers):
        handler = _BatchedStdout()
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    only = log.handlers[0] if len(log.handlers) == 1 else None
    _direct = only if isinstance(only, _BatchedStdout) else None


def flush_access_log() -> None:
    """Write the access lines still queued in this process now (the app is stopping).

    A Granian worker can end without running ``atexit`` handlers, and the lines of its last half
    second went with it: the app's shutdown writes them instead.
    """
    for handler in logging.getLogger(ACCESS_LOGGER).handlers:
        if isinstance(handler, _BatchedStdout):
            handler.flush()
