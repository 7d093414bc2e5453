"""Headers on every HTML page the service serves: ``nosniff``, a Content Security Policy, no framing.

The pages are the wall (``/v1/sites/{site}/interstitial``), the demo site (``/demo/``), the admin
console (``/admin/``) and the ``/schema`` page. Each answer whose ``Content-Type`` is ``text/html`` gets
``X-Content-Type-Options: nosniff`` and the policy of its kind, which ends in
``frame-ancestors 'none'``: no page of the service is meant to be shown in another's frame. The
demo site's pages stand for a publisher's, so they may frame and be framed by their own origin.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CONSOLE_POLICY", "SCHEMA_POLICY", "HtmlPageHeaders", "page_policy"]

_DEMO = "/demo"
_CONSOLE = "/admin"

SCHEMA_POLICY: Final = (
    "default-src 'none'; "
    # Litestar writes the Swagger UI's start-up script, with the document in it, inline.
    "script-src 'self' 'unsafe-inline'; "
    "style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; "
    "connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
"""The ``/schema`` page's policy: its scripts and styles from this service, "Try it out" to it only."""


CONSOLE_POLICY: Final = (
    "default-src 'none'; "
    "style-src 'self'; "
    "img-src 'self' data:; "
    "frame-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
"""The admin console's policy: its one stylesheet, forms to itself, no script at all, never framed; it
frames the service's own pages only (the wall's preview)."""


def page_policy(public_url: str, *, publisher: bool = False) -> str:
    """The policy of the wall and the demo pages, which run ``gate.js`` from the gate at ``public_url``.

    ``gate.js`` needs the gate in ``script-src`` (itself and its probes) and ``connect-src``
    (decide), no inline script, and creates its HTML through the Trusted Types policy
    ``supportgate`` (docs/gate.md). The wall's ``<style>`` is inline because it carries the site's
    theme colours; a site's logo may be on any HTTPS host. With ``publisher`` (the demo site's
    pages, which stand for a publisher's: APIs of its own, ad frames, frames of its own pages),
    fetches and frames may go anywhere and the page may be framed by its own origin.
    """
    parts = urlsplit(public_url)
    gate = f"{parts.scheme}://{parts.netloc}"
    connect = "*" if publisher else f"'self' {gate}"
    # The wall may be framed by the service's own origin only: the admin console previews it.
    frames = "frame-src *; frame-ancestors 'self'" if publisher else "frame-ancestors 'self'"
    return (
        "default-src 'none'; "
        f"script-src 'self' {gate}; "
        f"connect-src {connect}; "
        "style-src 'self' 'unsafe-inline'; "
        "img-src 'self' https: data:; "
        "require-trusted-types-for 'script'; trusted-types supportgate; "
        f"base-uri 'none'; form-action 'self'; {frames}"
    )


class HtmlPageHeaders(ASGIMiddleware):
    """Adds ``nosniff`` and a Content Security Policy to every ``text/html`` answer."""

    scopes = (ScopeType.HTTP,)
    # Page views answer JSON, on the path whose latency counts most.
    exclude_path_pattern = ("^/v1/decide$",)

    def __init__(self, *, public_url: str, schema_path: str) -> None:
        self.page_policy = page_policy(public_url)
        self.demo_policy = page_policy(public_url, publisher=True)
        self.schema_path = schema_path

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Run the request, adding the headers to its answer if that is an HTML page."""
        path: str = scope["path"]
        on_schema = path == self.schema_path or path.startswith(self.schema_path + "/")
        if on_schema:
            policy = SCHEMA_POLICY
        elif path == _DEMO or path.startswith(_DEMO + "/"):
            policy = self.demo_policy
        elif path == _CONSOLE or path.startswith(_CONSOLE + "/"):
            policy = CONSOLE_POLICY
        else:
            policy = self.page_policy

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                if headers.get("content-type", "").startswith("text/html"):
                    headers["X-Content-Type-Options"] = "nosniff"
                    headers["Content-Security-Policy"] = policy
            await send(message)

        await next_app(scope, receive, send_with_headers)
