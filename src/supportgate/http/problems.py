"""Rendering every error as RFC 9457 ``application/problem+json``: the app's exception handlers."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import Send

from supportgate.errors import BadRequest, Problem, StoreUnavailable, validation_detail
from supportgate.http.asgi import send_answer
from supportgate.http.body import require_json
from supportgate.store import STORE_ERRORS

__all__ = ["PROBLEM_JSON", "exception_handlers", "problem_response", "send_problem"]

PROBLEM_JSON = "application/problem+json"
_log = logging.getLogger("supportgate.errors")


def problem_response(problem: Problem) -> Response[dict[str, Any]]:
    """Render a problem as an HTTP response."""
    return Response(
        content=problem.body(),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers={"Cache-Control": "no-store", **problem.headers},
    )


async def send_problem(send: Send, problem: Problem) -> None:
    """Answer with ``problem`` on a plain ASGI ``send``, as :func:`problem_response` would."""
    headers = {"Content-Type": PROBLEM_JSON, "Cache-Control": "no-store", **problem.headers}
    await send_answer(send, problem.status, msgspec.json.encode(problem.body()), headers)


def _on_problem(_: Request[Any, Any, Any], exc: Problem) -> Response[dict[str, Any]]:
    return problem_response(exc)


def _on_validation(request: Request[Any, Any, Any], exc: ValidationException) -> Response[dict[str, Any]]:
    errors = exc.extra if isinstance(exc.extra, list) else []
    if any(isinstance(err, dict) and err.get("source") == "body" and err.get("key") == "data" for err in errors):
        # Litestar does not decode an empty body, so it never reaches the media type check.
        try:
            require_json(request.headers.get("content-type"))
        except Problem as problem:
            return problem_response(problem)
        return problem_response(BadRequest("The request has no body; send a JSON object.", title="Invalid request"))
    fields = [_describe(err) for err in errors if isinstance(err, dict)]
    detail = "; ".join(fields) if fields else validation_detail(exc.detail)
    refused = BadRequest(detail, title="Invalid request")
    if errors:
        refused.extra["errors"] = errors
    return problem_response(refused)


def _on_http(_: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    status = exc.status_code
    problem = Problem(
        validation_detail(exc.detail) or HTTPStatus(status).phrase,
        slug=HTTPStatus(status).name.lower().replace("_", "-"),
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
    message = validation_detail(str(err.get("message", "invalid value")))
    key = err.get("key")
    if key and key != "data" and f"`{key}`" not in message and f"$.{key}" not in message:
        return f"{key}: {message}"
    return message


exception_handlers: dict[type[Exception] | int, Any] = {
    Problem: _on_problem,
    ValidationException: _on_validation,
    HTTPException: _on_http,
    **dict.fromkeys(STORE_ERRORS, _on_store),
    Exception: _on_unexpected,
}
"""The app's exception handlers: everything leaves as problem+json, never a traceback."""
