"""``GET /metrics``: the service's Prometheus metrics, for an admin key or the metrics token."""

from __future__ import annotations

import asyncio
import hmac
from typing import Any, Final

from litestar import Request, Response, get
from litestar.di import NamedDependency

from supportgate.catalog.api_keys import ApiKeys
from supportgate.errors import Unauthorized
from supportgate.http.auth import bearer_token
from supportgate.mail_queue import MailQueue
from supportgate.metrics import CONTENT_TYPE, Metrics
from supportgate.settings import Settings
from supportgate.store import STORE_ERRORS

__all__ = ["scrape_metrics"]

_MEDIA_TYPE: Final = CONTENT_TYPE.removesuffix("; charset=utf-8")
"""The exposition format's media type; Litestar adds the charset to text types."""
_MAIL_DEPTH_WAIT: Final = 0.5
"""Seconds a scrape waits for the mail queue's depth; past that the last value read is shown."""


@get(
    "/metrics",
    tags=["health"],
    summary="Prometheus metrics",
    description=(
        "The service's metrics in the Prometheus text format (version 0.0.4), summed over every worker "
        "process: decisions, decide latency, pass checks, sign-ins, refreshes, store errors and latency, "
        "the mail queue and the stats backlog (docs/operations.md). Send an admin key, or the "
        "`SUPPORTGATE_METRICS_TOKEN`, as `Authorization: Bearer`; the token needs no store."
    ),
    media_type=_MEDIA_TYPE,
    cache_control=None,
    security=[{"AdminKey": []}, {"MetricsToken": []}],
)
async def scrape_metrics(
    request: Request[Any, Any, Any],
    metrics: NamedDependency[Metrics],
    api_keys: NamedDependency[ApiKeys],
    mail: NamedDependency[MailQueue],
) -> Response[bytes]:
    """Every metric, for a caller with the metrics token or an admin key; 401 otherwise."""
    settings: Settings = request.app.state.settings
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("Send the metrics token or an admin key: 'Authorization: Bearer <token>'.")
    expected = settings.metrics_token
    if not (expected is not None and hmac.compare_digest(token.encode(), expected.encode())) and (
        await api_keys.check("admin", token) is None
    ):
        raise Unauthorized("The token is neither the metrics token nor a valid admin key.")
    try:
        async with asyncio.timeout(_MAIL_DEPTH_WAIT):
            queued, retrying = await mail.depth()
    except (TimeoutError, *STORE_ERRORS):
        pass  # the store's trouble shows in supportgate_store_errors_total; the rest is still worth reading
    else:
        metrics.mail_queue(queued, retrying)
    return Response(metrics.exposition(), media_type=_MEDIA_TYPE, headers={"Cache-Control": "no-store"})
