"""Supporter sessions: rotating refresh tokens, reuse detection, races, logout, expiry and the device limit."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import pytest

from supportgate.catalog.audit import AuditLog
from supportgate.catalog.schemas import SupporterIn, SupporterPatch, TierIn
from supportgate.catalog.supporters import SupporterService
from supportgate.catalog.tiers import TierService
from supportgate.errors import BadRequest, Conflict, NotFound, Problem, Unauthorized
from supportgate.readers.problems import DeviceLimit
from supportgate.readers.schemas import SessionInfo, TokenPair
from supportgate.readers.sessions import Caller, SessionService
from supportgate.store import EmbeddedStore, Store, connect, names, open_store
from supportgate.tokens.jose import ACCESS_TYPE
from supportgate.tokens.jwt import Tokens
from supportgate.tokens.signing_keys import SigningKeys
from tests.conftest import EVERY_STORE, FakeClock
from tests.tokens_helpers import vault

ISSUER = "https://gate.example"
DEVICE = "Chrome on macOS"
RACE = timedelta(seconds=10)
IDLE = timedelta(days=30)
P = TypeVar("P", bound=Problem)
T = TypeVar("T")


@dataclass(frozen=True)
class Catalog:
    """The tiers and supporters the sessions check against, over one connection.

    Its SupporterService has no listeners, so revoking a supporter leaves their sessions for
    refresh's own check to end, whatever the app wires up.
    """

    store: Store
    tiers: TierService
    supporters: SupporterService

    @classmethod
    def over(cls, store: Store, clock: FakeClock) -> Catalog:
        """The catalog services over ``store``."""
        audit = AuditLog(store)
        return cls(store, TierService(store, audit, clock), SupporterService(store, audit, clock))


class EndedLog:
    """Records what ``on_ended`` is told, and what the store said at that moment."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str]]] = []
        self.live_then: list[list[str]] = []
        self.service: SessionService | None = None

    async def __call__(self, supporter_id: str, session_ids: list[str]) -> None:
        """Record one call."""
        self.calls.append((supporter_id, session_ids))
        if self.service is not None:
            self.live_then.append([info.id for info in await self.service.list(supporter_id)])


async def make_supporter(catalog: Catalog, email: str = "reader@example.com") -> str:
    if not await catalog.store.redis.exists(names.tier("supporter")):
        tier = TierIn(id="supporter", name="Supporter", entitlements=["adblock_ok"], max_devices=3)
        await catalog.tiers.create(tier, actor="test")
    made = await catalog.supporters.create(SupporterIn(email=email, tier="supporter"), actor="test")
    return made.id


async def make_tokens(store: Store, clock: FakeClock) -> Tokens:
    signing = SigningKeys(vault(store), clock)
    await signing.ensure()
    return Tokens(signing, clock)


def make_service(catalog: Catalog, tokens: Tokens, clock: FakeClock, ended: EndedLog) -> SessionService:
    service = SessionService(catalog.store, tokens, catalog.supporters, clock, issuer=ISSUER, on_ended=ended)
    ended.service = service
    return service


@pytest.fixture
async def catalog(store_url: str, clock: FakeClock) -> AsyncIterator[Catalog]:
    store = await open_store(store_url)
    yield Catalog.over(store, clock)
    await store.close()


@pytest.fixture
async def tokens(catalog: Catalog, clock: FakeClock) -> Tokens:
    return await make_tokens(catalog.store, clock)


@pytest.fixture
def ended() -> EndedLog:
    return EndedLog()


@pytest.fixture
def sessions(catalog: Catalog, tokens: Tokens, clock: FakeClock, ended: EndedLog) -> SessionService:
    return make_service(catalog, tokens, clock, ended)


@pytest.fixture
async def supporter(catalog: Catalog) -> str:
    return await make_supporter(catalog)


async def sign_in(
    sessions: SessionService,
    supporter: str,
    *,
    max_devices: int = 3,
    device: str = DEVICE,
    end: list[str] | None = None,
) -> TokenPair:
    return await sessions.start(supporter_id=supporter, max_devices=max_devices, device=device, end_sessions=end or [])


