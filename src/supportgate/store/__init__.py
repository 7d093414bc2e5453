"""The Redis-protocol store: one code path for Redis 7+, Valkey 8 and the embedded server.

Its modules: ``client`` (connecting, atomic and durable writes), ``server`` (the embedded
``valkey-server``), ``names`` (every key name), ``cursor`` (pagination) and ``limits`` (rate limits).
"""

from __future__ import annotations

from supportgate.store.client import STORE_ERRORS, Client, Store, begin, connect, open_store, stopping, text, texts
from supportgate.store.server import EmbeddedStore

__all__ = [
    "STORE_ERRORS",
    "Client",
    "EmbeddedStore",
    "Store",
    "begin",
    "connect",
    "open_store",
    "stopping",
    "text",
    "texts",
]
