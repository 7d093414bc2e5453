"""The services the app is made of, built once per process around one store."""

from __future__ import annotations

from dataclasses import dataclass

from supportgate.admin.audit import AuditLog
from supportgate.admin.keys import ApiKeys
from supportgate.admin.schemas import Supporter
from supportgate.admin.signing import SigningKeyAdmin
from supportgate.admin.sites import SiteService
from supportgate.admin.supporters import SupporterService
from supportgate.admin.tiers import TierService
from supportgate.clock import Clock, utc_now
from supportgate.gate.decide import DecideService
from supportgate.gate.reports import ReportService
from supportgate.gate.stats import StatsBuffer
from supportgate.mail import MailQueue
from supportgate.readers.codes import ActivationCodes, SignInCodes
from supportgate.readers.limits import RateLimiter
from supportgate.readers.passes import PassService
from supportgate.readers.service import ReaderService
from supportgate.readers.sessions import SessionService
from supportgate.settings import Settings
from supportgate.store import Store
from supportgate.tokens.jwt import Tokens
from supportgate.tokens.keys import CodeSecret, PseudonymSecret, SigningKeys

__all__ = ["Services"]


@dataclass(frozen=True, slots=True)
class Services:
    """Every domain service, sharing one store and one clock."""

    store: Store
    audit: AuditLog
    api_keys: ApiKeys
    tiers: TierService
    supporters: SupporterService
    sites: SiteService
    signing_keys: SigningKeys
    key_admin: SigningKeyAdmin
    tokens: Tokens
    sessions: SessionService
    passes: PassService
    codes: SignInCodes
    activation: ActivationCodes
    readers: ReaderService
    mail: MailQueue
    stats: StatsBuffer
    decide: DecideService
    reports: ReportService

    @classmethod
    def build(cls, store: Store, settings: Settings, mail: MailQueue, clock: Clock = utc_now) -> Services:
        """Wire the services together."""
        audit = AuditLog(store)
        tiers = TierService(store, audit, clock)
        supporters = SupporterService(store, audit, clock)
        sites = SiteService(store, audit, clock)
        api_keys = ApiKeys(store, audit, clock)
        signing_keys = SigningKeys(store, clock)
        tokens = Tokens(signing_keys, clock)
        passes = PassService(
            store, tokens, supporters, tiers, sites, PseudonymSecret(store), clock, issuer=settings.issuer
        )

        async def sessions_ended(_supporter_id: str, session_ids: list[str]) -> None:
            await passes.void(session_ids)

        sessions = SessionService(store, tokens, supporters, clock, issuer=settings.issuer, on_ended=sessions_ended)

        async def supporter_changed(before: Supporter, after: Supporter | None) -> None:
            if after is None or after.status != "active":
                await sessions.end_all(before.id)
            else:
                await passes.supporter_changed(before, after, [s.id for s in await sessions.list(before.id)])

        supporters.subscribe(supporter_changed)
        limiter = RateLimiter(store, clock)
        code_secret = CodeSecret(store)
        codes = SignInCodes(store, supporters, sites, code_secret, mail, limiter, clock)
        activation = ActivationCodes(store, supporters, code_secret, limiter, clock)
        stats = StatsBuffer(store, clock)
        return cls(
            store=store,
            audit=audit,
            api_keys=api_keys,
            tiers=tiers,
            supporters=supporters,
            sites=sites,
            signing_keys=signing_keys,
            key_admin=SigningKeyAdmin(store, signing_keys, tiers, audit, clock),
            tokens=tokens,
            sessions=sessions,
            passes=passes,
            codes=codes,
            activation=activation,
            readers=ReaderService(codes, activation, sessions, supporters, tiers),
            mail=mail,
            stats=stats,
            decide=DecideService(sites, api_keys, passes, stats, store, clock, public_url=settings.public_url),
            reports=ReportService(store, stats, limiter, clock),
        )
