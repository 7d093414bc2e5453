"""The admin API's routes: parse, call a service, return. Rules live in the services."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Router, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromQuery, JSONBody, PathParameter, QueryParameter

from supportgate.admin.auth import AdminAuth
from supportgate.admin.keys import ValidKey
from supportgate.admin.schemas import (
    AuditPage,
    KeyCreated,
    RotateIn,
    Site,
    SiteIn,
    SitePatch,
    Slug,
    Supporter,
    SupporterIn,
    SupporterPage,
    SupporterPatch,
    SupporterStatus,
    Tier,
    TierIn,
    TierPatch,
)
from supportgate.admin.signing import KeySet
from supportgate.dto import Body
from supportgate.gate.controllers import GateAdminController
from supportgate.readers.codes import ActivationCode
from supportgate.services import Services

__all__ = ["admin_router"]

AdminRequest = Request[ValidKey, str, Any]
IdPath = Annotated[
    str,
    PathParameter(pattern=r"^[a-z0-9-]{1,64}$", description="An id: 1 to 64 lowercase letters, digits or '-'."),
]
Limit = Annotated[int, QueryParameter(ge=1, le=200, description="How many items per page (1 to 200).")]


def items(values: list[Any]) -> dict[str, list[Any]]:
    """``{"items": [...]}``: the shape of a listing that is not paginated."""
    return {"items": values}


class TierController(Controller):
    """Supporter tiers."""

    path = "/tiers"
    tags = ("admin: tiers",)

    @post("/", dto=Body[TierIn], return_dto=None, summary="Create a tier")
    async def create_tier(
        self, data: JSONBody[TierIn], services: NamedDependency[Services], request: AdminRequest
    ) -> Tier:
        return await services.tiers.create(data, actor=request.user.actor)

    @get("/", summary="List tiers")
    async def list_tiers(self, services: NamedDependency[Services]) -> dict[str, list[Tier]]:
        return items(await services.tiers.list())

    @get("/{tier_id:str}", summary="Get a tier")
    async def get_tier(self, tier_id: IdPath, services: NamedDependency[Services]) -> Tier:
        return await services.tiers.get(tier_id)

    @patch("/{tier_id:str}", dto=Body[TierPatch], return_dto=None, summary="Change a tier")
    async def update_tier(
        self, tier_id: IdPath, data: JSONBody[TierPatch], services: NamedDependency[Services], request: AdminRequest
    ) -> Tier:
        return await services.tiers.update(tier_id, data, actor=request.user.actor)

    @delete("/{tier_id:str}", summary="Delete a tier (409 while it has supporters, unless move_to)")
    async def delete_tier(
        self,
        tier_id: IdPath,
        services: NamedDependency[Services],
        request: AdminRequest,
        move_to: Annotated[Slug | None, QueryParameter(description="Move the tier's supporters here first.")] = None,
    ) -> None:
        await services.tiers.delete(tier_id, move_to=move_to, actor=request.user.actor)


class SupporterController(Controller):
    """Supporters."""

    path = "/supporters"
    tags = ("admin: supporters",)

    @post("/", dto=Body[SupporterIn], return_dto=None, summary="Grant supporter status")
    async def create_supporter(
        self, data: JSONBody[SupporterIn], services: NamedDependency[Services], request: AdminRequest
    ) -> Supporter:
        return await services.supporters.create(data, actor=request.user.actor)

    @get("/", summary="List supporters, newest first")
    async def list_supporters(
        self,
        *,
        services: NamedDependency[Services],
        tier: FromQuery[Slug | None] = None,
        status: FromQuery[SupporterStatus | None] = None,
        q: Annotated[str | None, QueryParameter(max_length=254, description="Part of the email or note.")] = None,
        limit: Limit = 50,
        cursor: Annotated[str | None, QueryParameter(max_length=400)] = None,
    ) -> SupporterPage:
        return await services.supporters.page(tier=tier, status=status, q=q, limit=limit, cursor=cursor)

    @get("/{supporter_id:str}", summary="Get a supporter")
    async def get_supporter(self, supporter_id: IdPath, services: NamedDependency[Services]) -> Supporter:
        return await services.supporters.get(supporter_id)

    @patch("/{supporter_id:str}", dto=Body[SupporterPatch], return_dto=None, summary="Change a supporter")
    async def update_supporter(
        self,
        supporter_id: IdPath,
        data: JSONBody[SupporterPatch],
        services: NamedDependency[Services],
        request: AdminRequest,
    ) -> Supporter:
        return await services.supporters.update(supporter_id, data, actor=request.user.actor)

    @delete("/{supporter_id:str}", summary="Revoke a supporter, or erase them with forget=true")
    async def delete_supporter(
        self,
        supporter_id: IdPath,
        services: NamedDependency[Services],
        request: AdminRequest,
        forget: Annotated[
            bool, QueryParameter(description="Erase the person's data (GDPR) instead of revoking.")
        ] = False,
    ) -> None:
        if forget:
            await services.supporters.forget(supporter_id, actor=request.user.actor)
        else:
            await services.supporters.revoke(supporter_id, actor=request.user.actor)

    @post("/{supporter_id:str}/activation-codes", summary="Make a one-time activation code (valid 7 days)")
    async def create_activation_code(
        self, supporter_id: IdPath, services: NamedDependency[Services], request: AdminRequest
    ) -> ActivationCode:
        return await services.activation.create(supporter_id, actor=request.user.actor)

    @delete("/{supporter_id:str}/sessions", summary="Sign a supporter out everywhere")
    async def end_sessions(
        self, supporter_id: IdPath, services: NamedDependency[Services], request: AdminRequest
    ) -> None:
        await services.supporters.get(supporter_id)
        ended = await services.sessions.end_all(supporter_id)
        await services.supporters.note(
            supporter_id, action="supporter.sign-out", actor=request.user.actor, detail={"sessions_ended": len(ended)}
        )


class SiteController(Controller):
    """Sites and their API keys."""

    path = "/sites"
    tags = ("admin: sites",)

    @post("/", dto=Body[SiteIn], return_dto=None, summary="Create a site")
    async def create_site(
        self, data: JSONBody[SiteIn], services: NamedDependency[Services], request: AdminRequest
    ) -> Site:
        return await services.sites.create(data, actor=request.user.actor)

    @get("/", summary="List sites")
    async def list_sites(self, services: NamedDependency[Services]) -> dict[str, list[Site]]:
        return items(await services.sites.list())

    @get("/{site_id:str}", summary="Get a site")
    async def get_site(self, site_id: IdPath, services: NamedDependency[Services]) -> Site:
        return await services.sites.get(site_id)

    @patch("/{site_id:str}", dto=Body[SitePatch], return_dto=None, summary="Change a site or its policy")
    async def update_site(
        self, site_id: IdPath, data: JSONBody[SitePatch], services: NamedDependency[Services], request: AdminRequest
    ) -> Site:
        return await services.sites.update(site_id, data, actor=request.user.actor)

    @post("/{site_id:str}/keys", summary="Make a site API key (shown once)")
    async def create_site_key(
        self, site_id: IdPath, services: NamedDependency[Services], request: AdminRequest
    ) -> KeyCreated:
        return await services.api_keys.create("site", name=site_id, site=site_id, actor=request.user.actor)


class SigningKeyController(Controller):
    """The keys that sign access tokens and passes."""

    path = "/keys"
    tags = ("admin: signing keys",)

    @get("/", summary="The signing keys and their states")
    async def list_keys(self, services: NamedDependency[Services]) -> KeySet:
        return await services.key_admin.describe()

    @post("/rotate", dto=Body[RotateIn], return_dto=None, status_code=200, summary="Rotate the signing keys")
    async def rotate_keys(
        self, data: JSONBody[RotateIn], services: NamedDependency[Services], request: AdminRequest
    ) -> KeySet:
        return await services.key_admin.rotate(force=data.force, actor=request.user.actor)


@get("/audit", tags=["admin: audit"], summary="The admin writes, newest first")
async def list_audit(
    services: NamedDependency[Services],
    limit: Limit = 50,
    cursor: Annotated[str | None, QueryParameter(max_length=400)] = None,
) -> AuditPage:
    return await services.audit.page(limit=limit, cursor=cursor)


admin_router = Router(
    path="/v1/admin",
    route_handlers=[
        TierController,
        SupporterController,
        SiteController,
        SigningKeyController,
        GateAdminController,
        list_audit,
    ],
    middleware=[AdminAuth],
    security=[{"AdminKey": []}],
)
