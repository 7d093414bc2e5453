"""Supporter sessions: sign-in on a device, refresh, logout, the device limit, and access tokens.

A session is one signed-in device, kept as a record in the store; its refresh tokens are
:mod:`supportgate.readers.refresh_tokens`. Every refresh replaces the token presented. Presenting
a replaced token again revokes the whole session, except within the race window after its
rotation: a client retrying the same rotation (same ``request_id``) gets the same successor again,
and a refresh that lost a race with another one gets 409 (the session lives on).

A supporter's session keys share the ``{sup:<id>}`` hash tag, so each change is one optimistic
transaction, on Redis Cluster as on one server. Idle expiry is decided on the stored times; the
store's own key expiry, a little later, only collects what is left.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Final

import msgspec
from redis.asyncio.client import Pipeline

from supportgate.catalog.supporters import SupporterService
from supportgate.clock import Clock
from supportgate.errors import BadRequest, InvalidDpopProof, InvalidToken, NotFound, Unauthorized
from supportgate.readers.dpop import remember, require_key, spend, watch_unspent
from supportgate.readers.problems import (
    DeviceLimit,
    invalid_refresh_token,
    refresh_conflict,
    refresh_reused,
    support_ended,
)
from supportgate.readers.refresh_tokens import SESSION_ID, SUPPORTER_ID, RefreshToken, Rotation, match_token
from supportgate.readers.schemas import SessionInfo, TokenPair
from supportgate.store import Store, begin, names, texts
from supportgate.tokens.claims import access_claims
from supportgate.tokens.dpop import DpopProof
from supportgate.tokens.jose import ACCESS_TYPE
from supportgate.tokens.jwt import Tokens
from supportgate.tokens.lifetimes import ACCESS_LIFETIME, REFRESH_RACE_WINDOW, SESSION_IDLE_LIFETIME

__all__ = ["KEPT_ROTATIONS", "Caller", "OnEnded", "SessionService"]

KEPT_ROTATIONS: Final = 100
"""How many older rotated tokens of a session are still recognised as reuse (beyond the previous one)."""
MAX_DEVICE_LABEL: Final = 100
"""Longest device label kept."""
MAX_REQUEST_ID: Final = 128
"""Longest ``request_id`` a refresh accepts."""
# The store forgets a session this long after it idled out; until then the stored times decide.
_GC_GRACE = timedelta(hours=1)
_log = logging.getLogger("supportgate.sessions")

OnEnded = Callable[[str, list[str]], Awaitable[None]]
"""Told ``(supporter_id, session_ids)`` once sessions have ended, after the change is stored."""


class Caller(msgspec.Struct, frozen=True):
    """Who an access token speaks for: a supporter in one live session."""

    supporter_id: str
    """The supporter signed in."""
    session_id: str
    """The session the access token was issued to."""


class _Session(msgspec.Struct, kw_only=True):
    """A session as stored (older rotated hashes live in a list of their own)."""

    id: str
    """The session id: 16 hex digits."""
    device: str
    """The device label, as given."""
    created_at: datetime
    """When the session started."""
    last_used_at: datetime
    """When the session started or was last refreshed: idle expiry counts from here."""
    current: str
    """SHA-256 (hex) of the secret of the one refresh token that works."""
    previous: Rotation | None = None
    """The token the last refresh replaced."""
    jkt: str | None = None
    """The thumbprint of the DPoP key the session is bound to (RFC 9449), or None for a bearer session."""


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(_Session).decode


def _info(session: _Session) -> SessionInfo:
    return SessionInfo(
        id=session.id, device=session.device, created_at=session.created_at, last_used_at=session.last_used_at
    )


def _oldest_first(sessions: Sequence[_Session]) -> list[_Session]:
    return sorted(sessions, key=lambda session: (session.created_at, session.id))


class SessionService:
    """Starts, refreshes, lists and ends supporters' sessions, and authenticates their access tokens.

    ``on_ended`` is awaited with the ids of sessions that logout, ``end``, ``end_all``, a
    sign-in's ``end_sessions``, a reused token or ended support have just ended (not those that
    idled out).
    """

    def __init__(
        self,
        store: Store,
        tokens: Tokens,
        supporters: SupporterService,
        clock: Clock,
        *,
        issuer: str,
        access_ttl: timedelta = ACCESS_LIFETIME,
        idle_ttl: timedelta = SESSION_IDLE_LIFETIME,
        race_window: timedelta = REFRESH_RACE_WINDOW,
        on_ended: OnEnded | None = None,
    ) -> None:
        self._store = store
        self._tokens = tokens
        self._supporters = supporters
        self._clock = clock
        self._issuer = issuer
        self._access_ttl = access_ttl
        self._idle_ttl = idle_ttl
        self._race_window = race_window
        self._on_ended = on_ended
        self._gc_ms = int((idle_ttl + _GC_GRACE).total_seconds() * 1000)

    async def start(
        self,
        *,
        supporter_id: str,
        max_devices: int,
        device: str,
        end_sessions: Sequence[str] = (),
        proof: DpopProof | None = None,
    ) -> TokenPair:
        """Sign a supporter in on a device: a new session and its first pair of tokens.

        The caller has made sure who the supporter is and read ``max_devices`` from their tier.
        Sessions named in ``end_sessions`` end in the same step, so they make room. With a
        verified DPoP ``proof`` the session is bound to its key and its tokens are DPoP tokens.

        Raises:
            DeviceLimit: if the supporter has ``max_devices`` live sessions besides those named.
            BadRequest: if ``end_sessions`` names a session the supporter does not have, or the
                device label is empty or too long.
            InvalidDpopProof: if ``proof`` was used before.
        """
        if not SUPPORTER_ID.fullmatch(supporter_id):
            raise ValueError("a supporter id is 1 to 64 lowercase letters, digits or '-'")
        if not 1 <= len(device) <= MAX_DEVICE_LABEL:
            raise BadRequest(f"device: give a label of 1 to {MAX_DEVICE_LABEL} characters.")
        now = self._clock()
        token = RefreshToken.new(supporter_id, secrets.token_hex(8))
        jkt = None if proof is None else proof.jkt
        session = _Session(
            id=token.session_id, device=device, created_at=now, last_used_at=now, current=token.hash, jkt=jkt
        )
        index = names.sessions(supporter_id)
        ending = set(end_sessions)

        async def change(pipe: Pipeline) -> list[str]:
            stored = await self._read_all(pipe, supporter_id)
            unknown = sorted(ending - stored.keys())
            if unknown:
                raise BadRequest(f"end_sessions: you have no session {', '.join(map(repr, unknown))}.")
            live = _oldest_first([s for s in stored.values() if s is not None and self._live(s, now)])
            ended = [s.id for s in live if s.id in ending]
            if len(live) - len(ended) >= max_devices:
                raise DeviceLimit(sessions=[_info(s) for s in live], max_devices=max_devices)
            gone = [sid for sid, s in stored.items() if sid in ending or s is None or not self._live(s, now)]
            if proof is not None:
                await watch_unspent(pipe, supporter_id, proof)
            begin(pipe)
            spend(pipe, supporter_id, proof)
            self._delete(pipe, supporter_id, gone)
            pipe.set(names.session(supporter_id, session.id), _encode(session), px=self._gc_ms)
            pipe.sadd(index, session.id)
            pipe.pexpire(index, self._gc_ms)
            return ended

        ended = await self._store.atomically(change, index)
        await self._ended(supporter_id, ended)
        return await self._pair(token, jkt)

    async def refresh(
        self, refresh_token: str, *, request_id: str | None = None, proof: DpopProof | None = None
    ) -> TokenPair:
        """Trade a refresh token for a new pair; the token presented stops working.

        A client that did not get the answer may send the same token with the same
        ``request_id`` again and gets the same new refresh token, as long as that one is unused
        and ``race_window`` has not passed since the first answer; later it is reuse.

        A session bound to a DPoP key needs a verified ``proof`` by that key; without it nothing
        changes (the token is not used up, and it is not reuse). The new tokens keep the binding.

        Raises:
            InvalidDpopProof: if the session is bound and ``proof`` is missing, another key's, or
                was used before.
            Unauthorized: ``invalid-refresh-token`` if the token is unknown, malformed or its session
                has ended; ``refresh-reused`` if it had been replaced more than ``race_window`` ago
                (the session is now ended); ``support-ended`` if the supporter is no longer active
                (likewise).
            Conflict: ``refresh-conflict`` if another refresh replaced this token within ``race_window``.
            BadRequest: if ``request_id`` is empty or too long.
        """
        if request_id is not None and not 1 <= len(request_id) <= MAX_REQUEST_ID:
            raise BadRequest(f"request_id: give 1 to {MAX_REQUEST_ID} characters, or none.")
        presented = RefreshToken.parse(refresh_token)
        if presented is None:
            raise invalid_refresh_token()
        supporter_id, session_id = presented.supporter_id, presented.session_id
        supported = await self._supported(supporter_id)
        now = self._clock()
        record = names.session(supporter_id, session_id)

        async def change(pipe: Pipeline) -> tuple[RefreshToken, str | None] | Unauthorized:
            session = await self._live_session(pipe, record, now)
            which = (
                None
                if session is None
                else await match_token(pipe, presented, current=session.current, previous=session.previous)
            )
            if session is None or which is None:
                raise invalid_refresh_token()
            # Before anything else: a copied token without the session's key must change nothing.
            await _check_proof(pipe, session, supporter_id, proof)
            if supported and which == "current":
                successor = self._rotate(pipe, session, presented, request_id, now)
                spend(pipe, supporter_id, proof)
                return successor, session.jkt
            if supported and which == "previous":
                again = self._retried(session, presented, request_id, now)
                if again is not None:
                    begin(pipe)
                    spend(pipe, supporter_id, proof)
                    return again, session.jkt
            begin(pipe)
            self._delete(pipe, supporter_id, [session_id])
            spend(pipe, supporter_id, proof)
            return refresh_reused() if supported else support_ended()

        result = await self._store.atomically(change, record)
        if isinstance(result, tuple):
            return await self._pair(*result)
        if result.slug == "refresh-reused":
            _log.warning(
                "a replaced refresh token was presented again: session %s of %s ended", session_id, supporter_id
            )
        await self._ended(supporter_id, [session_id])
        raise result

    async def logout(self, refresh_token: str, *, proof: DpopProof | None = None) -> None:
        """End the session of a refresh token, be it the current one or one the session replaced.

        A logout that races a refresh still ends the session. An unknown or malformed token is
        not an error: there is nothing left to end.

        Raises:
            InvalidDpopProof: if the session is bound to a DPoP key and ``proof`` is missing,
                another key's, or was used before; the session lives on.
        """
        presented = RefreshToken.parse(refresh_token)
        if presented is None:
            return
        supporter_id, session_id = presented.supporter_id, presented.session_id
        record = names.session(supporter_id, session_id)
        now = self._clock()

        async def change(pipe: Pipeline) -> bool:
            session = await self._live_session(pipe, record, now)
            if (
                session is None
                or await match_token(pipe, presented, current=session.current, previous=session.previous) is None
            ):
                return False
            await _check_proof(pipe, session, supporter_id, proof)
            begin(pipe)
            self._delete(pipe, supporter_id, [session_id])
            spend(pipe, supporter_id, proof)
            return True

        if await self._store.atomically(change, record):
            await self._ended(supporter_id, [session_id])

    async def authenticate(self, access_token: str, *, dpop: bool = False, proof: DpopProof | None = None) -> Caller:
        """Who a valid access token of a live session speaks for.

        ``dpop`` says the token came as ``Authorization: DPoP`` rather than ``Bearer``; ``proof``
        is the request's verified DPoP proof (its ``ath`` checked against this token). A token bound
        to a key (``cnf.jkt``) must come as DPoP with a proof by that key; an unbound one as Bearer.

        Raises:
            Unauthorized: ``invalid-access-token`` if the token fails verification (refresh it),
                ``session-ended`` if its session has ended (sign in again).
            InvalidDpopProof: if the presentation breaks the binding rules, or the proof was used before.
        """
        try:
            claims = await self._tokens.verify(
                access_token, typ=ACCESS_TYPE, audience=self._issuer, issuer=self._issuer
            )
        except InvalidToken as exc:
            raise Unauthorized(
                f"The access token is not valid ({exc.reason}); refresh it.",
                title="Invalid access token",
                slug="invalid-access-token",
            ) from None
        supporter_id, session_id = claims["sub"], claims.get("sid")
        if not (
            isinstance(session_id, str) and SESSION_ID.fullmatch(session_id) and SUPPORTER_ID.fullmatch(supporter_id)
        ):
            raise Unauthorized(
                "The access token names no session.", title="Invalid access token", slug="invalid-access-token"
            )
        jkt = _bound_key(claims)
        if jkt is not None and not dpop:
            raise InvalidDpopProof(
                "This access token is bound to a key (DPoP): send it as 'Authorization: DPoP <access token>' "
                "with a DPoP proof."
            )
        if jkt is None and dpop:
            raise InvalidDpopProof("This access token is not bound to a key: send it as 'Authorization: Bearer'.")
        require_key(jkt, proof)
        raw = await self._store.redis.get(names.session(supporter_id, session_id))
        session = None if raw is None else _decode(raw)
        if session is None or not self._live(session, self._clock()):
            raise Unauthorized("This session has ended: sign in again.", title="Session ended", slug="session-ended")
        if session.jkt != jkt:
            raise Unauthorized(
                "The access token's key binding is not its session's.",
                title="Invalid access token",
                slug="invalid-access-token",
            )
        if proof is not None:
            await remember(self._store.redis, supporter_id, proof)
        return Caller(supporter_id, session_id)

    async def end(self, supporter_id: str, session_id: str) -> None:
        """End one of a supporter's sessions (signed out from another device).

        Raises:
            NotFound: if the supporter has no such live session.
        """
        record = names.session(supporter_id, session_id)
        now = self._clock()

        async def change(pipe: Pipeline) -> None:
            if await self._live_session(pipe, record, now) is None:
                raise NotFound(f"There is no session {session_id!r}; it may have ended already.")
            begin(pipe)
            self._delete(pipe, supporter_id, [session_id])

        await self._store.atomically(change, record)
        await self._ended(supporter_id, [session_id])

    async def end_all(self, supporter_id: str) -> list[str]:
        """End every session of a supporter; the ids of those that were live, oldest first."""
        index = names.sessions(supporter_id)
        now = self._clock()

        async def change(pipe: Pipeline) -> list[str]:
            stored = await self._read_all(pipe, supporter_id)
            begin(pipe)
            self._delete(pipe, supporter_id, list(stored))
            return [s.id for s in _oldest_first([s for s in stored.values() if s is not None and self._live(s, now)])]

        ended = await self._store.atomically(change, index)
        await self._ended(supporter_id, ended)
        return ended

    async def list(self, supporter_id: str) -> list[SessionInfo]:
        """A supporter's live sessions, oldest first."""
        redis = self._store.redis
        ids = texts(await redis.smembers(names.sessions(supporter_id)))
        if not ids:
            return []
        now = self._clock()
        records = await redis.mget([names.session(supporter_id, sid) for sid in ids])
        sessions = [_decode(raw) for raw in records if raw is not None]
        return [_info(s) for s in _oldest_first([s for s in sessions if self._live(s, now)])]

    def _rotate(
        self, pipe: Pipeline, session: _Session, presented: RefreshToken, request_id: str | None, now: datetime
    ) -> RefreshToken:
        """Queue the replacement of the session's current token, ``presented``; the successor."""
        successor = presented.successor(request_id)
        replaced = Rotation(hash=presented.hash, at=now, request_id=request_id)
        after = msgspec.structs.replace(session, last_used_at=now, current=successor.hash, previous=replaced)
        supporter_id, session_id = presented.supporter_id, presented.session_id
        rotated = names.session_rotated(supporter_id, session_id)
        begin(pipe)
        pipe.set(names.session(supporter_id, session_id), _encode(after), px=self._gc_ms)
        if session.previous is not None:
            pipe.lpush(rotated, session.previous.hash)
            pipe.ltrim(rotated, 0, KEPT_ROTATIONS - 1)
            pipe.pexpire(rotated, self._gc_ms)
        pipe.pexpire(names.sessions(supporter_id), self._gc_ms)
        return successor

    def _retried(
        self, session: _Session, presented: RefreshToken, request_id: str | None, now: datetime
    ) -> RefreshToken | None:
        """For the token the last refresh replaced: the same successor if this retries that refresh.

        A retry is taken only within ``race_window`` of that refresh: a token presented later,
        whatever its ``request_id``, is reuse, so a stolen token and its request cannot be
        replayed at leisure.

        Returns:
            The current token when ``request_id`` is the one that refresh had and ``race_window``
            has not passed since it, else None: reuse.

        Raises:
            Conflict: if that refresh was within ``race_window``: this one lost a race to it.
        """
        previous = session.previous
        if previous is None or now >= previous.at + self._race_window:
            return None
        if request_id is not None and request_id == previous.request_id:
            again = presented.successor(request_id)
            if hmac.compare_digest(again.hash, session.current):
                return again
        raise refresh_conflict()

    def _live(self, session: _Session, now: datetime) -> bool:
        return now < session.last_used_at + self._idle_ttl

    async def _live_session(self, pipe: Pipeline, record: str, now: datetime) -> _Session | None:
        raw = await pipe.get(record)
        if raw is None:
            return None
        session = _decode(raw)
        return session if self._live(session, now) else None

    async def _read_all(self, pipe: Pipeline, supporter_id: str) -> dict[str, _Session | None]:
        """Every session in the supporter's index, ``None`` for those the store has forgotten; all watched."""
        ids = sorted(texts(await pipe.smembers(names.sessions(supporter_id))))
        if not ids:
            return {}
        records = [names.session(supporter_id, sid) for sid in ids]
        await pipe.watch(*records)
        raws = await pipe.mget(records)
        return {sid: None if raw is None else _decode(raw) for sid, raw in zip(ids, raws, strict=True)}

    def _delete(self, pipe: Pipeline, supporter_id: str, session_ids: Sequence[str]) -> None:
        if not session_ids:
            return
        for sid in session_ids:
            pipe.delete(names.session(supporter_id, sid), names.session_rotated(supporter_id, sid))
        pipe.srem(names.sessions(supporter_id), *session_ids)

    async def _supported(self, supporter_id: str) -> bool:
        try:
            supporter = await self._supporters.get(supporter_id)
        except NotFound:
            return False
        return supporter.status == "active"

    async def _ended(self, supporter_id: str, session_ids: Sequence[str]) -> None:
        if session_ids and self._on_ended is not None:
            await self._on_ended(supporter_id, [*session_ids])

    async def _pair(self, token: RefreshToken, jkt: str | None) -> TokenPair:
        claims = access_claims(
            supporter_id=token.supporter_id,
            session_id=token.session_id,
            issuer=self._issuer,
            now=self._clock(),
            lifetime=self._access_ttl,
            jkt=jkt,
        )
        return TokenPair(
            access_token=await self._tokens.sign(claims, ACCESS_TYPE),
            token_type="Bearer" if jkt is None else "DPoP",
            expires_in=int(self._access_ttl.total_seconds()),
            refresh_token=token.text,
        )


def _bound_key(claims: dict[str, Any]) -> str | None:
    """The thumbprint in a verified access token's ``cnf.jkt``, or None for a bearer token."""
    cnf = claims.get("cnf")
    if cnf is None:
        return None
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    if not isinstance(jkt, str):
        raise Unauthorized(
            "The access token's cnf names no key.", title="Invalid access token", slug="invalid-access-token"
        )
    return jkt


async def _check_proof(pipe: Pipeline, session: _Session, supporter_id: str, proof: DpopProof | None) -> None:
    """In a transaction's reads: the session's binding rule, and that ``proof`` is unspent (then watched)."""
    require_key(session.jkt, proof)
    if proof is not None:
        await watch_unspent(pipe, supporter_id, proof)
