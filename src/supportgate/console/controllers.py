"""The admin console's routes under ``/admin``: HTML pages and the forms they post, no API.

Every page is rendered on the server and works without JavaScript. A request without a live
console session is sent to the sign-in page (a GET) or refused with 403 (a POST); a POST whose
``csrf`` field is not its session's token is refused with 403 before its handler runs, so nothing
is written. The pages call the same services as the admin API, with the signed-in admin key as the
audit log's actor. A problem a service raises (a bad email, a taken id) is shown on the form's page
with its status, and nothing is written.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Final, TypeVar
from urllib.parse import urlencode

import msgspec
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from litestar import Request, Response, Router, get, post
from litestar.datastructures import Cookie, UploadFile
from litestar.di import NamedDependency
from litestar.enums import MediaType
from litestar.params import FromQuery, PathParameter, QueryParameter
from litestar.response import Redirect, Stream

from supportgate.catalog.api_keys import ApiKeys
from supportgate.catalog.audit import AuditLog
from supportgate.catalog.key_rotation import KeyRotation
from supportgate.catalog.policy import gate_base
from supportgate.catalog.schemas import (
    Site,
    SiteIn,
    SitePatch,
    Supporter,
    SupporterIn,
    SupporterPatch,
    SupporterStatus,
    TierIn,
    TierPatch,
)
from supportgate.catalog.sites import SiteService
from supportgate.catalog.supporter_csv import MAX_IMPORT_BYTES, ImportReport, SupporterCsv
from supportgate.catalog.supporters import SupporterService
from supportgate.catalog.tiers import TierService, with_warnings
from supportgate.console.dashboard import PERIODS, FunnelStep, build_charts, build_funnel, draw
from supportgate.console.sessions import ConsoleSession, ConsoleSessions
from supportgate.errors import BadRequest, NotFound, Problem
from supportgate.gate.messages import LANGUAGES
from supportgate.gate.stats import StatsBuffer
from supportgate.http.client import client_ip
from supportgate.readers.codes import ActivationCodes
from supportgate.readers.sessions import SessionService
from supportgate.settings import Settings

__all__ = ["CONSOLE_PATH", "SESSION_COOKIE", "console_router"]

CONSOLE_PATH: Final = "/admin"
"""Where the console lives; its cookie is scoped to this path."""
SESSION_COOKIE: Final = "sg_console"
"""The cookie that carries the console session's id."""
LOGIN_COOKIE: Final = "sg_console_login"
"""The sign-in form's own CSRF token (double submit): a sign-in only from the console's own form."""
_LOGIN_PATH: Final = f"{CONSOLE_PATH}/login"
_CSS = (Path(__file__).resolve().parent.parent / "static" / "console" / "console.css").read_bytes()
_PAGE_SIZE: Final = 25
_NO_STORE: Final = {"Cache-Control": "no-store", "Referrer-Policy": "same-origin"}
_NOTICES: Final = {
    "granted": "Supporter status granted.",
    "changed": "Saved.",
    "extended": "Support extended.",
    "revoked": "Supporter status revoked.",
    "restored": "Supporter status restored.",
    "forgotten": "The supporter's data was erased.",
    "session-ended": "The session was ended.",
    "sessions-ended": "Every session was ended.",
    "tier-created": "Tier created.",
    "site-created": "Site created.",
    "rotated": "The signing keys were rotated.",
    "site-key-revoked": "The site key was revoked.",
    "site-deleted": "The site was deleted, its keys revoked and its traffic data erased.",
    "admin-key-revoked": "The admin key was revoked.",
}
"""What a page says after a form succeeded, by the ``done`` code its redirect carries."""

AnyRequest = Request[Any, Any, Any]
_T = TypeVar("_T")
IdPath = Annotated[str, PathParameter(pattern=r"^[a-z0-9-]{1,64}$", description="An id.")]

