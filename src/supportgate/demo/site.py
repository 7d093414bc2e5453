"""The demo publisher site under ``/demo/``: a home page and every article gated client- or server-side."""

from __future__ import annotations

import ipaddress
import re
import secrets
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Final

from jinja2 import Environment, PackageLoader, select_autoescape
from litestar import Request, Response, Router, get
from litestar.di import NamedDependency
from litestar.enums import MediaType
from litestar.params import PathParameter
from litestar.static_files import create_static_files_router
from markupsafe import Markup

from supportgate.demo.articles import ARTICLES, Article, find_article
from supportgate.errors import NotFound
from supportgate.gate.access import SiteAccess
from supportgate.gate.decide import DecideService
from supportgate.gate.interstitial import render_interstitial
from supportgate.gate.messages import negotiate_language
from supportgate.gate.schemas import ADBLOCK_COOKIE, COOKIE_SIGNALS, PASS_HEADER, AdblockSignal, DecideIn, Decision
from supportgate.http.client import client_ip
from supportgate.settings import Settings

__all__ = ["DEMO_SITE", "VISITOR_COOKIE", "demo_router"]

DEMO_SITE: Final = "demo"
"""The id of the site the demo pages belong to (seeded by ``supportgate demo``)."""
VISITOR_COOKIE: Final = "demo_visitor"
"""The demo backend's own first-party visitor id, so the server-side pages can be metered."""

Slug = Annotated[str, PathParameter(pattern=r"^[a-z0-9-]{1,100}$", description="An article's part of the URL.")]
_STATIC = Path(__file__).resolve().parent.parent / "static" / "demo"
_VISITOR = re.compile(r"[A-Za-z0-9_-]{8,64}")
_VISITOR_MAX_AGE: Final = 365 * 24 * 3600
_SECTIONS: Final = tuple(dict.fromkeys(article.section for article in ARTICLES))


def _long_date(day: date) -> str:
    return f"{day.day} {day:%B %Y}"


_templates = Environment(
    loader=PackageLoader("supportgate", "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
_templates.filters["longdate"] = _long_date


def _render(template: str, **context: object) -> str:
    return _templates.get_template(f"demo/{template}").render(sections=_SECTIONS, site=DEMO_SITE, **context)


def _settings(request: Request[Any, Any, Any]) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _article(slug: str) -> Article:
    article = find_article(slug)
    if article is None:
        raise NotFound(f"The demo has no article {slug!r}.")
    return article


def _related(article: Article) -> list[Article]:
    return [other for other in ARTICLES if other.slug != article.slug]


def _adblock_cookie(request: Request[Any, Any, Any]) -> AdblockSignal:
    """What ``gate.js`` found on an earlier page view, from its ``sg_adblock`` cookie."""
    return COOKIE_SIGNALS.get(request.cookies.get(ADBLOCK_COOKIE, ""), "unknown")


def _reader_ip(request: Request[Any, Any, Any]) -> str | None:
    """The reader's address, as the gate would see it; None when there is none (a unix socket, a test client)."""
    address = client_ip(request.scope)
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


@get("/", include_in_schema=False, media_type=MediaType.HTML)
async def home() -> str:
    """The demo site's front page, listing its articles."""
    return _render("home.html", articles=ARTICLES, gate_url=None)


@get("/support", include_in_schema=False, media_type=MediaType.HTML)
async def support(request: Request[Any, Any, Any]) -> str:
    """Where the wall's "Become a supporter" leads on the demo site; it links the gate's install page."""
    return _render(
        "support.html", gate_url=None, install_url=f"{_settings(request).public_url}/extension?site={DEMO_SITE}"
    )


@get("/client/{slug:str}", include_in_schema=False, media_type=MediaType.HTML)
async def client_article(slug: Slug, request: Request[Any, Any, Any]) -> str:
    """An article gated in the browser: the full page, with ``gate.js`` deciding after it loads."""
    article = _article(slug)
    return _render(
        "article.html",
        article=article,
        related=_related(article),
        mode="client",
        gate_url=_settings(request).public_url,
        decision=None,
        interstitial=None,
    )


@get("/server/{slug:str}", include_in_schema=False)
async def server_article(
    slug: Slug,
    request: Request[Any, Any, Any],
    decide: NamedDependency[DecideService],
    access: NamedDependency[SiteAccess],
) -> Response[str]:
    """An article gated by the demo's backend: it asks the gate first and sends only what the reader may see."""
    article = _article(slug)
    settings = _settings(request)
    assumed = _adblock_cookie(request)
    visitor = request.cookies.get(VISITOR_COOKIE, "")
    new_visitor = None if _VISITOR.fullmatch(visitor) else secrets.token_urlsafe(16)
    _, lang = negotiate_language(None, request.headers.get("accept-language"))
    reader_ip = _reader_ip(request)
    decision: Decision = await decide.decide(
        DecideIn(
            site=DEMO_SITE,
            path=request.url.path,
            adblock=assumed,
            visitor=new_visitor or visitor,
            user_agent=request.headers.get("user-agent", "")[:512] or None,
            client_ip=reader_ip,
            lang=lang,
        ),
        pass_header=request.headers.get(PASS_HEADER),
        caller_site=DEMO_SITE,
        origin=None,
        user_agent=None,
        request_ip=reader_ip or "unknown",
    )
    interstitial = None
    site = (await access.site_for(DEMO_SITE, caller_site=DEMO_SITE, origin=None)).site
    if decision.decision == "wall":
        interstitial = Markup(  # noqa: S704 - the gate's own template, rendered with autoescape
            render_interstitial(site, lang, fragment=True, gate_url=settings.public_url)
        )
    html = _render(
        "article.html",
        article=article,
        related=_related(article),
        mode="server",
        gate_url=settings.public_url,
        decision=decision,
        interstitial=interstitial,
        assumed=assumed,
        support_url=site.policy.support_url or "/demo/",
    )
    response = Response(
        html,
        media_type=MediaType.HTML,
        headers={"Cache-Control": "private, no-store", "Vary": "Cookie, Supportgate-Pass"},
    )
    if new_visitor is not None:
        response.set_cookie(
            VISITOR_COOKIE, new_visitor, max_age=_VISITOR_MAX_AGE, path="/", httponly=True, samesite="lax"
        )
    return response


demo_router = Router(
    path="/demo",
    route_handlers=[
        home,
        support,
        client_article,
        server_article,
        create_static_files_router(path="/static", directories=[_STATIC], name="demo-static"),
    ],
)
"""Every route of the demo site; mounted only by ``supportgate demo``."""
