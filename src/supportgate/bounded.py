"""A dict that keeps at most so many entries: :class:`BoundedDict`, from ``supportgate-verify``.

The offline pass verifier needs it too, and that package imports nothing from supportgate, so
the one eviction rule of every in-process memory is written there and re-exported here.
"""

from __future__ import annotations

from supportgate_verify.bounded import BoundedDict

__all__ = ["BoundedDict"]
