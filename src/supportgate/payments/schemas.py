"""The wire contract of the Stripe webhook's answer."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

__all__ = ["Receipt"]


class Receipt(msgspec.Struct, kw_only=True):
    """What became of a Stripe event that passed the signature check (200: Stripe does not send it again)."""

    received: Annotated[Literal[True], msgspec.Meta(description="Always true: the event was taken.")]
    handled: Annotated[
        bool,
        msgspec.Meta(
            description=(
                "Whether the event changed anything now: false for a type not acted on, a redelivery, an event older "
                "than one applied about its subscription, a price no tier has, or a subscription no supporter pays for."
            )
        ),
    ]
    detail: Annotated[str, msgspec.Meta(description="What was done, or why nothing was.")]
