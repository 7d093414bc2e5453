"""@supportgate/verify, the JavaScript pass verifier: its `node --test` suite, on passes the service minted.

The vectors are written here by the service's own code (a real store, the real signing keys, the
real pass issuer) and checked here with the Python :class:`PassVerifier` first, so the node tests
hold the JavaScript verifier to the very answers the Python one gives.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, get_args

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from supportgate.errors import InvalidToken, TokenFailure
from supportgate.services import Services
from supportgate.settings import Settings
from supportgate.store import EmbeddedStore
from supportgate.store.server import find_server_binary
from supportgate.tokens import jose
from supportgate.tokens.jose import PASS_TYPE
from supportgate_verify import PassVerifier
from tests.conftest import FakeClock
from tests.gate_helpers import make_world, pass_for
from tests.node_deps import ensure_node_modules
from tests.processes import run_captured
from tests.tokens_helpers import forge

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "packages" / "verify-js"
LINKED = ROOT / "node_modules" / "@supportgate" / "verify"
SITE = "news"


@pytest.fixture(scope="module")
def store_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStore]:
    """One Valkey for this module: signing a pass does not depend on the store's backend."""
    with EmbeddedStore(tmp_path_factory.mktemp("valkey"), binary=find_server_binary()) as server:
        yield server


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tampered(token: str) -> str:
    """``token`` with one bit of its signature's first byte flipped."""
    head, body, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[0] ^= 1
    return f"{head}.{body}.{base64.urlsafe_b64encode(bytes(raw)).rstrip(b'=').decode()}"


def claims_of(token: str) -> dict[str, Any]:
    """A token's payload, unverified."""
    body = token.split(".")[1]
    loaded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return loaded


