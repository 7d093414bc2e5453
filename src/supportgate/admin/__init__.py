"""The admin API: tiers, supporters, sites, keys and the audit log."""
