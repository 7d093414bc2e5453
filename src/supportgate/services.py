"""The services the app is made of, built once per process around one store: construction only.

Every rule lives in the service that owns it; this module only decides which instance each
service gets. The app hands each field to the routes as a dependency of the same name.
"""

from __future__ import annotations

from dataclasses import dataclass

from supportgate.catalog.api_keys import ApiKeys
from supportgate.catalog.audit import AuditLog
from supportgate.catalog.key_rotation import KeyRotation
from supportgate.catalog.sites import SiteService
from supportgate.catalog.supporter_csv import SupporterCsv
from supportgate.catalog.supporters import SupporterService
from supportgate.catalog.tiers import TierService
from supportgate.catalog.welcome import WelcomeMail
from supportgate.clock import Clock, utc_now
from supportgate.console.sessions import ConsoleSessions
from supportgate.gate.access import SiteAccess
from supportgate.gate.anonymous_limit import AnonymousLimit
from supportgate.gate.crawlers import CrawlerCheck
from supportgate.gate.decide import DecideService
from supportgate.gate.events import EventService
from supportgate.gate.metering import Metering
from supportgate.gate.pass_check import PassCheck
from supportgate.gate.reports import ReportService
from supportgate.gate.stats import StatsBuffer
from supportgate.mail_queue import MailQueue
from supportgate.metrics import Metrics
from supportgate.payments.service import PaymentService
from supportgate.readers.codes import ActivationCodes, SignInCodes
from supportgate.readers.dpop import DpopProofs
from supportgate.readers.passes import PassService
from supportgate.readers.revocation import Revocation
from supportgate.readers.sessions import SessionService
from supportgate.readers.signin import SignInService
from supportgate.settings import Settings
from supportgate.store import Store
from supportgate.store.hot_path import HotPath
from supportgate.store.limits import RateLimiter
from supportgate.store.tracking import TrackedReads
from supportgate.tokens.jwt import Tokens
from supportgate.tokens.sealing import MasterKey
from supportgate.tokens.signing_keys import SigningKeys
from supportgate.tokens.stored_secrets import CodeSecret, PseudonymSecret
from supportgate.tokens.vault import Vault

__all__ = ["Services"]


@dataclass(frozen=True, slots=True)
class Services:
    """Every domain service, sharing one store, one master key and one clock."""

    store: Store
    vault: Vault
    audit: AuditLog
    api_keys: ApiKeys
    tiers: TierService
    supporters: SupporterService
    sites: SiteService
    signing_keys: SigningKeys
    key_rotation: KeyRotation
    tokens: Tokens
    sessions: SessionService
    dpop: DpopProofs
    passes: PassService
    codes: SignInCodes
    activation: ActivationCodes
    signin: SignInService
    mail: MailQueue
    stats: StatsBuffer
    hot: HotPath
    access: SiteAccess
    pass_check: PassCheck
    cutoffs: TrackedReads
    crawlers: CrawlerCheck
    decide: DecideService
    reports: ReportService
    supporter_csv: SupporterCsv
    events: EventService
    console_sessions: ConsoleSessions
    payments: PaymentService
    metrics: Metrics

    @classmethod
    def build(
        cls,
        store: Store,
        settings: Settings,
        mail: MailQueue,
        master_key: MasterKey,
        clock: Clock = utc_now,
        metrics: Metrics | None = None,
    ) -> Services:
        """Wire the services together; ``master_key`` seals the secrets they keep in the store.

        ``metrics`` counts what they do (the store's own errors are counted by the store it was given);
        none counts into a registry no one reads.
        """
        metrics = Metrics() if metrics is None else metrics
        issuer = settings.issuer
        vault = Vault(store, master_key)
        audit = AuditLog(store, clock=clock, retention=settings.audit_retention)
        tiers = TierService(store, audit, clock)
        supporters = SupporterService(store, audit, clock)
        sites = SiteService(store, audit, clock)
        api_keys = ApiKeys(store, audit, clock)
        signing_keys = SigningKeys(vault, clock)
        tokens = Tokens(signing_keys, clock)
        passes = PassService(store, tokens, supporters, tiers, sites, PseudonymSecret(vault), clock, issuer=issuer)
        sessions = SessionService(store, tokens, supporters, clock, issuer=issuer, on_ended=passes.sessions_ended)
        supporters.subscribe(Revocation(sessions, passes).supporter_changed)
        supporters.on_grant(WelcomeMail(mail, tiers, sites, public_url=settings.public_url).send)
        limiter = RateLimiter(store, clock)
        code_secret = CodeSecret(vault)
        codes = SignInCodes(store, supporters, sites, code_secret, mail, limiter, clock)
        activation = ActivationCodes(store, supporters, code_secret, limiter, clock)
        stats = StatsBuffer(store, clock, metrics=metrics)
        hot = HotPath(budget=settings.decide_deadline_seconds, probe=store.ping, metrics=metrics)
        access = SiteAccess(sites, api_keys, hot, clock, public_url=settings.public_url)
        cutoffs = TrackedReads(store)
        pass_check = PassCheck(store, tokens, hot, clock, issuer=issuer, cutoffs=cutoffs)
        crawlers = CrawlerCheck(clock, resolver=settings.dns_resolver, budget=settings.dns_wait_seconds)
        return cls(
            store=store,
            vault=vault,
            audit=audit,
            api_keys=api_keys,
            tiers=tiers,
            supporters=supporters,
            sites=sites,
            signing_keys=signing_keys,
            key_rotation=KeyRotation(store, signing_keys, tiers, audit, clock),
            tokens=tokens,
            sessions=sessions,
            dpop=DpopProofs(clock, public_url=settings.public_url),
            passes=passes,
            codes=codes,
            activation=activation,
            signin=SignInService(codes, activation, sessions, supporters, tiers),
            mail=mail,
            stats=stats,
            hot=hot,
            access=access,
            pass_check=pass_check,
            cutoffs=cutoffs,
            crawlers=crawlers,
            decide=DecideService(
                access,
                pass_check,
                stats,
                Metering(store, clock),
                AnonymousLimit(settings.anonymous_decides_per_minute, clock),
                hot,
                crawlers,
                metrics,
            ),
            reports=ReportService(store, stats, limiter, clock),
            supporter_csv=SupporterCsv(store, supporters, audit, clock),
            events=EventService(stats, limiter),
            console_sessions=ConsoleSessions(store, api_keys, limiter, clock),
            payments=PaymentService(
                store, audit, supporters, clock, grace=settings.stripe_grace, one_off=settings.stripe_one_off
            ),
            metrics=metrics,
        )
