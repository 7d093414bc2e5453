"""Signing in with either kind of code, and the reader's view of themselves: composes codes, sessions, the catalog."""

from __future__ import annotations

from collections.abc import Sequence

from supportgate.catalog.supporters import SupporterService
from supportgate.catalog.tiers import TierService
from supportgate.readers.codes import ActivationCodes, SignInCodes
from supportgate.readers.schemas import Me, MeSession, SignIn, SupporterSummary
from supportgate.readers.sessions import Caller, SessionService
from supportgate.tokens.dpop import DpopProof

__all__ = ["SignInService"]


class SignInService:
    """Sign-in with either kind of code, and the reader's view of themselves."""

    def __init__(
        self,
        codes: SignInCodes,
        activation: ActivationCodes,
        sessions: SessionService,
        supporters: SupporterService,
        tiers: TierService,
    ) -> None:
        self._codes = codes
        self._activation = activation
        self._sessions = sessions
        self._supporters = supporters
        self._tiers = tiers

    async def sign_in_with_code(
        self,
        email: str,
        code: str,
        *,
        device: str,
        end_sessions: Sequence[str],
        client_ip: str,
        proof: DpopProof | None = None,
    ) -> SignIn:
        """Start a session with an emailed code; with a verified DPoP ``proof``, bound to its key."""

        async def start(supporter_id: str) -> SignIn:
            return await self._start(supporter_id, device=device, end_sessions=end_sessions, proof=proof)

        return await self._codes.redeem(email, code, client_ip=client_ip, then=start)

    async def activate(
        self,
        code: str,
        *,
        device: str,
        end_sessions: Sequence[str],
        client_ip: str,
        proof: DpopProof | None = None,
    ) -> SignIn:
        """Start a session with an activation code; with a verified DPoP ``proof``, bound to its key."""

        async def start(supporter_id: str) -> SignIn:
            return await self._start(supporter_id, device=device, end_sessions=end_sessions, proof=proof)

        return await self._activation.redeem(code, client_ip=client_ip, then=start)

    async def me(self, caller: Caller) -> Me:
        """The supporter behind ``caller``, with their tier and sessions."""
        supporter = await self._supporters.get(caller.supporter_id)
        tier = await self._tiers.get(supporter.tier)
        sessions = await self._sessions.list(supporter.id)
        return Me(
            id=supporter.id,
            email=supporter.email,
            status=supporter.status,
            tier=tier.id,
            tier_name=tier.name,
            entitlements=tier.entitlements,
            expires_at=supporter.expires_at,
            sessions=[
                MeSession(
                    id=s.id,
                    device=s.device,
                    created_at=s.created_at,
                    last_used_at=s.last_used_at,
                    current=s.id == caller.session_id,
                )
                for s in sessions
            ],
        )

    async def _start(
        self, supporter_id: str, *, device: str, end_sessions: Sequence[str], proof: DpopProof | None
    ) -> SignIn:
        supporter = await self._supporters.get(supporter_id)
        tier = await self._tiers.get(supporter.tier)
        pair = await self._sessions.start(
            supporter_id=supporter.id,
            max_devices=tier.max_devices,
            device=device,
            end_sessions=end_sessions,
            proof=proof,
        )
        return SignIn(
            access_token=pair.access_token,
            token_type=pair.token_type,
            expires_in=pair.expires_in,
            refresh_token=pair.refresh_token,
            supporter=SupporterSummary(
                id=supporter.id, tier=tier.id, entitlements=tier.entitlements, expires_at=supporter.expires_at
            ),
        )
