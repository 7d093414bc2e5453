"""Admin authentication: ``Authorization: Bearer <admin key>`` on every admin route."""

from __future__ import annotations

from litestar.connection import ASGIConnection
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from supportgate.errors import Unauthorized
from supportgate.services import Services

__all__ = ["AdminAuth", "bearer", "bearer_token"]


def bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer …`` header value, if it is one."""
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def bearer_token(connection: ASGIConnection) -> str | None:  # type: ignore[type-arg]
    """The token of the request's ``Authorization: Bearer`` header, if there is one."""
    return bearer(connection.headers.get("authorization"))


class AdminAuth(AbstractAuthenticationMiddleware):
    """Sets ``request.user`` to the admin key used, or answers 401."""

    async def authenticate_request(self, connection: ASGIConnection) -> AuthenticationResult:  # type: ignore[type-arg]
        """Check the bearer key against the stored admin keys."""
        token = bearer_token(connection)
        if token is None:
            raise Unauthorized("This endpoint needs an admin key: send 'Authorization: Bearer <admin key>'.")
        services: Services = connection.app.state.services
        key = await services.api_keys.check("admin", token)
        if key is None:
            raise Unauthorized("The admin key is not valid: it is unknown, revoked or mistyped.")
        return AuthenticationResult(user=key, auth=token)
