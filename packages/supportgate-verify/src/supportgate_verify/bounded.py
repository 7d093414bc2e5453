"""A dict that keeps at most so many entries: the one eviction rule of every in-process memory.

The gate's site cache, the verified-pass memories of the gate and of the offline verifier all
remember what they were last asked about, and must not grow without bound when callers send a
flood of unknown keys. Past its limit, a :class:`BoundedDict` drops the entry put longest ago.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

__all__ = ["BoundedDict"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BoundedDict(Generic[K, V]):
    """At most ``limit`` entries; putting one more drops the one put longest ago.

    Insertion order is put order (a dict keeps it), so eviction costs O(1) however full it is.
    Putting a key again makes it the newest: a caller that wants least-recently-used eviction
    puts what it reads back.
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("a BoundedDict holds at least one entry")
        self._limit = limit
        self._entries: dict[K, V] = {}

    def get(self, key: K) -> V | None:
        """The value put under ``key``, if it is still held."""
        return self._entries.get(key)

    def put(self, key: K, value: V) -> None:
        """Hold ``value`` under ``key`` as the newest entry, dropping the oldest if full."""
        entries = self._entries
        entries.pop(key, None)
        if len(entries) >= self._limit:
            del entries[next(iter(entries))]
        entries[key] = value

    def pop(self, key: K) -> None:
        """Forget ``key``, if it is held."""
        self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)
