"""The Redis-protocol store: one code path for Redis 7+, Valkey 8 and the embedded server."""

from __future__ import annotations

from supportgate.store.client import Store, begin, connect, text, texts
from supportgate.store.server import EmbeddedStore

__all__ = ["EmbeddedStore", "Store", "begin", "connect", "text", "texts"]
