"""Supporter passes: issued per site to a signed-in supporter, voided when support or a session ends.

A pass is valid offline until it expires. So that revoking a supporter or a session, or
moving a supporter to a tier without the site's entitlement, takes effect at once at the
gate, ending a session records a *cutoff* per site: passes of that session issued before
it are void (the gate's :mod:`supportgate.gate.pass_check` checks it). Cutoffs live as long as the
longest pass could.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta

from redis.asyncio import Redis

from supportgate.catalog.schemas import Supporter
from supportgate.catalog.sites import SiteService, normalise_origin
from supportgate.catalog.supporters import SupporterService
from supportgate.catalog.tiers import TierService
from supportgate.clock import Clock
from supportgate.errors import Forbidden
from supportgate.readers.schemas import IssuedPass
from supportgate.readers.sessions import Caller
from supportgate.store import Store, names
from supportgate.tokens.claims import pass_claims, pseudonym
from supportgate.tokens.jose import PASS_TYPE
from supportgate.tokens.jwt import Tokens
from supportgate.tokens.lifetimes import LONGEST_PASS
from supportgate.tokens.stored_secrets import StoredSecret

__all__ = ["PassService"]

# A cutoff outlives the longest pass by this much, so clock skew cannot revive a void pass.
_CUTOFF_SLACK_S = 60


class PassService:
    """Issues passes to signed-in supporters and voids those of ended sessions."""

    def __init__(
        self,
        store: Store,
        tokens: Tokens,
        supporters: SupporterService,
        tiers: TierService,
        sites: SiteService,
        pseudonym_secret: StoredSecret,
        clock: Clock,
        *,
        issuer: str,
    ) -> None:
        self._store = store
        self._tokens = tokens
        self._supporters = supporters
        self._tiers = tiers
        self._sites = sites
        self._secret = pseudonym_secret
        self._clock = clock
        self._issuer = issuer

    async def issue(self, caller: Caller, site_id: str, *, origin: str | None = None) -> IssuedPass:
        """A pass for ``site_id`` alone, for as long as the tier says and support lasts.

        With ``origin``, the pass is refused unless that origin is one of the site's: a page on
        one allowed site cannot name another site and have the extension fetch that site's pass.
        """
        site = await self._sites.get(site_id)
        if origin is not None and normalise_origin(origin, field="origin") not in site.origins:
            raise Forbidden(f"{origin} is not an origin of site {site_id!r}.", slug="wrong-origin")
        supporter = await self._supporters.get(caller.supporter_id)
        if supporter.status != "active":
            raise Forbidden(f"Your support is {supporter.status}, so there is no pass to give.", slug="support-ended")
        tier = await self._tiers.get(supporter.tier)
        secret = await self._secret.get()
        now = self._clock()
        session = pseudonym(secret, site.id, f"session:{caller.session_id}")
        cutoff = await self._store.redis.get(names.pass_cutoff(site.id, session))
        if cutoff is not None and int(cutoff) >= int(now.timestamp()):
            # Passes carry whole seconds: one issued in the second its session's passes were
            # voided must still read as newer than the cutoff, so it is dated the next second.
            now = datetime.fromtimestamp(int(cutoff) + 1, tz=now.tzinfo)
        lifetime = timedelta(seconds=tier.pass_ttl_seconds)
        if supporter.expires_at is not None:
            lifetime = min(lifetime, supporter.expires_at - now)
        claims = pass_claims(
            supporter_id=supporter.id,
            site_id=site.id,
            tier=tier.id,
            entitlements=tier.entitlements,
            session_id=caller.session_id,
            issuer=self._issuer,
            pseudonym_secret=secret,
            now=now,
            lifetime=lifetime,
        )
        token = await self._tokens.sign(claims, PASS_TYPE)
        return IssuedPass(pass_=token, expires_at=datetime.fromtimestamp(claims["exp"], tz=now.tzinfo))

    async def void(self, session_ids: list[str]) -> None:
        """Void every pass issued so far for these sessions, at every site."""
        if not session_ids:
            return
        secret = await self._secret.get()
        now = int(self._clock().timestamp())
        ttl = int(LONGEST_PASS.total_seconds()) + _CUTOFF_SLACK_S
        sites = await self._sites.list()

        cutoffs = [
            names.pass_cutoff(site.id, pseudonym(secret, site.id, f"session:{session_id}"))
            for site in sites
            for session_id in session_ids
        ]

        async def cut_off(keys: list[str], redis: Redis) -> None:
            async with redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.set(key, now, ex=ttl)
                await pipe.execute()

        # Each site's cut-offs are in its own hash tag: on a cluster they are written one node at
        # a time, in the sites' order. Interrupted, the sites not yet reached keep the old passes
        # only until a retry (which writes them all again: a later cut-off voids no less).
        for keys in self._store.by_node(cutoffs):
            await self._store.durably(functools.partial(cut_off, keys), keys[0])

    async def sessions_ended(self, _supporter_id: str, session_ids: list[str]) -> None:
        """Sessions ended (signed out, revoked, reused): their passes are void at every site."""
        await self.void(session_ids)

    async def supporter_changed(self, before: Supporter, after: Supporter | None, live: list[str]) -> None:
        """Void the passes of ``live`` sessions when a change could withdraw what they grant."""
        if (
            after is None
            or after.status != "active"
            or after.tier != before.tier
            or after.expires_at != before.expires_at
        ):
            await self.void(live)
