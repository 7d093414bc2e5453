"""The admin console's sign-in: an admin key exchanged for a server-side session in the store.

A session id is 32 random bytes, given to the browser once in a cookie; the store keeps only its
SHA-256, so a copy of the store signs no one in. Each session carries its own CSRF token, which
every state-changing form sends back. A session idles out after :data:`IDLE_LIFETIME`: every use
moves its expiry on. Sign-in always makes a new id, so an id planted before sign-in is worth
nothing after it (no session fixation). Sign-in attempts are rate-limited per client address.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import Final

import msgspec

from supportgate.catalog.api_keys import ApiKeys
from supportgate.clock import Clock
from supportgate.store import Store, names
from supportgate.store.limits import RateLimit, RateLimiter

__all__ = ["IDLE_LIFETIME", "SIGN_INS_PER_IP", "ConsoleSession", "ConsoleSessions"]

IDLE_LIFETIME: Final = timedelta(hours=12)
"""A console session ends this long after its last use."""
SIGN_INS_PER_IP: Final = RateLimit(
    scope="console-sign-in-ip", limit=10, window_seconds=300, what="console sign-in attempts from this address"
)
"""Sign-in attempts, right or wrong, one client address may make."""
_ID_BYTES: Final = 32


class ConsoleSession(msgspec.Struct, kw_only=True):
    """One signed-in admin in the console, as stored under the hash of its id."""

    key_id: str
    """The admin key signed in with."""
    actor: str
    """The audit log's name for that key: ``admin:<name>``."""
    csrf: str
    """The token every state-changing form of this session must carry."""
    created_at: datetime
    """When the admin signed in."""
    last_used_at: datetime
    """When the session was last used: idle expiry counts from here."""

    def csrf_matches(self, presented: str | None) -> bool:
        """Whether a form's token is this session's, compared in constant time."""
        return presented is not None and hmac.compare_digest(self.csrf.encode(), presented.encode())


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(ConsoleSession).decode


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class ConsoleSessions:
    """Signs admins in and out of the console and finds the session behind a cookie."""

    def __init__(self, store: Store, api_keys: ApiKeys, limiter: RateLimiter, clock: Clock) -> None:
        self._store = store
        self._api_keys = api_keys
        self._limiter = limiter
        self._clock = clock

    def now(self) -> datetime:
        """The services' clock: what the console's pages count days and ends of support from."""
        return self._clock()

    async def sign_in(self, presented_key: str, *, client: str) -> tuple[str, ConsoleSession] | None:
        """A new session id and its session for a valid admin key; None for a wrong one.

        Raises TooManyRequests once ``client`` has tried too often, right key or not.
        """
        await self._limiter.hit(SIGN_INS_PER_IP, client)
        key = await self._api_keys.check("admin", presented_key.strip())
        if key is None:
            return None
        session_id = secrets.token_urlsafe(_ID_BYTES)
        now = self._clock()
        session = ConsoleSession(
            key_id=key.id, actor=key.actor, csrf=secrets.token_urlsafe(_ID_BYTES), created_at=now, last_used_at=now
        )
        record = names.console_session(_digest(session_id))
        ttl = int(IDLE_LIFETIME.total_seconds())
        await self._store.redis.set(record, _encode(session), ex=ttl)
        return session_id, session

    async def find(self, session_id: str | None) -> ConsoleSession | None:
        """The live session behind a cookie's id, its idle expiry moved on; None if there is none.

        A session whose admin key was revoked since is ended here.
        """
        if not session_id or len(session_id) > 100:
            return None
        record = names.console_session(_digest(session_id))
        raw = await self._store.redis.get(record)
        if raw is None:
            return None
        session = _decode(raw)
        now = self._clock()
        if now - session.last_used_at >= IDLE_LIFETIME or not await self._key_lives(session.key_id):
            await self._store.redis.delete(record)
            return None
        session.last_used_at = now
        await self._store.redis.set(record, _encode(session), ex=int(IDLE_LIFETIME.total_seconds()))
        return session

    async def sign_out(self, session_id: str | None) -> None:
        """End the session behind ``session_id`` in the store (nothing if there is none)."""
        if session_id and len(session_id) <= 100:
            await self._store.redis.delete(names.console_session(_digest(session_id)))

    async def _key_lives(self, key_id: str) -> bool:
        return bool(await self._store.redis.hexists(names.admin_keys(), key_id))
