"""``GET /v1/forward-auth``: the gate behind a reverse proxy (nginx, Caddy, Traefik).

The proxy asks before it serves a page: the site's key and id in headers of its own, the page in
``X-Original-URI`` (nginx) or ``X-Forwarded-Uri`` (Caddy, Traefik), and the reader's own headers
passed on (``Cookie``, ``Supportgate-Pass``, ``User-Agent``). The decision is decide's
(:class:`~supportgate.gate.decide.DecideService`, the same rules); the answer is a status the proxy
acts on: 200 lets the page through (allow, nag), 403 stops it (wall), each with
``Supportgate-Decision`` and ``Supportgate-Reason``. Like decide it runs as plain ASGI, on the
page view's one deadline, and a store that fails lets the page through (200, ``store_unavailable``):
never a 5xx, which nginx would turn into an error page for the reader. docs/proxy.md has the
configurations.
"""

from __future__ import annotations

import ipaddress
import secrets
from typing import Final, cast

import msgspec
from litestar import asgi
from litestar.exceptions import MethodNotAllowedException
from litestar.types import HTTPScope, Receive, Scope, Send

from supportgate.errors import BadRequest, StoreUnavailable, Unauthorized
from supportgate.gate.access import SiteAccess
from supportgate.gate.decide import DecideService
from supportgate.gate.schemas import ADBLOCK_COOKIE, COOKIE_SIGNALS, PASS_HEADER, AdblockSignal, DecideIn, Decision
from supportgate.http.asgi import send_answer
from supportgate.http.auth import bearer
from supportgate.http.client import client_ip
from supportgate.http.deadline import OWN_DEADLINE
from supportgate.store.hot_path import HotPath

__all__ = [
    "FORWARD_AUTH_PATH",
    "SITE_HEADER",
    "VISITOR_COOKIE",
    "VISITOR_MAX_AGE",
    "forward_auth",
]

FORWARD_AUTH_PATH: Final = "/v1/forward-auth"
SITE_HEADER: Final = "X-Supportgate-Site"
"""The header the proxy names the site in."""
VISITOR_COOKIE: Final = "sg_visitor"
"""The first-party visitor id the gate sets through the proxy, for metering."""
VISITOR_MAX_AGE: Final = 365 * 24 * 3600
_MAX_PATH: Final = 2000
_MAX_USER_AGENT: Final = 512
_MAX_PASS: Final = 4096
_VISITOR_CHARS: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_encode = msgspec.json.Encoder().encode


@asgi(FORWARD_AUTH_PATH, is_mount=False, copy_scope=False, opt={OWN_DEADLINE: True})
async def forward_auth(scope: Scope, receive: Receive, send: Send) -> None:  # noqa: ARG001 - a GET has no body to read
    """Decide on the page a reverse proxy is about to serve: 200 (allow, nag) or 403 (wall).

    The key is checked first, then the site and the page: a proxy with a wrong key hears 401 whatever
    else it sent.

    Raises:
        BadRequest: if the site header or the page's URI is missing or malformed.
        Unauthorized: if the site key is missing, not valid, or another site's.
    """
    http = cast("HTTPScope", scope)
    if http["method"] != "GET":
        raise MethodNotAllowedException(headers={"Allow": "GET"})
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for raw_name, raw_value in http["headers"]:
        name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
        if name == "cookie":
            cookies.append(value)
        else:
            headers[name] = value
    key = bearer(headers.get("authorization"))
    if key is None:
        raise Unauthorized(f"Send the site's key as 'Authorization: Bearer sgs_…' with {SITE_HEADER}.")
    services = http["app"].state.services
    access: SiteAccess = services.access
    hot: HotPath = services.hot
    deadline = hot.deadline()
    adblock, visitor = _reader_cookies(cookies)
    reader_ip = client_ip(scope)
    new_visitor = None if visitor is not None else secrets.token_urlsafe(16)
    try:
        key_site = await access.key_site(key, deadline=deadline)
        site_id, path = _site_and_path(headers)
        if key_site != site_id:
            raise Unauthorized(f"This site key is not {site_id!r}'s: send the key of the site {SITE_HEADER} names.")
        deciding: DecideService = services.decide
        decision = await deciding.decide(
            DecideIn(
                site=site_id,
                path=path,
                adblock=adblock,
                pass_=None,
                visitor=visitor or new_visitor,
                user_agent=headers.get("user-agent", "")[:_MAX_USER_AGENT] or None,
                client_ip=_address(reader_ip),
            ),
            pass_header=_pass(headers.get(PASS_HEADER)),
            caller_site=key_site,
            origin=None,
            user_agent=None,
            request_ip=reader_ip,
            deadline=deadline,
        )
    except StoreUnavailable:
        # The key or the site is not cached and the store does not answer: the page goes through.
        decision = Decision(decision="allow", reason="store_unavailable")
    answer = {
        "Supportgate-Decision": decision.decision,
        "Supportgate-Reason": decision.reason,
        "Cache-Control": "no-store",
        "Content-Type": "application/json",
    }
    if new_visitor is not None and decision.meter is not None:
        secure = "; Secure" if headers.get("x-forwarded-proto") == "https" else ""
        answer["Set-Cookie"] = (
            f"{VISITOR_COOKIE}={new_visitor}; Path=/; Max-Age={VISITOR_MAX_AGE}; HttpOnly; SameSite=Lax{secure}"
        )
    await send_answer(send, 403 if decision.decision == "wall" else 200, _encode(decision), answer)


def _site_and_path(headers: dict[str, str]) -> tuple[str, str]:
    """The site id and the page's path from the proxy's headers (the path cut to 2,000 characters, as gate.js does)."""
    site_id = headers.get(SITE_HEADER.lower())
    if site_id is None:
        raise BadRequest(f"{SITE_HEADER}: missing; the proxy names the site in it")
    if not (0 < len(site_id) <= 64 and all(char.isdigit() or "a" <= char <= "z" or char == "-" for char in site_id)):
        raise BadRequest(f"{SITE_HEADER}: {site_id[:80]!r} is not a site id (a-z, 0-9 and -, at most 64)")
    uri = headers.get("x-original-uri") or headers.get("x-forwarded-uri")
    if uri is None:
        raise BadRequest("X-Original-URI (nginx) or X-Forwarded-Uri (Caddy, Traefik): missing; it names the page")
    if not uri.startswith("/"):
        raise BadRequest(f"X-Original-URI or X-Forwarded-Uri: {uri[:80]!r} does not start with '/'")
    return site_id, uri[:_MAX_PATH]


def _reader_cookies(lines: list[str]) -> tuple[AdblockSignal, str | None]:
    """``sg_adblock`` (``unknown`` when absent or not a result) and a well-formed ``sg_visitor``, from Cookie lines."""
    adblock: AdblockSignal = "unknown"
    visitor = None
    for line in lines:
        for pair in line.split(";"):
            name, _, value = pair.strip().partition("=")
            if name == ADBLOCK_COOKIE:
                adblock = COOKIE_SIGNALS.get(value.strip('"'), "unknown")
            elif name == VISITOR_COOKIE and 8 <= len(value) <= 64 and _VISITOR_CHARS.issuperset(value):
                visitor = value
    return adblock, visitor


def _pass(value: str | None) -> str | None:
    """The ``Supportgate-Pass`` header; one too long to be a pass is no pass (the reader is anonymous)."""
    if not value or len(value) > _MAX_PASS:
        return None
    return value.strip()


def _address(value: str) -> str | None:
    """The client address for decide's ``client_ip``; None when there is none (a unix socket)."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None
