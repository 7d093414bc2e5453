"""DPoP (RFC 9449) over HTTP: sessions bound to a device key, and every proof the service refuses, changing nothing."""

from __future__ import annotations

import asyncio
import base64
import builtins
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import redis
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.hashes import SHA256
from litestar import Litestar
from litestar.testing import AsyncTestClient

from supportgate.http.contract import DPOP_OPERATIONS
from supportgate.settings import Settings
from supportgate.store import names
from supportgate.tokens.lifetimes import DPOP_PROOF_LIFETIME
from tests.conftest import FakeClock
from tests.readers_helpers import emailed_code

Client = AsyncTestClient[Litestar]
READER = "reader@example.com"
PROBLEM_TYPE = "urn:supportgate:problem:invalid-dpop-proof"
CHALLENGE = 'DPoP algs="ES256", error="invalid_dpop_proof"'


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64json(value: object) -> str:
    return b64url(json.dumps(value).encode())


@dataclass
class DeviceKey:
    """A device's P-256 key, making DPoP proofs as the extension does."""

    key: ec.EllipticCurvePrivateKey

    @classmethod
    def new(cls) -> DeviceKey:
        """A fresh key."""
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @property
    def jwk(self) -> dict[str, str]:
        """The public JWK, as a proof's header carries it."""
        numbers = self.key.public_key().public_numbers()
        return {
            "kty": "EC",
            "crv": "P-256",
            "x": b64url(numbers.x.to_bytes(32, "big")),
            "y": b64url(numbers.y.to_bytes(32, "big")),
        }

    @property
    def jkt(self) -> str:
        """The RFC 7638 thumbprint, computed here independently of the service."""
        jwk = self.jwk
        canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"))
        return b64url(hashlib.sha256(canonical.encode()).digest())

    def sign(self, signing_input: str) -> str:
        """The ES256 signature of ``signing_input``, raw r || s in base64url."""
        r, s = decode_dss_signature(self.key.sign(signing_input.encode(), ec.ECDSA(SHA256())))
        return b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    def proof(
        self,
        method: str,
        url: str,
        *,
        iat: int,
        access_token: str | None = None,
        header: dict[str, Any] | None = None,
        claims: dict[str, Any] | None = None,
    ) -> str:
        """A proof for ``method url`` issued at ``iat``; ``header`` and ``claims`` override members (None drops one)."""
        head: dict[str, Any] = {"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk, **(header or {})}
        body: dict[str, Any] = {"jti": secrets.token_urlsafe(24), "htm": method, "htu": url, "iat": iat}
        if access_token is not None:
            body["ath"] = b64url(hashlib.sha256(access_token.encode("ascii")).digest())
        body.update(claims or {})
        kept_head = {k: v for k, v in head.items() if v is not None}
        kept_body = {k: v for k, v in body.items() if v is not None}
        signing_input = f"{b64json(kept_head)}.{b64json(kept_body)}"
        return f"{signing_input}.{self.sign(signing_input)}"


@dataclass
class Reader:
    """What the tests need to make proofs for the service: its public URL, the app's clock, the device key."""

    client: Client
    supporter_id: str
    public_url: str
    clock: FakeClock
    key: DeviceKey

    @property
    def now(self) -> int:
        """The app's clock, in seconds: a proof's ``iat``."""
        return int(self.clock.now.timestamp())

    def proof(self, method: str, path: str, *, access_token: str | None = None, key: DeviceKey | None = None) -> str:
        """A good proof for ``method`` on the public URL's ``path`` (by ``key``, if given, instead of the reader's)."""
        return (key or self.key).proof(method, self.public_url + path, iat=self.now, access_token=access_token)

    async def refresh(self, refresh_token: str, proof: str | None) -> Any:
        """POST /v1/auth/refresh with ``proof`` as the DPoP header, if any."""
        headers = {} if proof is None else {"DPoP": proof}
        return await self.client.post("/v1/auth/refresh", json={"refresh_token": refresh_token}, headers=headers)

    async def me(self, access_token: str, *, proof: str | None, scheme: str = "DPoP") -> Any:
        """GET /v1/me with ``access_token`` under ``scheme`` and ``proof`` as the DPoP header, if any."""
        headers = {"Authorization": f"{scheme} {access_token}"}
        if proof is not None:
            headers["DPoP"] = proof
        return await self.client.get("/v1/me", headers=headers)


@pytest.fixture
def outbox(settings: Settings) -> Path:
    return settings.data_dir / "outbox"


@pytest.fixture
def admin_key(admin: Client) -> str:
    """The admin key the admin client sends."""
    return str(admin.headers["Authorization"]).removeprefix("Bearer ")


@pytest.fixture
async def supporter(admin: Client, admin_key: str) -> str:
    """A tier allowing three devices, READER as an active supporter on it, and a site `news`."""
    tier = {"id": "supporter", "name": "Supporter", "entitlements": ["adblock_ok"], "max_devices": 3}
    assert (await admin.post("/v1/admin/tiers", json=tier)).status_code == 201
    made = await admin.post("/v1/admin/supporters", json={"email": READER, "tier": "supporter"})
    assert made.status_code == 201
    site = {"id": "news", "name": "News", "origins": ["https://news.example"]}
    assert (await admin.post("/v1/admin/sites", json=site)).status_code == 201
    # The admin key is not a reader's credential: the reader's requests carry their own.
    assert admin.headers.pop("Authorization") == f"Bearer {admin_key}"
    supporter_id: str = made.json()["id"]
    return supporter_id


@pytest.fixture
def reader(client: Client, settings: Settings, clock: FakeClock, supporter: str) -> Reader:
    return Reader(client, supporter, settings.public_url, clock, DeviceKey.new())


async def activation_code(client: Client, supporter_id: str, admin_key: str) -> str:
    """A new activation code for ``supporter_id``, made with the admin key."""
    made = await client.post(
        f"/v1/admin/supporters/{supporter_id}/activation-codes", headers={"Authorization": f"Bearer {admin_key}"}
    )
    assert made.status_code == 201, made.text
    code: str = made.json()["code"]
    return code


async def activate(reader: Reader, supporter: str, admin_key: str, *, dpop: bool = True) -> dict[str, Any]:
    """Sign READER in with an activation code, with a DPoP proof unless ``dpop`` is false."""
    code = await activation_code(reader.client, supporter, admin_key)
    headers = {"DPoP": reader.proof("POST", "/v1/auth/activate")} if dpop else {}
    answer = await reader.client.post("/v1/auth/activate", json={"code": code, "device": "Laptop"}, headers=headers)
    assert answer.status_code == 200, answer.text
    signed_in: dict[str, Any] = answer.json()
    return signed_in


@pytest.fixture
async def bound(reader: Reader, supporter: str, admin_key: str) -> dict[str, Any]:
    """READER signed in on a device whose key binds the session."""
    return await activate(reader, supporter, admin_key)


def claims_of(access_token: str) -> dict[str, Any]:
    found: dict[str, Any] = jwt.decode(access_token, options={"verify_signature": False})
    return found


def assert_refused(answer: Any, *words: str) -> None:
    """A 401 invalid-dpop-proof problem with the DPoP challenge, whose detail names ``words``."""
    assert answer.status_code == 401, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["www-authenticate"] == CHALLENGE
    problem = answer.json()
    assert problem["type"] == PROBLEM_TYPE
    assert problem["type"].endswith("invalid-dpop-proof")
    for word in words:
        assert word in problem["detail"], problem["detail"]


# Happy paths


async def test_an_emailed_code_with_a_proof_starts_a_bound_session(reader: Reader, outbox: Path) -> None:
    """Verifying a code with a DPoP header answers token_type DPoP and an access token whose cnf.jkt is the key's."""
    assert (await reader.client.post("/v1/auth/code/request", json={"email": READER})).status_code == 202
    code = await emailed_code(outbox, READER)
    answer = await reader.client.post(
        "/v1/auth/code/verify",
        json={"email": READER, "code": code, "device": "Laptop"},
        headers={"DPoP": reader.proof("POST", "/v1/auth/code/verify")},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["token_type"] == "DPoP"
    assert claims_of(answer.json()["access_token"])["cnf"] == {"jkt": reader.key.jkt}


async def test_an_activation_code_with_a_proof_starts_a_bound_session(
    reader: Reader, supporter: str, admin_key: str
) -> None:
    """Activating with a DPoP header answers token_type DPoP and binds the access token to the key."""
    signed_in = await activate(reader, supporter, admin_key)
    assert signed_in["token_type"] == "DPoP"
    assert claims_of(signed_in["access_token"])["cnf"] == {"jkt": reader.key.jkt}


async def test_a_bound_session_refreshes_with_a_proof_and_stays_bound(reader: Reader, bound: dict[str, Any]) -> None:
    """A refresh with a proof by the session's key answers a new DPoP pair bound to the same key."""
    answer = await reader.refresh(bound["refresh_token"], reader.proof("POST", "/v1/auth/refresh"))
    assert answer.status_code == 200, answer.text
    pair = answer.json()
    assert pair["token_type"] == "DPoP"
    assert pair["refresh_token"] != bound["refresh_token"]
    assert claims_of(pair["access_token"])["cnf"] == {"jkt": reader.key.jkt}
    again = await reader.refresh(pair["refresh_token"], reader.proof("POST", "/v1/auth/refresh"))
    assert again.status_code == 200, again.text


async def test_me_passes_and_sessions_take_a_dpop_token_with_an_ath_proof(
    reader: Reader, bound: dict[str, Any]
) -> None:
    """/v1/me, /v1/passes and ending a session answer a bound token sent as DPoP with a proof carrying its ath."""
    token = bound["access_token"]
    me = await reader.me(token, proof=reader.proof("GET", "/v1/me", access_token=token))
    assert me.status_code == 200, me.text
    assert [s["current"] for s in me.json()["sessions"]] == [True]
    issued = await reader.client.post(
        "/v1/passes",
        json={"site": "news"},
        headers={"Authorization": f"DPoP {token}", "DPoP": reader.proof("POST", "/v1/passes", access_token=token)},
    )
    assert issued.status_code == 200, issued.text
    session_id = me.json()["sessions"][0]["id"]
    path = f"/v1/me/sessions/{session_id}"
    ended = await reader.client.delete(
        path, headers={"Authorization": f"DPoP {token}", "DPoP": reader.proof("DELETE", path, access_token=token)}
    )
    assert ended.status_code == 204, ended.text
    gone = await reader.refresh(bound["refresh_token"], reader.proof("POST", "/v1/auth/refresh"))
    assert gone.status_code == 401
    assert gone.json()["type"].endswith("invalid-refresh-token")


async def test_a_bound_session_logs_out_with_a_proof(reader: Reader, bound: dict[str, Any]) -> None:
    """Logging out with a proof by the session's key ends it: its refresh token stops working."""
    out = await reader.client.post(
        "/v1/auth/logout",
        json={"refresh_token": bound["refresh_token"]},
        headers={"DPoP": reader.proof("POST", "/v1/auth/logout")},
    )
    assert out.status_code == 204, out.text
    after = await reader.refresh(bound["refresh_token"], reader.proof("POST", "/v1/auth/refresh"))
    assert after.json()["type"].endswith("invalid-refresh-token")


async def test_a_sign_in_without_a_proof_stays_a_bearer_session(reader: Reader, supporter: str, admin_key: str) -> None:
    """Without a DPoP header: token_type Bearer, no cnf, and Bearer access and refresh work as before."""
    signed_in = await activate(reader, supporter, admin_key, dpop=False)
    assert signed_in["token_type"] == "Bearer"
    assert "cnf" not in claims_of(signed_in["access_token"])
    me = await reader.me(signed_in["access_token"], proof=None, scheme="Bearer")
    assert me.status_code == 200, me.text
    refreshed = await reader.refresh(signed_in["refresh_token"], None)
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["token_type"] == "Bearer"
    as_dpop = await reader.me(
        refreshed.json()["access_token"],
        proof=reader.proof("GET", "/v1/me", access_token=refreshed.json()["access_token"]),
    )
    assert_refused(as_dpop, "not bound")


async def test_proofs_at_the_edges_of_the_time_window_are_taken(reader: Reader, bound: dict[str, Any]) -> None:
    """A proof issued 60 s ago, and one 5 s ahead, are within the window; htu's scheme case and query do not count."""
    old = reader.key.proof("POST", reader.public_url + "/v1/auth/refresh", iat=reader.now - 60)
    first = await reader.refresh(bound["refresh_token"], old)
    assert first.status_code == 200, first.text
    url = reader.public_url.replace("http://", "HTTP://", 1) + "/v1/auth/refresh"
    ahead = reader.key.proof("POST", url + "?ignored=1#and-this", iat=reader.now + 5)
    second = await reader.refresh(first.json()["refresh_token"], ahead)
    assert second.status_code == 200, second.text


# Refusals of a bound session's refresh: each leaves the refresh token working


def _other_key(reader: Reader) -> str:
    return reader.proof("POST", "/v1/auth/refresh", key=DeviceKey.new())


def _claims(**claims: Any) -> Callable[[Reader], str]:
    def make(reader: Reader) -> str:
        return reader.key.proof("POST", reader.public_url + "/v1/auth/refresh", iat=reader.now, claims=claims)

    return make


def _header(**header: Any) -> Callable[[Reader], str]:
    def make(reader: Reader) -> str:
        return reader.key.proof("POST", reader.public_url + "/v1/auth/refresh", iat=reader.now, header=header)

    return make


def _iat(delta: int) -> Callable[[Reader], str]:
    def make(reader: Reader) -> str:
        return reader.key.proof("POST", reader.public_url + "/v1/auth/refresh", iat=reader.now + delta)

    return make


def _resigned(header: dict[str, Any], signature: str | None = None) -> Callable[[Reader], str]:
    """A proof with its header replaced, signed by the reader's key unless ``signature`` is given."""

    def make(reader: Reader) -> str:
        good = reader.proof("POST", "/v1/auth/refresh")
        payload = good.split(".")[1]
        head = b64json({"typ": "dpop+jwt", "alg": "ES256", "jwk": reader.key.jwk, **header})
        return f"{head}.{payload}.{signature if signature is not None else reader.key.sign(f'{head}.{payload}')}"

    return make


def _bad_signature(reader: Reader) -> str:
    head, payload, signature = reader.proof("POST", "/v1/auth/refresh").split(".")
    flipped = bytearray(base64.urlsafe_b64decode(signature + "=="))
    flipped[10] ^= 1
    return f"{head}.{payload}.{b64url(bytes(flipped))}"


def _private_jwk(reader: Reader) -> str:
    d = reader.key.key.private_numbers().private_value.to_bytes(32, "big")
    return _header(jwk={**reader.key.jwk, "d": b64url(d)})(reader)


def _hs256(reader: Reader) -> str:
    head = b64json({"typ": "dpop+jwt", "alg": "HS256", "jwk": reader.key.jwk})
    payload = reader.proof("POST", "/v1/auth/refresh").split(".")[1]
    mac = hmac.new(b"secret", f"{head}.{payload}".encode(), hashlib.sha256).digest()
    return f"{head}.{payload}.{b64url(mac)}"


def _eddsa(reader: Reader) -> str:
    key = Ed25519PrivateKey.generate()
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url(key.public_key().public_bytes_raw())}
    head = b64json({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": jwk})
    payload = reader.proof("POST", "/v1/auth/refresh").split(".")[1]
    return f"{head}.{payload}.{b64url(key.sign(f'{head}.{payload}'.encode()))}"


REFUSED_REFRESH_PROOFS: dict[str, tuple[Callable[[Reader], str | None], str]] = {
    "no proof": (lambda _: None, "send a DPoP proof"),
    "another key": (_other_key, "another key"),
    "another method": (_claims(htm="GET"), "another method"),
    "another URL path": (_claims(htu="http://127.0.0.1:8000/v1/auth/logout"), "another URL"),
    "another URL host": (_claims(htu="https://gate.example/v1/auth/refresh"), "another URL"),
    "iat 61 s old": (_iat(-61), "too old"),
    "iat 6 s ahead": (_iat(6), "in the future"),
    "iat not an integer": (_claims(iat="now"), "iat must be an integer"),
    "iat a float": (_claims(iat=1.5), "iat must be an integer"),
    "iat past any float": (_claims(iat=10**400), "iat must be an integer"),
    "no jti": (_claims(jti=None), "jti"),
    "short jti": (_claims(jti="abc"), "jti"),
    "typ jwt": (_header(typ="JWT"), "typ"),
    "no typ": (_header(typ=None), "typ"),
    "alg none": (_resigned({"alg": "none"}, signature=""), "alg"),
    "alg HS256": (_hs256, "alg"),
    "alg EdDSA": (_eddsa, "alg"),
    "private key in jwk": (_private_jwk, "private key"),
    "RSA jwk": (_header(jwk={"kty": "RSA", "n": "AQAB", "e": "AQAB"}), "P-256"),
    "no jwk": (_header(jwk=None), "jwk"),
    "bad signature": (_bad_signature, "signature"),
    "not three parts": (lambda reader: ".".join(reader.proof("POST", "/v1/auth/refresh").split(".")[:2]), "three"),
    "four parts": (lambda reader: reader.proof("POST", "/v1/auth/refresh") + ".e30", "three"),
    "bad base64": (lambda reader: "*" + reader.proof("POST", "/v1/auth/refresh")[1:], "base64url"),
    "bad JSON": (
        lambda reader: b64url(b"{not json") + "." + reader.proof("POST", "/v1/auth/refresh").split(".", 1)[1],
        "JSON",
    ),
    "JSON not an object": (
        lambda reader: b64json([1]) + "." + reader.proof("POST", "/v1/auth/refresh").split(".", 1)[1],
        "JSON",
    ),
}


@pytest.mark.parametrize("case", list(REFUSED_REFRESH_PROOFS))
async def test_a_bound_refresh_with_a_bad_proof_changes_nothing(
    reader: Reader, bound: dict[str, Any], case: str
) -> None:
    """A bound session's refresh with this proof is refused 401 invalid-dpop-proof; the token still refreshes after."""
    make, words = REFUSED_REFRESH_PROOFS[case]
    refused = await reader.refresh(bound["refresh_token"], make(reader))
    assert_refused(refused, words)
    # Not used up, not rotated, not counted as reuse: the same token refreshes with a good proof.
    good = await reader.refresh(bound["refresh_token"], reader.proof("POST", "/v1/auth/refresh"))
    assert good.status_code == 200, good.text
    assert good.json()["token_type"] == "DPoP"


async def test_a_replayed_refresh_proof_is_refused(reader: Reader, bound: dict[str, Any]) -> None:
    """A proof that served one refresh is refused for the next (same jti); a fresh proof still refreshes."""
    proof = reader.proof("POST", "/v1/auth/refresh")
    first = await reader.refresh(bound["refresh_token"], proof)
    assert first.status_code == 200, first.text
    replayed = await reader.refresh(first.json()["refresh_token"], proof)
    assert_refused(replayed, "used before")
    good = await reader.refresh(first.json()["refresh_token"], reader.proof("POST", "/v1/auth/refresh"))
    assert good.status_code == 200, good.text


@pytest.mark.parametrize("joined", [False, True], ids=["two header lines", "joined by a comma"])
async def test_two_dpop_headers_are_refused(reader: Reader, bound: dict[str, Any], joined: bool) -> None:
    """A request with two DPoP headers is refused, even when both are good proofs; the token still refreshes."""
    proofs = [reader.proof("POST", "/v1/auth/refresh"), reader.proof("POST", "/v1/auth/refresh")]
    request = reader.client.build_request("POST", "/v1/auth/refresh", json={"refresh_token": bound["refresh_token"]})
    lines = [(k, v) for k, v in request.headers.multi_items() if k.lower() != "authorization"]
    dpop = [("DPoP", ", ".join(proofs))] if joined else [("DPoP", proof) for proof in proofs]
    request.headers = httpx.Headers(lines + dpop)
    assert len(request.headers.raw) == len(lines) + len(dpop)
    assert_refused(await reader.client.send(request), "2 DPoP headers")
    good = await reader.refresh(bound["refresh_token"], reader.proof("POST", "/v1/auth/refresh"))
    assert good.status_code == 200, good.text


async def test_a_copied_old_refresh_token_without_the_key_does_not_end_the_session(
    reader: Reader, bound: dict[str, Any], clock: FakeClock
) -> None:
    """A replaced refresh token presented without a proof is refused as DPoP, not taken as reuse: the session lives."""
    first = await reader.refresh(bound["refresh_token"], reader.proof("POST", "/v1/auth/refresh"))
    assert first.status_code == 200
    clock.advance(seconds=30)  # past the race window: with the key this would be reuse
    refused = await reader.refresh(bound["refresh_token"], None)
    assert_refused(refused, "bound to a key")
    good = await reader.refresh(first.json()["refresh_token"], reader.proof("POST", "/v1/auth/refresh"))
    assert good.status_code == 200, good.text


async def test_a_bound_logout_without_a_proof_ends_nothing(reader: Reader, bound: dict[str, Any]) -> None:
    """Logging a bound session out without a proof, or with another key's, is refused and the session lives on."""
    for headers in ({}, {"DPoP": reader.proof("POST", "/v1/auth/logout", key=DeviceKey.new())}):
        out = await reader.client.post(
            "/v1/auth/logout", json={"refresh_token": bound["refresh_token"]}, headers=headers
        )
        assert_refused(out)
    good = await reader.refresh(bound["refresh_token"], reader.proof("POST", "/v1/auth/refresh"))
    assert good.status_code == 200, good.text


# Refusals at sign-in: the code stays usable


@pytest.mark.parametrize("case", ["malformed", "another URL", "iat 61 s old"])
async def test_a_sign_in_with_a_bad_proof_is_refused_and_keeps_the_code(
    reader: Reader, supporter: str, admin_key: str, case: str
) -> None:
    """A sign-in whose DPoP header is present but bad is refused, not taken as bearer; the code works after."""
    code = await activation_code(reader.client, supporter, admin_key)
    url = reader.public_url + "/v1/auth/activate"
    bad = {
        "malformed": "not-a-proof",
        "another URL": reader.key.proof("POST", "http://testserver.local/v1/auth/activate", iat=reader.now),
        "iat 61 s old": reader.key.proof("POST", url, iat=reader.now - 61),
    }[case]
    body = {"code": code, "device": "Laptop"}
    refused = await reader.client.post("/v1/auth/activate", json=body, headers={"DPoP": bad})
    assert_refused(refused)
    good = await reader.client.post(
        "/v1/auth/activate", json=body, headers={"DPoP": reader.proof("POST", "/v1/auth/activate")}
    )
    assert good.status_code == 200, good.text
    assert good.json()["token_type"] == "DPoP"


async def test_a_replayed_sign_in_proof_is_refused_and_keeps_the_code(
    reader: Reader, supporter: str, admin_key: str
) -> None:
    """A sign-in with a proof that already signed in is refused; the second code still works with a fresh proof."""
    proof = reader.proof("POST", "/v1/auth/activate")
    first_code = await activation_code(reader.client, supporter, admin_key)
    first = await reader.client.post(
        "/v1/auth/activate", json={"code": first_code, "device": "Laptop"}, headers={"DPoP": proof}
    )
    assert first.status_code == 200, first.text
    second_code = await activation_code(reader.client, supporter, admin_key)
    body = {"code": second_code, "device": "Phone"}
    replayed = await reader.client.post("/v1/auth/activate", json=body, headers={"DPoP": proof})
    assert_refused(replayed, "used before")
    good = await reader.client.post(
        "/v1/auth/activate", json=body, headers={"DPoP": reader.proof("POST", "/v1/auth/activate")}
    )
    assert good.status_code == 200, good.text


# Refusals of a bound access token


def _me_proof(**claims: Any) -> Callable[[Reader, str], str]:
    def make(reader: Reader, token: str) -> str:
        return reader.key.proof("GET", reader.public_url + "/v1/me", iat=reader.now, access_token=token, claims=claims)

    return make


REFUSED_ACCESS: dict[str, tuple[str, Callable[[Reader, str], str | None], str]] = {
    "bearer presentation": ("Bearer", _me_proof(), "send it as 'Authorization: DPoP"),
    "bearer presentation without a proof": ("Bearer", lambda _reader, _token: None, "send it as 'Authorization: DPoP"),
    "no proof": ("DPoP", lambda _reader, _token: None, "send a DPoP proof"),
    "missing ath": ("DPoP", _me_proof(ath=None), "no ath"),
    "wrong ath": ("DPoP", _me_proof(ath=b64url(hashlib.sha256(b"another token").digest())), "ath is not the hash"),
    "another key": (
        "DPoP",
        lambda reader, token: reader.proof("GET", "/v1/me", access_token=token, key=DeviceKey.new()),
        "another key",
    ),
    "another method": ("DPoP", _me_proof(htm="POST"), "another method"),
    "another URL": ("DPoP", _me_proof(htu="http://127.0.0.1:8000/v1/passes"), "another URL"),
}


@pytest.mark.parametrize("case", list(REFUSED_ACCESS))
async def test_a_bound_access_token_is_refused_without_a_fitting_proof(
    reader: Reader, bound: dict[str, Any], case: str
) -> None:
    """/v1/me refuses a bound token presented this way with 401 invalid-dpop-proof; presented right, it works after."""
    scheme, make, words = REFUSED_ACCESS[case]
    token = bound["access_token"]
    refused = await reader.me(token, proof=make(reader, token), scheme=scheme)
    assert_refused(refused, words)
    good = await reader.me(token, proof=reader.proof("GET", "/v1/me", access_token=token))
    assert good.status_code == 200, good.text


async def test_a_replayed_access_proof_is_refused(reader: Reader, bound: dict[str, Any]) -> None:
    """A proof that served one /v1/me is refused the second time."""
    token = bound["access_token"]
    proof = reader.proof("GET", "/v1/me", access_token=token)
    assert (await reader.me(token, proof=proof)).status_code == 200
    assert_refused(await reader.me(token, proof=proof), "used before")


async def test_passes_and_session_ends_refuse_a_bearer_presentation_of_a_bound_token(
    reader: Reader, bound: dict[str, Any]
) -> None:
    """/v1/passes and ending a session refuse a bound token sent as Bearer, and the session is not ended."""
    token = bound["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert_refused(await reader.client.post("/v1/passes", json={"site": "news"}, headers=bearer))
    me = await reader.me(token, proof=reader.proof("GET", "/v1/me", access_token=token))
    session_id = me.json()["sessions"][0]["id"]
    assert_refused(await reader.client.delete(f"/v1/me/sessions/{session_id}", headers=bearer))
    good = await reader.refresh(bound["refresh_token"], reader.proof("POST", "/v1/auth/refresh"))
    assert good.status_code == 200, good.text


async def test_the_document_describes_dpop(client: Client) -> None:
    """The OpenAPI document names the DPoP header, the DPoP scheme, both token types and the 401 of each DPoP route."""
    document = (await client.get("/schema/openapi.json")).json()
    assert document["components"]["securitySchemes"]["DPoPAccessToken"]["scheme"] == "DPoP"
    for method, path in DPOP_OPERATIONS:
        operation = document["paths"][path][method.lower()]
        headers = [p for p in operation["parameters"] if p["in"] == "header" and p["name"] == "DPoP"]
        assert len(headers) == 1, (method, path)
        assert "invalid-dpop-proof" in headers[0]["description"]
        assert "WWW-Authenticate" in operation["responses"]["401"]["headers"], (method, path)
    assert {"DPoPAccessToken": []} in document["paths"]["/v1/me"]["get"]["security"]
    schemas = document["components"]["schemas"]
    for name in ("SignIn", "TokenPair"):
        assert schemas[name]["properties"]["token_type"]["enum"] == ["Bearer", "DPoP"]


def _worked_example() -> list[str]:
    """The Python blocks of docs/readers-api.md's DPoP worked example, in order."""
    text = (Path(__file__).parent.parent / "docs" / "readers-api.md").read_text(encoding="utf-8")
    section = text.split("### A worked example", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


class _BlockingHttp:
    """What the example calls ``httpx``: its ``get`` and ``post``, sent through the async test client from a thread."""

    def __init__(self, client: Client, loop: asyncio.AbstractEventLoop) -> None:
        self._client = client
        self._loop = loop

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return asyncio.run_coroutine_threadsafe(self._client.get(url, **kwargs), self._loop).result(timeout=30)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return asyncio.run_coroutine_threadsafe(self._client.post(url, **kwargs), self._loop).result(timeout=30)


async def test_the_documented_example_works(reader: Reader, outbox: Path) -> None:
    """The DPoP example in docs/readers-api.md, run as written, signs in bound, reads /v1/me and refreshes."""
    maker, calls = _worked_example()
    reader.clock.now = datetime.now(UTC)  # the example signs with the real time
    assert (await reader.client.post("/v1/auth/code/request", json={"email": READER})).status_code == 202
    code = await emailed_code(outbox, READER)
    http = _BlockingHttp(reader.client, asyncio.get_running_loop())

    def importing(name: str, *args: Any, **kwargs: Any) -> Any:
        return http if name == "httpx" else __import__(name, *args, **kwargs)

    scope: dict[str, Any] = {"__builtins__": {**vars(builtins), "__import__": importing}}
    await asyncio.to_thread(exec, maker, scope)
    assert scope["GATE"] == reader.public_url
    await asyncio.to_thread(exec, calls.replace('"123456"', f'"{code}"'), scope)
    assert scope["me"]["email"] == READER
    assert scope["me"]["sessions"][0]["current"] is True
    assert claims_of(scope["pair"]["access_token"])["cnf"] == {"jkt": claims_of(scope["access_token"])["cnf"]["jkt"]}


async def test_a_token_that_is_not_ascii_is_refused_not_an_error(reader: Reader, bound: dict[str, Any]) -> None:
    """An access token with a latin-1 character, whatever ath its proof claims, is refused with 401, not a 500."""
    token = bound["access_token"] + "\xf6"
    proof = reader.proof("GET", "/v1/me", access_token=bound["access_token"])
    answer = await reader.client.get(
        "/v1/me", headers={"Authorization": f"DPoP {token}".encode("latin-1"), "DPoP": proof}
    )
    assert_refused(answer, "ath is not the hash")


async def test_the_store_keeps_the_key_thumbprint_and_each_jti_for_the_proof_lifetime(
    reader: Reader, bound: dict[str, Any], store_url: str
) -> None:
    """The session record holds jkt; a used proof's jti is kept under the supporter's hash tag for 65 s."""
    session_id = claims_of(bound["access_token"])["sid"]
    with redis.Redis.from_url(store_url) as store:
        record = json.loads(store.get(names.session(reader.supporter_id, session_id)))
        assert record["jkt"] == reader.key.jkt
        spent = store.keys(f"sg:{{sup:{reader.supporter_id}}}:dpop:*")
        assert len(spent) == 1  # the sign-in's proof
        assert 60 <= store.ttl(spent[0]) <= DPOP_PROOF_LIFETIME.total_seconds() == 65
