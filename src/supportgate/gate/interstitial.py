"""The wall: rendered per site and language, as a page or as the dialog ``gate.js`` places."""

from __future__ import annotations

import jinja2

from supportgate.catalog.policy import gate_base
from supportgate.catalog.schemas import Site
from supportgate.gate.messages import negotiate_language, texts_for

__all__ = ["contrast_ratio", "render_interstitial"]

_templates = jinja2.Environment(
    loader=jinja2.PackageLoader("supportgate", "templates"),
    autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _on_accent(accent: str) -> str:
    """White or near-black, whichever reads better on the ``accent`` colour."""
    return "#ffffff" if contrast_ratio(accent, "#ffffff") >= contrast_ratio(accent, "#111111") else "#111111"


def _luminance(colour: str) -> float:
    def channel(hex_pair: str) -> float:
        value = int(hex_pair, 16) / 255
        return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4

    red, green, blue = (channel(colour[i : i + 2]) for i in (1, 3, 5))
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast_ratio(first: str, second: str) -> float:
    """The WCAG 2 contrast ratio of two ``#rrggbb`` colours (1 to 21)."""
    lighter, darker = sorted((_luminance(first), _luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def render_interstitial(site: Site, lang: str | None, *, fragment: bool, gate_url: str) -> str:
    """The wall for ``site`` in ``lang``: a whole page, or with ``fragment`` the dialog alone.

    Args:
        site: the site whose words, colours, logo and supporter link the wall shows.
        lang: the reader's language tag (``de``, ``de-AT``); none, or one not built in, gives English.
            The site's messages for the exact tag win over those for its language.
        fragment: the dialog alone, for ``gate.js`` to place, instead of a page that loads ``gate.js``.
        gate_url: the gate's public URL, for the page's ``gate.js`` and the install link; a site whose
            policy has a ``first_party_url`` gets that instead, as ``gate.js`` and decide do.
    """
    language, tag = negotiate_language(lang, None)
    theme = site.policy.theme
    return _templates.get_template("gate/interstitial.html").render(
        fragment=fragment,
        lang=language,
        texts=texts_for(site.policy, language, tag),
        theme=theme,
        on_accent=_on_accent(theme.accent),
        logo_url=theme.logo_url,
        support_url=site.policy.support_url,
        site_id=site.id,
        site_name=site.name,
        gate_url=gate_base(site.policy, gate_url),
    )
