"""The problems sign-in, refresh and sessions answer with, beyond the general ones in :mod:`supportgate.errors`.

Refresh failures are plain 401 and 409 problems, each with its own ``slug``, so a client tells
them apart by the problem ``type``; one answer covers every kind of bad refresh token so that
the answer is no oracle.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from supportgate.errors import Conflict, Problem, Unauthorized

__all__ = [
    "DeviceLimit",
    "InvalidCode",
    "invalid_refresh_token",
    "refresh_conflict",
    "refresh_reused",
    "support_ended",
]


class InvalidCode(Problem):
    """A sign-in or activation code is wrong, used up, expired, or was never sent: one answer for all (400)."""

    status = 400
    slug = "invalid-code"

    def __init__(self) -> None:
        super().__init__(
            "The code is not valid: it may be mistyped, expired or already used. Ask for a new one.",
            title="Invalid code",
        )


class DeviceLimit(Conflict):
    """Signing in would pass the tier's device limit (409); the problem lists the sessions to choose from."""

    slug = "device-limit"

    def __init__(self, *, sessions: Sequence[msgspec.Struct], max_devices: int) -> None:
        super().__init__(
            f"You are signed in on {len(sessions)} devices and your tier allows {max_devices}. "
            "To sign in here, sign in again naming the sessions to end in end_sessions.",
            title="Too many devices",
            sessions=[msgspec.to_builtins(info) for info in sessions],
            max_devices=max_devices,
        )
        self.sessions = list(sessions)


def invalid_refresh_token() -> Unauthorized:
    """The refresh token is unknown, malformed, or its session ended: one answer, so no oracle."""
    return Unauthorized(
        "The refresh token is not valid: sign in again.", title="Invalid refresh token", slug="invalid-refresh-token"
    )


def refresh_reused() -> Unauthorized:
    """A refresh token that was replaced before came again: it may be a copy, so its session ended."""
    return Unauthorized(
        "This refresh token was replaced before, so it may have been copied; the session has been ended. "
        "Sign in again.",
        title="Refresh token reused",
        slug="refresh-reused",
    )


def support_ended() -> Unauthorized:
    """A refresh for a supporter who is no longer active: the session ended with the support."""
    return Unauthorized(
        "Your support has ended, so this session has been ended.", title="Support ended", slug="support-ended"
    )


def refresh_conflict() -> Conflict:
    """A refresh lost a race to another refresh of the same token moments ago; the session lives on."""
    return Conflict(
        "Another refresh of this token just succeeded; use the refresh token that refresh returned.",
        title="Refresh already done",
        slug="refresh-conflict",
    )
