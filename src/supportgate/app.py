"""``create_app``: the one place routes, the store, middleware and docs are assembled."""

from __future__ import annotations

import dataclasses
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from supportgate import __version__
from supportgate.admin.controllers import admin_router
from supportgate.catalog.supporter_csv import MAX_IMPORT_BYTES
from supportgate.clock import Clock, utc_now
from supportgate.console.controllers import console_router
from supportgate.demo.site import demo_router
from supportgate.errors import SettingsError, SupportgateError
from supportgate.extension_build import GatePackages, Preset, default_source, find_gate_packages
from supportgate.gate.anonymous_limit import stated
from supportgate.gate.controllers import MAX_DECIDE_BYTES, PAGE_VIEW_ENDPOINTS, gate_assets_router, gate_router
from supportgate.gate.events import EVENT_LIMIT
from supportgate.gate.openapi import document_decide, document_forward_auth
from supportgate.gate.reports import REPORT_LIMIT
from supportgate.http.access_log import access_logged, flush_access_log, log_access_to_stdout
from supportgate.http.contract import complete_contract
from supportgate.http.deadline import RequestDeadline
from supportgate.http.docs_ui import swagger_ui_asset, swagger_ui_plugin
from supportgate.http.fast_paths import fast_paths
from supportgate.http.health import healthz, index, readyz
from supportgate.http.limits import limit_request_head
from supportgate.http.metrics import scrape_metrics
from supportgate.http.pages import HtmlPageHeaders
from supportgate.http.problems import exception_handlers
from supportgate.install.controllers import Downloads, document_downloads, install_router
from supportgate.mail import mailer_for
from supportgate.mail_queue import MailQueue
from supportgate.metrics import Metrics
from supportgate.payments.controllers import MAX_STRIPE_EVENT_BYTES, stripe_webhook
from supportgate.readers import codes
from supportgate.readers.controllers import readers_router
from supportgate.services import Services
from supportgate.settings import Settings
from supportgate.store import open_store
from supportgate.store.limits import RateLimit
from supportgate.tokens.sealing import MasterKey

__all__ = ["app_from_env", "create_app", "demo_app_from_env"]

_SCHEMA_PATH = "/schema"
"""Where the OpenAPI document and its page are served."""


def _provider(name: str) -> Provide:
    """A dependency that hands routes the service ``name`` of the app's :class:`Services`."""

    def provide(state: State) -> Any:  # noqa: ANN401 - each service has its own type
        return getattr(state.services, name)

    return Provide(provide, sync_to_thread=False)


_DEPENDENCIES: dict[str, Provide] = {field.name: _provider(field.name) for field in dataclasses.fields(Services)}
"""Every service, by its field name in :class:`Services`: a route asks for ``tiers``, ``decide``…"""


