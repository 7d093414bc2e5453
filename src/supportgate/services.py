"""The services the app is made of, built once per process around one store."""

from __future__ import annotations

from dataclasses import dataclass

from supportgate.admin.audit import AuditLog
from supportgate.admin.keys import ApiKeys
from supportgate.admin.sites import SiteService
from supportgate.admin.supporters import SupporterService
from supportgate.admin.tiers import TierService
from supportgate.clock import Clock, utc_now
from supportgate.store import Store

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

    @classmethod
    def build(cls, store: Store, clock: Clock = utc_now) -> Services:
        """Wire the services together."""
        audit = AuditLog(store)
        return cls(
            store=store,
            audit=audit,
            api_keys=ApiKeys(store, audit, clock),
            tiers=TierService(store, audit, clock),
            supporters=SupporterService(store, audit, clock),
            sites=SiteService(store, audit, clock),
        )
