"""The welcome mail: a new supporter learns what their support unlocks and how to use it.

Sent through the store-backed mail queue after the grant is stored. The grant stands whether
or not the mail could be queued: a full queue or a store error is logged, without the address.
"""

from __future__ import annotations

import logging

from supportgate.catalog.schemas import Supporter
from supportgate.catalog.sites import SiteService
from supportgate.catalog.tiers import TierService
from supportgate.errors import MailQueueFull, NotFound
from supportgate.mail import welcome_mail
from supportgate.mail_queue import MailQueue
from supportgate.store import STORE_ERRORS

__all__ = ["WelcomeMail"]

_log = logging.getLogger("supportgate.welcome")


class WelcomeMail:
    """Queues the welcome mail of a new supporter."""

    def __init__(self, mail: MailQueue, tiers: TierService, sites: SiteService, *, public_url: str) -> None:
        self._mail = mail
        self._tiers = tiers
        self._sites = sites
        self._install_url = f"{public_url}/extension"

    async def send(self, supporter: Supporter) -> None:
        """Queue the mail: the tier's name, the sites its entitlements unlock, the install page, signing in."""
        try:
            tier = await self._tiers.get(supporter.tier)
            unlocked = [
                site.name for site in await self._sites.list() if site.policy.unlock_entitlement in tier.entitlements
            ]
            await self._mail.send(
                welcome_mail(to=supporter.email, tier_name=tier.name, sites=unlocked, install_url=self._install_url)
            )
        except (MailQueueFull, NotFound, *STORE_ERRORS) as exc:
            # Never the address: the supporter's id finds them for whoever reads the log.
            _log.warning("the welcome mail of supporter %s was not queued: %s", supporter.id, type(exc).__name__)
