"""The service index, and its liveness and readiness probes."""

from __future__ import annotations

import asyncio

from litestar import get
from litestar.di import NamedDependency

from supportgate import __version__
from supportgate.errors import StoreUnavailable
from supportgate.store import Store

__all__ = ["healthz", "index", "readyz"]


@get("/", tags=["health"], summary="What this service is and where to start")
async def index() -> dict[str, object]:
    """Name, version and the main entry points."""
    return {
        "service": "supportgate",
        "version": __version__,
        "links": {"api_docs": "/schema", "openapi": "/schema/openapi.json", "health": "/healthz", "ready": "/readyz"},
    }


@get("/healthz", tags=["health"], summary="The process is alive", cache_control=None, opt={"public": True})
async def healthz() -> dict[str, str]:
    """Answers while the process runs; does not touch the store."""
    return {"status": "ok"}


@get("/readyz", tags=["health"], summary="The store is reachable")
async def readyz(store: NamedDependency[Store]) -> dict[str, str]:
    """Answers 200 when the store answers a PING within a second, else 503."""
    try:
        async with asyncio.timeout(1.0):
            await store.ping()
    except (TimeoutError, OSError) as exc:
        raise StoreUnavailable(f"The store did not answer: {exc or 'timed out'}.") from exc
    return {"status": "ready"}
