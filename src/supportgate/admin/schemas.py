"""The admin API's own request bodies; the records it shows are the catalog's (:mod:`supportgate.catalog.schemas`)."""

from __future__ import annotations

import msgspec

__all__ = ["RotateIn"]


class RotateIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Rotate the signing keys."""

    force: bool = False
    """Rotate even if the next key was published too recently for every site to have it."""
