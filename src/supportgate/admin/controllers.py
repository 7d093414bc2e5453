"""The admin API's routes: parse, call a service, return. Rules live in the services."""

from __future__ import annotations

import contextlib
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from litestar import Controller, Request, Router, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromQuery, JSONBody, PathParameter, QueryParameter

from supportgate.admin.auth import AdminAuth
from supportgate.admin.schemas import RotateIn
from supportgate.admin.supporter_csv import SupporterCsvController
from supportgate.catalog.api_keys import ApiKeys, ValidKey
from supportgate.catalog.audit import AuditLog
from supportgate.catalog.key_rotation import KeyRotation, KeySet
from supportgate.catalog.schemas import (
    AuditPage,
    KeyCreated,
    KeyInfo,
    Site,
    SiteIn,
    SiteKeyIn,
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
    TierWritten,
)
from supportgate.catalog.sites import SiteService
from supportgate.catalog.supporters import SupporterService
from supportgate.catalog.tiers import TierService, with_warnings
from supportgate.errors import BadRequest
from supportgate.gate.reports import ReportService
from supportgate.gate.schemas import Report, Stats
from supportgate.gate.stats import MAX_RANGE_DAYS, StatsBuffer
from supportgate.http.body import Body
from supportgate.http.params import SitePath
from supportgate.http.query import refuse_unknown_query
from supportgate.readers.codes import ActivationCodes
from supportgate.readers.schemas import ActivationCode
from supportgate.readers.sessions import SessionService

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


def day_param(name: str, value: str | None) -> date | None:
    """A ``YYYY-MM-DD`` query parameter as a date; BadRequest naming it otherwise."""
    if value is None:
        return None
    if len(value) == len("2026-11-24"):  # fromisoformat alone would also take 20261124
        with contextlib.suppress(ValueError):
            return date.fromisoformat(value)
    raise BadRequest(f"{name}: {value!r} is not a day such as 2026-11-24")


def time_param(name: str, value: str | None) -> datetime | None:
    """An RFC 3339 time with an offset as a query parameter; BadRequest naming it otherwise."""
    if value is None:
        return None
    with contextlib.suppress(ValueError):
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        if parsed.tzinfo is not None and "T" in value.upper():
            return parsed
    raise BadRequest(f"{name}: {value!r} is not an RFC 3339 time with an offset such as 2026-11-24T12:00:00Z")


class TierController(Controller):
    """Supporter tiers."""

    path = "/tiers"
    tags = ("admin: tiers",)

    @post("/", dto=Body[TierIn], return_dto=None, summary="Create a tier")
    async def create_tier(
        self,
        data: JSONBody[TierIn],
        tiers: NamedDependency[TierService],
        sites: NamedDependency[SiteService],
        request: AdminRequest,
    ) -> TierWritten:
        """The tier, with `warnings` when its entitlements unlock none of the sites (a typo, often)."""
        return with_warnings(await tiers.create(data, actor=request.user.actor), await sites.list())

    @get("/", summary="List tiers")
    async def list_tiers(self, tiers: NamedDependency[TierService]) -> dict[str, list[Tier]]:
        return items(await tiers.list())

    @get("/{tier_id:str}", summary="Get a tier")
    async def get_tier(self, tier_id: IdPath, tiers: NamedDependency[TierService]) -> Tier:
        return await tiers.get(tier_id)

    @patch("/{tier_id:str}", dto=Body[TierPatch], return_dto=None, summary="Change a tier")
    async def update_tier(
        self,
        tier_id: IdPath,
        data: JSONBody[TierPatch],
        tiers: NamedDependency[TierService],
        sites: NamedDependency[SiteService],
        request: AdminRequest,
    ) -> TierWritten:
        """The tier, with `warnings` when its entitlements unlock none of the sites (a typo, often)."""
        return with_warnings(await tiers.update(tier_id, data, actor=request.user.actor), await sites.list())

    @delete("/{tier_id:str}", summary="Delete a tier (409 while it has supporters, unless move_to)")
    async def delete_tier(
        self,
        tier_id: IdPath,
        tiers: NamedDependency[TierService],
        request: AdminRequest,
        move_to: Annotated[Slug | None, QueryParameter(description="Move the tier's supporters here first.")] = None,
    ) -> None:
        await tiers.delete(tier_id, move_to=move_to, actor=request.user.actor)


