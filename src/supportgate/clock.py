"""The one source of "now", injected into services so tests can move it.

Written in ``supportgate-verify`` (whose offline verifier takes the same clock) and re-exported here.
"""

from __future__ import annotations

from supportgate_verify.clock import Clock, utc_now

__all__ = ["Clock", "utc_now"]
