"""The records every feature shares: tiers, supporters, sites and their policy, API keys, the audit log.

An admin manages them; the gate and the readers' features read them. The package imports no
feature and no web framework.
"""
