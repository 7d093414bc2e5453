"""Refresh tokens: their format, the token that replaces one, and which of a session's tokens one is.

A refresh token, ``sgr_<supporter>_<session>_<64 hex>``, names where its session is kept; of its
32 random bytes only a SHA-256 is stored. Every refresh replaces the token presented with its
:meth:`RefreshToken.successor`: random, or, when the client sends a ``request_id`` so that it may
retry, derived from the old secret and that id, so that nothing secret is stored.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal

import msgspec
from redis.asyncio.client import Pipeline

from supportgate.store import names

__all__ = ["SESSION_ID", "SUPPORTER_ID", "RefreshToken", "Rotation", "TokenMatch", "match_token"]

SUPPORTER_ID: Final = re.compile(r"[a-z0-9-]{1,64}")
"""What a supporter id looks like."""
SESSION_ID: Final = re.compile(r"[0-9a-f]{16}")
"""What a session id looks like."""
_FORMAT = re.compile(r"sgr_([a-z0-9-]{1,64})_([0-9a-f]{16})_([0-9a-f]{64})")
_MAX_TOKEN_LENGTH = 4 + 64 + 1 + 16 + 1 + 64

TokenMatch = Literal["current", "previous", "older"]
"""Which of a session's refresh tokens a presented one is: the one that works, the one it replaced, or older."""


class Rotation(msgspec.Struct, frozen=True):
    """The refresh token a session had before its current one."""

    hash: str
    """SHA-256 (hex) of its secret."""
    at: datetime
    """When the refresh that replaced it was stored."""
    request_id: str | None
    """The ``request_id`` of that refresh, if the client sent one."""


@dataclass(frozen=True, slots=True)
class RefreshToken:
    """A refresh token taken apart: where its session is, and its secret."""

    supporter_id: str
    session_id: str
    secret: bytes = field(repr=False)

    @classmethod
    def new(cls, supporter_id: str, session_id: str) -> RefreshToken:
        """A fresh random token for a session."""
        return cls(supporter_id, session_id, secrets.token_bytes(32))

    @classmethod
    def parse(cls, token: object) -> RefreshToken | None:
        """The token ``token`` spells, or None if it is not one."""
        if not isinstance(token, str) or len(token) > _MAX_TOKEN_LENGTH:
            return None
        found = _FORMAT.fullmatch(token)
        return cls(found[1], found[2], bytes.fromhex(found[3])) if found else None

    def successor(self, request_id: str | None) -> RefreshToken:
        """The token that replaces this one: derived when the refresh can be retried, else random."""
        if request_id is None:
            return RefreshToken.new(self.supporter_id, self.session_id)
        secret = hmac.new(self.secret, b"rotate:" + request_id.encode(), hashlib.sha256).digest()
        return RefreshToken(self.supporter_id, self.session_id, secret)

    @property
    def hash(self) -> str:
        """SHA-256 (hex) of the secret: all the store keeps of it."""
        return hashlib.sha256(self.secret).hexdigest()

    @property
    def text(self) -> str:
        """The token as the client holds it."""
        return f"sgr_{self.supporter_id}_{self.session_id}_{self.secret.hex()}"


async def match_token(
    pipe: Pipeline, presented: RefreshToken, *, current: str, previous: Rotation | None
) -> TokenMatch | None:
    """Which of its session's tokens ``presented`` is, if any: ``current`` and ``previous`` are the session's."""
    digest = presented.hash
    if hmac.compare_digest(digest, current):
        return "current"
    if previous is not None and hmac.compare_digest(digest, previous.hash):
        return "previous"
    rotated = names.session_rotated(presented.supporter_id, presented.session_id)
    if await pipe.lpos(rotated, digest) is not None:
        return "older"
    return None
