"""Routes for readers and their extension: sign-in, refresh, /v1/me, passes, and the JWKS."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, Router, delete, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody, PathParameter
from litestar.types import Scope

from supportgate.admin.auth import bearer_token
from supportgate.dto import Body
from supportgate.errors import Unauthorized
from supportgate.readers.passes import IssuedPass
from supportgate.readers.schemas import (
    ActivateIn,
    CodeRequested,
    CodeRequestIn,
    CodeVerifyIn,
    LogoutIn,
    Me,
    PassIn,
    RefreshIn,
    SignIn,
)
from supportgate.readers.sessions import Caller, TokenPair
from supportgate.services import Services

__all__ = ["jwks", "readers_router"]

SessionPath = Annotated[str, PathParameter(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="A session id.")]


def client_ip(scope: Scope) -> str:
    """The address the request came from (the connection's peer), for rate limits and crawler ranges."""
    client = scope.get("client")
    return client[0] if client else "unknown"


async def provide_caller(request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Caller:
    """The signed-in supporter making the request, from ``Authorization: Bearer <access token>``."""
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("Sign in first: send 'Authorization: Bearer <access token>'.")
    return await services.sessions.authenticate(token)


class AuthController(Controller):
    """Signing in and out."""

    path = "/v1/auth"
    tags = ("auth",)

    @post("/code/request", dto=Body[CodeRequestIn], return_dto=None, status_code=202, summary="Email a sign-in code")
    async def request_code(
        self, data: JSONBody[CodeRequestIn], services: NamedDependency[Services], request: Request[Any, Any, Any]
    ) -> CodeRequested:
        await services.codes.request(data.email, site=data.site, client_ip=client_ip(request.scope), lang=data.lang)
        return CodeRequested()

    @post("/code/verify", dto=Body[CodeVerifyIn], return_dto=None, status_code=200, summary="Sign in with the code")
    async def verify_code(
        self, data: JSONBody[CodeVerifyIn], services: NamedDependency[Services], request: Request[Any, Any, Any]
    ) -> SignIn:
        return await services.readers.sign_in_with_code(
            data.email,
            data.code,
            device=data.device,
            end_sessions=data.end_sessions,
            client_ip=client_ip(request.scope),
        )

    @post(
        "/activate", dto=Body[ActivateIn], return_dto=None, status_code=200, summary="Sign in with an activation code"
    )
    async def activate(
        self, data: JSONBody[ActivateIn], services: NamedDependency[Services], request: Request[Any, Any, Any]
    ) -> SignIn:
        return await services.readers.activate(
            data.code, device=data.device, end_sessions=data.end_sessions, client_ip=client_ip(request.scope)
        )

    @post(
        "/refresh",
        dto=Body[RefreshIn],
        return_dto=None,
        status_code=200,
        summary="Trade a refresh token for a new pair",
    )
    async def refresh(self, data: JSONBody[RefreshIn], services: NamedDependency[Services]) -> TokenPair:
        return await services.sessions.refresh(data.refresh_token, request_id=data.request_id)

    @post("/logout", dto=Body[LogoutIn], return_dto=None, status_code=204, summary="End the session")
    async def logout(self, data: JSONBody[LogoutIn], services: NamedDependency[Services]) -> None:
        await services.sessions.logout(data.refresh_token)


class MeController(Controller):
    """The signed-in supporter."""

    path = "/v1/me"
    tags = ("me",)
    dependencies = {"caller": Provide(provide_caller)}  # noqa: RUF012 - Litestar's controller attribute
    security = [{"AccessToken": []}]  # noqa: RUF012 - Litestar's controller attribute

    @get("/", summary="Who I am: tier, entitlements, sessions")
    async def me(self, caller: NamedDependency[Caller], services: NamedDependency[Services]) -> Me:
        return await services.readers.me(caller)

    @delete("/sessions/{session_id:str}", summary="End one of my sessions")
    async def end_session(
        self, session_id: SessionPath, caller: NamedDependency[Caller], services: NamedDependency[Services]
    ) -> None:
        await services.sessions.end(caller.supporter_id, session_id)


@post(
    "/v1/passes",
    dto=Body[PassIn],
    return_dto=None,
    status_code=200,
    tags=["passes"],
    summary="A pass for one site",
    dependencies={"caller": Provide(provide_caller)},
    security=[{"AccessToken": []}],
)
async def issue_pass(
    data: JSONBody[PassIn], caller: NamedDependency[Caller], services: NamedDependency[Services]
) -> IssuedPass:
    """A pass for ``site`` alone, for a signed-in supporter."""
    return await services.passes.issue(caller, data.site, origin=data.origin)


@get("/.well-known/jwks.json", tags=["passes"], summary="The public keys that sign passes", cache_control=None)
async def jwks(services: NamedDependency[Services]) -> Response[dict[str, Any]]:
    """The published Ed25519 keys (next, active, retiring); cacheable for five minutes."""
    return Response(
        await services.signing_keys.jwks(),
        headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"},
    )


readers_router = Router(path="/", route_handlers=[AuthController, MeController, issue_pass, jwks])
