"""A site's gate policy: when readers who block ads see the wall, and how it looks."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

import msgspec

from supportgate.errors import BadRequest
from supportgate.languages import MessagesLanguageTag

__all__ = [
    "DEFAULT_CRAWLERS",
    "CrawlerVerification",
    "Crawlers",
    "Entitlement",
    "Message",
    "Policy",
    "Theme",
    "check_policy",
    "gate_base",
]

Entitlement = Annotated[
    str, msgspec.Meta(pattern=r"^[a-z0-9_-]{1,64}$", description="An entitlement name: a-z, 0-9, '_' or '-'.")
]
Colour = Annotated[str, msgspec.Meta(pattern=r"^#[0-9a-fA-F]{6}$", description="A colour as #rrggbb.")]

DEFAULT_CRAWLERS = ["Googlebot", "Bingbot", "DuckDuckBot", "Applebot"]

CrawlerVerification = Literal["dns", "user_agent"]
"""How a crawler's claim is checked: ``dns`` (its address's reverse name, confirmed forward) or ``user_agent``."""


class Crawlers(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Which crawlers see the full content."""

    user_agents: Annotated[
        list[Annotated[str, msgspec.Meta(min_length=2, max_length=100)]],
        msgspec.Meta(
            max_length=50,
            description=(
                "Substrings of the User-Agent (case-insensitive) by which a request claims to be a crawler. "
                "Googlebot, Bingbot, DuckDuckBot, Applebot, Yandex and Baiduspider have known DNS domains."
            ),
        ),
    ] = msgspec.field(default_factory=lambda: list(DEFAULT_CRAWLERS))
    """Substrings of the User-Agent that mark a crawler's claim (case-insensitive)."""
    ip_ranges: Annotated[
        list[str],
        msgspec.Meta(
            max_length=200,
            description=(
                "CIDR ranges whose claimed crawlers are let through without a DNS check. With `verify: user_agent` "
                "and ranges set, a claim from outside them is refused."
            ),
        ),
    ] = msgspec.field(default_factory=list)
    """CIDR ranges whose claimed crawlers are let through without a DNS check (with ``verify: user_agent``
    and ranges set, a claim from outside them is refused)."""
    verify: Annotated[
        CrawlerVerification,
        msgspec.Meta(
            description=(
                "How a crawler's claim outside `ip_ranges` is checked. `dns` (the default): the client address's "
                "reverse DNS name must be in the crawler's documented domain and resolve back to the address. "
                "`user_agent` (opt-in): the User-Agent is believed as sent, which anyone can spoof."
            )
        ),
    ] = "dns"
    """``dns``: a claim outside ``ip_ranges`` counts only when the address's reverse name is in the crawler's
    documented domain and resolves back to it. ``user_agent`` (opt-in, spoofable): the User-Agent is believed."""


class Message(msgspec.Struct, forbid_unknown_fields=True):
    """The wall's words in one language."""

    title: Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
    """Heading of the wall."""
    body: Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]
    """The paragraph under it."""


class Theme(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The wall's look, to match the site."""

    accent: Colour = "#b42318"
    """Colour of the heading and the main button."""
    background: Colour = "#ffffff"
    """Background of the dialog."""
    text: Colour = "#1f2328"
    """Colour of the body text."""
    logo_url: Annotated[str, msgspec.Meta(pattern=r"^https?://", max_length=500)] | None = None
    """An http(s) URL of the site's logo, shown on the wall."""


class Policy(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """How a site treats readers who block ads."""

    mode: Literal["hard", "soft", "off"] = "hard"
    """``hard`` walls, ``soft`` shows a dismissible nag, ``off`` never interrupts."""
    free_views: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 0
    """Page views a reader who blocks ads gets per period before the wall."""
    meter_period: Literal["day", "week", "month"] = "month"
    """The period ``free_views`` counts over, per visitor."""
    exempt_paths: Annotated[
        list[Annotated[str, msgspec.Meta(pattern=r"^/", max_length=200)]], msgspec.Meta(max_length=100)
    ] = msgspec.field(default_factory=list)
    """Path globs (``/about``, ``/legal/*``) that are never gated."""
    unlock_entitlement: Entitlement = "adblock_ok"
    """The entitlement a supporter's pass must carry to skip the wall."""
    crawlers: Crawlers = msgspec.field(default_factory=Crawlers)
    """Crawlers that see the full content."""
    messages: Annotated[dict[MessagesLanguageTag, Message], msgspec.Meta(max_length=50)] = msgspec.field(
        default_factory=dict
    )
    """The site's own words for the wall, per locale; missing locales use the built-in text."""
    theme: Theme = msgspec.field(default_factory=Theme)
    """Colours and logo of the wall."""
    support_url: Annotated[str, msgspec.Meta(pattern=r"^https?://", max_length=500)] | None = None
    """Where "Become a supporter" leads."""
    first_party_url: Annotated[str, msgspec.Meta(pattern=r"^https?://", max_length=500)] | None = None
    """The URL on one of the site's origins where its own proxy serves the gate (``https://news.example/sg/``):
    gate.js, its probes, decide, reports, events and the wall then use it, so a blocker sees the site, not a
    third party. None: the gate's own URL."""


def gate_base(policy: Policy, gate_url: str) -> str:
    """Where the site's readers reach the gate, without a trailing slash: its first-party URL, or ``gate_url``."""
    return (policy.first_party_url or gate_url).rstrip("/")


def check_policy(policy: Policy) -> Policy:
    """Check what the type alone cannot (IP ranges); raise BadRequest naming the field."""
    for index, cidr in enumerate(policy.crawlers.ip_ranges):
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise BadRequest(
                f"policy.crawlers.ip_ranges[{index}]: {cidr!r} is not an IP range such as 66.249.64.0/19"
            ) from None
    return policy
