"""gate.js, the detection probes and the interstitial, over HTTP; gate.js's pure parts under node."""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from supportgate.catalog.policy import Policy, Theme
from supportgate.catalog.schemas import Site
from supportgate.gate.interstitial import contrast_ratio, render_interstitial
from supportgate.gate.messages import LANGUAGES, negotiate_language
from supportgate.gate.script import minify, render_script
from supportgate.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SHARED_ADBLOCK = ROOT.parent / "shared" / "adblock"
GATE_JS = ROOT / "src" / "supportgate" / "static" / "gate" / "gate.js"
SUPPORT_URL = "https://news.example/support"
LOGO_URL = "https://news.example/logo.svg"

Client = AsyncTestClient[Litestar]


async def create_site(admin: Client, site_id: str = "news", **fields: Any) -> dict[str, Any]:
    body = {"id": site_id, "name": "The News", "origins": ["https://news.example"], **fields}
    response = await admin.post("/v1/admin/sites", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


@pytest.fixture
async def news(admin: Client) -> dict[str, Any]:
    """A site with a supporter link and a themed wall."""
    return await create_site(
        admin,
        policy={
            "support_url": SUPPORT_URL,
            "theme": {"accent": "#123456", "background": "#fafafa", "text": "#202020", "logo_url": LOGO_URL},
        },
    )


class Element:
    """One parsed HTML element: its tag, attributes and text."""

    def __init__(self, tag: str, attrs: dict[str, str]) -> None:
        self.tag = tag
        self.attrs = attrs
        self.text = ""


class Page(HTMLParser):
    """Every element of a page, in order, with the text inside each one."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self._open: list[Element] = []
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Open an element; void elements never hold text."""
        element = Element(tag, {name: value or "" for name, value in attrs})
        self.elements.append(element)
        if tag not in {"meta", "img", "link", "br", "input"}:
            self._open.append(element)

    def handle_endtag(self, tag: str) -> None:
        """Close the innermost open element with this tag."""
        while self._open:
            if self._open.pop().tag == tag:
                break

    def handle_data(self, data: str) -> None:
        """Add text to every open element."""
        for element in self._open:
            element.text += data

    def find(self, **attrs: str) -> list[Element]:
        """The elements with these attribute values (``data_sg_root`` means ``data-sg-root``)."""
        return [e for e in self.elements if all(e.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items())]

    def one(self, **attrs: str) -> Element:
        """The one element with these attribute values."""
        found = self.find(**attrs)
        assert len(found) == 1, (attrs, [e.attrs for e in found])
        return found[0]

    def tags(self, tag: str) -> list[Element]:
        """The elements with this tag."""
        return [e for e in self.elements if e.tag == tag]


def actions(page: Page) -> dict[str, Element]:
    return {e.attrs["data-sg-action"]: e for e in page.elements if "data-sg-action" in e.attrs}


# gate.js


@pytest.mark.usefixtures("news")
async def test_gate_js_has_the_site_and_gate_built_in(client: Client, settings: Settings) -> None:
    """gate.js is served as JavaScript with the site id and the gate's public URL substituted."""
    response = await client.get("/v1/sites/news/gate.js")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.headers["cache-control"] == "public, max-age=300"
    body = response.text
    assert 'var SITE="news";' in body
    assert f"var GATE={json.dumps(settings.public_url)};" in body
    assert "__SG_" not in body


@pytest.mark.usefixtures("news")
async def test_gate_js_is_at_most_4_kb_gzipped(client: Client) -> None:
    """The served gate.js compresses to 4096 bytes or fewer, and is sent gzipped to clients that ask."""
    plain = await client.get("/v1/sites/news/gate.js", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert len(gzip.compress(plain.content, 9)) <= 4096
    zipped = await client.get("/v1/sites/news/gate.js", headers={"Accept-Encoding": "br, gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.headers["vary"] == "Accept-Encoding"
    assert zipped.content == plain.content


@pytest.mark.usefixtures("news")
async def test_gate_js_etag_is_stable_and_answers_304(client: Client) -> None:
    """The ETag is the same on every request, and If-None-Match with it (or a list holding it) gets 304."""
    plain = {"Accept-Encoding": "identity"}
    first = await client.get("/v1/sites/news/gate.js", headers=plain)
    second = await client.get("/v1/sites/news/gate.js", headers=plain)
    etag = first.headers["etag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)
    assert second.headers["etag"] == etag
    for if_none_match in (etag, f'"other", W/{etag}', "*"):
        again = await client.get("/v1/sites/news/gate.js", headers={**plain, "If-None-Match": if_none_match})
        assert again.status_code == 304, if_none_match
        assert again.content == b""
        assert again.headers["etag"] == etag
    changed = await client.get("/v1/sites/news/gate.js", headers={**plain, "If-None-Match": '"other"'})
    assert changed.status_code == 200


@pytest.mark.usefixtures("news")
async def test_gate_js_differs_per_site(client: Client, admin: Client) -> None:
    """Each site gets its own script and ETag."""
    await create_site(admin, "sport")
    news_js = await client.get("/v1/sites/news/gate.js")
    sport_js = await client.get("/v1/sites/sport/gate.js")
    assert 'var SITE="sport";' in sport_js.text
    assert news_js.headers["etag"] != sport_js.headers["etag"]


@pytest.mark.parametrize("path", ["gate.js", "probe.js", "ads/show.js", "interstitial", "about"])
async def test_an_unknown_site_is_a_404_problem(client: Client, path: str) -> None:
    """Every asset of a site that does not exist is a 404 problem naming it."""
    response = await client.get(f"/v1/sites/nowhere/{path}")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "nowhere" in response.json()["detail"]


# about


@pytest.mark.usefixtures("news")
async def test_about_names_the_site_for_any_origin(client: Client) -> None:
    """/about answers the site's id, name, logo and support page, readable from any origin, cacheable."""
    response = await client.get("/v1/sites/news/about", headers={"Origin": "chrome-extension://abcdef"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["cache-control"] == "public, max-age=300"
    assert response.json() == {"id": "news", "name": "The News", "logo_url": LOGO_URL, "support_url": SUPPORT_URL}


async def test_about_follows_the_admins_changes(client: Client, admin: Client) -> None:
    """A site without a logo or support page says null for them; a rename shows at once."""
    await create_site(admin, "plain")
    first = await client.get("/v1/sites/plain/about")
    assert first.json() == {"id": "plain", "name": "The News", "logo_url": None, "support_url": None}
    renamed = await admin.patch("/v1/admin/sites/plain", json={"name": "The Plain News"})
    assert renamed.status_code == 200, renamed.text
    second = await client.get("/v1/sites/plain/about")
    assert second.json()["name"] == "The Plain News"


# probes


@pytest.mark.usefixtures("news")
async def test_the_control_probe_sets_its_global(client: Client) -> None:
    """probe.js sets the control global gate.js reads, and is never cached."""
    response = await client.get("/v1/sites/news/probe.js?r=0a1b2c3d")
    assert response.status_code == 200
    assert response.text.strip() == "window.supportgateControl=true;"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert "supportgateControl" in GATE_JS.read_text()


@pytest.mark.usefixtures("news")
async def test_the_network_bait_sets_its_global(client: Client) -> None:
    """ads/show.js sets the bait global gate.js judges the bait by, and is never cached."""
    response = await client.get("/v1/sites/news/ads/show.js?r=0a1b2c3d")
    assert response.status_code == 200
    assert response.text.strip() == "window.supportgateBait=true;"
    assert response.headers["cache-control"] == "no-store"
    assert "supportgateBait" in GATE_JS.read_text()


# interstitial


@pytest.mark.parametrize("language", sorted(LANGUAGES))
@pytest.mark.usefixtures("news")
async def test_each_language_by_the_lang_parameter(client: Client, language: str) -> None:
    """?lang= picks each built-in language, whatever Accept-Language says."""
    response = await client.get(
        f"/v1/sites/news/interstitial?lang={language}", headers={"Accept-Language": "ja, en;q=0.5"}
    )
    assert response.status_code == 200
    assert response.headers["content-language"] == language
    page = Page(response.text)
    assert page.tags("html")[0].attrs["lang"] == language
    texts = LANGUAGES[language]
    assert page.one(id="sg-title").text == texts.title
    assert page.one(id="sg-body").text == texts.body
    assert actions(page)["recheck"].text == texts.recheck


@pytest.mark.parametrize("language", sorted(LANGUAGES))
@pytest.mark.usefixtures("news")
async def test_each_language_by_accept_language(client: Client, language: str) -> None:
    """Accept-Language picks each built-in language when there is no ?lang=."""
    response = await client.get(
        "/v1/sites/news/interstitial", headers={"Accept-Language": f"ja, {language}-XX;q=0.8, en;q=0.1"}
    )
    assert response.headers["content-language"] == language
    assert Page(response.text).one(id="sg-title").text == LANGUAGES[language].title


@pytest.mark.usefixtures("news")
async def test_accept_language_follows_q_values_not_order(client: Client) -> None:
    """The highest q-value wins over the earliest entry; q=0 means never."""
    response = await client.get(
        "/v1/sites/news/interstitial", headers={"Accept-Language": "en;q=0.5, de;q=0, uk;q=0.9, fr;q=0.7"}
    )
    assert response.headers["content-language"] == "uk"
    assert response.headers["vary"] == "Accept-Language"
    assert negotiate_language(None, "de;q=0, *;q=0.5") == ("en", "en")


@pytest.mark.usefixtures("news")
async def test_an_unsupported_language_falls_back_to_english(client: Client) -> None:
    """A language that is not built in, asked either way, gives English."""
    response = await client.get("/v1/sites/news/interstitial?lang=pt-BR", headers={"Accept-Language": "ja, zh-CN"})
    assert response.headers["content-language"] == "en"
    assert Page(response.text).one(id="sg-title").text == "Adblock Detected"
    bare = await client.get("/v1/sites/news/interstitial", headers={"Accept-Language": ""})
    assert bare.headers["content-language"] == "en"


@pytest.mark.usefixtures("news")
async def test_a_malformed_lang_is_a_400(client: Client) -> None:
    """?lang= that is no language tag is refused, naming the parameter."""
    response = await client.get("/v1/sites/news/interstitial?lang=%3Cscript%3E")
    assert response.status_code == 400
    assert "lang" in response.text


@pytest.mark.usefixtures("news")
async def test_the_publishers_english_words_are_the_default(client: Client) -> None:
    """Without site messages the English wall carries the publisher's title and body."""
    page = Page((await client.get("/v1/sites/news/interstitial?lang=en")).text)
    assert page.one(id="sg-title").text == "Adblock Detected"
    assert page.one(id="sg-body").text == (
        "Please support us by disabling your AdBlocker extension from your browsers for our website."
    )


async def test_site_messages_override_title_and_body(client: Client, admin: Client) -> None:
    """A site's messages replace the title and body for their locale, the most specific tag first."""
    await create_site(
        admin,
        policy={
            "messages": {
                "de": {"title": "Bitte Werbung erlauben", "body": "Wir leben von Werbung."},
                "de-AT": {"title": "Servus!", "body": "Bitte Werbung zulassen."},
            }
        },
    )
    german = Page((await client.get("/v1/sites/news/interstitial?lang=de")).text)
    assert german.one(id="sg-title").text == "Bitte Werbung erlauben"
    assert german.one(id="sg-body").text == "Wir leben von Werbung."
    assert actions(german)["report"].text == LANGUAGES["de"].report
    austrian = await client.get("/v1/sites/news/interstitial", headers={"Accept-Language": "de-at"})
    assert austrian.headers["content-language"] == "de"
    assert Page(austrian.text).one(id="sg-title").text == "Servus!"
    english = Page((await client.get("/v1/sites/news/interstitial?lang=en")).text)
    assert english.one(id="sg-title").text == "Adblock Detected"


@pytest.mark.usefixtures("news")
async def test_theme_colours_and_logo_appear(client: Client) -> None:
    """The site's colours become CSS custom properties, and its logo is shown with the site's name."""
    markup = (await client.get("/v1/sites/news/interstitial?lang=en&fragment=1")).text
    assert "--sg-accent: #123456;" in markup
    assert "--sg-bg: #fafafa;" in markup
    assert "--sg-text: #202020;" in markup
    assert "--sg-on-accent: #ffffff;" in markup
    logo = Page(markup).tags("img")[0]
    assert logo.attrs == {"class": "sg-logo", "src": LOGO_URL, "alt": "The News"}


@pytest.mark.usefixtures("news")
async def test_the_fragment_is_the_dialog_alone(client: Client, settings: Settings) -> None:
    """fragment=1 is the styled dialog with no document around it; the full page wraps it and loads gate.js."""
    fragment = await client.get("/v1/sites/news/interstitial?lang=fr&fragment=1")
    assert fragment.headers["access-control-allow-origin"] == "*"
    assert fragment.headers["content-type"] == "text/html; charset=utf-8"
    parts = Page(fragment.text)
    assert fragment.text.lstrip().startswith("<style>")
    assert not parts.tags("html")
    assert not parts.tags("body")
    assert not parts.tags("script")
    assert parts.one(data_sg_root="").attrs["lang"] == "fr"
    assert parts.tags("h2")[0].attrs["id"] == "sg-title"

    full = await client.get("/v1/sites/news/interstitial?lang=fr")
    assert full.text.startswith("<!DOCTYPE html>")
    page = Page(full.text)
    assert page.tags("title")[0].text == f"{LANGUAGES['fr'].title} · The News"
    assert page.tags("h1")[0].attrs["id"] == "sg-title"
    assert page.tags("main")
    (script,) = page.tags("script")
    assert script.attrs["src"] == f"{settings.public_url}/v1/sites/news/gate.js"
    assert script.attrs["data-mode"] == "server"
    assert script.attrs["data-assumed"] == "blocked"


@pytest.mark.usefixtures("news")
async def test_the_dialog_is_labelled_and_has_its_four_buttons(client: Client) -> None:
    """role=dialog, aria-modal, labelled by the heading, described by the body, with the four translated actions."""
    page = Page((await client.get("/v1/sites/news/interstitial?lang=es&fragment=1")).text)
    dialog = page.one(role="dialog")
    assert dialog.attrs["aria-modal"] == "true"
    assert page.one(id=dialog.attrs["aria-labelledby"]).text == LANGUAGES["es"].title
    assert page.one(id=dialog.attrs["aria-describedby"]).text == LANGUAGES["es"].body
    found = actions(page)
    texts = LANGUAGES["es"]
    assert {name: (e.tag, e.text) for name, e in found.items() if name != "close"} == {
        "recheck": ("button", texts.recheck),
        "report": ("button", texts.report),
        "support": ("a", texts.support),
        "signin": ("button", texts.signin),
    }
    assert found["support"].attrs["href"] == SUPPORT_URL
    assert all(found[name].attrs["type"] == "button" for name in ("recheck", "report", "signin", "close"))
    assert found["close"].attrs["aria-label"] == texts.close
    assert page.one(role="status", data_sg_status="").text == ""
    root = page.one(data_sg_root="")
    assert root.attrs["data-sg-msg-thanks"] == texts.thanks
    assert root.attrs["data-sg-msg-noext"] == texts.no_extension


async def test_without_a_support_url_there_is_no_supporter_link(client: Client, admin: Client) -> None:
    """A site with no support_url gets no "Become a supporter" link rather than a dead one."""
    await create_site(admin)
    found = actions(Page((await client.get("/v1/sites/news/interstitial?fragment=1")).text))
    assert sorted(found) == ["close", "recheck", "report", "signin"]


async def test_site_text_is_escaped(client: Client, admin: Client) -> None:
    """A site name or message holding markup is shown as text, never run."""
    evil = '<script>alert("x")</script>'
    await create_site(
        admin,
        name=f"News {evil}",
        policy={
            "messages": {"en": {"title": f"Title {evil}", "body": f"Body {evil}"}},
            "theme": {"logo_url": 'https://news.example/l.svg"><script>alert(1)</script>'},
        },
    )
    full = (await client.get("/v1/sites/news/interstitial?lang=en")).text
    assert "<script>alert" not in full
    assert "&lt;script&gt;alert(" in full
    page = Page(full)
    assert page.one(id="sg-title").text == f"Title {evil}"
    assert page.tags("img")[0].attrs["alt"] == f"News {evil}"
    assert len(page.tags("script")) == 1


def test_render_interstitial_negotiates_its_lang() -> None:
    """The function the demo renders with takes any tag, or none, and falls back to English."""
    now = datetime.now(UTC)
    site = Site(
        id="news", name="News", origins=["https://news.example"], policy=Policy(), created_at=now, updated_at=now
    )
    german = render_interstitial(site, "de-CH", fragment=True, gate_url="https://gate.example/")
    assert Page(german).one(data_sg_root="").attrs["lang"] == "de"
    english = render_interstitial(site, None, fragment=False, gate_url="https://gate.example/")
    assert 'src="https://gate.example/v1/sites/news/gate.js"' in english
    assert Page(english).tags("html")[0].attrs["lang"] == "en"


def test_the_default_theme_passes_wcag_aa() -> None:
    """The default colours reach 4.5:1 for text on the dialog and on the main button."""
    theme = Theme()
    assert contrast_ratio(theme.text, theme.background) >= 4.5
    assert contrast_ratio(theme.accent, theme.background) >= 4.5
    assert contrast_ratio("#ffffff", theme.accent) >= 4.5
    assert contrast_ratio("#000000", "#ffffff") == pytest.approx(21)


# the minifier


def test_minify_strips_comments_indentation_and_spaces_between_tokens() -> None:
    """Comment lines, block comments, indentation and spaces beside punctuation go; statements keep their breaks."""
    source = '/*\n * header\n */\nfunction f() {\n  // why\n  var u = "https://x";\n  return u\n}\nf()\n'
    assert minify(source) == 'function f(){var u="https://x";return u}\nf()\n'


def test_minify_keeps_strings_regexes_and_the_spaces_tokens_need() -> None:
    """Spaces in strings and regular expressions stay, as do those in ``- -c``, ``1 .toFixed`` and ``typeof x``."""
    source = (
        "var a = b - -c + + d, e = \"x  y\" + 'it\\'s ';\nx = /[ \"/]+ \\/ /g.test(y) ? 1 .toFixed(2) : typeof w / 2;\n"
    )
    squeezed = "var a=b- -c+ +d,e=\"x  y\"+'it\\'s ';x=/[ \"/]+ \\/ /g.test(y)?1 .toFixed(2):typeof w/2;\n"
    assert minify(source) == squeezed


@pytest.mark.parametrize(
    "source",
    ["var s = `x`;\n", "f(); // trailing\n", "/* a */ f();\n", 'var s = "open;\n'],
    ids=["template", "trailing", "after", "unended"],
)
def test_minify_refuses_what_it_cannot_strip_safely(source: str) -> None:
    """Template literals, comments after code, code after a block comment and unended strings are refused."""
    with pytest.raises(ValueError):
        minify(source)


# filter lists


def _dnr_pattern(url_filter: str) -> re.Pattern[str]:
    """A declarativeNetRequest urlFilter as a regular expression (||, |, *, ^)."""
    start, end = "", ""
    if url_filter.startswith("||"):
        url_filter, start = url_filter[2:], r"^[a-z][a-z0-9+.-]*://([^/?#]*\.)?"
    elif url_filter.startswith("|"):
        url_filter, start = url_filter[1:], "^"
    if url_filter.endswith("|"):
        url_filter, end = url_filter[:-1], "$"
    body = "".join(
        ".*" if ch == "*" else r"(?:[^A-Za-z0-9_.%-]|$)" if ch == "^" else re.escape(ch) for ch in url_filter
    )
    return re.compile(start + body + end, re.IGNORECASE)


def _in(host: str, domains: list[str]) -> bool:
    return any(host == d or host.endswith("." + d) for d in domains)


def _dnr_matches(rule: dict[str, Any], url: str, resource_type: str, *, third_party: bool) -> bool:
    condition = rule["condition"]
    host = urlsplit(url).hostname or ""
    initiator = "news.example"
    checks = [
        "urlFilter" not in condition or _dnr_pattern(condition["urlFilter"]).search(url) is not None,
        resource_type in condition.get("resourceTypes", [resource_type]),
        resource_type not in condition.get("excludedResourceTypes", []),
        "requestDomains" not in condition or _in(host, condition["requestDomains"]),
        "initiatorDomains" not in condition or _in(initiator, condition["initiatorDomains"]),
        not _in(initiator, condition.get("excludedInitiatorDomains", [])),
        condition.get("domainType") != ("firstParty" if third_party else "thirdParty"),
    ]
    return all(checks)


def _hits(rules_file: str, url: str, resource_type: str, action: str) -> list[int]:
    path = SHARED_ADBLOCK / rules_file
    if not path.is_file():
        pytest.skip(f"{rules_file} is not in ../shared/adblock (a checkout outside the workplace)")
    rules = json.loads(path.read_text())
    return [
        rule["id"]
        for rule in rules
        for third_party in (True, False)
        if rule["action"]["type"] == action and _dnr_matches(rule, url, resource_type, third_party=third_party)
    ]


GATE = "http://gate.example:8000/v1"


def test_easylist_blocks_the_bait_and_allows_nothing_of_it() -> None:
    """EasyList's /ads/show. rule blocks the network bait as a script, and no allow rule lets it through."""
    bait = f"{GATE}/sites/news/ads/show.js?r=0a1b2c3d"
    assert _hits("easylist.json", bait, "script", "block")
    assert _hits("easylist.json", bait, "script", "allow") == []
    assert _hits("easyprivacy.json", bait, "script", "block") == []


@pytest.mark.parametrize(
    ("url", "resource_type"),
    [
        (f"{GATE}/sites/news/gate.js", "script"),
        (f"{GATE}/sites/news/probe.js?r=0a1b2c3d", "script"),
        (f"{GATE}/decide", "xmlhttprequest"),
        (f"{GATE}/sites/news/interstitial?lang=en&fragment=1", "xmlhttprequest"),
        (f"{GATE}/sites/news/interstitial?lang=en", "main_frame"),
        (f"{GATE}/sites/news/reports", "xmlhttprequest"),
    ],
)
@pytest.mark.parametrize("rules_file", ["easylist.json", "easyprivacy.json"])
def test_no_filter_list_blocks_the_gate_itself(rules_file: str, url: str, resource_type: str) -> None:
    """Neither EasyList nor EasyPrivacy blocks gate.js, the control, decide, the interstitial or reports."""
    assert _hits(rules_file, url, resource_type, "block") == []


# gate.js under node


@pytest.mark.parametrize("variant", ["source", "served"])
def test_gate_js_pure_parts_under_node(variant: str, tmp_path: Path) -> None:
    """`node --test tests/js` passes against gate.js as written and as the gate serves it (minified, substituted)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not on PATH: gate.js's pure functions are not tested here")
    env = {"PATH": str(Path(node).parent)}
    if variant == "served":
        served = tmp_path / "gate.js"
        served.write_bytes(render_script("news", "https://gate.example"))
        env["SUPPORTGATE_GATE_JS"] = str(served)
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests" / "js").glob("*.test.mjs"))
    assert files
    result = subprocess.run(
        [node, "--test", *files], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
