"""supportgate: signed supporter passes, honest ad-block detection and a fair wall for ad-funded sites."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
