"""One-time codes that sign a supporter in: emailed sign-in codes and admin-made activation codes.

Codes are stored only as HMACs: a sign-in code bound to its address, an activation code alone.
Asking for a sign-in code costs the same, answers the same and takes as long whether or not the
address belongs to a supporter; only the email that follows differs.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Final, TypeVar

import msgspec
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from supportgate.catalog.sites import SiteService
from supportgate.catalog.supporters import SupporterService, normalise_email
from supportgate.clock import Clock
from supportgate.errors import BadRequest, MailQueueFull, NotFound
from supportgate.mail import Mail, no_support_mail, recipient_domain, sign_in_code_mail
from supportgate.mail_queue import MailQueue
from supportgate.readers.problems import InvalidCode
from supportgate.readers.schemas import ActivationCode
from supportgate.store import Store, begin, names
from supportgate.store.limits import RateLimit, RateLimiter
from supportgate.tokens.stored_secrets import StoredSecret

__all__ = ["ActivationCodes", "SignInCodes"]

T = TypeVar("T")
_log = logging.getLogger("supportgate.readers")

SIGN_IN_CODE_LIFETIME: Final = timedelta(minutes=15)
ACTIVATION_CODE_LIFETIME: Final = timedelta(days=7)
MAX_TRIES: Final = 5

# Code requests are counted three ways. Per network, so one client cannot spray many addresses.
# Per address and network, so the owner's own budget is theirs: a stranger asking for the
# owner's address from elsewhere spends their own. And per address over all networks, against a
# flood of mail to one inbox: four networks' worth, so a reader's phone, laptop and office never
# meet it, while strangers need four networks of their own to hold it shut for the rest of the
# hour (docs/readers-api.md, "Rate limits").
REQUESTS_PER_IP = RateLimit(
    scope="code-ip", limit=20, window_seconds=3600, what="sign-in code requests from this network"
)
REQUESTS_PER_ADDRESS_AND_IP = RateLimit(
    scope="code-addr-ip", limit=5, window_seconds=3600, what="sign-in codes for this address from this network"
)
REQUESTS_PER_ADDRESS = RateLimit(
    scope="code-addr", limit=20, window_seconds=3600, what="sign-in codes for this address"
)
VERIFIES_PER_IP = RateLimit(scope="verify-ip", limit=30, window_seconds=900, what="sign-in attempts from this network")
# Verification per address counts only attempts from networks that have not asked for a code for
# the address this hour or the last: the owner, who asked from where they are, is never held back
# by it. Fewer than MAX_TRIES per code lifetime, so guesses from elsewhere cannot use up the
# owner's code on their own; a guesser who asks for a code first is bound by the code's tries
# and the request limits above instead (docs/readers-api.md, "Rate limits").
VERIFIES_PER_ADDRESS_ELSEWHERE = RateLimit(
    scope="verify-addr",
    limit=4,
    window_seconds=900,
    what="sign-in attempts for this address from a network that did not ask for its code",
)
ACTIVATIONS_PER_IP = RateLimit(
    scope="activate-ip", limit=20, window_seconds=900, what="activation attempts from this network"
)

# Crockford's base32: no I, L, O or U, so a code read aloud or retyped survives.
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_CROCKFORD_READ = str.maketrans({"O": "0", "I": "1", "L": "1"})


class _PendingCode(msgspec.Struct):
    mac: str
    tries_left: int
    expires: float
    """Unix time after which the code no longer works (the key's TTL only clears it away)."""


class _Activation(msgspec.Struct):
    supporter: str
    expires: float


_encode = msgspec.json.Encoder().encode
_decode_pending = msgspec.json.Decoder(_PendingCode).decode
_decode_activation = msgspec.json.Decoder(_Activation).decode


class SignInCodes:
    """Sends 6-digit sign-in codes by email and checks them."""

    def __init__(
        self,
        store: Store,
        supporters: SupporterService,
        sites: SiteService,
        secret: StoredSecret,
        mail: MailQueue,
        limiter: RateLimiter,
        clock: Clock,
    ) -> None:
        self._store = store
        self._supporters = supporters
        self._sites = sites
        self._secret = secret
        self._mail = mail
        self._limiter = limiter
        self._clock = clock

    async def request(self, email: str, *, site: str | None, client_ip: str, lang: str = "en") -> None:
        """Email a code to a supporter, or a "no active support found" note to anyone else."""
        address = normalise_email(email)
        site_record = None
        if site is not None:
            try:
                site_record = await self._sites.get(site)
            except NotFound:
                raise BadRequest(f"site: there is no site {site!r}.") from None
        await self._limiter.hit(REQUESTS_PER_IP, client_ip)
        secret = await self._secret.get()
        digest = _mac(secret, f"address:{address}")
        await self._limiter.hit(REQUESTS_PER_ADDRESS_AND_IP, _address_and_ip(secret, address, client_ip))
        await self._limiter.hit(REQUESTS_PER_ADDRESS, digest)
        supporter = await self._supporters.find_by_email(address)
        code = f"{secrets.randbelow(1_000_000):06d}"
        active = supporter is not None and supporter.status == "active"
        # Anyone else gets a pending code too, one that no input matches: the store sees the same
        # writes, and a guess at it fails the same way, so nothing tells the two cases apart.
        mac = _mac(secret, f"code:{address}:{code}") if active else secrets.token_hex(32)
        lifetime = int(SIGN_IN_CODE_LIFETIME.total_seconds())
        pending = _PendingCode(mac=mac, tries_left=MAX_TRIES, expires=self._clock().timestamp() + lifetime)

        async def store_code(redis: Redis) -> None:
            await redis.set(names.sign_in_code(digest), _encode(pending), ex=lifetime)

        await self._store.durably(store_code, names.sign_in_code(digest))
        site_name = site_record.name if site_record else None
        if active:
            mail = sign_in_code_mail(to=address, code=code, minutes=lifetime // 60, site_name=site_name, lang=lang)
        else:
            support_url = site_record.policy.support_url if site_record else None
            mail = no_support_mail(to=address, site_name=site_name, support_url=support_url, lang=lang)
        await self._queue(mail)

    async def _queue(self, mail: Mail) -> None:
        """Queue ``mail``; a full queue is logged, not told: the answer stays the same either way."""
        try:
            await self._mail.send(mail)
        except MailQueueFull as exc:
            _log.error("a sign-in mail to a recipient at %s was not queued: %s", recipient_domain(mail.to), exc)

    async def redeem(self, email: str, code: str, *, client_ip: str, then: Callable[[str], Awaitable[T]]) -> T:
        """Check a code; if right, use it up and run ``then(supporter_id)`` (which starts the session).

        A wrong code costs one of its five tries; the fifth wrong one destroys it. Attempts from a
        network that did not ask for the address's code are also limited per address. If ``then``
        raises (the device limit, say), the code is put back so the reader can try again.
        """
        await self._limiter.hit(VERIFIES_PER_IP, client_ip)
        address = normalise_email(email)
        secret = await self._secret.get()
        digest = _mac(secret, f"address:{address}")
        if not await self._limiter.seen(REQUESTS_PER_ADDRESS_AND_IP, _address_and_ip(secret, address, client_ip)):
            await self._limiter.hit(VERIFIES_PER_ADDRESS_ELSEWHERE, digest)
        key = names.sign_in_code(digest)
        expected = _mac(secret, f"code:{address}:{code.strip()}")
        now = self._clock().timestamp()

        async def change(pipe: Pipeline) -> tuple[bool, bytes | None, int]:
            raw = await pipe.get(key)
            ttl = await pipe.pttl(key)
            if not isinstance(raw, bytes):
                return False, None, 0
            pending = _decode_pending(raw)
            begin(pipe)
            if pending.expires <= now:
                pipe.delete(key)
                return False, None, 0
            if hmac.compare_digest(pending.mac, expected):
                pipe.delete(key)
                return True, raw, ttl
            if pending.tries_left <= 1:
                pipe.delete(key)
            else:
                pipe.set(
                    key, _encode(msgspec.structs.replace(pending, tries_left=pending.tries_left - 1)), keepttl=True
                )
            return False, None, 0

        right, raw, ttl = await self._store.atomically(change, key)
        supporter = await self._supporters.find_by_email(address) if right else None
        if not right or raw is None or supporter is None or supporter.status != "active":
            raise InvalidCode
        return await _or_restore(self._store, key, raw, ttl, then(supporter.id))


class ActivationCodes:
    """Makes activation codes for admins and redeems them for readers."""

    def __init__(
        self, store: Store, supporters: SupporterService, secret: StoredSecret, limiter: RateLimiter, clock: Clock
    ) -> None:
        self._store = store
        self._supporters = supporters
        self._secret = secret
        self._limiter = limiter
        self._clock = clock

    async def create(self, supporter_id: str, *, actor: str) -> ActivationCode:
        """A new code for an active supporter, valid for seven days; the audit log notes it, not the code."""
        supporter = await self._supporters.get(supporter_id)
        if supporter.status != "active":
            raise BadRequest(
                f"Supporter {supporter_id} is {supporter.status}; activation codes are for active supporters."
            )
        raw = secrets.token_bytes(10)
        number = int.from_bytes(raw)
        text = "".join(_CROCKFORD[(number >> (5 * i)) & 31] for i in reversed(range(16)))
        code = "-".join(text[i : i + 4] for i in range(0, 16, 4))
        now = self._clock()
        lifetime = int(ACTIVATION_CODE_LIFETIME.total_seconds())
        digest = _mac(await self._secret.get(), f"activation:{text}")
        record = _Activation(supporter=supporter_id, expires=now.timestamp() + lifetime)

        async def store_code(redis: Redis) -> None:
            await redis.set(names.activation_code(digest), _encode(record), ex=lifetime)

        await self._store.durably(store_code, names.activation_code(digest))
        await self._supporters.note(supporter_id, action="supporter.activation-code", actor=actor)
        return ActivationCode(code=code, expires_at=now + ACTIVATION_CODE_LIFETIME)

    async def redeem(self, code: str, *, client_ip: str, then: Callable[[str], Awaitable[T]]) -> T:
        """Use a code up and run ``then(supporter_id)``; if ``then`` raises, the code is put back."""
        await self._limiter.hit(ACTIVATIONS_PER_IP, client_ip)
        text = code.upper().replace("-", "").replace(" ", "").translate(_CROCKFORD_READ)
        if len(text) != 16 or any(c not in _CROCKFORD for c in text):
            raise InvalidCode
        key = names.activation_code(_mac(await self._secret.get(), f"activation:{text}"))
        async with self._store.multi(key) as pipe:
            pipe.pttl(key)
            pipe.getdel(key)
            ttl, raw = await pipe.execute()
        if raw is None:
            raise InvalidCode
        activation = _decode_activation(raw)
        if activation.expires <= self._clock().timestamp():
            raise InvalidCode
        try:
            supporter = await self._supporters.get(activation.supporter)
        except NotFound:
            raise InvalidCode from None
        if supporter.status != "active":
            raise InvalidCode
        return await _or_restore(self._store, key, raw, ttl, then(supporter.id))


async def _or_restore(store: Store, key: str, raw: bytes, ttl_ms: int, work: Awaitable[T]) -> T:
    """Await ``work``; if it fails, put the used-up code back with the time it had left."""
    try:
        return await work
    except BaseException:
        if ttl_ms > 0:
            await store.redis.set(key, raw, px=ttl_ms, nx=True)
        raise


def _address_and_ip(secret: bytes, address: str, client_ip: str) -> str:
    """The subject of the per-address-and-network counters: the store never links the two in the clear."""
    return _mac(secret, f"address-ip:{address}:{client_ip}")


def _mac(secret: bytes, message: str) -> str:
    return hmac.new(secret, message.encode(), hashlib.sha256).hexdigest()