def session_of(pair: TokenPair) -> str:
    return pair.refresh_token.split("_")[2]


async def refused(call: Awaitable[object], kind: type[P], slug: str) -> P:
    """The problem ``call`` raised, checked for its kind and slug."""
    with pytest.raises(kind) as caught:
        await call
    assert caught.value.slug == slug, caught.value.detail
    return caught.value


async def store_dump(store: Store) -> dict[str, str]:
    """Every key of the store with its value as text, whatever its type."""
    redis = store.redis
    dump: dict[str, str] = {}
    async for raw_name in redis.scan_iter(count=1000):
        name = raw_name.decode()
        kind = (await redis.type(name)).decode()
        if kind == "string":
            value: object = await redis.get(name)
        elif kind == "list":
            value = await redis.lrange(name, 0, -1)
        elif kind == "set":
            value = await redis.smembers(name)
        elif kind == "zset":
            value = await redis.zrange(name, 0, -1)
        elif kind == "hash":
            value = await redis.hgetall(name)
        else:
            value = await redis.xrange(name)
        dump[name] = repr(value)
    return dump


async def test_sign_in_gives_a_pair_whose_access_token_authenticates(
    sessions: SessionService, supporter: str, tokens: Tokens, clock: FakeClock
) -> None:
    """Sign-in gives a Bearer access token for the issuer living access_ttl, and a refresh token naming its session."""
    pair = await sign_in(sessions, supporter)
    assert pair.token_type == "Bearer"
    assert pair.expires_in == 900
    assert re.fullmatch(rf"sgr_{supporter}_[0-9a-f]{{16}}_[0-9a-f]{{64}}", pair.refresh_token)
    session_id = session_of(pair)
    assert await sessions.authenticate(pair.access_token) == Caller(supporter, session_id)
    claims = await tokens.verify(pair.access_token, typ=ACCESS_TYPE, audience=ISSUER, issuer=ISSUER)
    assert (claims["sub"], claims["sid"], claims["exp"] - claims["iat"]) == (supporter, session_id, 900)
    [info] = await sessions.list(supporter)
    assert info == SessionInfo(id=session_id, device=DEVICE, created_at=clock.now, last_used_at=clock.now)


async def test_refresh_rotates_the_token(sessions: SessionService, supporter: str, clock: FakeClock) -> None:
    """A refresh answers a new refresh token for the same session and marks it used; the new token refreshes in turn."""
    first = await sign_in(sessions, supporter)
    clock.advance(minutes=15)
    second = await sessions.refresh(first.refresh_token)
    assert second.refresh_token != first.refresh_token
    assert session_of(second) == session_of(first)
    assert (await sessions.authenticate(second.access_token)).session_id == session_of(first)
    [info] = await sessions.list(supporter)
    assert info.last_used_at == clock.now
    clock.advance(minutes=15)
    third = await sessions.refresh(second.refresh_token)
    assert session_of(third) == session_of(first)


async def test_refresh_tokens_are_stored_only_as_hashes(
    sessions: SessionService, supporter: str, catalog: Catalog
) -> None:
    """The store holds SHA-256 hashes of refresh-token secrets, never a secret itself."""
    first = await sign_in(sessions, supporter)
    second = await sessions.refresh(first.refresh_token, request_id="r1")
    third = await sessions.refresh(second.refresh_token)
    everything = "\n".join(f"{name} {value}" for name, value in (await store_dump(catalog.store)).items())
    for pair in (first, second, third):
        secret = pair.refresh_token.rsplit("_", 1)[1]
        assert secret not in everything
        assert pair.refresh_token not in everything
        assert hashlib.sha256(bytes.fromhex(secret)).hexdigest() in everything


