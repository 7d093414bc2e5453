"""Routes for readers and their extension: sign-in, refresh, /v1/me, passes, and the JWKS."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, Router, delete, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody, PathParameter

from supportgate.errors import Unauthorized
from supportgate.http.auth import access_token, dpop_proof
from supportgate.http.body import Body
from supportgate.http.client import client_ip
from supportgate.metrics import Metrics
from supportgate.readers.codes import SignInCodes
from supportgate.readers.dpop import DpopProofs
from supportgate.readers.passes import PassService
from supportgate.readers.schemas import (
    ActivateIn,
    CodeRequested,
    CodeRequestIn,
    CodeVerifyIn,
    IssuedPass,
    LogoutIn,
    Me,
    PassIn,
    RefreshIn,
    SignIn,
    TokenPair,
)
from supportgate.readers.sessions import Caller, SessionService
from supportgate.readers.signin import SignInService
from supportgate.tokens.dpop import DpopProof
from supportgate.tokens.lifetimes import JWKS_MAX_AGE
from supportgate.tokens.signing_keys import SigningKeys

__all__ = ["jwks", "readers_router"]

SessionPath = Annotated[str, PathParameter(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="A session id.")]


_JWKS_CACHE_CONTROL = f"public, max-age={int(JWKS_MAX_AGE.total_seconds())}"


ACCESS_TOKEN_SECURITY: list[dict[str, list[str]]] = [{"AccessToken": []}, {"DPoPAccessToken": []}]
"""An access token goes as ``Authorization: Bearer``, or as ``Authorization: DPoP`` with a proof when bound."""


async def provide_caller(
    request: Request[Any, Any, Any], sessions: NamedDependency[SessionService], dpop: NamedDependency[DpopProofs]
) -> Caller:
    """The signed-in supporter making the request, from ``Authorization: Bearer|DPoP <access token>``."""
    credentials = access_token(request)
    if credentials is None:
        raise Unauthorized(
            "Sign in first: send 'Authorization: Bearer <access token>', "
            "or 'Authorization: DPoP <access token>' and a DPoP proof for a session bound to a key."
        )
    scheme, token = credentials
    proof = dpop.check(dpop_proof(request), method=request.method, path=request.url.path, access_token=token)
    return await sessions.authenticate(token, dpop=scheme == "DPoP", proof=proof)


async def provide_proof(request: Request[Any, Any, Any], dpop: NamedDependency[DpopProofs]) -> DpopProof | None:
    """The request's verified DPoP proof (one that goes with no access token), or None if it sent none."""
    return dpop.check(dpop_proof(request), method=request.method, path=request.url.path)


class AuthController(Controller):
    """Signing in and out."""

    path = "/v1/auth"
    tags = ("auth",)
    dependencies = {"proof": Provide(provide_proof)}  # noqa: RUF012 - Litestar's controller attribute

    @post("/code/request", dto=Body[CodeRequestIn], return_dto=None, status_code=202, summary="Email a sign-in code")
    async def request_code(
        self,
        data: JSONBody[CodeRequestIn],
        codes: NamedDependency[SignInCodes],
        request: Request[Any, Any, Any],
        metrics: NamedDependency[Metrics],
    ) -> CodeRequested:
        with metrics.signin("code_request"):
            await codes.request(data.email, site=data.site, client_ip=client_ip(request.scope), lang=data.lang)
        return CodeRequested()

    @post("/code/verify", dto=Body[CodeVerifyIn], return_dto=None, status_code=200, summary="Sign in with the code")
    async def verify_code(
        self,
        data: JSONBody[CodeVerifyIn],
        signin: NamedDependency[SignInService],
        request: Request[Any, Any, Any],
        proof: NamedDependency[DpopProof | None],
        metrics: NamedDependency[Metrics],
    ) -> SignIn:
        with metrics.signin("code_verify"):
            return await signin.sign_in_with_code(
                data.email,
                data.code,
                device=data.device,
                end_sessions=data.end_sessions,
                client_ip=client_ip(request.scope),
                proof=proof,
            )

    @post(
        "/activate", dto=Body[ActivateIn], return_dto=None, status_code=200, summary="Sign in with an activation code"
    )
    async def activate(
        self,
        data: JSONBody[ActivateIn],
        signin: NamedDependency[SignInService],
        request: Request[Any, Any, Any],
        proof: NamedDependency[DpopProof | None],
        metrics: NamedDependency[Metrics],
    ) -> SignIn:
        with metrics.signin("activation"):
            return await signin.activate(
                data.code,
                device=data.device,
                end_sessions=data.end_sessions,
                client_ip=client_ip(request.scope),
                proof=proof,
            )

    @post(
        "/refresh",
        dto=Body[RefreshIn],
        return_dto=None,
        status_code=200,
        summary="Trade a refresh token for a new pair",
    )
    async def refresh(
        self,
        data: JSONBody[RefreshIn],
        sessions: NamedDependency[SessionService],
        proof: NamedDependency[DpopProof | None],
        metrics: NamedDependency[Metrics],
    ) -> TokenPair:
        with metrics.refresh():
            return await sessions.refresh(data.refresh_token, request_id=data.request_id, proof=proof)

    @post("/logout", dto=Body[LogoutIn], return_dto=None, status_code=204, summary="End the session")
    async def logout(
        self,
        data: JSONBody[LogoutIn],
        sessions: NamedDependency[SessionService],
        proof: NamedDependency[DpopProof | None],
    ) -> None:
        await sessions.logout(data.refresh_token, proof=proof)


class MeController(Controller):
    """The signed-in supporter."""

    path = "/v1/me"
    tags = ("me",)
    dependencies = {"caller": Provide(provide_caller)}  # noqa: RUF012 - Litestar's controller attribute
    security = ACCESS_TOKEN_SECURITY

    @get("/", summary="Who I am: tier, entitlements, sessions")
    async def me(self, caller: NamedDependency[Caller], signin: NamedDependency[SignInService]) -> Me:
        return await signin.me(caller)

    @delete("/sessions/{session_id:str}", summary="End one of my sessions")
    async def end_session(
        self, session_id: SessionPath, caller: NamedDependency[Caller], sessions: NamedDependency[SessionService]
    ) -> None:
        await sessions.end(caller.supporter_id, session_id)


@post(
    "/v1/passes",
    dto=Body[PassIn],
    return_dto=None,
    status_code=200,
    tags=["passes"],
    summary="A pass for one site",
    dependencies={"caller": Provide(provide_caller)},
    security=ACCESS_TOKEN_SECURITY,
)
async def issue_pass(
    data: JSONBody[PassIn], caller: NamedDependency[Caller], passes: NamedDependency[PassService]
) -> IssuedPass:
    """A pass for ``site`` alone, for a signed-in supporter."""
    return await passes.issue(caller, data.site, origin=data.origin)


@get("/.well-known/jwks.json", tags=["passes"], summary="The public keys that sign passes", cache_control=None)
async def jwks(signing_keys: NamedDependency[SigningKeys]) -> Response[dict[str, Any]]:
    """The published Ed25519 keys (next, active, retiring); cacheable for five minutes."""
    return Response(
        await signing_keys.jwks(),
        headers={"Cache-Control": _JWKS_CACHE_CONTROL, "Access-Control-Allow-Origin": "*"},
    )


readers_router = Router(path="/", route_handlers=[AuthController, MeController, issue_pass, jwks])
