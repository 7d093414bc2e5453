"""GET /extension and its downloads: the install page, the zips built for this gate, and the 404 without them."""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urljoin

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from markupsafe import escape

from supportgate.app import create_app
from supportgate.catalog.schemas import SiteIn
from supportgate.extension_build import PRESET_FILE, Preset, gate_packages
from supportgate.gate.messages import LANGUAGES
from supportgate.http.pages import page_policy
from supportgate.install.page import SCREENSHOTS, TEXTS
from supportgate.services import Services
from supportgate.settings import Settings
from tests.conftest import FakeClock
from tests.test_gate_assets import Page
from tests.test_pages import assert_page_headers

Client = AsyncTestClient[Litestar]
EXTENSION = Path(__file__).resolve().parent.parent / "extension"
DOWNLOADS = {"chromium": "/extension/supportgate-chromium.zip", "firefox": "/extension/supportgate-firefox.zip"}


@pytest.fixture
async def built(settings: Settings, clock: FakeClock) -> AsyncIterator[Client]:
    """A client of an app whose data dir holds the packages built for its public URL, as the CLI leaves it."""
    settings.ensure_data_dir()
    gate_packages(EXTENSION, settings.data_dir, Preset.checked(settings.public_url))
    async with AsyncTestClient(create_app(settings, clock=clock)) as client:
        yield client


@pytest.fixture
async def news(services: Services) -> None:
    await services.sites.create(SiteIn(id="news", name="News & Co", origins=["https://news.example"]), actor="cli")


async def test_the_page_offers_both_downloads_and_the_steps(built: Client, settings: Settings) -> None:
    """The page links each zip, names this gate, shows the steps per browser, and carries the page headers."""
    answer = await built.get("/extension")
    assert answer.status_code == 200
    assert_page_headers(answer, page_policy(settings.public_url))
    page = answer.text
    texts = TEXTS["en"]
    assert f"<h1>{texts.title}</h1>" in page
    for path in DOWNLOADS.values():
        assert f'href="{path.removeprefix("/")}"' in page
    assert settings.public_url in page
    for needed in ("<code>chrome://extensions</code>", "Developer mode", "Load unpacked", "about:config"):
        assert needed in page
    assert "<code>xpinstall.signatures.required</code>" in page
    assert "Load Temporary Add-on" in page
    assert "data-unavailable" not in page
    assert "<script" not in page
    images = re.findall(r'<img src="([^"]+)" alt="([^"]+)"', page)
    assert [src for src, _ in images] == [f"extension/img/{name}" for name in SCREENSHOTS]
    assert all(alt.strip() for _, alt in images)


@pytest.mark.parametrize("path", ["/extension", "/extension/"])
async def test_the_pages_links_work_under_a_sites_prefix(built: Client, path: str) -> None:
    """Pictures and zips are linked relatively: reached as <prefix>/extension via a site's proxy, they resolve there."""
    page = (await built.get(path)).text
    links = re.findall(r'<img src="([^"]+)"', page) + re.findall(r'<a class="download" href="([^"]+)"', page)
    assert len(links) == len(SCREENSHOTS) + len(DOWNLOADS)
    for link in links:
        proxied = urljoin("https://news.example/sg" + path, link)
        assert proxied.startswith("https://news.example/sg/extension/"), proxied
        assert (await built.get(proxied.removeprefix("https://news.example/sg"))).status_code == 200, link


async def test_every_screenshot_the_page_shows_is_served_small(built: Client) -> None:
    """Each image the page references is a PNG under 100 KB, served with nosniff."""
    page = (await built.get("/extension")).text
    for src in re.findall(r'<img src="([^"]+)"', page):
        image = await built.get(urljoin("/extension", src))
        assert image.status_code == 200, src
        assert image.headers["content-type"] == "image/png"
        assert image.content.startswith(b"\x89PNG\r\n\x1a\n")
        assert len(image.content) < 100_000, src


@pytest.mark.parametrize(
    ("query", "accept", "language"),
    [
        ("", "de-AT,de;q=0.9", "de"),
        ("?lang=fr", "de", "fr"),
        ("", "uk", "uk"),
        ("?lang=es-MX", "", "es"),
        ("", "ja", "en"),
    ],
)
async def test_the_page_speaks_the_walls_languages(built: Client, query: str, accept: str, language: str) -> None:
    """The page picks its language as the wall does: ?lang first, then Accept-Language, else English."""
    answer = await built.get(f"/extension{query}", headers={"Accept-Language": accept})
    assert answer.status_code == 200
    assert answer.headers["content-language"] == language
    assert "Accept-Language" in answer.headers["vary"]
    assert f'<html lang="{language}">' in answer.text
    assert f"<h1>{escape(TEXTS[language].title)}</h1>" in answer.text