class SupporterController(Controller):
    """Supporters."""

    path = "/supporters"
    tags = ("admin: supporters",)

    @post("/", dto=Body[SupporterIn], return_dto=None, summary="Grant supporter status")
    async def create_supporter(
        self, data: JSONBody[SupporterIn], supporters: NamedDependency[SupporterService], request: AdminRequest
    ) -> Supporter:
        return await supporters.create(data, actor=request.user.actor)

    @get("/", summary="List supporters, newest first")
    async def list_supporters(
        self,
        *,
        supporters: NamedDependency[SupporterService],
        tier: FromQuery[Slug | None] = None,
        status: FromQuery[SupporterStatus | None] = None,
        q: Annotated[str | None, QueryParameter(max_length=254, description="Part of the email or note.")] = None,
        limit: Limit = 50,
        cursor: Annotated[str | None, QueryParameter(max_length=400)] = None,
    ) -> SupporterPage:
        return await supporters.page(tier=tier, status=status, q=q, limit=limit, cursor=cursor)

    @get("/{supporter_id:str}", summary="Get a supporter")
    async def get_supporter(self, supporter_id: IdPath, supporters: NamedDependency[SupporterService]) -> Supporter:
        return await supporters.get(supporter_id)

    @patch("/{supporter_id:str}", dto=Body[SupporterPatch], return_dto=None, summary="Change a supporter")
    async def update_supporter(
        self,
        supporter_id: IdPath,
        data: JSONBody[SupporterPatch],
        supporters: NamedDependency[SupporterService],
        request: AdminRequest,
    ) -> Supporter:
        return await supporters.update(supporter_id, data, actor=request.user.actor)

    @delete("/{supporter_id:str}", summary="Revoke a supporter, or erase them with forget=true")
    async def delete_supporter(
        self,
        supporter_id: IdPath,
        supporters: NamedDependency[SupporterService],
        request: AdminRequest,
        forget: Annotated[
            bool, QueryParameter(description="Erase the person's data (GDPR) instead of revoking.")
        ] = False,
    ) -> None:
        if forget:
            await supporters.forget(supporter_id, actor=request.user.actor)
        else:
            await supporters.revoke(supporter_id, actor=request.user.actor)

    @post("/{supporter_id:str}/activation-codes", summary="Make a one-time activation code (valid 7 days)")
    async def create_activation_code(
        self, supporter_id: IdPath, activation: NamedDependency[ActivationCodes], request: AdminRequest
    ) -> ActivationCode:
        return await activation.create(supporter_id, actor=request.user.actor)

    @delete("/{supporter_id:str}/sessions", summary="Sign a supporter out everywhere")
    async def end_sessions(
        self,
        supporter_id: IdPath,
        supporters: NamedDependency[SupporterService],
        sessions: NamedDependency[SessionService],
        request: AdminRequest,
    ) -> None:
        await supporters.get(supporter_id)
        ended = await sessions.end_all(supporter_id)
        await supporters.note(
            supporter_id, action="supporter.sign-out", actor=request.user.actor, detail={"sessions_ended": len(ended)}
        )


