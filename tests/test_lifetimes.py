"""Every token lifetime is written once, in supportgate.tokens.lifetimes, and every place that must agree follows it."""

from __future__ import annotations

from datetime import timedelta

import jwt
import msgspec
import pytest
import redis

from supportgate.catalog.schemas import TierIn
from supportgate.errors import Conflict
from supportgate.services import Services
from supportgate.tokens.lifetimes import (
    ACCESS_LIFETIME,
    JWKS_MAX_AGE,
    KEY_SET_MAX_AGE,
    LONGEST_PASS,
    PASS_LIFETIME,
    PUBLICATION_DELAY,
    SHORTEST_PASS,
)
from supportgate_verify.verifier import _max_age
from tests.conftest import FakeClock
from tests.gate_helpers import Client, make_world


def seconds(lifetime: timedelta) -> int:
    return int(lifetime.total_seconds())


async def test_the_jwks_is_cacheable_for_jwks_max_age(client: Client) -> None:
    """The JWKS is served with max-age JWKS_MAX_AGE, and a verifier without a max-age assumes the same."""
    answer = await client.get("/.well-known/jwks.json")
    assert answer.headers["cache-control"] == f"public, max-age={seconds(JWKS_MAX_AGE)}"
    assert _max_age("") == JWKS_MAX_AGE


async def test_a_new_key_signs_only_after_every_cache_can_hold_it(services: Services, clock: FakeClock) -> None:
    """Rotation waits JWKS_MAX_AGE plus KEY_SET_MAX_AGE after the next key was published, to the second."""
    assert PUBLICATION_DELAY == JWKS_MAX_AGE + KEY_SET_MAX_AGE
    await services.signing_keys.ensure()
    clock.advance(seconds=seconds(PUBLICATION_DELAY) - 1)
    with pytest.raises(Conflict):
        await services.key_rotation.rotate(force=False, actor="tests")
    clock.advance(seconds=1)
    rotated = await services.key_rotation.rotate(force=False, actor="tests")
    assert [key.state for key in rotated.keys][:2] == ["active", "next"]


async def test_an_access_token_lives_access_lifetime(services: Services) -> None:
    """A session's access token says, and carries, ACCESS_LIFETIME."""
    world = await make_world(services)
    pair = await services.sessions.start(supporter_id=world.supporter_id, max_devices=5, device="tests")
    claims = jwt.decode(pair.access_token, options={"verify_signature": False})
    assert pair.expires_in == seconds(ACCESS_LIFETIME)
    assert claims["exp"] - claims["iat"] == seconds(ACCESS_LIFETIME)


def test_a_tier_pass_lifetime_is_bounded_by_the_pass_lifetimes() -> None:
    """A tier's pass_ttl_seconds defaults to PASS_LIFETIME and takes SHORTEST_PASS to LONGEST_PASS, no more."""
    tier = {"id": "t", "name": "T", "entitlements": [], "max_devices": 1}
    assert msgspec.convert(tier, TierIn).pass_ttl_seconds == seconds(PASS_LIFETIME)
    for accepted in (seconds(SHORTEST_PASS), seconds(LONGEST_PASS)):
        assert msgspec.convert({**tier, "pass_ttl_seconds": accepted}, TierIn).pass_ttl_seconds == accepted
    for refused in (seconds(SHORTEST_PASS) - 1, seconds(LONGEST_PASS) + 1):
        with pytest.raises(msgspec.ValidationError):
            msgspec.convert({**tier, "pass_ttl_seconds": refused}, TierIn)


async def test_the_schema_states_the_pass_lifetime_bounds(client: Client) -> None:
    """The OpenAPI schema documents the same bounds for pass_ttl_seconds."""
    schema = (await client.get("/schema/openapi.json")).json()
    field = schema["components"]["schemas"]["TierIn"]["properties"]["pass_ttl_seconds"]
    assert (field["minimum"], field["maximum"]) == (seconds(SHORTEST_PASS), seconds(LONGEST_PASS))


async def test_a_revocation_outlives_the_longest_pass(services: Services, store_url: str) -> None:
    """When a session ends, its passes' cutoff is kept at least as long as LONGEST_PASS."""
    world = await make_world(services)
    pair = await services.sessions.start(supporter_id=world.supporter_id, max_devices=5, device="tests")
    await services.sessions.logout(pair.refresh_token)
    with redis.Redis.from_url(store_url) as store:
        cutoffs = list(store.scan_iter(match="sg:{site:*}:cutoff:*"))
        assert cutoffs
        assert all(store.ttl(key) >= seconds(LONGEST_PASS) for key in cutoffs)
