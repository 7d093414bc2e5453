"""What the gate serves to browsers: ``gate.js``, its detection probes and the interstitial."""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
from importlib import resources
from typing import Annotated, Any

import jinja2
from litestar import Request, Response, Router, get
from litestar.di import NamedDependency
from litestar.params import PathParameter, QueryParameter

from supportgate.admin.schemas import Site
from supportgate.gate.messages import negotiate_language, texts_for
from supportgate.services import Services

__all__ = ["contrast_ratio", "gate_assets_router", "minify", "render_interstitial", "render_script"]

SitePath = Annotated[
    str, PathParameter(pattern=r"^[a-z0-9-]{1,64}$", description="A site id: 1 to 64 lowercase letters, digits or '-'.")
]
LangQuery = Annotated[
    str | None,
    QueryParameter(
        pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$",
        max_length=35,
        description="The reader's language (en, de-AT, …); Accept-Language decides when absent or not built in.",
    ),
]

_JS = "text/javascript"  # Litestar adds "; charset=utf-8" to text types
_HTML = "text/html"  # likewise
_SCRIPT_HEADERS = {"Cross-Origin-Resource-Policy": "cross-origin", "X-Content-Type-Options": "nosniff"}
_NO_STORE = {**_SCRIPT_HEADERS, "Cache-Control": "no-store"}
_SITE_PLACEHOLDER = '"__SG_SITE__"'
_GATE_PLACEHOLDER = '"__SG_GATE__"'
_CONTROL_SCRIPT = b"window.supportgateControl=true;\n"
_BAIT_SCRIPT = b"window.supportgateBait=true;\n"
_JOINS_AFTER = tuple("{([,;=&|?:")
_JOINS_BEFORE = ("}", ")", "]", ".", "&&", "||", "?", ":")

