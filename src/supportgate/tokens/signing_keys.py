"""Ed25519 signing keys: kept in the store, published before they sign, retired late.

There is always one ``active`` key (it signs) and one ``next`` key (it is in the JWKS
but does not sign yet), and there may be ``retiring`` keys (they signed before the last
rotation and stay in the JWKS until ``retire_until``, then are dropped). A rotation
makes next active, active retiring and a fresh next, so every key a token names was
published long enough before for sites' cached JWKS to hold it.

The key set is kept in the store as one JSON list (the private keys as PKCS8 PEM) sealed
under the master key by the :class:`~supportgate.tokens.vault.Vault`: a copy of the store
without the master key cannot mint passes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)
from redis.asyncio.client import Pipeline

from supportgate.clock import Clock
from supportgate.errors import BadRequest, Conflict, SupportgateError
from supportgate.store import STORE_ERRORS, begin, names
from supportgate.tokens.jose import public_jwk, thumbprint
from supportgate.tokens.lifetimes import JWKS_MAX_AGE, KEY_SET_MAX_AGE, PUBLICATION_DELAY
from supportgate.tokens.vault import Vault

__all__ = ["UNKNOWN_KID_RELOAD_INTERVAL", "KeyState", "SigningKeys"]

KeyRole = Literal["active", "next", "retiring"]
_log = logging.getLogger("supportgate.tokens")

UNKNOWN_KID_RELOAD_INTERVAL: Final = timedelta(seconds=1)
"""Least time between two reloads caused by tokens naming a kid this process lacks."""


class KeyState(msgspec.Struct, frozen=True):
    """One signing key as an admin sees it: never its private half."""

    kid: str
    """RFC 7638 thumbprint of the public key."""
    state: KeyRole
    """``active`` signs, ``next`` signs after the next rotation, ``retiring`` only verifies."""
    published_at: datetime
    """When the key was stored, and so first published in the JWKS."""
    retire_until: datetime | None = None
    """For a retiring key, when it leaves the JWKS."""


class _StoredSigningKey(msgspec.Struct, frozen=True):
    kid: str
    state: KeyRole
    private_pem: str
    published_at: datetime
    retire_until: datetime | None = None

    @property
    def public_state(self) -> KeyState:
        return KeyState(self.kid, self.state, self.published_at, self.retire_until)


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(list[_StoredSigningKey]).decode


def _new_key(state: KeyRole, now: datetime) -> _StoredSigningKey:
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    return _StoredSigningKey(
        kid=thumbprint(private.public_key()),
        state=state,
        private_pem=pem.decode("ascii"),
        published_at=now,
    )


def _load_private(stored: _StoredSigningKey) -> Ed25519PrivateKey:
    key = load_pem_private_key(stored.private_pem.encode("ascii"), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise SupportgateError(f"signing key {stored.kid} in the store is not Ed25519")
    return key


@dataclass(frozen=True, slots=True)
class _Ring:
    """The key set as this process loaded it, ready to sign, verify and publish."""

    fresh_from: datetime
    fresh_until: datetime
    states: tuple[KeyState, ...]
    signing: tuple[str, Ed25519PrivateKey]
    public: Mapping[str, Ed25519PublicKey]
    jwks: dict[str, list[dict[str, str]]]

    @classmethod
    def build(cls, stored: list[_StoredSigningKey], now: datetime) -> _Ring:
        fresh_until = now + KEY_SET_MAX_AGE
        live: list[_StoredSigningKey] = []
        for key in stored:
            if key.retire_until is not None:
                if key.retire_until <= now:
                    continue
                fresh_until = min(fresh_until, key.retire_until)
            live.append(key)
        private = {key.kid: _load_private(key) for key in live}
        active = [key.kid for key in live if key.state == "active"]
        if len(active) != 1:
            raise SupportgateError("the signing key set in the store has no single active key")
        public = {kid: key.public_key() for kid, key in private.items()}
        return cls(
            fresh_from=now,
            fresh_until=fresh_until,
            states=tuple(key.public_state for key in live),
            signing=(active[0], private[active[0]]),
            public=public,
            jwks={"keys": [public_jwk(key) for key in public.values()]},
        )

    def is_fresh(self, now: datetime) -> bool:
        return self.fresh_from <= now < self.fresh_until

    def public_at(self, now: datetime) -> Mapping[str, Ed25519PublicKey]:
        """The public keys still published at ``now``: a stale ring drops the keys retired since."""
        retired = {s.kid for s in self.states if s.retire_until is not None and s.retire_until <= now}
        return {kid: key for kid, key in self.public.items() if kid not in retired} if retired else self.public


class SigningKeys:
    """The signing key set: bootstrap, rotation, the JWKS, and a per-process cache of it.

    Signing and verifying read the cache, which is reloaded from the store when it is
    older than ``KEY_SET_MAX_AGE`` or, at most once per ``UNKNOWN_KID_RELOAD_INTERVAL``,
    when a token names a kid it does not hold.
    """

    def __init__(self, vault: Vault, clock: Clock) -> None:
        self._vault = vault
        self._store = vault.store
        self._clock = clock
        self._ring: _Ring | None = None
        self._lock = asyncio.Lock()
        self._forced_reload_at: datetime | None = None
        self._background: asyncio.Task[None] | None = None

    async def ensure(self) -> list[KeyState]:
        """Create the first active and next keys unless a key set exists; safe to race."""
        async with self._lock:
            return list((await self._reload()).states)

    async def describe(self) -> list[KeyState]:
        """The key set as stored now: active, next, then the retiring keys still published."""
        return await self.ensure()

    async def rotate(
        self,
        longest_token_lifetime: timedelta,
        *,
        force: bool = False,
    ) -> list[KeyState]:
        """Make next active, active retiring, and a fresh next, in one step.

        The old active key stays published for ``longest_token_lifetime``, so every token
        it signed expires before it leaves the JWKS.

        Raises:
            Conflict: if ``next`` has been published for less than ``PUBLICATION_DELAY``
                (sites may not have it yet) and ``force`` is not set, or if there are no
                keys yet.
            BadRequest: if ``longest_token_lifetime`` is not positive.
        """
        if longest_token_lifetime <= timedelta(0):
            raise BadRequest("longest_token_lifetime must be positive.")
        now = self._clock()
        fresh = _new_key("next", now)
        stored_key = names.signing_keys()

        async def change(pipe: Pipeline) -> list[_StoredSigningKey]:
            raw = await pipe.get(stored_key)
            if raw is None:
                raise Conflict("There are no signing keys to rotate yet.")
            stored = _decode(self._vault.open(stored_key, raw))
            (active,) = [key for key in stored if key.state == "active"]
            (upcoming,) = [key for key in stored if key.state == "next"]
            ready_at = upcoming.published_at + PUBLICATION_DELAY
            if now < ready_at and not force:
                published_for = int((now - upcoming.published_at).total_seconds())
                raise Conflict(
                    f"The next key {upcoming.kid} has been published for only "
                    f"{published_for} s; sites may cache the JWKS for "
                    f"{int(JWKS_MAX_AGE.total_seconds())} s, so it may start signing "
                    f"at {ready_at.isoformat()}. Rotate then, or force it.",
                    kid=upcoming.kid,
                    ready_at=ready_at.isoformat(),
                )
            rotated = [
                msgspec.structs.replace(upcoming, state="active"),
                fresh,
                msgspec.structs.replace(
                    active,
                    state="retiring",
                    retire_until=now + longest_token_lifetime,
                ),
                *(key for key in stored if key.retire_until is not None and key.retire_until > now),
            ]
            begin(pipe)
            pipe.set(stored_key, self._vault.seal(stored_key, _encode(rotated)))
            return rotated

        rotated = await self._store.atomically(change, stored_key)
        ring = _Ring.build(rotated, now)
        self._ring = ring
        return list(ring.states)

    async def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The public JWKS: the active, next and still-published retiring keys."""
        return (await self._current()).jwks

    async def signing_key(self) -> tuple[str, Ed25519PrivateKey]:
        """The active key and its kid."""
        return (await self._current()).signing

    async def verification_keys(self, *, stale_ok: bool = False) -> Mapping[str, Ed25519PublicKey]:
        """The published public keys by kid: the only keys a token may be verified with.

        With ``stale_ok``, a key set past its cache age is used (less the keys retired since)
        while one reload runs in the background: the caller never waits for the store once a
        key set is loaded, and a store that is away leaves the last key set in use.
        """
        ring = self._ring
        now = self._clock()
        if not stale_ok or ring is None or ring.is_fresh(now):
            return (await self._current()).public
        if self._background is None or self._background.done():
            self._background = asyncio.create_task(self._reload_quietly(), name="supportgate key set reload")
        return ring.public_at(now)

    async def reload_for_unknown_key(self) -> bool:
        """Reload the key set because a token named an unknown kid, unless one just did.

        Returns:
            Whether the key set was reloaded (at most once per
            ``UNKNOWN_KID_RELOAD_INTERVAL``).
        """
        now = self._clock()
        last = self._forced_reload_at
        if last is not None and last <= now < last + UNKNOWN_KID_RELOAD_INTERVAL:
            return False
        self._forced_reload_at = now
        async with self._lock:
            await self._reload()
        return True

    async def _current(self) -> _Ring:
        ring = self._ring
        if ring is not None and ring.is_fresh(self._clock()):
            return ring
        async with self._lock:
            ring = self._ring
            if ring is not None and ring.is_fresh(self._clock()):
                return ring
            return await self._reload()

    async def _reload_quietly(self) -> None:
        try:
            async with self._lock:
                ring = self._ring
                if ring is None or not ring.is_fresh(self._clock()):
                    await self._reload()
        except (*STORE_ERRORS, TimeoutError) as exc:
            _log.warning("could not reload the signing keys; the last loaded stay in use: %s", exc)

    async def _reload(self) -> _Ring:
        raw = await self._vault.read(names.signing_keys())
        if raw is None:
            now = self._clock()
            first = _encode([_new_key("active", now), _new_key("next", now)])
            raw = await self._vault.create(names.signing_keys(), first)
        ring = _Ring.build(_decode(raw), self._clock())
        self._ring = ring
        return ring
