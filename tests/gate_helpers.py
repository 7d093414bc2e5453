"""Helpers for the gate's tests: two sites with keys, tiers, a supporter, passes, and decide calls."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from litestar import Litestar
from litestar.testing import AsyncTestClient

from supportgate.catalog.schemas import SiteIn, SitePatch, SupporterIn, TierIn
from supportgate.gate.access import CACHE_TTL
from supportgate.readers.sessions import Caller
from supportgate.services import Services
from tests.conftest import FakeClock

Client = AsyncTestClient[Litestar]
NEWS_ORIGIN = "https://news.example"
BLOG_ORIGIN = "https://blog.example"


@dataclass
class World:
    """What :func:`make_world` made: site keys, an admin key, and the supporter's ids."""

    news_key: str
    blog_key: str
    admin_key: str
    supporter_id: str
    newsletter_reader_id: str

    @property
    def admin(self) -> dict[str, str]:
        """Headers that carry the admin key."""
        return {"Authorization": f"Bearer {self.admin_key}"}

    def site_key(self, site: str = "news") -> dict[str, str]:
        """Headers that carry a site's key."""
        return {"Authorization": f"Bearer {self.news_key if site == 'news' else self.blog_key}"}


async def make_world(services: Services) -> World:
    """Tiers `supporter` (adblock_ok) and `reader` (newsletter), sites `news` and `blog`, one supporter on each tier."""
    for tier_id, entitlements in (("supporter", ["adblock_ok"]), ("reader", ["newsletter"])):
        tier = TierIn(id=tier_id, name=tier_id, entitlements=entitlements, max_devices=5, pass_ttl_seconds=600)
        await services.tiers.create(tier, actor="tests")
    for site, origin in (("news", NEWS_ORIGIN), ("blog", BLOG_ORIGIN)):
        await services.sites.create(SiteIn(id=site, name=site, origins=[origin]), actor="tests")
    keys = services.api_keys
    # No welcome mails: a mail the app's queue sends while a test runs would change the store under it.
    fan = SupporterIn(email="fan@example.com", tier="supporter", notify=False)
    supporter = await services.supporters.create(fan, actor="t")
    reader = await services.supporters.create(
        SupporterIn(email="reader@example.com", tier="reader", notify=False), actor="t"
    )
    return World(
        news_key=(await keys.create("site", name="news", site="news", actor="tests")).key,
        blog_key=(await keys.create("site", name="blog", site="blog", actor="tests")).key,
        admin_key=(await keys.create("admin", name="tests", actor="tests")).key,
        supporter_id=supporter.id,
        newsletter_reader_id=reader.id,
    )


async def pass_for(services: Services, supporter_id: str, site: str = "news") -> str:
    """A pass for ``site`` from a new session of the supporter."""
    pair = await services.sessions.start(supporter_id=supporter_id, max_devices=5, device="tests")
    caller: Caller = await services.sessions.authenticate(pair.access_token)
    return (await services.passes.issue(caller, site)).pass_


async def set_policy(services: Services, clock: FakeClock, site: str = "news", **policy: Any) -> None:
    """Change a site's policy and let the gate's cache of it run out."""
    await services.sites.update(site, SitePatch(policy=policy), actor="tests")
    clock.advance(seconds=CACHE_TTL.total_seconds())


def view(adblock: str = "blocked", site: str = "news", **fields: Any) -> dict[str, Any]:
    """A decide body: a page view of ``/article`` on ``site`` with this detection result."""
    return {"site": site, "path": "/article", "adblock": adblock, **fields}


async def decide(
    client: Client, body: dict[str, Any], *, origin: str | None = NEWS_ORIGIN, headers: dict[str, str] | None = None
) -> httpx.Response:
    """POST /v1/decide as a browser on ``origin``, plus ``headers``."""
    sent = {"Origin": origin} if origin else {}
    return await client.post("/v1/decide", json=body, headers={**sent, **(headers or {})})


async def decided(client: Client, body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """The decision for ``body``, checked to be a 200."""
    answer = await decide(client, body, **kwargs)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def flush_stats(client: Client) -> None:
    """Flush the app's stats buffer now, on the app's own event loop."""
    app = client.app
    assert isinstance(app, Litestar)
    client.blocking_portal.call(app.state.services.stats.flush)
