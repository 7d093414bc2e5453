"""The service's HTML pages: their assets come from the service, and each carries nosniff and a CSP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from supportgate.app import create_app
from supportgate.catalog.schemas import SiteIn
from supportgate.demo.articles import ARTICLES
from supportgate.demo.seed import seed
from supportgate.http.docs_ui import SWAGGER_UI_PATH
from supportgate.http.pages import SCHEMA_POLICY, page_policy
from supportgate.services import Services
from supportgate.settings import Settings
from tests.conftest import FakeClock

Client = AsyncTestClient[Litestar]


def assert_page_headers(answer: object, policy: str) -> None:
    """The answer is an HTML page with nosniff, ``policy``, and a say on who may frame it."""
    headers = answer.headers  # type: ignore[attr-defined]
    assert headers["content-type"].startswith("text/html")
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["content-security-policy"] == policy
    assert "frame-ancestors 'none'" in policy or "frame-ancestors 'self'" in policy


async def test_the_schema_page_loads_its_assets_from_the_service(client: Client) -> None:
    """The Swagger UI page names no CDN: its script, styles and icon are under /static/swagger-ui."""
    answer = await client.get("/schema")
    assert answer.status_code == 200
    assert "cdn." not in answer.text
    assert "https://" not in answer.text.split("<body>")[0]
    for name in ("swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css", "favicon-32x32.png"):
        assert f"{SWAGGER_UI_PATH}/{name}" in answer.text
    assert_page_headers(answer, SCHEMA_POLICY)


@pytest.mark.parametrize(
    ("name", "media_type"),
    [
        ("swagger-ui-bundle.js", "text/javascript"),
        ("swagger-ui-standalone-preset.js", "text/javascript"),
        ("swagger-ui.css", "text/css"),
        ("favicon-32x32.png", "image/png"),
    ],
)
async def test_the_swagger_ui_files_are_served(client: Client, name: str, media_type: str) -> None:
    """Each file the schema page loads is served, with its type, nosniff and a day's cache."""
    answer = await client.get(f"{SWAGGER_UI_PATH}/{name}")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith(media_type)
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["cache-control"] == "public, max-age=86400"
    assert len(answer.content) > 1000


@pytest.mark.parametrize("name", ["index.html", "oauth2-redirect.html", "swagger-editor-bundle.js", "..%2fcore.py"])
async def test_only_the_pages_files_are_served(client: Client, name: str) -> None:
    """The package's other files, its own HTML pages included, are a 404 problem."""
    answer = await client.get(f"{SWAGGER_UI_PATH}/{name}")
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"


async def test_the_wall_page_allows_gate_js_from_the_gate(
    client: Client, services: Services, settings: Settings
) -> None:
    """The interstitial page may run gate.js from the gate and nothing inline, and may not be framed."""
    await services.sites.create(SiteIn(id="news", name="News", origins=["https://news.example"]), actor="tests")
    answer = await client.get("/v1/sites/news/interstitial")
    assert answer.status_code == 200
    policy = page_policy(settings.public_url)
    assert_page_headers(answer, policy)
    assert f"script-src 'self' {settings.public_url};" in policy
    assert f'<script src="{settings.public_url}/v1/sites/news/gate.js"' in answer.text
    assert "trusted-types supportgate" in policy


def test_the_page_policy_names_the_gate_by_its_origin() -> None:
    """A public URL with a path still gives the gate's origin in script-src and connect-src."""
    policy = page_policy("https://gate.example:8443/base")
    assert "script-src 'self' https://gate.example:8443;" in policy
    assert "connect-src 'self' https://gate.example:8443;" in policy


async def test_json_answers_carry_no_page_policy(client: Client) -> None:
    """An API answer is not a page: it gets no Content-Security-Policy from the page headers."""
    answer = await client.get("/healthz")
    assert "content-security-policy" not in answer.headers


@pytest.fixture
async def demo_client(settings: Settings, clock: FakeClock, services: Services) -> AsyncIterator[Client]:
    """A client of the app as ``supportgate demo`` builds it, with the demo data seeded."""
    await seed(services, support_url="http://127.0.0.1:8000/demo/support")
    async with AsyncTestClient(create_app(settings, clock=clock, demo=True)) as test_client:
        yield test_client


@pytest.mark.parametrize(
    "path", ["/demo/", "/demo/support", f"/demo/client/{ARTICLES[0].slug}", f"/demo/server/{ARTICLES[0].slug}"]
)
async def test_demo_pages_carry_the_page_policy(demo_client: Client, settings: Settings, path: str) -> None:
    """Every demo page gets nosniff and the publisher's policy: gate.js from the gate, its own fetches and frames."""
    answer = await demo_client.get(path)
    assert answer.status_code == 200
    assert_page_headers(answer, page_policy(settings.public_url, publisher=True))
