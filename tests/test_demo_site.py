"""The demo publisher site in-process: its pages, the gate markup they carry, and the server-side decision."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from supportgate.app import create_app
from supportgate.catalog.schemas import SitePatch
from supportgate.demo.articles import ARTICLES
from supportgate.demo.seed import seed
from supportgate.demo.site import VISITOR_COOKIE
from supportgate.services import Services
from supportgate.settings import Settings
from tests.conftest import FakeClock

Client = AsyncTestClient[Litestar]
ARTICLE = ARTICLES[0]
FIRST_WORDS = ARTICLE.paragraphs[0][:60]
SERVER = f"/demo/server/{ARTICLE.slug}"
SUPPORT_URL = "http://127.0.0.1:8000/demo/support"


@pytest.fixture
def app(settings: Settings, clock: FakeClock) -> Litestar:
    """The app as ``supportgate demo`` builds it."""
    return create_app(settings, clock=clock, demo=True)


@pytest.fixture
async def demo_site(services: Services) -> Services:
    """The demo data, seeded as ``supportgate demo`` seeds it."""
    await seed(services, support_url=SUPPORT_URL)
    return services


@pytest.fixture
async def plain_client(settings: Settings, clock: FakeClock) -> AsyncIterator[Client]:
    """A client of the app as ``supportgate serve`` builds it."""
    async with AsyncTestClient(create_app(settings, clock=clock)) as test_client:
        yield test_client


async def test_serve_has_no_demo_site(plain_client: Client) -> None:
    """The production app does not serve the demo site."""
    assert (await plain_client.get("/demo/")).status_code == 404


async def test_home_lists_every_article_in_both_versions(client: Client) -> None:
    """The front page links every article's client-side and server-side version."""
    response = await client.get("/demo/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    for article in ARTICLES:
        assert f'href="/demo/client/{article.slug}"' in response.text
        assert f'href="/demo/server/{article.slug}"' in response.text


async def test_client_article_is_whole_and_loads_gate_js(client: Client, settings: Settings) -> None:
    """The client-side article carries all its parts, the gate meta tag and an async gate.js."""
    page = (await client.get(f"/demo/client/{ARTICLE.slug}")).text
    gate = settings.public_url
    assert f'<meta name="supportgate" content="site=demo; gate={gate}">' in page
    assert f'<script src="{gate}/v1/sites/demo/gate.js" async></script>' in page
    for part in ('aria-label="Breadcrumb"', "<h1>", "<time", 'class="ad-slot"', "You may also like", "Comments (3)"):
        assert part in page, part
    assert page.count('<p>"') + page.count("<p>") >= len(ARTICLE.paragraphs)
    assert "switched off" in page
    assert "How this demo works" in page


async def test_demo_static_files_are_served(client: Client) -> None:
    """The demo's stylesheet is served under /demo/static/."""
    response = await client.get("/demo/static/demo.css")
    assert response.status_code == 200
    assert "text/css" in response.headers["content-type"]


async def test_an_unknown_article_is_not_found(client: Client) -> None:
    """An article the demo does not have is a 404 problem."""
    response = await client.get("/demo/server/no-such-story")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.usefixtures("demo_site")
async def test_server_article_before_detection_is_whole(client: Client) -> None:
    """Without the sg_adblock cookie the server sends the article, assumes unknown, and gives a visitor cookie."""
    response = await client.get(SERVER)
    assert response.status_code == 200, response.text
    assert FIRST_WORDS in response.text
    assert 'data-sg-decision="allow" data-sg-reason="inconclusive"' in response.text
    assert 'data-mode="server" data-assumed="unknown"' in response.text
    assert "no-store" in response.headers["cache-control"]
    assert VISITOR_COOKIE in response.cookies


@pytest.mark.usefixtures("demo_site")
async def test_server_article_walled_is_not_sent(client: Client) -> None:
    """With a blocker found, the server sends the wall and the page around it, never the article text."""
    client.cookies.set("sg_adblock", "blocked")
    response = await client.get(SERVER)
    page = response.text
    assert 'data-sg-decision="wall" data-sg-reason="adblock"' in page
    assert 'role="dialog"' in page
    assert SUPPORT_URL in page
    assert FIRST_WORDS not in page
    assert "Comments (" not in page
    assert ARTICLE.headline in page
    assert 'data-mode="server" data-assumed="blocked"' in page
    assert '<main id="content" class="wrap" inert' in page


async def test_server_article_nags_on_a_soft_policy(client: Client, demo_site: Services) -> None:
    """On a soft policy the reader with a blocker gets the article and a dismissible bar."""
    await demo_site.sites.update("demo", SitePatch(policy={"mode": "soft"}), actor="tests")
    client.cookies.set("sg_adblock", "blocked")
    page = (await client.get(SERVER)).text
    assert 'data-sg-decision="nag"' in page
    assert "data-dismiss" in page
    assert FIRST_WORDS in page


async def test_server_article_meters_by_the_visitor_cookie(client: Client, demo_site: Services) -> None:
    """The demo's own visitor cookie is what the meter counts: two free views, then the wall."""
    await demo_site.sites.update("demo", SitePatch(policy={"free_views": 2}), actor="tests")
    client.cookies.set("sg_adblock", "blocked")
    reasons = []
    for _ in range(3):
        page = (await client.get(SERVER)).text
        reasons.append(page.split('data-sg-reason="')[1].split('"')[0])
    assert reasons == ["metered", "metered", "adblock"]
