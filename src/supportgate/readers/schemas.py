"""The wire contract of sign-in, sessions, passes, activation codes and /v1/me."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from supportgate.catalog.schemas import EmailText, Slug
from supportgate.languages import EmailLanguageTag

__all__ = [
    "ActivateIn",
    "ActivationCode",
    "CodeRequestIn",
    "CodeRequested",
    "CodeVerifyIn",
    "IssuedPass",
    "LogoutIn",
    "Me",
    "MeSession",
    "PassIn",
    "RefreshIn",
    "SessionInfo",
    "SignIn",
    "SupporterSummary",
    "TokenPair",
]

Device = Annotated[
    str,
    msgspec.Meta(min_length=1, max_length=100, description="A label for this device.", examples=["Chrome on macOS"]),
]
EndSessions = Annotated[
    list[Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")]],
    msgspec.Meta(max_length=100, description="Sessions of yours to end as you sign in here (over the device limit)."),
]
RefreshToken = Annotated[str, msgspec.Meta(min_length=1, max_length=400)]
TokenType = Annotated[
    Literal["Bearer", "DPoP"],
    msgspec.Meta(
        description=(
            "How to present the access token: `Bearer`, or `DPoP` for a session bound to a key "
            "(`Authorization: DPoP <access token>` with a DPoP proof)."
        )
    ),
]


class CodeRequestIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Ask for a sign-in code by email."""

    email: EmailText
    site: Slug | None = None
    """The site the reader came from: its name and "become a supporter" link go in the email."""
    lang: EmailLanguageTag = "en"


class CodeRequested(msgspec.Struct, kw_only=True):
    """The same answer whether or not the address belongs to a supporter."""

    status: str = "sent"
    detail: str = (
        "If this address belongs to a supporter, a sign-in code is on its way; "
        "otherwise an email says how to become one."
    )


class CodeVerifyIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Sign in with the emailed code."""

    email: EmailText
    code: Annotated[str, msgspec.Meta(pattern=r"^\s*[0-9]{6}\s*$", description="The 6-digit code from the email.")]
    device: Device
    end_sessions: EndSessions = msgspec.field(default_factory=list)


class ActivateIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Sign in with an activation code from the site or an admin."""

    code: Annotated[str, msgspec.Meta(min_length=16, max_length=40, examples=["7KQ2-M9XD-4TPA-WB3R"])]
    device: Device
    end_sessions: EndSessions = msgspec.field(default_factory=list)


class RefreshIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Trade a refresh token for a new pair."""

    refresh_token: RefreshToken
    request_id: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{8,64}$")] | None = None
    """A random id for this refresh, sent again unchanged on a retry so it gets the same answer."""


class LogoutIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """End the session a refresh token belongs to."""

    refresh_token: RefreshToken


class PassIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Ask for a pass for one site."""

    site: Slug
    origin: Annotated[str, msgspec.Meta(min_length=1, max_length=255)] | None = None
    """The origin the pass is for (the extension sends the page's): refused unless it is one of the site's."""


class SupporterSummary(msgspec.Struct, kw_only=True):
    """Who signed in, and what their support gives."""

    id: str
    tier: str
    entitlements: list[str]
    expires_at: datetime | None


class SignIn(msgspec.Struct, kw_only=True):
    """A new session's tokens."""

    access_token: str
    token_type: TokenType
    expires_in: int
    refresh_token: str
    supporter: SupporterSummary


class MeSession(msgspec.Struct, kw_only=True):
    """One of the supporter's sessions."""

    id: str
    device: str
    created_at: datetime
    last_used_at: datetime
    current: bool
    """Whether the request was made with this session."""


class Me(msgspec.Struct, kw_only=True):
    """The signed-in supporter."""

    id: str
    email: str
    status: str
    tier: str
    tier_name: str
    entitlements: list[str]
    expires_at: datetime | None
    sessions: list[MeSession]


class TokenPair(msgspec.Struct, kw_only=True):
    """What a sign-in or a refresh answers: an access token and the next refresh token."""

    access_token: str
    """Access token for the gate's reader API (``typ`` ``sg-access+jwt``, ``aud`` the issuer)."""
    token_type: TokenType = "Bearer"  # noqa: S105 - an auth scheme, not a password
    """How to present ``access_token``: ``Authorization: Bearer``, or ``DPoP`` with a proof for a bound session."""
    expires_in: int
    """Seconds the access token lives."""
    refresh_token: str
    """Gets the next pair, once; keep it where no page can read it."""


class SessionInfo(msgspec.Struct, kw_only=True):
    """One signed-in device, as its supporter sees it."""

    id: str
    """The session id."""
    device: str
    """The label the device signed in with ("Chrome on macOS")."""
    created_at: datetime
    """When the device signed in."""
    last_used_at: datetime
    """When its refresh token was last used (or the sign-in, if never)."""


class ActivationCode(msgspec.Struct, kw_only=True):
    """A one-time code that signs a supporter in, shown once to the admin who made it."""

    code: str
    """The code, as ``XXXX-XXXX-XXXX-XXXX``; letters and digits in Crockford base32."""
    expires_at: datetime
    """When it stops working if unused."""


class IssuedPass(msgspec.Struct, kw_only=True):
    """A pass for one site."""

    pass_: str = msgspec.field(name="pass")
    """The signed pass (JWT, ``typ`` ``sg-pass+jwt``, ``aud`` the site)."""
    expires_at: datetime
    """When it stops being accepted; fetch a new one before."""