class SiteController(Controller):
    """Sites and their API keys."""

    path = "/sites"
    tags = ("admin: sites",)

    @post("/", dto=Body[SiteIn], return_dto=None, summary="Create a site")
    async def create_site(
        self, data: JSONBody[SiteIn], sites: NamedDependency[SiteService], request: AdminRequest
    ) -> Site:
        return await sites.create(data, actor=request.user.actor)

    @get("/", summary="List sites")
    async def list_sites(self, sites: NamedDependency[SiteService]) -> dict[str, list[Site]]:
        return items(await sites.list())

    @get("/{site_id:str}", summary="Get a site")
    async def get_site(self, site_id: IdPath, sites: NamedDependency[SiteService]) -> Site:
        return await sites.get(site_id)

    @patch("/{site_id:str}", dto=Body[SitePatch], return_dto=None, summary="Change a site or its policy")
    async def update_site(
        self, site_id: IdPath, data: JSONBody[SitePatch], sites: NamedDependency[SiteService], request: AdminRequest
    ) -> Site:
        return await sites.update(site_id, data, actor=request.user.actor)

    @delete("/{site_id:str}", summary="Delete a site: its keys revoked, its stats and reports deleted")
    async def delete_site(self, site_id: IdPath, sites: NamedDependency[SiteService], request: AdminRequest) -> None:
        """The gate stops deciding for the site within its cache's lifetime (5 s)."""
        await sites.delete(site_id, actor=request.user.actor)

    @post("/{site_id:str}/keys", dto=Body[SiteKeyIn], return_dto=None, summary="Make a site API key (shown once)")
    async def create_site_key(
        self,
        site_id: IdPath,
        api_keys: NamedDependency[ApiKeys],
        request: AdminRequest,
        data: JSONBody[SiteKeyIn | None] = None,
    ) -> KeyCreated:
        """The body is optional: without a `name`, the key is named after the site."""
        name = data.name if data is not None and data.name is not None else site_id
        return await api_keys.create("site", name=name, site=site_id, actor=request.user.actor)

    @get("/{site_id:str}/keys", summary="List a site's API keys (never their secrets)")
    async def list_site_keys(self, site_id: IdPath, api_keys: NamedDependency[ApiKeys]) -> dict[str, list[KeyInfo]]:
        return items(await api_keys.list("site", site=site_id))

    @delete("/{site_id:str}/keys/{key_id:str}", summary="Revoke a site API key")
    async def revoke_site_key(
        self, site_id: IdPath, key_id: IdPath, api_keys: NamedDependency[ApiKeys], request: AdminRequest
    ) -> None:
        """The gate refuses the key (401) within its cache's lifetime (5 s)."""
        await api_keys.revoke("site", key_id, site=site_id, actor=request.user.actor)


class AdminKeyController(Controller):
    """The admin API keys."""

    path = "/keys"
    tags = ("admin: admin keys",)

    @get("/", summary="List the admin keys (never their secrets)")
    async def list_admin_keys(self, api_keys: NamedDependency[ApiKeys]) -> dict[str, list[KeyInfo]]:
        return items(await api_keys.list("admin"))

    @delete("/{key_id:str}", summary="Revoke an admin key (409 for the last one)")
    async def revoke_admin_key(self, key_id: IdPath, api_keys: NamedDependency[ApiKeys], request: AdminRequest) -> None:
        """The key answers 401 from the next request on."""
        await api_keys.revoke("admin", key_id, actor=request.user.actor)

    @post(
        "/rotate",
        dto=Body[RotateIn],
        return_dto=None,
        status_code=200,
        tags=["admin: signing keys"],
        deprecated=True,
        summary="Rotate the signing keys (the older path of POST /v1/admin/signing-keys/rotate)",
    )
    async def rotate_keys_old_path(
        self, data: JSONBody[RotateIn], key_rotation: NamedDependency[KeyRotation], request: AdminRequest
    ) -> KeySet:
        return await key_rotation.rotate(force=data.force, actor=request.user.actor)


class SigningKeyController(Controller):
    """The keys that sign access tokens and passes."""

    path = "/signing-keys"
    tags = ("admin: signing keys",)

    @get("/", summary="The signing keys and their states")
    async def list_keys(self, key_rotation: NamedDependency[KeyRotation]) -> KeySet:
        return await key_rotation.describe()

    @post("/rotate", dto=Body[RotateIn], return_dto=None, status_code=200, summary="Rotate the signing keys")
    async def rotate_keys(
        self, data: JSONBody[RotateIn], key_rotation: NamedDependency[KeyRotation], request: AdminRequest
    ) -> KeySet:
        return await key_rotation.rotate(force=data.force, actor=request.user.actor)