async def test_every_session_key_is_under_the_supporter_hash_tag(
    sessions: SessionService, supporter: str, catalog: Catalog
) -> None:
    """Every key the sessions write shares the supporter's ``{sup:<id>}`` hash tag, so each change is cluster-safe."""
    first = await sign_in(sessions, supporter)
    second = await sessions.refresh(first.refresh_token)
    await sessions.refresh(second.refresh_token)
    names = [name for name in await store_dump(catalog.store) if "{dir}" not in name and "{keys}" not in name]
    assert names
    assert all(name.startswith(f"sg:{{sup:{supporter}}}:") for name in names), names


@EVERY_STORE
async def test_reusing_a_rotated_token_revokes_the_session_including_the_newest_token(
    sessions: SessionService, supporter: str, clock: FakeClock, ended: EndedLog
) -> None:
    """A rotated refresh token presented again ends the session: the newest token and its access token stop working."""
    first = await sign_in(sessions, supporter)
    second = await sessions.refresh(first.refresh_token)
    clock.advance(seconds=30)
    await refused(sessions.refresh(first.refresh_token), Unauthorized, "refresh-reused")
    await refused(sessions.refresh(second.refresh_token), Unauthorized, "invalid-refresh-token")
    await refused(sessions.authenticate(second.access_token), Unauthorized, "session-ended")
    assert await sessions.list(supporter) == []
    assert ended.calls == [(supporter, [session_of(first)])]


async def test_reusing_an_older_token_revokes_the_session(
    sessions: SessionService, supporter: str, clock: FakeClock
) -> None:
    """A token replaced two rotations ago is reuse even within the race window, and ends the session."""
    pairs = [await sign_in(sessions, supporter)]
    for _ in range(3):
        clock.advance(seconds=1)
        pairs.append(await sessions.refresh(pairs[-1].refresh_token))
    await refused(sessions.refresh(pairs[0].refresh_token), Unauthorized, "refresh-reused")
    await refused(sessions.refresh(pairs[-1].refresh_token), Unauthorized, "invalid-refresh-token")


@EVERY_STORE
async def test_of_fifty_parallel_refreshes_exactly_one_succeeds(
    sessions: SessionService, supporter: str, ended: EndedLog
) -> None:
    """Of fifty parallel refreshes of one token one wins, the rest get 409, and the winner's token works on."""
    pair = await sign_in(sessions, supporter)
    results = await asyncio.gather(*(sessions.refresh(pair.refresh_token) for _ in range(50)), return_exceptions=True)
    winners = [result for result in results if isinstance(result, TokenPair)]
    losers = [result for result in results if not isinstance(result, TokenPair)]
    assert len(winners) == 1
    assert all(isinstance(loser, Conflict) and loser.slug == "refresh-conflict" for loser in losers), losers
    assert [info.id for info in await sessions.list(supporter)] == [session_of(pair)]
    assert ended.calls == []
    await sessions.authenticate(winners[0].access_token)
    assert session_of(await sessions.refresh(winners[0].refresh_token)) == session_of(pair)


@EVERY_STORE
async def test_a_retry_with_the_same_request_id_gets_the_same_token(
    sessions: SessionService, supporter: str, clock: FakeClock, ended: EndedLog
) -> None:
    """A token resent with the request_id of the refresh that replaced it gets the same successor, revoking nothing."""
    first = await sign_in(sessions, supporter)
    second = await sessions.refresh(first.refresh_token, request_id="req-1")
    again = await sessions.refresh(first.refresh_token, request_id="req-1")
    assert again.refresh_token == second.refresh_token
    clock.advance(seconds=RACE.total_seconds() - 1)
    late = await sessions.refresh(first.refresh_token, request_id="req-1")
    assert late.refresh_token == second.refresh_token
    await sessions.authenticate(late.access_token)
    third = await sessions.refresh(second.refresh_token, request_id="req-2")
    assert session_of(third) == session_of(first)
    assert ended.calls == []


