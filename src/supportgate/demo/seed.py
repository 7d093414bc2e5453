"""The demo's data: two tiers, a site and a supporter, created once and kept."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable

from supportgate.catalog.policy import Policy
from supportgate.catalog.schemas import SiteIn, SupporterIn, TierIn
from supportgate.errors import Conflict
from supportgate.services import Services

__all__ = ["DEMO_ORIGINS", "seed"]

DEMO_ORIGINS = ["http://127.0.0.1:8000", "http://localhost:8000", "http://news.example"]
_ACTOR = "cli:demo"


async def seed(services: Services, *, origins: list[str] | None = None, support_url: str | None = None) -> None:
    """Create the demo tiers, site and supporter where they do not exist yet.

    Args:
        services: the services to create them with.
        origins: the demo site's origins; :data:`DEMO_ORIGINS` when none are given.
        support_url: where the demo site's wall sends readers who want to become supporters.
    """
    tiers = [
        TierIn(
            id="supporter",
            name="Supporter",
            description="Reads without ads getting in the way.",
            entitlements=["adblock_ok"],
            max_devices=3,
            pass_ttl_seconds=3600,
        ),
        TierIn(
            id="patron",
            name="Patron",
            description="No wall and no ads, on up to five devices.",
            entitlements=["adblock_ok", "ad_free"],
            max_devices=5,
            pass_ttl_seconds=3600,
        ),
    ]
    for tier in tiers:
        if not await services.tiers.exists(tier.id):
            await _ignore_conflict(services.tiers.create(tier, actor=_ACTOR))
    if not any(site.id == "demo" for site in await services.sites.list()):
        site = SiteIn(
            id="demo", name="The Daily Demo", origins=origins or DEMO_ORIGINS, policy=Policy(support_url=support_url)
        )
        await _ignore_conflict(services.sites.create(site, actor=_ACTOR))
    if await services.supporters.find_by_email("reader@example.com") is None:
        # No welcome mail: the demo's reader is made up, and its outbox is for the sign-in codes.
        grant = SupporterIn(email="reader@example.com", tier="supporter", note="demo supporter", notify=False)
        await _ignore_conflict(services.supporters.create(grant, actor=_ACTOR))


async def _ignore_conflict(creation: Awaitable[object]) -> None:
    """Two demo processes seeding at once both succeed: the loser's Conflict is fine."""
    with contextlib.suppress(Conflict):
        await creation
