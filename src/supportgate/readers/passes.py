"""Supporter passes: issued per site to a signed-in supporter, checked by the gate.

A pass is valid offline until it expires. So that revoking a supporter or a session, or
moving a supporter to a tier without the site's entitlement, takes effect at once at the
gate, ending a session records a *cutoff* per site: passes of that session issued before
it are void. Cutoffs live as long as the longest pass could.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

import msgspec

from supportgate.admin.schemas import Supporter
from supportgate.admin.sites import SiteService, normalise_origin
from supportgate.admin.supporters import SupporterService
from supportgate.admin.tiers import TierService
from supportgate.clock import Clock
from supportgate.errors import Forbidden, InvalidToken
from supportgate.passes import VerifiedPass
from supportgate.readers.sessions import Caller
from supportgate.store import Store, keys
from supportgate.tokens.jose import PASS_TYPE
from supportgate.tokens.jwt import Tokens
from supportgate.tokens.keys import StoredSecret
from supportgate.tokens.passes import pass_claims, pseudonym

__all__ = ["IssuedPass", "PassService"]

LONGEST_PASS: Final = timedelta(days=7)
"""A pass never lives longer than this (the most a tier's ``pass_ttl_seconds`` allows)."""
VERIFIED_KEPT: Final = 10_000
"""How many verified passes a process remembers, so a reader's next page view skips the signature check."""


class IssuedPass(msgspec.Struct, kw_only=True):
    """A pass for one site."""

    pass_: str = msgspec.field(name="pass")
    """The signed pass (JWT, ``typ`` ``sg-pass+jwt``, ``aud`` the site)."""
    expires_at: datetime
    """When it stops being accepted; fetch a new one before."""


class PassService:
    """Issues passes, voids them, and checks them for the gate."""

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
        self._verified: dict[tuple[str, str], tuple[VerifiedPass, int]] = {}

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
        cutoff = await self._store.redis.get(keys.pass_cutoff(site.id, session))
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

    async def verify(self, token: str, site_id: str) -> VerifiedPass:
        """The pass's claims if it is valid for ``site_id`` and not void; InvalidToken otherwise.

        A reader presents the same pass on every page view, so a pass whose signature checked
        out is remembered, by its exact text and site, until it expires (as the offline
        :class:`~supportgate.passes.PassVerifier` does): the signature is checked once per
        process, the revocation cutoff on every call.
        """
        remembered = self._verified.get((token, site_id))
        if remembered is not None and self._clock() < remembered[0].expires_at:
            checked, issued_at = remembered
        else:
            claims = await self._tokens.verify(token, typ=PASS_TYPE, audience=site_id, issuer=self._issuer)
            checked, issued_at = VerifiedPass.from_claims(claims), int(claims["iat"])
            self._remember((token, site_id), (checked, issued_at))
        cutoff = await self._store.get_batched(keys.pass_cutoff(site_id, checked.session))
        if cutoff is not None and issued_at <= int(cutoff):
            raise InvalidToken("revoked", "the session or the support behind this pass has ended or changed")
        return checked

    def _remember(self, key: tuple[str, str], entry: tuple[VerifiedPass, int]) -> None:
        verified = self._verified
        verified.pop(key, None)
        if len(verified) >= VERIFIED_KEPT:
            del verified[next(iter(verified))]  # the oldest checked: dicts keep insertion order
        verified[key] = entry

    async def void(self, session_ids: list[str]) -> None:
        """Void every pass issued so far for these sessions, at every site."""
        if not session_ids:
            return
        secret = await self._secret.get()
        now = int(self._clock().timestamp())
        ttl = int(LONGEST_PASS.total_seconds()) + 60
        sites = await self._sites.list()
        async with self._store.redis.pipeline(transaction=False) as pipe:
            for site in sites:
                for session_id in session_ids:
                    session = pseudonym(secret, site.id, f"session:{session_id}")
                    pipe.set(keys.pass_cutoff(site.id, session), now, ex=ttl)
            await pipe.execute()
        await self._store.durable()

    async def supporter_changed(self, before: Supporter, after: Supporter | None, live: list[str]) -> None:
        """Void the passes of ``live`` sessions when a change could withdraw what they grant."""
        if (
            after is None
            or after.status != "active"
            or after.tier != before.tier
            or after.expires_at != before.expires_at
        ):
            await self.void(live)