async def test_a_retry_after_the_race_window_is_reuse(
    sessions: SessionService, supporter: str, clock: FakeClock, ended: EndedLog
) -> None:
    """The same token and request_id once race_window has passed since the rotation are reuse: the session ends."""
    first = await sign_in(sessions, supporter)
    second = await sessions.refresh(first.refresh_token, request_id="req-1")
    clock.advance(seconds=RACE.total_seconds())
    reused = await refused(sessions.refresh(first.refresh_token, request_id="req-1"), Unauthorized, "refresh-reused")
    assert reused.status == 401
    assert await sessions.list(supporter) == []
    assert ended.calls == [(supporter, [session_of(first)])]
    await refused(sessions.refresh(second.refresh_token), Unauthorized, "invalid-refresh-token")


async def test_a_retry_after_its_successor_was_used_is_reuse(
    sessions: SessionService, supporter: str, clock: FakeClock
) -> None:
    """Once the successor has itself been refreshed, the same request_id no longer makes the old token a retry."""
    first = await sign_in(sessions, supporter)
    second = await sessions.refresh(first.refresh_token, request_id="req-1")
    clock.advance(seconds=1)
    third = await sessions.refresh(second.refresh_token, request_id="req-2")
    await refused(sessions.refresh(first.refresh_token, request_id="req-1"), Unauthorized, "refresh-reused")
    await refused(sessions.refresh(third.refresh_token), Unauthorized, "invalid-refresh-token")


@EVERY_STORE
async def test_a_concurrent_loser_gets_409_and_the_session_lives_on(
    sessions: SessionService, supporter: str, clock: FakeClock, ended: EndedLog
) -> None:
    """A replaced token presented within the race window with another or no request_id is a 409, not a revocation."""
    first = await sign_in(sessions, supporter)
    second = await sessions.refresh(first.refresh_token, request_id="req-1")
    clock.advance(seconds=5)
    conflict = await refused(sessions.refresh(first.refresh_token, request_id="req-2"), Conflict, "refresh-conflict")
    assert conflict.status == 409
    assert "another refresh of this token just succeeded" in conflict.detail.lower()
    await refused(sessions.refresh(first.refresh_token), Conflict, "refresh-conflict")
    assert ended.calls == []
    await sessions.authenticate(second.access_token)
    await sessions.refresh(second.refresh_token)


async def test_reuse_after_the_race_window_is_401_and_ends_the_session(
    sessions: SessionService, supporter: str, clock: FakeClock
) -> None:
    """A replaced token is a 409 until race_window has passed since its rotation, then a 401 that ends the session."""
    first = await sign_in(sessions, supporter)
    second = await sessions.refresh(first.refresh_token)
    clock.advance(seconds=RACE.total_seconds() - 1)
    await refused(sessions.refresh(first.refresh_token), Conflict, "refresh-conflict")
    clock.advance(seconds=1)
    reused = await refused(sessions.refresh(first.refresh_token), Unauthorized, "refresh-reused")
    assert reused.status == 401
    assert await sessions.list(supporter) == []
    await refused(sessions.refresh(second.refresh_token), Unauthorized, "invalid-refresh-token")