def _settle_garbage_collector() -> None:
    """Keep the collector off the per-request path once the app is up.

    What exists at start (modules, routes, templates) lives as long as the process: freezing it
    spares every later collection from walking it, and a larger first-generation threshold
    turns many short pauses into few, which is what the decide p99 is sensitive to.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def _gate_packages(settings: Settings) -> GatePackages | None:
    """The extension packages ``supportgate serve`` or ``demo`` built for this gate at start, if any."""
    try:
        return find_gate_packages(default_source(), settings.data_dir, Preset.checked(settings.public_url))
    except SupportgateError:
        return None  # the CLI said why, once; the install page says the packages are not available


def _rate_limits(settings: Settings) -> dict[tuple[str, str], list[RateLimit]]:
    """The rate limits of each operation, as the OpenAPI document states them."""
    return {
        ("POST", "/v1/decide"): [stated(settings.anonymous_decides_per_minute)],
        ("POST", "/v1/sites/{site}/reports"): [REPORT_LIMIT],
        ("POST", "/v1/sites/{site}/events"): [EVENT_LIMIT],
        ("POST", "/v1/auth/code/request"): [
            codes.REQUESTS_PER_IP,
            codes.REQUESTS_PER_ADDRESS_AND_IP,
            codes.REQUESTS_PER_ADDRESS,
        ],
        ("POST", "/v1/auth/code/verify"): [codes.VERIFIES_PER_IP, codes.VERIFIES_PER_ADDRESS_ELSEWHERE],
        ("POST", "/v1/auth/activate"): [codes.ACTIVATIONS_PER_IP],
    }


def create_app(
    settings: Settings, *, clock: Clock = utc_now, demo: bool = False, server_process: bool = False
) -> Litestar:
    """Build the ASGI app for ``settings``; it connects to the store when it starts.

    Args:
        settings: The validated settings.
        clock: The source of "now" (tests move it).
        demo: Also serve the demo publisher site under ``/demo/``.
        server_process: The app is the whole process (``serve``, ``demo``): tune the garbage
            collector for it once started. Tests, which build many apps in one process, leave it off.
    """
    if settings.redis_url is None:
        raise SettingsError("SUPPORTGATE_REDIS_URL is not set; the CLI starts the embedded store and sets it")
    redis_url = settings.redis_url

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        master_key = MasterKey(settings.load_master_key())
        metrics = Metrics()
        # One server or a cluster: the store says which.
        store = await open_store(
            redis_url,
            socket_timeout=settings.store_timeout_seconds,
            batch_timeout=settings.decide_deadline_seconds,
            metrics=metrics,
        )
        # A read waits on the store for new mail, so for less than a store command may take.
        mail = MailQueue(store, mailer_for(settings), clock=clock, block=settings.store_timeout_seconds / 2)
        services = Services.build(store, settings, mail, master_key, clock, metrics)
        app.state.services = services
        app.state.settings = settings
        try:
            # A master key that does not open the store's secrets stops the start here, once.
            await services.vault.check()
            await services.signing_keys.ensure()
            await services.stats.start()
            await metrics.start()
            await services.audit.start()
            await services.cutoffs.start()
            await mail.start()
            document_decide(app)
            document_forward_auth(app)
            document_downloads(app.openapi_schema)
            complete_contract(
                app.openapi_schema,
                max_body_bytes=settings.max_body_bytes,
                body_limits=dict.fromkeys(
                    [("POST", "/v1/decide"), ("POST", "/v1/sites/{site}/reports"), ("POST", "/v1/sites/{site}/events")],
                    MAX_DECIDE_BYTES,
                )
                | {("POST", "/v1/admin/supporters/import"): MAX_IMPORT_BYTES}
                | {("POST", "/v1/webhooks/stripe"): MAX_STRIPE_EVENT_BYTES},
                rate_limits=_rate_limits(settings),
            )
            if server_process:
                _settle_garbage_collector()
            yield
        finally:
            await services.cutoffs.stop()
            await services.hot.stop()
            await services.crawlers.stop()
            await services.audit.stop()
            await services.stats.stop()
            await mail.stop()
            await services.api_keys.settle()
            await store.close()
            await metrics.stop()
            metrics.process_stopped()
            flush_access_log()

    logging.getLogger("supportgate").setLevel(settings.log_level)
    app = Litestar(
        route_handlers=[
            index,
            healthz,
            readyz,
            scrape_metrics,
            swagger_ui_asset,
            admin_router,
            readers_router,
            gate_router,
            gate_assets_router,
            install_router,
            console_router,
            stripe_webhook,
            *([demo_router] if demo else []),
        ],
        dependencies=_DEPENDENCIES,
        middleware=[
            RequestDeadline(timeout=settings.store_timeout_seconds),
            HtmlPageHeaders(public_url=settings.public_url, schema_path=_SCHEMA_PATH),
        ],
        lifespan=[lifespan],
        state=State({"extension_downloads": Downloads.read(_gate_packages(settings))}),
        exception_handlers=exception_handlers,
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="supportgate",
            version=__version__,
            description="Signed supporter passes, honest ad-block detection and a fair wall for ad-funded sites.",
            path=_SCHEMA_PATH,
            render_plugins=[swagger_ui_plugin()],
            components=Components(
                security_schemes={
                    "AdminKey": SecurityScheme(type="http", scheme="bearer", description="An admin API key: `sga_…`."),
                    "MetricsToken": SecurityScheme(
                        type="http", scheme="bearer", description="`SUPPORTGATE_METRICS_TOKEN`: for GET /metrics only."
                    ),
                    "SiteKey": SecurityScheme(
                        type="http", scheme="bearer", description="A site API key: `sgs_…` (server-side callers)."
                    ),
                    "AccessToken": SecurityScheme(
                        type="http",
                        scheme="bearer",
                        bearer_format="JWT",
                        description="A supporter's access token from /v1/auth/code/verify, /activate or /refresh.",
                    ),
                    "DPoPAccessToken": SecurityScheme(
                        type="http",
                        scheme="DPoP",
                        bearer_format="JWT",
                        description=(
                            "The access token of a session bound to a key (`token_type` `DPoP`), as "
                            "`Authorization: DPoP <access token>`, with a `DPoP` proof header carrying its `ath` "
                            "(RFC 9449; docs/readers-api.md)."
                        ),
                    ),
                }
            ),
        ),
        debug=False,
    )
    # Page views skip the router and the middleware stack, which they do not use (http/fast_paths.py).
    app.asgi_handler = fast_paths(app.asgi_handler, PAGE_VIEW_ENDPOINTS, exception_handlers)
    # Outside the router, so that a path no route takes is measured too.
    app.asgi_handler = limit_request_head(app.asgi_handler)
    if settings.access_log:
        # Outermost, so that every request is logged, refused ones included.
        app.asgi_handler = access_logged(app.asgi_handler)
    return app


def app_from_env() -> Litestar:
    """The app for the settings in the environment: the factory ``supportgate serve`` runs."""
    return _server_app(Settings.from_env(), demo=False)


def demo_app_from_env() -> Litestar:
    """The app with the demo publisher site: the factory ``supportgate demo`` runs."""
    return _server_app(Settings.from_env(), demo=True)


def _server_app(settings: Settings, *, demo: bool) -> Litestar:
    """The app of a whole process: its access lines, if on, go bare to standard output."""
    if settings.access_log:
        log_access_to_stdout()
    return create_app(settings, demo=demo, server_process=True)
