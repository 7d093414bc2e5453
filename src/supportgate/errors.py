"""The service's exceptions and their RFC 9457 ``application/problem+json`` rendering."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any, ClassVar

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from redis.exceptions import BusyLoadingError, ReadOnlyError
from redis.exceptions import ConnectionError as StoreConnectionError
from redis.exceptions import TimeoutError as StoreTimeoutError

from supportgate.errors_base import InvalidToken, SupportgateError

__all__ = [
    "BadRequest",
    "Conflict",
    "Forbidden",
    "InvalidToken",
    "NotFound",
    "PayloadTooLarge",
    "Problem",
    "SettingsError",
    "StoreUnavailable",
    "SupportgateError",
    "TooManyRequests",
    "Unauthorized",
    "exception_handlers",
]

PROBLEM_JSON = "application/problem+json"
_log = logging.getLogger("supportgate.errors")


class SettingsError(SupportgateError):
    """A setting is missing or wrong; the message names the variable."""


class Problem(SupportgateError):
    """An error a client caused or must know about, rendered as problem+json."""

    status: int = 400
    """HTTP status of the response."""
    slug: str = "bad-request"
    """Short machine-readable name, the tail of the problem ``type`` URI."""
    default_headers: ClassVar[dict[str, str]] = {}
    """Headers every response of this kind carries."""

    def __init__(
        self,
        detail: str,
        *,
        title: str | None = None,
        slug: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: object,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.title = title or HTTPStatus(self.status).phrase
        if slug is not None:
            self.slug = slug
        self.headers = {**self.default_headers, **(headers or {})}
        self.extra = extra

    def body(self) -> dict[str, Any]:
        """The problem document."""
        return {
            "type": f"urn:supportgate:problem:{self.slug}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            **self.extra,
        }


class BadRequest(Problem):
    """The request is well-formed JSON but breaks a rule (400)."""

    status = 400
    slug = "invalid-request"


class Unauthorized(Problem):
    """No credentials, or wrong ones (401)."""

    status = 401
    slug = "unauthorized"
    default_headers: ClassVar[dict[str, str]] = {"WWW-Authenticate": 'Bearer realm="supportgate"'}


class Forbidden(Problem):
    """Credentials are fine but do not allow this (403)."""

    status = 403
    slug = "forbidden"


class NotFound(Problem):
    """The named thing does not exist (404)."""

    status = 404
    slug = "not-found"


class Conflict(Problem):
    """The change clashes with what is stored (409)."""

    status = 409
    slug = "conflict"


class PayloadTooLarge(Problem):
    """The body is over the limit (413)."""

    status = 413
    slug = "payload-too-large"


class TooManyRequests(Problem):
    """A rate limit was hit (429); ``retry_after`` seconds until the next try may pass."""

    status = 429
    slug = "rate-limited"

    def __init__(self, detail: str, *, retry_after: int, **extra: object) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))})
        self.extra.update(extra)


class StoreUnavailable(Problem):
    """The store did not answer in time (503)."""

    status = 503
    slug = "store-unavailable"
    default_headers: ClassVar[dict[str, str]] = {"Retry-After": "1"}

    def __init__(self, detail: str = "The store did not answer; try again shortly.") -> None:
        super().__init__(detail)


def problem_response(problem: Problem) -> Response[dict[str, Any]]:
    """Render a problem as an HTTP response."""
    return Response(
        content=problem.body(),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers={"Cache-Control": "no-store", **problem.headers},
    )


def _on_problem(_: Request[Any, Any, Any], exc: Problem) -> Response[dict[str, Any]]:
    return problem_response(exc)


def _on_validation(_: Request[Any, Any, Any], exc: ValidationException) -> Response[dict[str, Any]]:
    errors = exc.extra if isinstance(exc.extra, list) else []
    fields = [_describe(err) for err in errors if isinstance(err, dict)]
    detail = "; ".join(fields) if fields else _clean(exc.detail)
    return problem_response(BadRequest(detail, title="Invalid request", errors=errors or None))


def _on_http(_: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    status = exc.status_code
    problem = Problem(
        _clean(exc.detail) or HTTPStatus(status).phrase, slug=HTTPStatus(status).name.lower().replace("_", "-")
    )
    problem.status = status
    problem.title = HTTPStatus(status).phrase
    if status == 413:
        problem.detail = "The request body is larger than this endpoint accepts."
    problem.headers.update(exc.headers or {})
    return problem_response(problem)


def _on_store(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    _log.warning("store unavailable during %s %s: %s", request.method, request.url.path, exc)
    return problem_response(StoreUnavailable())


def _on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    _log.exception("unexpected error during %s %s", request.method, request.url.path, exc_info=exc)
    problem = Problem("The service failed to handle this request; it has been logged.", slug="internal-error")
    problem.status = 500
    problem.title = HTTPStatus.INTERNAL_SERVER_ERROR.phrase
    return problem_response(problem)


def _describe(err: dict[str, Any]) -> str:
    message = _clean(str(err.get("message", "invalid value")))
    key = err.get("key")
    if key and key != "data" and f"`{key}`" not in message and f"$.{key}" not in message:
        return f"{key}: {message}"
    return message


def _clean(text: str) -> str:
    """Make msgspec's messages read well: ``Expected int, got str - at $.a`` → ``$.a: expected int, got str``."""
    message, sep, where = text.partition(" - at `")
    if sep:
        return f"{where.rstrip('`')}: {message[:1].lower()}{message[1:]}"
    return text


exception_handlers: dict[type[Exception] | int, Any] = {
    Problem: _on_problem,
    ValidationException: _on_validation,
    HTTPException: _on_http,
    StoreConnectionError: _on_store,
    StoreTimeoutError: _on_store,
    BusyLoadingError: _on_store,
    ReadOnlyError: _on_store,
    Exception: _on_unexpected,
}
"""The app's exception handlers: everything leaves as problem+json, never a traceback."""