class GateAdminController(Controller):
    """What the gate saw: counters per day, and false-positive reports."""

    path = "/"
    tags = ("admin: gate",)

    @get("/stats", summary="A site's counters, or all sites' summed, per day and in total")
    async def get_stats(
        self,
        sites: NamedDependency[SiteService],
        stats: NamedDependency[StatsBuffer],
        site: Annotated[
            str | None,
            QueryParameter(pattern=r"^[a-z0-9-]{1,64}$", description="The site's id (default: all sites, summed)."),
        ] = None,
        from_date: Annotated[
            str | None,
            QueryParameter(
                name="from",
                max_length=10,
                description="First day, YYYY-MM-DD (default: days - 1 days before to).",
                schema_extra={"format": "date"},
            ),
        ] = None,
        to_date: Annotated[
            str | None,
            QueryParameter(
                name="to",
                max_length=10,
                description="Last day, YYYY-MM-DD (default: today, UTC).",
                schema_extra={"format": "date"},
            ),
        ] = None,
        days: Annotated[
            int | None,
            QueryParameter(
                ge=1,
                le=MAX_RANGE_DAYS,
                description="How many days, ending with to (default 30): 7, 30 and 90 for the console's views.",
            ),
        ] = None,
    ) -> Stats:
        """Every day of the range (at most 400), zeros included, and the totals; 400 for a bad range."""
        first, last = day_param("from", from_date), day_param("to", to_date)
        if days is not None:
            if first is not None:
                raise BadRequest("from, days: give the first day or the number of days, not both")
            first = (last or stats.today()) - timedelta(days=days - 1)
        if site is None:
            return await stats.read_all([found.id for found in await sites.list()], first, last)
        await sites.get(site)
        return await stats.read(site, first, last)

    @get("/sites/{site_id:str}/reports", summary="A site's latest false-positive reports, newest first")
    async def list_reports(
        self,
        site_id: SitePath,
        sites: NamedDependency[SiteService],
        reports: NamedDependency[ReportService],
        limit: Annotated[int, QueryParameter(ge=1, le=1000, description="How many (1 to 1000).")] = 100,
    ) -> dict[str, list[Report]]:
        """The latest of the 1,000 kept: when, which path, the User-Agent and the probes' signals."""
        await sites.get(site_id)
        return {"items": await reports.latest(site_id, limit)}


_Exact = Annotated[str | None, QueryParameter(min_length=1, max_length=200, description="Matches exactly.")]
_Time = Annotated[
    str | None,
    QueryParameter(
        max_length=40, description="RFC 3339 time with an offset (included).", schema_extra={"format": "date-time"}
    ),
]


@get("/audit", tags=["admin: audit"], summary="The admin writes, newest first")
async def list_audit(
    audit: NamedDependency[AuditLog],
    limit: Limit = 50,
    cursor: Annotated[str | None, QueryParameter(max_length=400)] = None,
    action: _Exact = None,
    actor: _Exact = None,
    target: _Exact = None,
    since: _Time = None,
    until: _Time = None,
) -> AuditPage:
    """Filters combine; a filtered page may be shorter than `limit`: follow `next_cursor` while it is not null."""
    first, last = time_param("since", since), time_param("until", until)
    return await audit.page(
        limit=limit, cursor=cursor, action=action, actor=actor, target=target, since=first, until=last
    )


admin_router = Router(
    path="/v1/admin",
    route_handlers=[
        TierController,
        SupporterController,
        SupporterCsvController,
        SiteController,
        AdminKeyController,
        SigningKeyController,
        GateAdminController,
        list_audit,
    ],
    middleware=[AdminAuth],
    before_request=refuse_unknown_query,
    security=[{"AdminKey": []}],
)