@EVERY_STORE
async def test_logout_racing_a_refresh_leaves_no_live_token(sessions: SessionService, supporter: str) -> None:
    """Whichever of a logout and a refresh of one token wins, after it neither that token nor a successor refreshes."""
    outcomes: set[type] = set()
    for round_ in range(20):
        pair = await sign_in(sessions, supporter, max_devices=100)
        # One side starts a few scheduler turns after the other, varied by round, so each gets to win.
        turns = 3 * (round_ // 2)
        refresh = after_turns(turns if round_ % 2 else 0, sessions.refresh(pair.refresh_token))
        logout = after_turns(0 if round_ % 2 else turns, sessions.logout(pair.refresh_token))
        refreshed, logged_out = await asyncio.gather(refresh, logout, return_exceptions=True)
        assert logged_out is None
        assert isinstance(refreshed, TokenPair | Unauthorized), refreshed
        assert await sessions.list(supporter) == []
        left = [pair.refresh_token]
        if isinstance(refreshed, TokenPair):
            left.insert(0, refreshed.refresh_token)
        outcomes.add(type(refreshed))
        for token in left:
            await refused(sessions.refresh(token), Unauthorized, "invalid-refresh-token")
    assert outcomes == {TokenPair, Unauthorized}, "the race should go each way in some rounds"


async def after_turns(turns: int, call: Awaitable[T]) -> T:
    for _ in range(turns):
        await asyncio.sleep(0)
    return await call


async def test_logout_ends_the_session_with_its_current_or_just_replaced_token(
    sessions: SessionService, supporter: str, ended: EndedLog
) -> None:
    """Logout with the current token, or with the token a refresh just replaced, ends the session and says so."""
    kept = await sign_in(sessions, supporter)
    first = await sign_in(sessions, supporter)
    await sessions.logout(first.refresh_token)
    old = await sign_in(sessions, supporter)
    new = await sessions.refresh(old.refresh_token)
    await sessions.logout(old.refresh_token)
    await refused(sessions.refresh(new.refresh_token), Unauthorized, "invalid-refresh-token")
    await refused(sessions.authenticate(new.access_token), Unauthorized, "session-ended")
    assert [info.id for info in await sessions.list(supporter)] == [session_of(kept)]
    assert ended.calls == [(supporter, [session_of(first)]), (supporter, [session_of(old)])]


async def test_logout_of_an_unknown_or_malformed_token_is_no_error(
    sessions: SessionService, supporter: str, ended: EndedLog
) -> None:
    """Logout with a malformed, unknown, wrong-secret or already logged-out token does nothing and raises nothing."""
    pair = await sign_in(sessions, supporter)
    forged = pair.refresh_token[:-64] + "0" * 64
    for token in ("", "nonsense", f"sgr_{supporter}_{'a' * 16}_{'b' * 64}", forged):
        await sessions.logout(token)
    assert len(await sessions.list(supporter)) == 1
    await sessions.logout(pair.refresh_token)
    await sessions.logout(pair.refresh_token)
    assert ended.calls == [(supporter, [session_of(pair)])]


@pytest.fixture
async def own_connections() -> AsyncIterator[list[Store]]:
    """Connections a test opens, closed after it."""
    opened: list[Store] = []
    yield opened
    for store in opened:
        await store.close()


async def test_a_rotated_token_is_still_rejected_after_the_store_and_service_restart(
    own_store: EmbeddedStore, own_connections: list[Store], clock: FakeClock
) -> None:
    """After the store restarts and the service is built anew, a replaced token is still known as replaced."""

    async def build() -> tuple[Catalog, SessionService]:
        store = Store(connect(own_store.url))
        own_connections.append(store)
        catalog = Catalog.over(store, clock)
        return catalog, make_service(catalog, await make_tokens(store, clock), clock, EndedLog())

    catalog, sessions = await build()
    supporter = await make_supporter(catalog)
    first = await sign_in(sessions, supporter)
    second = await sessions.refresh(first.refresh_token)
    await own_connections[0].close()
    own_store.stop()
    own_store.start()
    _, sessions = await build()
    await refused(sessions.refresh(first.refresh_token), Conflict, "refresh-conflict")
    clock.advance(seconds=RACE.total_seconds() + 1)
    await refused(sessions.refresh(first.refresh_token), Unauthorized, "refresh-reused")
    await refused(sessions.refresh(second.refresh_token), Unauthorized, "invalid-refresh-token")


async def test_the_device_limit_problem_lists_the_sessions(
    sessions: SessionService, supporter: str, clock: FakeClock
) -> None:
    """Signing in past max_devices is a 409 device-limit problem listing the live sessions; nothing is evicted."""
    laptop = await sign_in(sessions, supporter, max_devices=2, device="Firefox on Linux")
    clock.advance(minutes=1)
    phone = await sign_in(sessions, supporter, max_devices=2, device="Chrome on Android")
    clock.advance(minutes=1)
    await sessions.refresh(laptop.refresh_token)
    problem = await refused(sign_in(sessions, supporter, max_devices=2), DeviceLimit, "device-limit")
    body = problem.body()
    assert body["status"] == 409
    assert body["max_devices"] == 2
    assert body["sessions"] == [
        {
            "id": session_of(laptop),
            "device": "Firefox on Linux",
            "created_at": "2026-11-24T12:00:00Z",
            "last_used_at": "2026-11-24T12:02:00Z",
        },
        {
            "id": session_of(phone),
            "device": "Chrome on Android",
            "created_at": "2026-11-24T12:01:00Z",
            "last_used_at": "2026-11-24T12:01:00Z",
        },
    ]
    assert problem.sessions == await sessions.list(supporter)
    assert "sgr_" not in json.dumps(body)
    assert len(await sessions.list(supporter)) == 2


async def test_end_sessions_lets_the_sign_in_proceed(
    sessions: SessionService, supporter: str, clock: FakeClock, ended: EndedLog
) -> None:
    """Naming sessions in end_sessions ends them as part of the sign-in, which then succeeds."""
    old = await sign_in(sessions, supporter, max_devices=2)
    clock.advance(minutes=1)
    kept = await sign_in(sessions, supporter, max_devices=2)
    clock.advance(minutes=1)
    new = await sign_in(sessions, supporter, max_devices=2, end=[session_of(old)])
    assert [info.id for info in await sessions.list(supporter)] == [session_of(kept), session_of(new)]
    assert ended.calls == [(supporter, [session_of(old)])]
    assert ended.live_then == [[session_of(kept), session_of(new)]]
    await refused(sessions.refresh(old.refresh_token), Unauthorized, "invalid-refresh-token")
    await refused(sessions.authenticate(old.access_token), Unauthorized, "session-ended")


async def test_end_sessions_naming_a_session_not_of_this_supporter_is_a_bad_request(
    sessions: SessionService, supporter: str, catalog: Catalog, ended: EndedLog
) -> None:
    """An id in end_sessions that is not one of this supporter's sessions is a 400 naming end_sessions; nothing ends."""
    other = await make_supporter(catalog, "other@example.com")
    theirs = await sign_in(sessions, other)
    mine = await sign_in(sessions, supporter, max_devices=1)
    for unknown in ("0123456789abcdef", session_of(theirs)):
        problem = await refused(
            sign_in(sessions, supporter, max_devices=1, end=[session_of(mine), unknown]), BadRequest, "invalid-request"
        )
        assert problem.detail.startswith("end_sessions:")
    assert [info.id for info in await sessions.list(supporter)] == [session_of(mine)]
    assert len(await sessions.list(other)) == 1
    assert ended.calls == []


@EVERY_STORE
async def test_parallel_sign_ins_never_pass_the_device_limit(sessions: SessionService, supporter: str) -> None:
    """Twelve sign-ins at once with a limit of three: three succeed, nine get the device-limit problem."""
    results = await asyncio.gather(
        *(sign_in(sessions, supporter, max_devices=3) for _ in range(12)), return_exceptions=True
    )
    assert sum(isinstance(result, TokenPair) for result in results) == 3
    assert sum(isinstance(result, DeviceLimit) for result in results) == 9
    assert len(await sessions.list(supporter)) == 3


async def test_idle_sessions_expire(
    sessions: SessionService, supporter: str, clock: FakeClock, catalog: Catalog
) -> None:
    """A session unused for idle_ttl no longer refreshes, is not listed, and does not count against the limit."""
    idle = await sign_in(sessions, supporter, max_devices=1)
    clock.advance(seconds=IDLE.total_seconds() - 1)
    await refused(sign_in(sessions, supporter, max_devices=1), DeviceLimit, "device-limit")
    clock.advance(seconds=1)
    await refused(sessions.refresh(idle.refresh_token), Unauthorized, "invalid-refresh-token")
    assert await sessions.list(supporter) == []
    await refused(sessions.end(supporter, session_of(idle)), NotFound, "not-found")
    fresh = await sign_in(sessions, supporter, max_devices=1)
    assert [info.id for info in await sessions.list(supporter)] == [session_of(fresh)]
    assert not await catalog.store.redis.exists(names.session(supporter, session_of(idle)))


async def test_refreshing_keeps_a_session_alive_and_renews_its_store_expiry(
    sessions: SessionService, supporter: str, clock: FakeClock, catalog: Catalog
) -> None:
    """Each refresh restarts the idle period, and resets the store's expiry of the session keys to a little over it."""
    pair = await sign_in(sessions, supporter)
    redis = catalog.store.redis
    record = names.session(supporter, session_of(pair))
    idle_ms = IDLE.total_seconds() * 1000
    rotated = names.session_rotated(supporter, session_of(pair))
    for round_ in range(3):
        clock.advance(days=20)
        for key in (record, names.sessions(supporter), rotated):
            await redis.pexpire(key, 60_000)
        pair = await sessions.refresh(pair.refresh_token)
        # The first refresh replaces the sign-in token, which is then the previous one: no older ones yet.
        for key in (record, names.sessions(supporter), rotated) if round_ else (record, names.sessions(supporter)):
            ttl = await redis.pttl(key)
            assert idle_ms < ttl <= idle_ms + 2 * 3600 * 1000, key
    await sessions.authenticate(pair.access_token)


@pytest.mark.parametrize("how", ["revoked", "expired", "forgotten"])
async def test_refresh_after_support_ended_ends_the_session(
    how: str, *, sessions: SessionService, supporter: str, catalog: Catalog, clock: FakeClock, ended: EndedLog
) -> None:
    """Once the supporter is revoked, expired or forgotten, a refresh ends the session with a 401 support-ended."""
    pair = await sign_in(sessions, supporter)
    if how == "revoked":
        await catalog.supporters.revoke(supporter, actor="test")
    elif how == "expired":
        await catalog.supporters.update(supporter, SupporterPatch(expires_at=clock.now + timedelta(hours=1)), actor="t")
        clock.advance(hours=2)
    else:
        await catalog.supporters.forget(supporter, actor="test")
    problem = await refused(sessions.refresh(pair.refresh_token), Unauthorized, "support-ended")
    assert "support has ended" in problem.detail
    assert await sessions.list(supporter) == []
    assert ended.calls == [(supporter, [session_of(pair)])]
    await refused(sessions.refresh(pair.refresh_token), Unauthorized, "invalid-refresh-token")


async def test_unknown_malformed_and_ended_tokens_get_one_answer(
    sessions: SessionService, supporter: str, clock: FakeClock
) -> None:
    """Malformed, unissued, wrong-secret and ended-session tokens get the same 401; a wrong secret ends nothing."""
    live = await sign_in(sessions, supporter)
    logged_out = await sign_in(sessions, supporter)
    await sessions.logout(logged_out.refresh_token)
    revoked = await sign_in(sessions, supporter)
    await sessions.refresh(revoked.refresh_token)
    clock.advance(seconds=RACE.total_seconds() + 1)
    await refused(sessions.refresh(revoked.refresh_token), Unauthorized, "refresh-reused")
    presented = [
        "",
        "nonsense",
        "sgr_" + "x" * 5000,
        live.refresh_token.upper(),
        f"sgr_{supporter}_{'a' * 16}_{'b' * 64}",
        f"sgr_nobody_{session_of(live)}_{'b' * 64}",
        live.refresh_token[:-64] + "0" * 64,
        logged_out.refresh_token,
        revoked.refresh_token,
    ]
    bodies = []
    for token in presented:
        problem = await refused(sessions.refresh(token), Unauthorized, "invalid-refresh-token")
        assert problem.status == 401
        bodies.append(problem.body())
        if token:
            assert token not in json.dumps(problem.body())
    assert all(body == bodies[0] for body in bodies)
    await sessions.refresh(live.refresh_token)


async def test_no_token_appears_in_logs_or_problems(
    sessions: SessionService, supporter: str, clock: FakeClock, catalog: Catalog, caplog: pytest.LogCaptureFixture
) -> None:
    """Through reuse, conflict, invalid tokens and ended support, no token or secret is logged or put in a problem."""
    caplog.set_level(logging.DEBUG)
    issued: list[TokenPair] = []
    problems: list[Problem] = []

    async def attempt(call: Awaitable[TokenPair]) -> None:
        try:
            issued.append(await call)
        except Problem as problem:
            problems.append(problem)

    first = await sign_in(sessions, supporter)
    issued.append(first)
    await attempt(sessions.refresh(first.refresh_token, request_id="req-1"))
    await attempt(sessions.refresh(first.refresh_token, request_id="req-2"))
    clock.advance(seconds=RACE.total_seconds() + 1)
    await attempt(sessions.refresh(first.refresh_token))
    await attempt(sessions.refresh(issued[-1].refresh_token))
    other = await sign_in(sessions, supporter)
    issued.append(other)
    await catalog.supporters.revoke(supporter, actor="test")
    await attempt(sessions.refresh(other.refresh_token))
    assert {problem.slug for problem in problems} == {
        "refresh-conflict",
        "refresh-reused",
        "invalid-refresh-token",
        "support-ended",
    }
    assert "refresh token was presented again" in caplog.text
    written = caplog.text + "".join(json.dumps(problem.body()) + str(problem) for problem in problems)
    for pair in issued:
        assert pair.refresh_token.rsplit("_", 1)[1] not in written
        assert pair.access_token not in written


async def test_on_ended_is_told_which_sessions_ended_once_stored(
    sessions: SessionService, supporter: str, clock: FakeClock, ended: EndedLog
) -> None:
    """Ending one or all sessions answers their ids oldest first, and on_ended hears of each once the store has it."""
    pairs = []
    for _ in range(3):
        pairs.append(await sign_in(sessions, supporter))
        clock.advance(minutes=1)
    first, second, third = (session_of(pair) for pair in pairs)
    await sessions.end(supporter, first)
    await refused(sessions.end(supporter, first), NotFound, "not-found")
    assert await sessions.end_all(supporter) == [second, third]
    assert await sessions.end_all(supporter) == []
    assert ended.calls == [(supporter, [first]), (supporter, [second, third])]
    assert ended.live_then == [[second, third], []]
    for pair in pairs:
        await refused(sessions.refresh(pair.refresh_token), Unauthorized, "invalid-refresh-token")


async def test_authenticate_rejects_an_access_token_whose_session_ended(
    sessions: SessionService, supporter: str, clock: FakeClock
) -> None:
    """A valid access token stops authenticating once its session ends; a bad or expired one never does."""
    pair = await sign_in(sessions, supporter)
    other = await sign_in(sessions, supporter)
    assert (await sessions.authenticate(pair.access_token)).supporter_id == supporter
    await sessions.end(supporter, session_of(pair))
    await refused(sessions.authenticate(pair.access_token), Unauthorized, "session-ended")
    for bad in ("", "not.a.token", other.refresh_token, other.access_token[:-4] + "AAAA"):
        await refused(sessions.authenticate(bad), Unauthorized, "invalid-access-token")
    clock.advance(minutes=16)
    await refused(sessions.authenticate(other.access_token), Unauthorized, "invalid-access-token")


async def test_bad_inputs_are_bad_requests(sessions: SessionService, supporter: str) -> None:
    """An empty or overlong device label or request_id is a 400 naming the field."""
    for device in ("", "x" * 101):
        problem = await refused(sign_in(sessions, supporter, device=device), BadRequest, "invalid-request")
        assert problem.detail.startswith("device:")
    pair = await sign_in(sessions, supporter, device="x" * 100)
    for request_id in ("", "r" * 129):
        problem = await refused(
            sessions.refresh(pair.refresh_token, request_id=request_id), BadRequest, "invalid-request"
        )
        assert problem.detail.startswith("request_id:")
    await sessions.refresh(pair.refresh_token, request_id="r" * 128)