@pytest.mark.usefixtures("news")
async def test_the_page_names_the_site_that_sent_the_reader(built: Client) -> None:
    """?site=<id> puts the site's name, escaped, in the heading and the last step; an unknown site is not named."""
    named = (await built.get("/extension?site=news")).text
    assert "<h1>Support News &amp; Co: get the supportgate extension</h1>" in named
    assert "Back on News &amp; Co" in named
    unknown = await built.get("/extension?site=nosuchsite")
    assert unknown.status_code == 200
    assert f"<h1>{TEXTS['en'].title}</h1>" in unknown.text


async def test_a_malformed_site_is_refused(built: Client) -> None:
    """A site id outside the id pattern is a 400 problem naming the parameter."""
    answer = await built.get("/extension?site=Not%20A%20Site")
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/problem+json"
    assert "site" in answer.text


@pytest.mark.parametrize("browser", DOWNLOADS)
async def test_each_download_is_the_zip_built_for_this_gate(built: Client, settings: Settings, browser: str) -> None:
    """A download is an attachment zip holding manifest.json and a preset.json naming this gate, with an ETag."""
    answer = await built.get(DOWNLOADS[browser])
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/zip"
    assert answer.headers["content-disposition"] == f'attachment; filename="supportgate-{browser}.zip"'
    assert answer.headers["cache-control"] == "public, max-age=300"
    assert answer.headers["x-content-type-options"] == "nosniff"
    with zipfile.ZipFile(io.BytesIO(answer.content)) as bundle:
        names = bundle.namelist()
        assert "manifest.json" in names
        assert json.loads(bundle.read(PRESET_FILE)) == {"gate": settings.public_url, "name": None}
        background = json.loads(bundle.read("manifest.json"))["background"]
        assert ("service_worker" in background) == (browser == "chromium")
    etag = answer.headers["etag"]
    again = await built.get(DOWNLOADS[browser], headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""


async def test_without_packages_the_downloads_are_404_and_the_page_says_so(client: Client) -> None:
    """With nothing built in the data dir, each download is a 404 problem and the page offers no link."""
    for path in DOWNLOADS.values():
        answer = await client.get(path)
        assert answer.status_code == 404
        assert answer.headers["content-type"] == "application/problem+json"
        assert "no extension packages" in answer.json()["detail"]
    page = (await client.get("/extension")).text
    assert "data-unavailable" in page
    assert "not available from this gate" in page
    for path in DOWNLOADS.values():
        assert path not in page


async def test_the_document_describes_the_downloads(client: Client) -> None:
    """The OpenAPI document has the page as HTML and each download as a zip, or a 404 problem."""
    paths = (await client.get("/schema/openapi.json")).json()["paths"]
    assert "text/html" in paths["/extension"]["get"]["responses"]["200"]["content"]
    for path in DOWNLOADS.values():
        responses = paths[path]["get"]["responses"]
        assert responses["200"]["content"]["application/zip"]["schema"] == {"type": "string", "format": "binary"}
        assert {"ETag", "Content-Disposition"} <= set(responses["200"]["headers"])
        assert "application/problem+json" in responses["404"]["content"]
        assert "503" not in responses


@pytest.mark.usefixtures("news")
@pytest.mark.parametrize("language", sorted(LANGUAGES))
@pytest.mark.parametrize("fragment", [False, True])
async def test_the_wall_carries_a_hidden_link_to_the_install_page(
    client: Client, settings: Settings, language: str, fragment: bool
) -> None:
    """The wall in every language, page and dialog, links the install page for its site, hidden at first."""
    query = f"lang={language}" + ("&fragment=1" if fragment else "")
    wall = Page((await client.get(f"/v1/sites/news/interstitial?{query}")).text)
    holder = wall.one(data_sg_install="")
    assert "hidden" in holder.attrs
    link = next(e for e in wall.tags("a") if e.attrs.get("href", "").endswith("/extension?site=news"))
    assert link.attrs["href"] == f"{settings.public_url}/extension?site=news"
    assert link.text == LANGUAGES[language].install
    assert wall.one(data_sg_root="").attrs["data-sg-msg-signin"] == LANGUAGES[language].signin_opened


async def test_the_demo_support_page_links_the_install_page(settings: Settings, clock: FakeClock) -> None:
    """The demo's support page links this gate's install page for the demo site."""
    async with AsyncTestClient(create_app(settings, clock=clock, demo=True)) as client:
        page = (await client.get("/demo/support")).text
    assert f'<a href="{settings.public_url}/extension?site=demo">install the supportgate browser extension</a>' in page