_templates = Environment(
    loader=PackageLoader("supportgate", "templates"),
    autoescape=select_autoescape(default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _settings(request: AnyRequest) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _now(request: AnyRequest) -> datetime:
    sessions: ConsoleSessions = request.app.state.services.console_sessions
    return sessions.now()


def _session(request: AnyRequest) -> ConsoleSession:
    session: ConsoleSession = request.state.console_session
    return session


def _page(request: AnyRequest, template: str, *, status: int = 200, title: str, **context: object) -> Response[str]:
    """A console page: the layout, the signed-in session's CSRF token, the notice of a form just sent."""
    session: ConsoleSession | None = request.state.get("console_session")
    html = _templates.get_template(f"console/{template}").render(
        title=title,
        session=session,
        csrf=session.csrf if session else "",
        notice=_NOTICES.get(request.query_params.get("done", "")),
        path=request.url.path,
        **context,
    )
    return Response(html, status_code=status, media_type=MediaType.HTML, headers=_NO_STORE)


def _done(url: str, code: str) -> Redirect:
    """After a form: back to ``url`` (GET), which then says what was done."""
    separator = "&" if "?" in url else "?"
    return Redirect(f"{url}{separator}done={code}", status_code=303)


async def _guard(request: AnyRequest) -> Response[Any] | None:
    """Before every console route: a live session, and for a POST its CSRF token; else no handler runs."""
    if request.route_handler.opt.get("console_public"):
        return None
    sessions: ConsoleSessions = request.app.state.services.console_sessions
    session = await sessions.find(request.cookies.get(SESSION_COOKIE))
    if request.method == "GET":
        if session is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return Redirect(f"{CONSOLE_PATH}/login?{urlencode({'next': target})}", status_code=303)
        request.state.console_session = session
        return None
    form = await request.form()
    token = form.get("csrf")
    if session is None or not session.csrf_matches(token if isinstance(token, str) else None):
        request.state.console_session = None
        reason = (
            "Your console session has ended; sign in again."
            if session is None
            else "This form is out of date or did not come from the console (its CSRF token is not this session's)."
        )
        return _page(request, "forbidden.html", status=403, title="Refused", reason=reason)
    request.state.console_session = session
    return None


def _text(form: Any, name: str) -> str:  # noqa: ANN401 - Litestar's FormMultiDict
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _lines(value: str, separators: str = "\n") -> list[str]:
    for separator in separators[1:]:
        value = value.replace(separator, separators[0])
    return [line.strip() for line in value.split(separators[0]) if line.strip()]


def _end_of_day(value: str, field: str) -> datetime | None:
    """A form's ``YYYY-MM-DD`` as the end of that day in UTC; None for empty; BadRequest naming ``field``."""
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{field}: {value!r} is not a day such as 2027-01-31") from None
    return datetime.combine(day, time(23, 59, 59), tzinfo=UTC)


def _convert(data: dict[str, Any], kind: type[_T]) -> _T:
    """Form values as ``kind``; BadRequest naming the field that is wrong."""
    try:
        return msgspec.convert(data, kind)
    except msgspec.ValidationError as error:
        raise BadRequest(str(error).replace("$.", "")) from None


def _int(value: str, field: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise BadRequest(f"{field}: {value!r} is not a whole number") from None


async def _or_page(
    write: Callable[[], Awaitable[Response[Any]]], page: Callable[[str, int], Awaitable[Response[str]]]
) -> Response[Any]:
    """Run a form's ``write``; a problem it raises is shown on the form's ``page`` with its status."""
    try:
        return await write()
    except Problem as problem:
        return await page(problem.detail, problem.status)


# --- sign-in ---------------------------------------------------------------------------------


@get("/login", opt={"console_public": True})
async def login_page(
    request: AnyRequest, next_page: Annotated[str | None, QueryParameter(name="next", max_length=400)] = None
) -> Response[str]:
    return _login_form(request, next_page=_safe_next(next_page))


def _login_form(request: AnyRequest, *, next_page: str, error: str | None = None, status: int = 200) -> Response[str]:
    """The sign-in form with a fresh token for it, also set as a cookie only the sign-in path receives."""
    request.state.console_session = None
    token = secrets.token_urlsafe(32)
    page = _page(
        request, "login.html", status=status, title="Sign in", error=error, next_page=next_page, login_token=token
    )
    page.set_cookie(
        LOGIN_COOKIE,
        token,
        path=_LOGIN_PATH,
        max_age=3600,
        httponly=True,
        samesite="strict",
        secure=_settings(request).public_url.startswith("https://"),
    )
    return page


def _safe_next(value: str | None) -> str:
    """Where to go after sign-in: a console path only (no open redirect)."""
    if value and value.startswith(CONSOLE_PATH + "/") and not value.startswith("//") and "\\" not in value:
        return value
    return CONSOLE_PATH + "/"


@post("/login", opt={"console_public": True}, status_code=303)
async def login(request: AnyRequest, console_sessions: NamedDependency[ConsoleSessions]) -> Response[Any]:
    form = await request.form()
    next_page = _safe_next(_text(form, "next"))
    expected = request.cookies.get(LOGIN_COOKIE, "")
    presented = _text(form, "csrf")
    if not expected or not hmac.compare_digest(expected.encode(), presented.encode()):
        error = "This sign-in form is out of date or did not come from the console; here is a fresh one."
        return _login_form(request, next_page=next_page, error=error, status=403)
    try:
        signed_in = await console_sessions.sign_in(_text(form, "key"), client=client_ip(request.scope))
    except Problem as problem:
        return _login_form(request, next_page=next_page, error=problem.detail, status=problem.status)
    if signed_in is None:
        error = "That is not a valid admin key: it is unknown, revoked or mistyped."
        return _login_form(request, next_page=next_page, error=error, status=401)
    session_id, _ = signed_in
    await console_sessions.sign_out(request.cookies.get(SESSION_COOKIE))  # whatever id came with it is void
    cookie = Cookie(
        key=SESSION_COOKIE,
        value=session_id,
        path=CONSOLE_PATH,
        httponly=True,
        samesite="strict",
        secure=_settings(request).public_url.startswith("https://"),
    )
    used = Cookie(key=LOGIN_COOKIE, value="", path=_LOGIN_PATH, max_age=0, httponly=True, samesite="strict")
    return Redirect(next_page, status_code=303, cookies=[cookie, used])


@post("/logout", status_code=303)
async def logout(request: AnyRequest, console_sessions: NamedDependency[ConsoleSessions]) -> Redirect:
    await console_sessions.sign_out(request.cookies.get(SESSION_COOKIE))
    gone = Cookie(key=SESSION_COOKIE, value="", path=CONSOLE_PATH, max_age=0, httponly=True, samesite="strict")
    return Redirect(f"{CONSOLE_PATH}/login", status_code=303, cookies=[gone])


@get("/console.css", opt={"console_public": True}, media_type="text/css")
async def console_css() -> Response[bytes]:
    return Response(_CSS, media_type="text/css", headers={"Cache-Control": "public, max-age=300"})


# --- dashboard -------------------------------------------------------------------------------


@get("/")
async def dashboard(
    request: AnyRequest,
    sites: NamedDependency[SiteService],
    stats: NamedDependency[StatsBuffer],
    site: FromQuery[str | None] = None,
    days: FromQuery[int] = 30,
) -> Response[str]:
    all_sites = await sites.list()
    chosen = [found for found in all_sites if found.id == site] if site else all_sites
    if site and not chosen:
        raise NotFound(f"There is no site {site!r}.")
    period = days if days in PERIODS else 30
    today = _now(request).date()
    first = today - timedelta(days=period - 1)
    reads = [await stats.read(found.id, first, today) for found in chosen]
    charts = build_charts(reads)
    funnel: list[FunnelStep] | None = None
    if len(chosen) > 1:  # all sites: the stats' own sum, as GET /v1/admin/stats without a site answers it
        funnel = build_funnel((await stats.read_all([found.id for found in chosen], first, today)).totals)
    elif reads:
        funnel = build_funnel(reads[0].totals)
    return _page(
        request,
        "dashboard.html",
        title="Dashboard",
        sites=all_sites,
        site=site or "",
        days=period,
        periods=PERIODS,
        charts=[(chart, draw(chart)) for chart in charts],
        funnel=funnel,
        first=first,
        last=today,
    )


# --- supporters ------------------------------------------------------------------------------


@get("/supporters")
async def supporters_page(
    request: AnyRequest,
    supporters: NamedDependency[SupporterService],
    tiers: NamedDependency[TierService],
    q: FromQuery[str | None] = None,
    tier: FromQuery[str | None] = None,
    status: FromQuery[str | None] = None,
    cursor: FromQuery[str | None] = None,
) -> Response[str]:
    return await _supporters(request, supporters, tiers, q=q, tier=tier, status=status, cursor=cursor)


async def _supporters(
    request: AnyRequest,
    supporters: SupporterService,
    tiers: TierService,
    *,
    q: str | None = None,
    tier: str | None = None,
    status: str | None = None,
    cursor: str | None = None,
    error: str | None = None,
    error_status: int = 200,
    form: dict[str, str] | None = None,
    imported: ImportReport | None = None,
) -> Response[str]:
    statuses: tuple[SupporterStatus, ...] = ("active", "expired", "revoked")
    chosen_status = next((known for known in statuses if known == status), None)
    try:
        found = await supporters.page(
            tier=tier or None,
            status=chosen_status,
            q=q or None,
            limit=_PAGE_SIZE,
            cursor=cursor or None,
        )
    except Problem as problem:
        return await _supporters(request, supporters, tiers, error=problem.detail, error_status=problem.status)
    filters = {key: value for key, value in {"q": q, "tier": tier, "status": chosen_status}.items() if value}
    next_url = f"?{urlencode({**filters, 'cursor': found.next_cursor})}" if found.next_cursor else None
    return _page(
        request,
        "supporters.html",
        status=error_status,
        title="Supporters",
        page=found,
        tiers=await tiers.list(),
        statuses=statuses,
        q=q or "",
        tier=tier or "",
        status_filter=chosen_status or "",
        next_url=next_url,
        first_url="?" + urlencode(filters) if cursor else None,
        export_url="?" + urlencode(filters),
        error=error,
        form=form or {},
        imported=imported,
    )


@get("/supporters/export")
async def export_supporters(
    supporter_csv: NamedDependency[SupporterCsv],
    q: Annotated[str | None, QueryParameter(max_length=254)] = None,
    tier: FromQuery[str | None] = None,
    status: FromQuery[str | None] = None,
) -> Stream:
    """The supporters the list shows with the same filters, as the admin API's CSV export writes them."""
    statuses: tuple[SupporterStatus, ...] = ("active", "expired", "revoked")
    chosen_status = next((known for known in statuses if known == status), None)
    rows = await supporter_csv.export(tier=tier or None, status=chosen_status, q=q or None)
    return Stream(
        rows,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="supporters.csv"', **_NO_STORE},
    )


@post("/supporters/import", status_code=200, request_max_body_size=MAX_IMPORT_BYTES)
async def import_supporters(
    request: AnyRequest,
    supporters: NamedDependency[SupporterService],
    tiers: NamedDependency[TierService],
    supporter_csv: NamedDependency[SupporterCsv],
) -> Response[str]:
    """A CSV file uploaded with the form (multipart): imported, or with ``dry_run`` only counted."""
    form = await request.form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return await _supporters(
            request, supporters, tiers, error="file: choose a CSV file to import.", error_status=400
        )
    try:
        report = await supporter_csv.import_file(
            upload.file, actor=_session(request).actor, dry_run=_text(form, "dry_run") == "on"
        )
    except Problem as problem:
        return await _supporters(
            request, supporters, tiers, error=f"{upload.filename}: {problem.detail}", error_status=problem.status
        )
    finally:
        await upload.close()
    return await _supporters(request, supporters, tiers, imported=report)


@post("/supporters", status_code=303)
async def grant(
    request: AnyRequest, supporters: NamedDependency[SupporterService], tiers: NamedDependency[TierService]
) -> Response[Any]:
    form = await request.form()
    values = {name: _text(form, name) for name in ("email", "tier", "expires_at", "note")}

    async def write() -> Response[Any]:
        data = SupporterIn(
            email=values["email"],
            tier=values["tier"],
            expires_at=_end_of_day(values["expires_at"], "expires_at"),
            note=values["note"] or None,
        )
        created = await supporters.create(
            _convert(msgspec.to_builtins(data), SupporterIn), actor=_session(request).actor
        )
        return _done(f"{CONSOLE_PATH}/supporters/{created.id}", "granted")

    async def page(error: str, status: int) -> Response[str]:
        return await _supporters(request, supporters, tiers, error=error, error_status=status, form=values)

    return await _or_page(write, page)


async def _supporter(
    request: AnyRequest,
    supporter_id: IdPath,
    supporters: SupporterService,
    tiers: TierService,
    sessions: SessionService,
    *,
    error: str | None = None,
    status: int = 200,
    code: Any = None,  # noqa: ANN401 - an ActivationCode, shown once
) -> Response[str]:
    supporter = await supporters.get(supporter_id)
    return _page(
        request,
        "supporter.html",
        status=status,
        title=f"Supporter {supporter.email}",
        supporter=supporter,
        tiers=await tiers.list(),
        sessions=await sessions.list(supporter_id),
        error=error,
        code=code,
    )


@get("/supporters/{supporter_id:str}")
async def supporter_page(
    request: AnyRequest,
    supporter_id: IdPath,
    supporters: NamedDependency[SupporterService],
    tiers: NamedDependency[TierService],
    sessions: NamedDependency[SessionService],
) -> Response[str]:
    return await _supporter(request, supporter_id, supporters, tiers, sessions)


def _supporter_form(
    action: Callable[[AnyRequest, Supporter, Any], Awaitable[str]],
) -> Callable[..., Awaitable[Response[Any]]]:
    """A POST on a supporter's page: ``action`` writes and names its notice, or the page shows the problem."""

    async def handler(
        request: AnyRequest,
        supporter_id: IdPath,
        supporters: NamedDependency[SupporterService],
        tiers: NamedDependency[TierService],
        sessions: NamedDependency[SessionService],
        activation: NamedDependency[ActivationCodes],
    ) -> Response[Any]:
        services = {"supporters": supporters, "sessions": sessions, "activation": activation}

        async def write() -> Response[Any]:
            supporter = await supporters.get(supporter_id)
            done = await action(request, supporter, services)
            return _done(f"{CONSOLE_PATH}/supporters/{supporter_id}", done)

        async def page(error: str, status: int) -> Response[str]:
            return await _supporter(request, supporter_id, supporters, tiers, sessions, error=error, status=status)

        return await _or_page(write, page)

    handler.__name__ = action.__name__
    handler.__doc__ = action.__doc__
    return handler


async def _change(request: AnyRequest, supporter: Supporter, services: dict[str, Any]) -> str:
    """Move tier, set the end date, change the note."""
    form = await request.form()
    patch = SupporterPatch(
        tier=_text(form, "tier") or supporter.tier,
        expires_at=_end_of_day(_text(form, "expires_at"), "expires_at"),
        note=_text(form, "note") or None,
    )
    await services["supporters"].update(
        supporter.id, _convert(msgspec.to_builtins(patch), SupporterPatch), actor=_session(request).actor
    )
    return "changed"


async def _extend(request: AnyRequest, supporter: Supporter, services: dict[str, Any]) -> str:
    """Add days to the support: from its end date, or from today if it has ended or has none."""
    form = await request.form()
    days = _int(_text(form, "days"), "days")
    if not 1 <= days <= 3660:
        raise BadRequest(f"days: {days} is not between 1 and 3660")
    now = _now(request)
    start = supporter.expires_at if supporter.expires_at and supporter.expires_at > now else now
    patch = SupporterPatch(expires_at=start + timedelta(days=days), status="active")
    await services["supporters"].update(supporter.id, patch, actor=_session(request).actor)
    return "extended"


async def _revoke(request: AnyRequest, supporter: Supporter, services: dict[str, Any]) -> str:
    """End the support; the record stays, revoked."""
    await services["supporters"].revoke(supporter.id, actor=_session(request).actor)
    return "revoked"


async def _restore(request: AnyRequest, supporter: Supporter, services: dict[str, Any]) -> str:
    """Make a revoked supporter active again."""
    await services["supporters"].update(supporter.id, SupporterPatch(status="active"), actor=_session(request).actor)
    return "restored"


async def _end_all(request: AnyRequest, supporter: Supporter, services: dict[str, Any]) -> str:
    """Sign the supporter out on every device."""
    ended = await services["sessions"].end_all(supporter.id)
    await services["supporters"].note(
        supporter.id, action="supporter.sign-out", actor=_session(request).actor, detail={"sessions_ended": len(ended)}
    )
    return "sessions-ended"


async def _end_one(request: AnyRequest, supporter: Supporter, services: dict[str, Any]) -> str:
    """Sign the supporter out on one device."""
    form = await request.form()
    session_id = _text(form, "session")
    await services["sessions"].end(supporter.id, session_id)
    await services["supporters"].note(
        supporter.id, action="supporter.sign-out", actor=_session(request).actor, detail={"session": session_id}
    )
    return "session-ended"


change_supporter = post("/supporters/{supporter_id:str}", status_code=303, name="change_supporter")(
    _supporter_form(_change)
)
extend_supporter = post("/supporters/{supporter_id:str}/extend", status_code=303, name="extend_supporter")(
    _supporter_form(_extend)
)
revoke_supporter = post("/supporters/{supporter_id:str}/revoke", status_code=303, name="revoke_supporter")(
    _supporter_form(_revoke)
)
restore_supporter = post("/supporters/{supporter_id:str}/restore", status_code=303, name="restore_supporter")(
    _supporter_form(_restore)
)
end_sessions = post("/supporters/{supporter_id:str}/sessions/end-all", status_code=303, name="end_sessions")(
    _supporter_form(_end_all)
)
end_session = post("/supporters/{supporter_id:str}/sessions/end", status_code=303, name="end_session")(
    _supporter_form(_end_one)
)


@post("/supporters/{supporter_id:str}/activation-code", status_code=200)
async def make_activation_code(
    request: AnyRequest,
    supporter_id: IdPath,
    supporters: NamedDependency[SupporterService],
    tiers: NamedDependency[TierService],
    sessions: NamedDependency[SessionService],
    activation: NamedDependency[ActivationCodes],
) -> Response[str]:
    try:
        code = await activation.create(supporter_id, actor=_session(request).actor)
    except Problem as problem:
        return await _supporter(
            request, supporter_id, supporters, tiers, sessions, error=problem.detail, status=problem.status
        )
    return await _supporter(request, supporter_id, supporters, tiers, sessions, code=code)


@get("/supporters/{supporter_id:str}/forget")
async def forget_page(
    request: AnyRequest, supporter_id: IdPath, supporters: NamedDependency[SupporterService]
) -> Response[str]:
    supporter = await supporters.get(supporter_id)
    return _page(request, "forget.html", title=f"Erase {supporter.email}?", supporter=supporter, error=None)


@post("/supporters/{supporter_id:str}/forget", status_code=303)
async def forget(
    request: AnyRequest, supporter_id: IdPath, supporters: NamedDependency[SupporterService]
) -> Response[Any]:
    supporter = await supporters.get(supporter_id)
    form = await request.form()
    if _text(form, "confirm").lower() != supporter.email.lower():
        error = "To erase this supporter, type their email address exactly as shown."
        return _page(
            request, "forget.html", status=400, title=f"Erase {supporter.email}?", supporter=supporter, error=error
        )
    await supporters.forget(supporter_id, actor=_session(request).actor)
    return _done(f"{CONSOLE_PATH}/supporters", "forgotten")


# --- tiers -----------------------------------------------------------------------------------


async def _tiers(
    request: AnyRequest,
    tiers: TierService,
    *,
    error: str | None = None,
    status: int = 200,
    form: dict[str, str] | None = None,
) -> Response[str]:
    return _page(
        request, "tiers.html", status=status, title="Tiers", tiers=await tiers.list(), error=error, form=form or {}
    )


@get("/tiers")
async def tiers_page(request: AnyRequest, tiers: NamedDependency[TierService]) -> Response[str]:
    return await _tiers(request, tiers)


def _tier_fields(form: Any) -> dict[str, Any]:  # noqa: ANN401 - Litestar's FormMultiDict
    fields: dict[str, Any] = {
        "name": _text(form, "name"),
        "description": _text(form, "description"),
        "entitlements": _lines(_text(form, "entitlements"), "\n,"),
        "max_devices": _int(_text(form, "max_devices"), "max_devices"),
        "stripe_price_ids": _lines(_text(form, "stripe_price_ids"), "\n,"),
    }
    if _text(form, "pass_ttl_seconds"):
        fields["pass_ttl_seconds"] = _int(_text(form, "pass_ttl_seconds"), "pass_ttl_seconds")
    return fields


@post("/tiers", status_code=303)
async def create_tier(request: AnyRequest, tiers: NamedDependency[TierService]) -> Response[Any]:
    form = await request.form()
    values = {
        name: _text(form, name)
        for name in ("id", "name", "description", "entitlements", "max_devices", "pass_ttl_seconds", "stripe_price_ids")
    }

    async def write() -> Response[Any]:
        data = _convert({"id": values["id"], **_tier_fields(form)}, TierIn)
        created = await tiers.create(data, actor=_session(request).actor)
        return _done(f"{CONSOLE_PATH}/tiers/{created.id}", "tier-created")

    async def page(error: str, status: int) -> Response[str]:
        return await _tiers(request, tiers, error=error, status=status, form=values)

    return await _or_page(write, page)


async def _tier(
    request: AnyRequest, tier_id: IdPath, tiers: TierService, *, error: str | None = None, status: int = 200
) -> Response[str]:
    tier = await tiers.get(tier_id)
    sites: SiteService = request.app.state.services.sites
    warnings = with_warnings(tier, await sites.list()).warnings
    return _page(
        request, "tier.html", status=status, title=f"Tier {tier.name}", tier=tier, warnings=warnings, error=error
    )


@get("/tiers/{tier_id:str}")
async def tier_page(request: AnyRequest, tier_id: IdPath, tiers: NamedDependency[TierService]) -> Response[str]:
    return await _tier(request, tier_id, tiers)


@post("/tiers/{tier_id:str}", status_code=303)
async def change_tier(request: AnyRequest, tier_id: IdPath, tiers: NamedDependency[TierService]) -> Response[Any]:
    form = await request.form()

    async def write() -> Response[Any]:
        await tiers.update(tier_id, _convert(_tier_fields(form), TierPatch), actor=_session(request).actor)
        return _done(f"{CONSOLE_PATH}/tiers/{tier_id}", "changed")

    async def page(error: str, status: int) -> Response[str]:
        return await _tier(request, tier_id, tiers, error=error, status=status)

    return await _or_page(write, page)


# --- sites -----------------------------------------------------------------------------------


async def _sites(
    request: AnyRequest,
    sites: SiteService,
    *,
    error: str | None = None,
    status: int = 200,
    form: dict[str, str] | None = None,
) -> Response[str]:
    return _page(
        request, "sites.html", status=status, title="Sites", sites=await sites.list(), error=error, form=form or {}
    )


@get("/sites")
async def sites_page(request: AnyRequest, sites: NamedDependency[SiteService]) -> Response[str]:
    return await _sites(request, sites)


@post("/sites", status_code=303)
async def create_site(request: AnyRequest, sites: NamedDependency[SiteService]) -> Response[Any]:
    form = await request.form()
    values = {name: _text(form, name) for name in ("id", "name", "origins")}

    async def write() -> Response[Any]:
        data = _convert({"id": values["id"], "name": values["name"], "origins": _lines(values["origins"])}, SiteIn)
        created = await sites.create(data, actor=_session(request).actor)
        return _done(f"{CONSOLE_PATH}/sites/{created.id}", "site-created")

    async def page(error: str, status: int) -> Response[str]:
        return await _sites(request, sites, error=error, status=status, form=values)

    return await _or_page(write, page)


async def _site(
    request: AnyRequest,
    site_id: IdPath,
    sites: SiteService,
    *,
    error: str | None = None,
    status: int = 200,
    key: Any = None,  # noqa: ANN401
    preview: str = "en",
) -> Response[str]:
    site = await sites.get(site_id)
    api_keys: ApiKeys = request.app.state.services.api_keys
    return _page(
        request,
        "site.html",
        status=status,
        title=f"Site {site.name}",
        site=site,
        script_url=f"{gate_base(site.policy, _settings(request).public_url)}/v1/sites/{site.id}/gate.js",
        site_keys=await api_keys.list("site", site=site_id),
        languages=sorted(LANGUAGES),
        preview=preview if preview in LANGUAGES else "en",
        error=error,
        key=key,
    )


@get("/sites/{site_id:str}")
async def site_page(
    request: AnyRequest,
    site_id: IdPath,
    sites: NamedDependency[SiteService],
    preview: Annotated[str, QueryParameter(max_length=20)] = "en",
) -> Response[str]:
    return await _site(request, site_id, sites, preview=preview)


@post("/sites/{site_id:str}", status_code=303)
async def change_site(request: AnyRequest, site_id: IdPath, sites: NamedDependency[SiteService]) -> Response[Any]:
    form = await request.form()

    async def write() -> Response[Any]:
        policy: dict[str, Any] = {
            "mode": _text(form, "mode"),
            "free_views": _int(_text(form, "free_views") or "0", "policy.free_views"),
            "meter_period": _text(form, "meter_period"),
            "exempt_paths": _lines(_text(form, "exempt_paths")),
            "unlock_entitlement": _text(form, "unlock_entitlement"),
            "support_url": _text(form, "support_url") or None,
            "first_party_url": _text(form, "first_party_url") or None,
        }
        patch = _convert(
            {"name": _text(form, "name"), "origins": _lines(_text(form, "origins")), "policy": policy}, SitePatch
        )
        await sites.update(site_id, patch, actor=_session(request).actor)
        return _done(f"{CONSOLE_PATH}/sites/{site_id}", "changed")

    async def page(error: str, status: int) -> Response[str]:
        return await _site(request, site_id, sites, error=error, status=status)

    return await _or_page(write, page)


@post("/sites/{site_id:str}/keys", status_code=200)
async def make_site_key(
    request: AnyRequest, site_id: IdPath, sites: NamedDependency[SiteService], api_keys: NamedDependency[ApiKeys]
) -> Response[str]:
    try:
        key = await api_keys.create("site", name=site_id, site=site_id, actor=_session(request).actor)
    except Problem as problem:
        return await _site(request, site_id, sites, error=problem.detail, status=problem.status)
    return await _site(request, site_id, sites, key=key)


KeyIdPath = Annotated[str, PathParameter(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="A key's id.")]


@post("/sites/{site_id:str}/keys/{key_id:str}/revoke", status_code=303)
async def revoke_site_key(
    request: AnyRequest,
    site_id: IdPath,
    key_id: KeyIdPath,
    sites: NamedDependency[SiteService],
    api_keys: NamedDependency[ApiKeys],
) -> Response[Any]:
    async def write() -> Response[Any]:
        await api_keys.revoke("site", key_id, site=site_id, actor=_session(request).actor)
        return _done(f"{CONSOLE_PATH}/sites/{site_id}", "site-key-revoked")

    async def page(error: str, status: int) -> Response[str]:
        return await _site(request, site_id, sites, error=error, status=status)

    return await _or_page(write, page)


def _delete_site_page(request: AnyRequest, site: Site, *, error: str | None = None, status: int = 200) -> Response[str]:
    return _page(request, "delete_site.html", status=status, title=f"Delete {site.name}?", site=site, error=error)


@get("/sites/{site_id:str}/delete")
async def delete_site_page(request: AnyRequest, site_id: IdPath, sites: NamedDependency[SiteService]) -> Response[str]:
    return _delete_site_page(request, await sites.get(site_id))


@post("/sites/{site_id:str}/delete", status_code=303)
async def delete_site(request: AnyRequest, site_id: IdPath, sites: NamedDependency[SiteService]) -> Response[Any]:
    site = await sites.get(site_id)
    form = await request.form()
    if _text(form, "confirm") != site.id:
        error = "To delete this site, type its id exactly as shown."
        return _delete_site_page(request, site, error=error, status=400)
    await sites.delete(site_id, actor=_session(request).actor)
    return _done(f"{CONSOLE_PATH}/sites", "site-deleted")


# --- admin keys ------------------------------------------------------------------------------


async def _admin_keys(
    request: AnyRequest, api_keys: ApiKeys, *, error: str | None = None, status: int = 200
) -> Response[str]:
    return _page(
        request,
        "api_keys.html",
        status=status,
        title="API keys",
        keys=await api_keys.list("admin"),
        own=_session(request).key_id,
        error=error,
    )


@get("/api-keys")
async def api_keys_page(request: AnyRequest, api_keys: NamedDependency[ApiKeys]) -> Response[str]:
    return await _admin_keys(request, api_keys)


@post("/api-keys/{key_id:str}/revoke", status_code=303)
async def revoke_admin_key(request: AnyRequest, key_id: KeyIdPath, api_keys: NamedDependency[ApiKeys]) -> Response[Any]:
    async def write() -> Response[Any]:
        await api_keys.revoke("admin", key_id, actor=_session(request).actor)
        return _done(f"{CONSOLE_PATH}/api-keys", "admin-key-revoked")

    async def page(error: str, status: int) -> Response[str]:
        return await _admin_keys(request, api_keys, error=error, status=status)

    return await _or_page(write, page)


# --- signing keys and audit ------------------------------------------------------------------


@get("/keys")
async def keys_page(request: AnyRequest, key_rotation: NamedDependency[KeyRotation]) -> Response[str]:
    return _page(request, "keys.html", title="Signing keys", keys=(await key_rotation.describe()).keys, error=None)


@post("/keys/rotate", status_code=303)
async def rotate_keys(request: AnyRequest, key_rotation: NamedDependency[KeyRotation]) -> Response[Any]:
    form = await request.form()
    try:
        await key_rotation.rotate(force=_text(form, "force") == "on", actor=_session(request).actor)
    except Problem as problem:
        keys = (await key_rotation.describe()).keys
        return _page(request, "keys.html", status=problem.status, title="Signing keys", keys=keys, error=problem.detail)
    return _done(f"{CONSOLE_PATH}/keys", "rotated")


def _start_of_day(value: str, field: str) -> datetime | None:
    """A ``YYYY-MM-DD`` as the start of that day in UTC; None for empty; BadRequest naming ``field``."""
    end = _end_of_day(value, field)
    return end.replace(hour=0, minute=0, second=0) if end else None


_AuditText = Annotated[str | None, QueryParameter(max_length=200)]
_AuditDay = Annotated[str | None, QueryParameter(max_length=40)]


@get("/audit")
async def audit_page(
    request: AnyRequest,
    audit: NamedDependency[AuditLog],
    cursor: FromQuery[str | None] = None,
    action: _AuditText = None,
    actor: _AuditText = None,
    target: _AuditText = None,
    since: _AuditDay = None,
    until: _AuditDay = None,
) -> Response[str]:
    """The log, newest first; ``action``, ``actor`` and ``target`` match exactly, ``since``/``until`` are UTC days."""
    filters = {
        key: value.strip()
        for key, value in {"action": action, "actor": actor, "target": target, "since": since, "until": until}.items()
        if value and value.strip()
    }
    found = await audit.page(
        limit=_PAGE_SIZE,
        cursor=cursor or None,
        action=filters.get("action"),
        actor=filters.get("actor"),
        target=filters.get("target"),
        since=_start_of_day(filters.get("since", ""), "since"),
        until=_end_of_day(filters.get("until", ""), "until"),
    )
    next_url = f"?{urlencode({**filters, 'cursor': found.next_cursor})}" if found.next_cursor else None
    return _page(
        request,
        "audit.html",
        title="Audit log",
        page=found,
        next_url=next_url,
        first_url="?" + urlencode(filters) if cursor else None,
        filters=filters,
        filtered=bool(filters),
    )


def _problem_page(request: AnyRequest, problem: Problem) -> Response[str]:
    """A problem no form caught (an unknown supporter, a bad query): an HTML page with its status, not JSON."""
    page = _page(request, "problem.html", status=problem.status, title=problem.title, detail=problem.detail)
    page.headers.update(problem.headers)
    return page


console_router = Router(
    path=CONSOLE_PATH,
    route_handlers=[
        login_page,
        login,
        logout,
        console_css,
        dashboard,
        supporters_page,
        export_supporters,
        import_supporters,
        grant,
        supporter_page,
        change_supporter,
        extend_supporter,
        revoke_supporter,
        restore_supporter,
        end_sessions,
        end_session,
        make_activation_code,
        forget_page,
        forget,
        tiers_page,
        create_tier,
        tier_page,
        change_tier,
        sites_page,
        create_site,
        site_page,
        change_site,
        make_site_key,
        revoke_site_key,
        delete_site_page,
        delete_site,
        api_keys_page,
        revoke_admin_key,
        keys_page,
        rotate_keys,
        audit_page,
    ],
    before_request=_guard,
    exception_handlers={Problem: _problem_page},
    include_in_schema=False,
)
