"""Admin authentication: ``Authorization: Bearer <admin key>`` on every admin route."""

from __future__ import annotations

from litestar.connection import ASGIConnection
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from supportgate.catalog.api_keys import ApiKeys
from supportgate.errors import Unauthorized
from supportgate.http.auth import bearer_token

__all__ = ["AdminAuth"]


class AdminAuth(AbstractAuthenticationMiddleware):
    """Sets ``request.user`` to the admin key used, or answers 401."""

    async def authenticate_request(self, connection: ASGIConnection) -> AuthenticationResult:  # type: ignore[type-arg]
        """Check the bearer key against the stored admin keys."""
        token = bearer_token(connection)
        if token is None:
            raise Unauthorized("This endpoint needs an admin key: send 'Authorization: Bearer <admin key>'.")
        api_keys: ApiKeys = connection.app.state.services.api_keys
        key = await api_keys.check("admin", token)
        if key is None:
            raise Unauthorized("The admin key is not valid: it is unknown, revoked or mistyped.")
        return AuthenticationResult(user=key, auth=token)
