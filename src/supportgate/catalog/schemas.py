"""The shared records as they are stored and shown: tiers, supporters, sites, API keys, the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from supportgate.catalog.policy import Entitlement, Policy
from supportgate.tokens.lifetimes import LONGEST_PASS, PASS_LIFETIME, SHORTEST_PASS

__all__ = [
    "AuditEntry",
    "AuditPage",
    "KeyCreated",
    "KeyInfo",
    "Site",
    "SiteIn",
    "SiteKeyIn",
    "SitePatch",
    "Slug",
    "Supporter",
    "SupporterIn",
    "SupporterPage",
    "SupporterPatch",
    "Tier",
    "TierIn",
    "TierPatch",
    "TierWritten",
]

Slug = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[a-z0-9-]{1,64}$",
        description="An id: 1 to 64 lowercase letters, digits or '-'.",
        examples=["supporter"],
    ),
]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
Description = Annotated[str, msgspec.Meta(max_length=1000)]
Note = Annotated[str, msgspec.Meta(max_length=2000)]
EmailText = Annotated[
    str,
    msgspec.Meta(
        min_length=3,
        max_length=254,
        examples=["reader@example.com"],
        # Documented, not checked here: normalise_email checks the address and says what is wrong with it.
        extra_json_schema={"format": "email"},
    ),
]
AwareTime = Annotated[datetime, msgspec.Meta(tz=True, description="RFC 3339 time with an offset.")]
Entitlements = Annotated[list[Entitlement], msgspec.Meta(max_length=32)]
MaxDevices = Annotated[int, msgspec.Meta(ge=1, le=100, description="How many sessions a supporter may have at once.")]
_SHORTEST_PASS_S = int(SHORTEST_PASS.total_seconds())
_LONGEST_PASS_S = int(LONGEST_PASS.total_seconds())
PassTtl = Annotated[
    int,
    msgspec.Meta(
        ge=_SHORTEST_PASS_S,
        le=_LONGEST_PASS_S,
        description=f"Lifetime of a supporter pass in seconds ({_SHORTEST_PASS_S} to {_LONGEST_PASS_S}).",
    ),
]
_ORIGIN_PATTERN = (
    r"^\s*https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~-]+)"
    r"(:([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?/?\s*$"
)
Origin = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=255,
        description="scheme://host[:port], no path.",
        examples=["https://news.example"],
        # Documented, not checked here: normalise_origin checks the origin and says what is wrong with it.
        extra_json_schema={"pattern": _ORIGIN_PATTERN},
    ),
]
SupporterStatus = Literal["active", "expired", "revoked"]
StripePriceId = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[A-Za-z0-9_]{1,200}$",
        description="A Stripe price id (or a legacy plan id): letters, digits and '_'.",
        examples=["price_1QzX2aLkdIwHu7ix"],
    ),
]
StripePriceIds = Annotated[
    list[StripePriceId],
    msgspec.Meta(
        max_length=50,
        description=(
            "The Stripe prices whose payment grants this tier (docs/payments.md). A price grants one tier at most: "
            "one another tier has is a 409."
        ),
    ),
]


class TierIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A new tier."""

    id: Slug
    name: Name
    description: Description = ""
    entitlements: Entitlements
    max_devices: MaxDevices
    pass_ttl_seconds: PassTtl = int(PASS_LIFETIME.total_seconds())
    stripe_price_ids: StripePriceIds = msgspec.field(default_factory=list)


class TierPatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Changes to a tier; absent fields stay as they are."""

    name: Name | UnsetType = UNSET
    description: Description | UnsetType = UNSET
    entitlements: Entitlements | UnsetType = UNSET
    max_devices: MaxDevices | UnsetType = UNSET
    pass_ttl_seconds: PassTtl | UnsetType = UNSET
    stripe_price_ids: StripePriceIds | UnsetType = UNSET


class Tier(msgspec.Struct, kw_only=True):
    """A supporter tier: what its supporters are entitled to."""

    id: str
    name: str
    description: str
    entitlements: list[str]
    max_devices: int
    pass_ttl_seconds: int
    created_at: datetime
    updated_at: datetime
    stripe_price_ids: list[str] = msgspec.field(default_factory=list)
    """The Stripe prices whose payment grants this tier; empty when none does."""
    supporters: int = 0
    """How many supporters are on this tier (not stored; counted when read)."""


class TierWritten(Tier, kw_only=True):
    """A tier as created or changed, with what an admin should know about it."""

    warnings: Annotated[
        list[str],
        msgspec.Meta(
            description=(
                "What looks wrong but was stored as asked: while there are sites, entitlements of which none "
                "is any site's policy.unlock_entitlement (a typo such as no_wall). Empty when all is well."
            )
        ),
    ] = msgspec.field(default_factory=list)


class SupporterIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A grant of supporter status to an email address."""

    email: EmailText
    tier: Slug
    expires_at: AwareTime | None = None
    note: Note | None = None
    notify: bool = True
    """Send the new supporter the welcome mail (what their support unlocks, how to use it); false skips it."""


class SupporterPatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Changes to a supporter; absent fields stay, ``null`` clears ``expires_at`` and ``note``."""

    email: EmailText | UnsetType = UNSET
    tier: Slug | UnsetType = UNSET
    expires_at: AwareTime | UnsetType | None = UNSET
    note: Note | UnsetType | None = UNSET
    status: Literal["active", "revoked"] | UnsetType = UNSET


class Supporter(msgspec.Struct, kw_only=True):
    """A supporter as stored; ``status`` reads ``expired`` once ``expires_at`` has passed."""

    id: str
    email: str
    tier: str
    status: SupporterStatus
    expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    note: str | None = None


class SupporterPage(msgspec.Struct):
    """One page of supporters, newest first; pass ``next_cursor`` back as ``cursor`` for the next."""

    items: list[Supporter]
    next_cursor: str | None


class SiteIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A new site."""

    id: Slug
    name: Name
    origins: Annotated[list[Origin], msgspec.Meta(min_length=1, max_length=20)]
    policy: Policy = msgspec.field(default_factory=Policy)


class SitePatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Changes to a site; ``policy`` fields given replace those fields, the rest stay."""

    name: Name | UnsetType = UNSET
    origins: Annotated[list[Origin], msgspec.Meta(min_length=1, max_length=20)] | UnsetType = UNSET
    policy: dict[str, Any] | UnsetType = UNSET


class Site(msgspec.Struct, kw_only=True):
    """A site that gates its pages with supportgate."""

    id: str
    name: str
    origins: list[str]
    policy: Policy
    created_at: datetime
    updated_at: datetime


class KeyCreated(msgspec.Struct, kw_only=True):
    """A new API key. ``key`` is shown this once; only its hash is stored."""

    id: str
    name: str
    key: str
    created_at: datetime
    site: str | None = None


class KeyInfo(msgspec.Struct, kw_only=True):
    """An admin or site API key as listed: never its secret nor its hash."""

    id: str
    name: str
    created_at: datetime
    last_used_at: Annotated[
        datetime | None,
        msgspec.Meta(
            description="When the key was last used, to within a minute (or the gate's 5 s cache); null if never."
        ),
    ]


class SiteKeyIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A new site key; without a ``name``, the key is named after its site."""

    name: Name | None = None


class AuditEntry(msgspec.Struct, kw_only=True):
    """One admin write: who did what to which thing, and the thing before and after."""

    id: str
    at: datetime
    actor: str
    action: str
    target: str
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


class AuditPage(msgspec.Struct):
    """One page of the audit log, newest first."""

    items: list[AuditEntry]
    next_cursor: str | None