async def write_vectors(services: Services, settings: Settings, clock: FakeClock, path: Path) -> dict[str, Any]:
    """Mint passes of every kind with the service's code; write them with the answers Python's verifier gives."""
    world = await make_world(services)
    now = clock()
    issued = await pass_for(services, world.supporter_id)
    claims = claims_of(issued)
    exp = claims["exp"]
    newsletter = await pass_for(services, world.newsletter_reader_id)
    access = (await services.sessions.start(supporter_id=world.supporter_id, max_devices=5, device="t")).access_token
    kid, active = await services.signing_keys.signing_key()
    stranger = Ed25519PrivateKey.generate()
    stranger_kid = jose.thumbprint(stranger.public_key())

    async def signed(**changes: Any) -> str:
        return await services.tokens.sign({**claims, **changes}, PASS_TYPE)

    without = {name: {k: v for k, v in claims.items() if k != name} for name in ("jti", "tier")}
    cases: list[tuple[str, str, float, str]] = [
        ("a pass the service issued", issued, now.timestamp(), "keys"),
        ("a pass of a tier without adblock_ok", newsletter, now.timestamp(), "keys"),
        ("a pass 29 s past its exp, within the leeway", issued, exp + 29, "keys"),
        ("a pass 30 s past its exp", issued, exp + 30, "keys"),
        ("a pass checked 31 s before it was issued", issued, now.timestamp() - 31, "keys"),
        ("a pass for another site", await pass_for(services, world.supporter_id, "blog"), now.timestamp(), "keys"),
        ("an access token", access, now.timestamp(), "keys"),
        ("a pass with one bit of its signature flipped", tampered(issued), now.timestamp(), "keys"),
        (
            "a pass of a key the gate never published",
            jose.sign(claims, typ=PASS_TYPE, key=stranger, kid=stranger_kid),
            now.timestamp(),
            "keys",
        ),
        ("alg HS256", forge({"alg": "HS256", "typ": PASS_TYPE, "kid": kid}, claims), now.timestamp(), "keys"),
        ("alg none", forge({"alg": "none", "typ": PASS_TYPE, "kid": kid}, claims), now.timestamp(), "keys"),
        ("no typ", forge({"alg": "EdDSA", "kid": kid}, claims), now.timestamp(), "keys"),
        ("not a token", "not-a-token", now.timestamp(), "keys"),
        ("a header that is not JSON", "bm90IGpzb24." + issued.split(".", 1)[1], now.timestamp(), "keys"),
        (
            "a kid that is not a thumbprint",
            forge({"alg": "EdDSA", "typ": PASS_TYPE, "kid": "../../keys"}, claims),
            now.timestamp(),
            "keys",
        ),
        ("a token longer than 4096 characters", issued + "A" * 4096, now.timestamp(), "keys"),
        # The service's signer refuses to sign without jti: the active key signs it here.
        ("no jti", jose.sign(without["jti"], typ=PASS_TYPE, key=active, kid=kid), now.timestamp(), "keys"),
        ("no tier", await services.tokens.sign(without["tier"], PASS_TYPE), now.timestamp(), "keys"),
        ("aud null", await signed(aud=None), now.timestamp(), "keys"),
        ("aud empty", await signed(aud=""), now.timestamp(), "keys"),
        ("aud a list naming the site", await signed(aud=[SITE]), now.timestamp(), "keys"),
        ("another issuer", await signed(iss="https://gate.example.evil"), now.timestamp(), "keys"),
        ("an empty sub", await signed(sub=""), now.timestamp(), "keys"),
        ("a jti that is a number", await signed(jti=7), now.timestamp(), "keys"),
        ("ent not a list", await signed(ent="adblock_ok"), now.timestamp(), "keys"),
        ("tier null", await signed(tier=None), now.timestamp(), "keys"),
        ("exp a string", await signed(exp=str(exp)), now.timestamp(), "keys"),
        ("exp true", await signed(exp=True), now.timestamp(), "keys"),
        ("exp past the year 9999", await signed(exp=10**13), now.timestamp(), "keys"),
        ("nbf in the future", await signed(nbf=int(now.timestamp()) + 31), now.timestamp(), "keys"),
        ("iat in the future, within the leeway", await signed(iat=int(now.timestamp()) + 30), now.timestamp(), "keys"),
        ("a good pass while the JWKS cannot be fetched", issued, now.timestamp(), "unreachable"),
    ]
    jwks = await services.signing_keys.jwks()
    unreachable = f"http://127.0.0.1:{closed_port()}/.well-known/jwks.json"
    vectors = []
    for name, token, at, source in cases:
        moment = datetime.fromtimestamp(at, now.tzinfo)
        verifier = (
            PassVerifier(keys=jwks, site=SITE, issuer=settings.public_url, clock=lambda m=moment: m)
            if source == "keys"
            else PassVerifier(unreachable, site=SITE, issuer=settings.public_url, clock=lambda m=moment: m, timeout=2)
        )
        try:
            found = verifier.verify(token)
        except InvalidToken as exc:
            expect: dict[str, Any] = {"reason": exc.reason}
        else:
            expect = {
                "pass": {
                    "sub": found.sub,
                    "tier": found.tier,
                    "entitlements": list(found.entitlements),
                    "session": found.session,
                    "expiresAt": found.expires_at.isoformat().replace("+00:00", ".000Z"),
                }
            }
        vectors.append({"name": name, "token": token, "now": at, "source": source, "expect": expect})
    rotated_kid = jose.thumbprint(stranger.public_key())
    document = {
        "site": SITE,
        "issuer": settings.public_url,
        "jwks": jwks,
        "unreachable": unreachable,
        # A key published after the first fetch (a rotation) and a pass it signed.
        "rotation": {
            "jwks": {"keys": [*jwks["keys"], jose.public_jwk(stranger.public_key())]},
            "token": jose.sign(claims, typ=PASS_TYPE, key=stranger, kid=rotated_kid),
            "now": now.timestamp(),
        },
        "vectors": vectors,
    }
    path.write_text(json.dumps(document, indent=1))
    return document


def node_modules() -> str:
    """The node binary, with the package's dependency installed (`npm ci` at the root, as CI does)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (`apt-get install nodejs`; .ci/run installs it): no verify-js test")
    reason = ensure_node_modules()
    if reason is not None:
        pytest.skip(f"{reason}: no verify-js test")
    return node


async def test_node_suite_agrees_with_the_service(
    services: Services, settings: Settings, clock: FakeClock, tmp_path: Path
) -> None:
    """`node --test packages/verify-js/test` passes on passes the service minted, one of each refusal among them."""
    node = node_modules()
    vectors_file = tmp_path / "vectors.json"
    document = await write_vectors(services, settings, clock, vectors_file)
    reasons = {v["expect"].get("reason") for v in document["vectors"]}
    assert reasons - {None} == set(get_args(TokenFailure)) - {"revoked"}, "one vector of each refusal"
    assert sum("pass" in v["expect"] for v in document["vectors"]) >= 3
    result = run_captured(
        [node, "--test", "packages/verify-js/test"],
        cwd=ROOT,
        env={**os.environ, "SUPPORTGATE_VERIFY_VECTORS": str(vectors_file)},
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    for counter in ("fail", "skipped", "todo", "cancelled"):
        assert re.search(rf"^# {counter} 0$", result.stdout, re.MULTILINE), result.stdout[-3000:]
    passed = re.search(r"^# pass (\d+)$", result.stdout, re.MULTILINE)
    assert passed is not None
    assert int(passed.group(1)) >= len(document["vectors"]), result.stdout[-3000:]
