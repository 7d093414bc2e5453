"""Checking a supporter pass at the gate: its signature once per process, its revocation on every view.

A pass is the reader's own signed claim to a tier; the readers' feature issues it and records a
cutoff when the session or support behind it ends (:mod:`supportgate.readers.passes`). Here the
gate checks both: a pass whose signature checked out is remembered, by its exact text and site,
until it expires (as the offline :class:`~supportgate_verify.PassVerifier` does), and
the cutoff is looked up on every call: in the process, where the store tracks it for this process
(:class:`~supportgate.store.tracking.TrackedReads`: a change reaches every process within a round
trip), else read from the store, batched with the other page views of the same moment.
"""

from __future__ import annotations

from typing import Final

from supportgate.bounded import BoundedDict
from supportgate.clock import Clock
from supportgate.errors import InvalidToken
from supportgate.store import Store, names
from supportgate.store.hot_path import HotPath
from supportgate.store.tracking import TrackedReads
from supportgate.tokens.jose import PASS_TYPE
from supportgate.tokens.jwt import Tokens
from supportgate_verify import VerifiedPass

__all__ = ["VERIFIED_KEPT", "PassCheck"]

VERIFIED_KEPT: Final = 10_000
"""How many verified passes a process remembers, so a reader's next page view skips the signature check."""


class PassCheck:
    """Tells whether a pass is valid for a site and not void."""

    def __init__(
        self, store: Store, tokens: Tokens, hot: HotPath, clock: Clock, *, issuer: str, cutoffs: TrackedReads
    ) -> None:
        self._store = store
        self._cutoffs = cutoffs
        self._hot = hot
        self._tokens = tokens
        self._clock = clock
        self._issuer = issuer
        self._verified: BoundedDict[tuple[str, str], tuple[VerifiedPass, int]] = BoundedDict(VERIFIED_KEPT)

    async def verify(self, token: str, site_id: str, *, deadline: float | None = None) -> VerifiedPass:
        """The pass's claims if it is valid for ``site_id`` and not void.

        The signature is checked against the key set this process holds, even a stale one while
        it reloads; the revocation cutoff is read within the view's ``deadline``.

        Raises:
            InvalidToken: with the reason, ``revoked`` for a pass whose session or support ended.
            StoreUnavailable: if the store, needed for the cutoff (or a kid this process lacks), did not
                answer in time: the pass is then unknown.
        """
        remembered = self._verified.get((token, site_id))
        if remembered is not None and self._clock() < remembered[0].expires_at:
            checked, issued_at = remembered
        else:
            # Only a kid this process does not know reads the store here, and only within the deadline.
            claims = await self._hot.within(
                deadline,
                lambda: self._tokens.verify(token, typ=PASS_TYPE, audience=site_id, issuer=self._issuer, stale_ok=True),
            )
            checked, issued_at = VerifiedPass.from_claims(claims), int(claims["iat"])
            self._verified.put((token, site_id), (checked, issued_at))
        key = names.pass_cutoff(site_id, checked.session)
        held = self._cutoffs.cached(key)
        cutoff = held[0] if held is not None else await self._hot.run(deadline, lambda: self._cutoffs.read(key))
        if cutoff is not None and issued_at <= int(cutoff):
            raise InvalidToken("revoked", "the session or the support behind this pass has ended or changed")
        return checked
