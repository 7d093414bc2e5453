"""``GET /extension`` (the install page) and the two zips the gate built for itself."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final

from litestar import Request, Response, Router, get
from litestar.datastructures import ResponseHeader, State
from litestar.di import NamedDependency
from litestar.enums import MediaType
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPI, OpenAPIFormat, OpenAPIMediaType, OpenAPIResponse, OpenAPIType, Schema
from litestar.params import QueryParameter
from litestar.static_files import create_static_files_router

from supportgate.errors import NotFound, StoreUnavailable
from supportgate.extension_build import BROWSERS, GatePackages
from supportgate.gate.access import SiteAccess
from supportgate.gate.messages import negotiate_language
from supportgate.gate.script import etag_matches
from supportgate.install.page import SCREENSHOT_DIR, render_install_page
from supportgate.languages import LANGUAGE_QUERY_PATTERN
from supportgate.settings import Settings

__all__ = ["DOWNLOADS", "Downloads", "document_downloads", "install_router"]

DOWNLOADS: Final = {browser: f"/extension/supportgate-{browser}.zip" for browser in BROWSERS}
"""Each browser's download path."""
_ZIP = "application/zip"
_STATIC = Path(__file__).resolve().parent.parent / SCREENSHOT_DIR
_CACHE = "public, max-age=300"
"""A gate restarted with a new extension serves new zips: browsers ask again within five minutes (ETag)."""


@dataclass(frozen=True)
class Download:
    """One zip as the gate serves it."""

    body: bytes
    """The zip."""
    etag: str
    """Its strong ETag, from its content."""


@dataclass(frozen=True)
class Downloads:
    """The zips this gate offers, read once at start; empty when it has none."""

    by_browser: dict[str, Download]
    """Each browser's zip."""

    @classmethod
    def read(cls, packages: GatePackages | None) -> Downloads:
        """The zips of ``packages``, or none."""
        if packages is None:
            return cls({})
        found = {}
        for browser, archive in packages.archives.items():
            body = archive.read_bytes()
            found[browser] = Download(body, f'"{hashlib.sha256(body).hexdigest()[:32]}"')
        return cls(found)


def _downloads(state: State) -> Downloads:
    downloads: Downloads = state.extension_downloads
    return downloads


SiteQuery = Annotated[
    str | None,
    QueryParameter(
        pattern=r"^[a-z0-9-]{1,64}$",
        description="The site that sent the reader here: the page names it. An unknown site is not named.",
    ),
]
LangQuery = Annotated[
    str | None,
    QueryParameter(
        pattern=LANGUAGE_QUERY_PATTERN,
        max_length=35,
        description="The reader's language (en, de-AT, …); Accept-Language decides when absent or not built in.",
    ),
]


@get(
    "/",
    summary="The install page: what the extension does, downloads and steps per browser",
    media_type=MediaType.HTML,
    cache_control=None,
    response_description="The page, in the reader's language (`Content-Language`).",
)
async def install_page(
    request: Request[Any, Any, Any], access: NamedDependency[SiteAccess], site: SiteQuery = None, lang: LangQuery = None
) -> Response[str]:
    """The install page in the reader's language; with ``site``, it names the site that sent the reader."""
    settings: Settings = request.app.state.settings
    language, _ = negotiate_language(lang, request.headers.get("accept-language"))
    site_name = None
    if site is not None:
        try:
            site_name = (await access.current(site)).name
        except (NotFound, StoreUnavailable):
            site_name = None  # the page helps without the name too
    offered = _downloads(request.app.state).by_browser
    # Relative links: a site that serves the gate under a prefix of its own (policy.first_party_url)
    # sends readers here as <prefix>/extension, and the pictures and zips must come the same way.
    links = "" if request.scope.get("raw_path", b"").endswith(b"/") else "extension/"
    page = render_install_page(
        language,
        gate_url=settings.public_url,
        site_name=site_name,
        downloads={browser: links + path.removeprefix("/extension/") for browser, path in DOWNLOADS.items()}
        if offered
        else None,
        links=links,
    )
    headers = {"Content-Language": language, "Vary": "Accept-Language", "Cache-Control": "public, max-age=60"}
    return Response(page, headers=headers, media_type=MediaType.HTML)


def _download_route(browser: str) -> Any:  # noqa: ANN401 - a Litestar route handler
    @get(
        DOWNLOADS[browser].removeprefix("/extension"),
        name=f"extension-{browser}",
        summary=f"The {browser.capitalize()} extension, built for this gate (zip)",
        description=(
            "The extension's package for this gate, with `preset.json` naming it. 404 when the gate has no "
            "packages (it found no extension source at start)."
        ),
        media_type=_ZIP,
        cache_control=None,
        response_description="The zip: load it unpacked (Chromium) or install it from file (Firefox).",
        responses={304: ResponseSpec(None, description="The zip has not changed (If-None-Match).")},
        response_headers=[
            ResponseHeader(name="ETag", description="The zip's strong validator.", documentation_only=True),
            ResponseHeader(
                name="Content-Disposition",
                description=f'`attachment; filename="supportgate-{browser}.zip"`',
                documentation_only=True,
            ),
        ],
    )
    async def download(request: Request[Any, Any, Any]) -> Response[bytes]:
        found = _downloads(request.app.state).by_browser.get(browser)
        if found is None:
            raise NotFound("This gate has no extension packages: it found no extension source when it started.")
        headers = {"ETag": found.etag, "Cache-Control": _CACHE, "X-Content-Type-Options": "nosniff"}
        if etag_matches(request.headers.get("if-none-match"), found.etag):
            return Response(b"", status_code=304, headers=headers)
        headers["Content-Disposition"] = f'attachment; filename="supportgate-{browser}.zip"'
        return Response(found.body, headers=headers, media_type=_ZIP)

    return download


def document_downloads(openapi: OpenAPI) -> None:
    """Say in the document that each download's body is binary, which Litestar writes as a plain string."""
    for path in DOWNLOADS.values():
        operation = (openapi.paths or {})[path].get
        ok = (operation.responses or {}).get("200") if operation else None
        if isinstance(ok, OpenAPIResponse) and ok.content:
            ok.content[_ZIP] = OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY))


install_router = Router(
    path="/extension",
    route_handlers=[
        install_page,
        *(_download_route(browser) for browser in BROWSERS),
        create_static_files_router(path="/img", directories=[_STATIC], name="install-img", include_in_schema=False),
    ],
    tags=["extension"],
)
"""The install page, the downloads and the page's screenshots."""
