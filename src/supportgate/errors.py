"""Every exception supportgate raises on purpose, and nothing else.

No web framework and no store client here: the domain modules raise these, and only
:mod:`supportgate.http.problems` turns them into ``application/problem+json`` responses.
:class:`InvalidToken` (and its reasons, :data:`TokenFailure`) is the one of the
``supportgate-verify`` distribution, re-exported: the gate and a site's offline ``PassVerifier``
raise the same class, so ``except InvalidToken`` catches both. It is not a
:class:`SupportgateError`, since that package imports nothing from supportgate.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, ClassVar

from supportgate_verify.errors import InvalidToken, TokenFailure

__all__ = [
    "BadRequest",
    "Conflict",
    "Forbidden",
    "HeadersTooLarge",
    "InvalidDpopProof",
    "InvalidToken",
    "MailQueueFull",
    "NotFound",
    "PayloadTooLarge",
    "Problem",
    "SealingError",
    "SettingsError",
    "StoreUnavailable",
    "SupportgateError",
    "TokenFailure",
    "TooManyRequests",
    "Unauthorized",
    "UnsupportedMediaType",
    "UriTooLong",
    "validation_detail",
]


class SupportgateError(Exception):
    """Base of every error supportgate raises on purpose."""


class SettingsError(SupportgateError):
    """A setting is missing or wrong; the message names the variable."""


class MailQueueFull(SupportgateError):
    """The mail queue holds as many mails as it may; this one was not queued. Callers decide what to tell whom."""


class SealingError(SupportgateError):
    """A secret in the store does not open under the master key: another key sealed it, or it was altered."""


class Problem(SupportgateError):
    """An error a client caused or must know about, rendered as problem+json (RFC 9457)."""

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


class InvalidDpopProof(Unauthorized):
    """A DPoP proof (RFC 9449) is missing, malformed, replayed, or does not fit the request or the session (401)."""

    slug = "invalid-dpop-proof"
    default_headers: ClassVar[dict[str, str]] = {"WWW-Authenticate": 'DPoP algs="ES256", error="invalid_dpop_proof"'}

    def __init__(self, detail: str) -> None:
        super().__init__(detail, title="Invalid DPoP proof")


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


class UriTooLong(Problem):
    """The request's path and query are longer than the service reads (414)."""

    status = 414
    slug = "uri-too-long"


class UnsupportedMediaType(Problem):
    """The body is not in the media type the endpoint takes (415)."""

    status = 415
    slug = "unsupported-media-type"


class TooManyRequests(Problem):
    """A rate limit was hit (429); ``retry_after`` seconds until the next try may pass."""

    status = 429
    slug = "rate-limited"

    def __init__(self, detail: str, *, retry_after: int, **extra: object) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))})
        self.extra.update(extra)


class HeadersTooLarge(Problem):
    """The request's headers are larger than the service reads (431)."""

    status = 431
    slug = "headers-too-large"


class StoreUnavailable(Problem):
    """The store did not answer in time (503)."""

    status = 503
    slug = "store-unavailable"
    default_headers: ClassVar[dict[str, str]] = {"Retry-After": "1"}

    def __init__(self, detail: str = "The store did not answer; try again shortly.") -> None:
        super().__init__(detail)


def validation_detail(message: str, *, root: str = "$") -> str:
    """A msgspec message that reads well: ``Expected int, got str - at `$.a``` → ``$.a: expected int, got str``.

    ``root`` names what ``$`` stands for when the document was part of a larger one (``policy``);
    a message about the whole document is then put under it. With the default root, a message with
    no location is returned as it came.
    """
    text, sep, where = message.partition(" - at `")
    if not sep and root == "$":
        return message
    path = where.rstrip("`") or "$"
    if root != "$":
        path = root + path.removeprefix("$")
    return f"{path}: {text[:1].lower()}{text[1:]}"
