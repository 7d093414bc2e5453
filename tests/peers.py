"""The app as reached from a chosen address: Litestar's test client always connects as "testclient"."""

from __future__ import annotations

from litestar import Litestar
from litestar.types import Receive, Scope, Send


class AtPeer:
    """An ASGI app in front of ``app`` that gives each HTTP request the TCP peer ``address``; tests may change it."""

    def __init__(self, app: Litestar, address: str) -> None:
        self.app = app
        self.address = address

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on with ``scope["client"]`` set to the chosen peer."""
        if scope["type"] == "http":
            scope["client"] = (self.address, 50000)
        await self.app(scope, receive, send)
