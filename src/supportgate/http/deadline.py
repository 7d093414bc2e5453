"""One deadline for a whole request that may wait on the store, so a hung store answers 503 in time.

A request that is not a page view (an admin change, a sign-in) makes several store calls, each
allowed ``SUPPORTGATE_STORE_TIMEOUT_SECONDS``; on a store that hangs they would add up. This
middleware gives the whole request that one timeout: past it, the request is cut off and
answered 503 with ``Retry-After``. A write cut off after the store applied it reads as not
acknowledged; the client's retry meets what is stored (a create answers 409). Page views
(decide) run under their own, shorter deadline and opt out with ``opt={"own_deadline": True}``.
"""

from __future__ import annotations

import asyncio

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from supportgate.errors import StoreUnavailable

__all__ = ["OWN_DEADLINE", "RequestDeadline"]

OWN_DEADLINE = "own_deadline"
"""The route ``opt`` key of routes that keep a deadline of their own."""


class RequestDeadline(ASGIMiddleware):
    """Cuts a request off after ``timeout`` seconds and answers 503, unless its answer has begun."""

    scopes = (ScopeType.HTTP,)
    exclude_opt_key = OWN_DEADLINE

    def __init__(self, *, timeout: float) -> None:
        self.timeout = timeout

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Run the request under the deadline."""
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            async with asyncio.timeout(self.timeout):
                await next_app(scope, receive, tracking_send)
        except TimeoutError:
            if started:
                raise
            raise StoreUnavailable("The store did not answer in time; try again shortly.") from None
