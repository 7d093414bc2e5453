"""The install page: what the extension does and never does, the downloads, the steps per browser.

Its words are in ``templates/install/messages.toml``, one table per language the wall speaks; a
reader gets the same language there as on the wall (:func:`~supportgate.gate.messages.negotiate_language`).
"""

from __future__ import annotations

import re
import struct
import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Final

import jinja2
from markupsafe import Markup, escape

from supportgate.gate.messages import DEFAULT_LANGUAGE, LANGUAGES

__all__ = ["SCREENSHOTS", "SCREENSHOT_DIR", "InstallTexts", "render_install_page"]

SCREENSHOTS: Final = ("chromium-extensions.png", "firefox-addons.png", "firefox-debugging.png", "popup-signin.png")
"""The screenshots the page shows, in its order, in ``static/install/``; the browser suite makes them."""

SCREENSHOT_DIR: Final = "static/install"
"""Where the screenshots are, in the package."""

_MARKUP = re.compile(r"`([^`]+)`|\*\*([^*]+)\*\*")


@dataclass(frozen=True, slots=True)
class InstallTexts:
    """Every string the install page shows, in one language."""

    title: str
    """Heading without a site."""
    title_site: str
    """Heading naming the site that sent the reader, ``{site}``."""
    lede: str
    """What the extension is for."""
    does_heading: str
    """Heading of what it does."""
    does: list[str]
    """What it does, one item each."""
    never_heading: str
    """Heading of what it never does."""
    never: list[str]
    """What it never does, one item each."""
    download_heading: str
    """Heading of the downloads."""
    built_for: str
    """Which gate the packages are built for, ``{gate}``."""
    download_chromium: str
    """The Chromium zip's link."""
    download_firefox: str
    """The Firefox zip's link."""
    unavailable: str
    """Said instead of the links when this gate has no packages."""
    chromium_heading: str
    """Heading of the Chromium steps."""
    chromium_steps: list[str]
    """Installing in Chromium, step by step."""
    chromium_shot: str
    """Alt text of the extensions page screenshot."""
    firefox_heading: str
    """Heading of the Firefox steps."""
    firefox_unsigned: str
    """Why Firefox needs one of two ways."""
    firefox_keep_heading: str
    """Heading of the permanent install."""
    firefox_keep_steps: list[str]
    """Installing for good in ESR, Developer Edition or Nightly."""
    firefox_addons_shot: str
    """Alt text of the about:addons screenshot."""
    firefox_try_heading: str
    """Heading of the temporary install."""
    firefox_try_steps: list[str]
    """Loading it until Firefox restarts."""
    firefox_debugging_shot: str
    """Alt text of the about:debugging screenshot."""
    after_heading: str
    """Heading of signing in."""
    after: list[str]
    """Signing in and allowing a site."""
    after_site: str
    """Going back to the site that sent the reader, ``{site}``."""
    popup_shot: str
    """Alt text of the popup screenshot."""


def _load() -> dict[str, InstallTexts]:
    raw = resources.files("supportgate").joinpath("templates/install/messages.toml").read_text(encoding="utf-8")
    return {language: InstallTexts(**table) for language, table in tomllib.loads(raw).items()}


TEXTS: Final = _load()
"""The install page's texts by language."""

if TEXTS.keys() != LANGUAGES.keys():
    raise RuntimeError("templates/install/messages.toml must have the languages the wall has")


def _marked(text: str) -> Markup:
    """``text`` escaped, with `code` and **label** as <code> and <strong>."""

    def tag(match: re.Match[str]) -> str:
        code, label = match.groups()
        return f"<code>{escape(code)}</code>" if code is not None else f"<strong>{escape(label)}</strong>"

    parts: list[str] = []
    last = 0
    for match in _MARKUP.finditer(text):
        parts.append(str(escape(text[last : match.start()])))
        parts.append(tag(match))
        last = match.end()
    parts.append(str(escape(text[last:])))
    return Markup("".join(parts))  # noqa: S704 - every part is escaped above


def _png_size(name: str) -> tuple[int, int] | None:
    """A screenshot's width and height from its PNG header, so the page keeps its room while it loads."""
    try:
        head = resources.files("supportgate").joinpath(f"{SCREENSHOT_DIR}/{name}").read_bytes()[:24]
    except FileNotFoundError:
        return None
    if len(head) < 24 or head[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def _filled(text: str, **values: str) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


_templates = jinja2.Environment(
    loader=jinja2.PackageLoader("supportgate", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_templates.filters["marked"] = _marked
_templates.filters["filled"] = _filled


def render_install_page(
    language: str,
    *,
    gate_url: str,
    site_name: str | None,
    downloads: dict[str, str] | None,
    links: str = "/extension/",
) -> str:
    """The install page in ``language`` (a key of the wall's languages; others give English).

    Args:
        language: the reader's language, as negotiated for the wall.
        gate_url: this gate's public URL, which the packages are built for.
        site_name: the site that sent the reader here, to name it; None for none.
        downloads: each browser's download path, or None when this gate has no packages.
        links: what the page's own links (its pictures) start with; relative (``extension/``) when the
            page may be reached through a site's first-party prefix.
    """
    texts = TEXTS.get(language) or TEXTS[DEFAULT_LANGUAGE]
    return _templates.get_template("install/extension.html").render(
        lang=language if language in TEXTS else DEFAULT_LANGUAGE,
        texts=texts,
        gate_url=gate_url,
        site_name=site_name,
        downloads=downloads,
        links=links,
        screenshots={name: (name, _png_size(name)) for name in SCREENSHOTS},
    )
