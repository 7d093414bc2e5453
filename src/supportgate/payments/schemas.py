"""The wire contract of the Stripe webhook's answer."""

from __future__ import annotations

from typing import Literal

import msgspec

__all__ = ["Receipt"]


class Receipt(msgspec.Struct, kw_only=True):
    """What became of a Stripe event that passed the signature check (200: Stripe does not send it again)."""

    received: Literal[True] = True
    """Always true: the event was taken."""
    handled: bool
    """Whether the event changed anything now: false for a type not acted on, a redelivery, an older event
    than one applied, a price no tier has, or a subscription no supporter pays through."""
    detail: str
    """What was done, or why nothing was."""