_templates = jinja2.Environment(
    loader=jinja2.PackageLoader("supportgate", "templates"),
    autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def minify(source: str) -> str:
    """Drop comments on lines of their own, indentation and blank lines, and join lines where that is safe.

    This is a line stripper, not a parser, so it refuses what it cannot handle safely: template
    literals, comments after code, and code after the end of a block comment.
    """
    if "`" in source:
        raise ValueError("gate.js must not use template literals: the minifier keeps lines intact")
    lines: list[str] = []
    in_comment = False
    for raw in source.splitlines():
        line = raw.strip()
        if in_comment or line.startswith("/*"):
            in_comment = not line.endswith("*/")
            if "*/" in line and not line.endswith("*/"):
                raise ValueError(f"code after a block comment on one line: {line!r}")
            continue
        if not line or line.startswith("//"):
            continue
        if " //" in line:
            raise ValueError(f"a comment after code would swallow a joined line: {line!r}")
        # A line break only matters to ASI; these neighbours cannot end a statement.
        if lines and (lines[-1].endswith(_JOINS_AFTER) or line.startswith(_JOINS_BEFORE)):
            lines[-1] += line
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"


def _load_script() -> str:
    source = minify(resources.files("supportgate").joinpath("static/gate/gate.js").read_text(encoding="utf-8"))
    if _SITE_PLACEHOLDER not in source or _GATE_PLACEHOLDER not in source:
        raise RuntimeError("gate.js lost its SITE or GATE placeholder")
    return source


# Minified once, when the app is imported: a script the minifier refuses stops the start.
_SCRIPT_SOURCE = _load_script()


class _Script:
    """One site's ``gate.js`` in both encodings, each with its ETag."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.gzipped = gzip.compress(body, 9, mtime=0)
        self.etag = _etag(body)
        self.gzipped_etag = _etag(self.gzipped)


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def render_script(site_id: str, gate_url: str) -> bytes:
    """The ``gate.js`` a site's pages load: the minified script with the site id and gate URL built in."""
    return _site_script(site_id, gate_url).body


@functools.lru_cache(maxsize=1024)
def _site_script(site_id: str, gate_url: str) -> _Script:
    text = _SCRIPT_SOURCE.replace(_SITE_PLACEHOLDER, json.dumps(site_id)).replace(
        _GATE_PLACEHOLDER, json.dumps(gate_url)
    )
    return _Script(text.encode())


def _accepts_gzip(header: str | None) -> bool:
    for item in (header or "").split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() == "gzip":
            name, _, value = params.strip().partition("=")
            return name.strip().lower() != "q" or value.strip() not in {"0", "0.0", "0.00", "0.000"}
    return False


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or etag in tags


def _gate_url(request: Request[Any, Any, Any]) -> str:
    public_url: str = request.app.state.settings.public_url
    return public_url.rstrip("/")


def _on_accent(accent: str) -> str:
    """White or near-black, whichever reads better on the ``accent`` colour."""
    return "#ffffff" if contrast_ratio(accent, "#ffffff") >= contrast_ratio(accent, "#111111") else "#111111"


def _luminance(colour: str) -> float:
    def channel(hex_pair: str) -> float:
        value = int(hex_pair, 16) / 255
        return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4

    red, green, blue = (channel(colour[i : i + 2]) for i in (1, 3, 5))
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast_ratio(first: str, second: str) -> float:
    """The WCAG 2 contrast ratio of two ``#rrggbb`` colours (1 to 21)."""
    lighter, darker = sorted((_luminance(first), _luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def render_interstitial(site: Site, lang: str | None, *, fragment: bool, gate_url: str) -> str:
    """The wall for ``site`` in ``lang``: a whole page, or with ``fragment`` the dialog alone.

    Args:
        site: the site whose words, colours, logo and supporter link the wall shows.
        lang: the reader's language tag (``de``, ``de-AT``); none, or one not built in, gives English.
            The site's messages for the exact tag win over those for its language.
        fragment: the dialog alone, for ``gate.js`` to place, instead of a page that loads ``gate.js``.
        gate_url: the gate's public URL, for the page's ``gate.js``.
    """
    language, tag = negotiate_language(lang, None)
    theme = site.policy.theme
    return _templates.get_template("gate/interstitial.html").render(
        fragment=fragment,
        lang=language,
        texts=texts_for(site.policy, language, tag),
        theme=theme,
        on_accent=_on_accent(theme.accent),
        logo_url=theme.logo_url,
        support_url=site.policy.support_url,
        site_id=site.id,
        site_name=site.name,
        gate_url=gate_url.rstrip("/"),
    )


@get(
    "/{site:str}/gate.js",
    summary="The gate's client script for a site",
    description="Detects an ad blocker, asks the extension for a pass, calls decide and applies the answer.",
    media_type=_JS,
    cache_control=None,
)
async def gate_script(
    site: SitePath, services: NamedDependency[Services], request: Request[Any, Any, Any]
) -> Response[bytes]:
    """``gate.js`` with the site and gate built in; gzipped when asked, with an ETag and a 5-minute cache."""
    await services.sites.get(site)
    script = _site_script(site, _gate_url(request))
    gzipped = _accepts_gzip(request.headers.get("accept-encoding"))
    body, etag = (script.gzipped, script.gzipped_etag) if gzipped else (script.body, script.etag)
    headers = {**_SCRIPT_HEADERS, "ETag": etag, "Cache-Control": "public, max-age=300", "Vary": "Accept-Encoding"}
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(b"", status_code=304, headers=headers, media_type=_JS)
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    return Response(body, headers=headers, media_type=_JS)


@get("/{site:str}/probe.js", summary="Detection control: an innocuous script", media_type=_JS, cache_control=None)
async def control_script(site: SitePath, services: NamedDependency[Services]) -> Response[bytes]:
    """Sets ``window.supportgateControl``; no filter list blocks it."""
    await services.sites.get(site)
    return Response(_CONTROL_SCRIPT, headers=_NO_STORE, media_type=_JS)


@get(
    "/{site:str}/ads/show.js", summary="Detection bait: a script filter lists block", media_type=_JS, cache_control=None
)
async def bait_script(site: SitePath, services: NamedDependency[Services]) -> Response[bytes]:
    """Sets ``window.supportgateBait``; EasyList blocks this URL (rule ``/ads/show.``)."""
    await services.sites.get(site)
    return Response(_BAIT_SCRIPT, headers=_NO_STORE, media_type=_JS)


@get("/{site:str}/interstitial", summary="The wall, in the reader's language", media_type=_HTML, cache_control=None)
async def interstitial(
    site: SitePath,
    services: NamedDependency[Services],
    request: Request[Any, Any, Any],
    lang: LangQuery = None,
    fragment: Annotated[bool, QueryParameter(description="Return the dialog alone, for gate.js.")] = False,
) -> Response[str]:
    """The wall as a page, or with ``fragment=1`` the dialog alone; any origin may fetch it."""
    found = await services.sites.get(site)
    language, tag = negotiate_language(lang, request.headers.get("accept-language"))
    page = render_interstitial(found, tag, fragment=fragment, gate_url=_gate_url(request))
    headers = {
        "Content-Language": language,
        "Vary": "Accept-Language",
        "Cache-Control": "public, max-age=60",
        "Access-Control-Allow-Origin": "*",
        "X-Content-Type-Options": "nosniff",
    }
    return Response(page, headers=headers, media_type=_HTML)


gate_assets_router = Router(
    path="/v1/sites",
    route_handlers=[gate_script, control_script, bait_script, interstitial],
    tags=["gate: assets"],
)
