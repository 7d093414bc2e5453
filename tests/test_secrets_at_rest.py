"""Secrets at rest: sealed in the store under a master key held outside it, owner-only files on disk."""

from __future__ import annotations

import asyncio
import base64
import binascii
import os
import re
import secrets
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from pathlib import Path

import msgspec
import pytest
import redis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_der_private_key,
    load_pem_private_key,
)
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from supportgate.app import create_app
from supportgate.errors import InvalidToken, SealingError, SettingsError
from supportgate.mail import Mail, OutboxMailer
from supportgate.settings import MASTER_KEY_FILE, Settings
from supportgate.store import EmbeddedStore, Store, connect, names
from supportgate.tokens import jose
from supportgate.tokens.claims import pass_claims
from supportgate.tokens.jose import PASS_TYPE
from supportgate.tokens.jwt import Tokens
from supportgate.tokens.sealing import MasterKey, sealed_by
from supportgate.tokens.signing_keys import SigningKeys
from supportgate.tokens.stored_secrets import CodeSecret, PseudonymSecret
from supportgate.tokens.vault import Vault
from tests.conftest import FakeClock, server_binary
from tests.tokens_helpers import ISSUER, SITE


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    opened = Store(connect(store_url))
    yield opened
    await opened.close()


def new_key() -> MasterKey:
    return MasterKey(secrets.token_bytes(32))


async def fill(vault: Vault, clock: FakeClock) -> tuple[SigningKeys, bytes, bytes]:
    """Every secret the service keeps, made as the service makes them, with a rotation behind it."""
    keys = SigningKeys(vault, clock)
    await keys.ensure()
    await keys.rotate(timedelta(hours=1), force=True)
    return keys, await PseudonymSecret(vault).get(), await CodeSecret(vault).get()


async def a_pass(keys: SigningKeys, clock: FakeClock) -> str:
    claims = pass_claims(
        supporter_id="sup-1",
        site_id=SITE,
        tier="supporter",
        entitlements=["adblock_ok"],
        session_id="ses-1",
        issuer=ISSUER,
        pseudonym_secret=b"p" * 32,
        now=clock(),
    )
    return await Tokens(keys, clock).sign(claims, PASS_TYPE)


def everything_in(url: str) -> list[bytes]:
    """Every key name and every value of every key in the store, read with a plain client."""
    found: list[bytes] = []
    with redis.Redis.from_url(url) as client:
        readers: dict[bytes, Callable[[bytes], list[bytes]]] = {
            b"string": lambda key: [client.get(key)],
            b"hash": lambda key: [part for item in client.hgetall(key).items() for part in item],
            b"list": lambda key: client.lrange(key, 0, -1),
            b"set": lambda key: list(client.smembers(key)),
            b"zset": lambda key: client.zrange(key, 0, -1),
            b"stream": lambda key: [
                part for _, fields in client.xrange(key) for item in fields.items() for part in item
            ],
        }
        for key in client.scan_iter(count=1000):
            found += [key, *readers[client.type(key)](key)]
    return found


def decodings(blob: bytes) -> Iterator[bytes]:
    """``blob`` and what its base64 or base64url runs decode to: where key bytes could hide."""
    yield blob
    for run in re.findall(rb"[A-Za-z0-9+/_-]{16,}={0,2}", blob):
        for alphabet in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                yield alphabet(run + b"=" * (-len(run) % 4))
            except (binascii.Error, ValueError):
                continue


async def test_the_store_holds_no_usable_key_material(store: Store, store_url: str, clock: FakeClock) -> None:
    """Read raw, the store holds no PEM, private key or HMAC secret, and nothing in it forges a pass."""
    vault = Vault(store, new_key())
    keys, pseudonym_secret, code_secret = await fill(vault, clock)
    real = await a_pass(keys, clock)
    published = {key.public_bytes(Encoding.Raw, PublicFormat.Raw) for key in (await keys.verification_keys()).values()}
    active_kid, _ = await keys.signing_key()
    verification = await keys.verification_keys()

    def verifies(token: str) -> bool:
        try:
            jose.verify(token, verification, typ=PASS_TYPE, audience=SITE, issuer=ISSUER, now=clock())
        except InvalidToken:
            return False
        return True

    assert verifies(real)
    claims = jose.verify(real, verification, typ=PASS_TYPE, audience=SITE, issuer=ISSUER, now=clock())
    tried = 0
    found = everything_in(store_url)
    assert {key.decode() for key in found if key.startswith(b"sg:{keys}")} == set(names.sealed())
    for blob in found:
        assert b"PRIVATE KEY" not in blob
        assert b"-----BEGIN" not in blob
        for candidate in decodings(blob):
            assert pseudonym_secret not in candidate
            assert code_secret not in candidate
            for loader in (load_pem_private_key, load_der_private_key):
                with pytest.raises((ValueError, TypeError)):
                    loader(candidate, password=None)
            for start in range(len(candidate) - 31):
                key = Ed25519PrivateKey.from_private_bytes(candidate[start : start + 32])
                assert key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw) not in published
                forged = jose.sign(claims, typ=PASS_TYPE, key=key, kid=active_kid)
                assert not verifies(forged)
                tried += 1
    assert tried > 1000


async def test_the_service_signs_and_verifies_after_a_restart(settings: Settings, clock: FakeClock) -> None:
    """With the same master key (the key file), a restarted service opens its keys: old passes verify, new ones sign."""
    assert settings.master_key is None
    first = Store(connect(settings.redis_url or ""))
    keys, pseudonym_secret, _ = await fill(Vault(first, MasterKey(settings.load_master_key())), clock)
    before = await a_pass(keys, clock)
    await first.close()

    again = Store(connect(settings.redis_url or ""))
    vault = Vault(again, MasterKey(settings.load_master_key()))
    await vault.check()
    restarted = SigningKeys(vault, clock)
    tokens = Tokens(restarted, clock)
    assert (await tokens.verify(before, typ=PASS_TYPE, audience=SITE, issuer=ISSUER))["aud"] == SITE
    after = await a_pass(restarted, clock)
    assert (await tokens.verify(after, typ=PASS_TYPE, audience=SITE, issuer=ISSUER))["aud"] == SITE
    assert await PseudonymSecret(vault).get() == pseudonym_secret
    await again.close()


async def test_the_app_starts_only_with_the_master_key_that_sealed_the_store(
    settings: Settings, clock: FakeClock
) -> None:
    """An app whose master key does not open the store's secrets fails at start, naming both key ids."""
    async with AsyncTestClient(create_app(settings, clock=clock)) as client:
        assert (await client.get("/.well-known/jwks.json")).status_code == 200
    right = MasterKey(settings.load_master_key())
    other = secrets.token_bytes(32)
    app = create_app(Settings(redis_url=settings.redis_url, data_dir=settings.data_dir, master_key=other), clock=clock)
    with pytest.raises(BaseExceptionGroup) as refused:
        async with AsyncTestClient(app):
            pass
    named = f"under master key {right.id}, not under the master key configured \\({MasterKey(other).id}\\)"
    assert refused.group_contains(SealingError, match=named)


async def test_rewrap_moves_every_secret_to_the_new_key(store: Store, clock: FakeClock) -> None:
    """A re-wrap seals every secret under the new key, which opens them; the old one no longer does; twice is once."""
    old, new = new_key(), new_key()
    keys, pseudonym_secret, code_secret = await fill(Vault(store, old), clock)
    token = await a_pass(keys, clock)

    assert sorted(await Vault(store, old).rewrap(new)) == sorted(names.sealed())
    assert await Vault(store, old).rewrap(new) == []

    with pytest.raises(SealingError, match="sealed under master key"):
        await Vault(store, old).check()
    vault = Vault(store, new)
    await vault.check()
    assert await PseudonymSecret(vault).get() == pseudonym_secret
    assert await CodeSecret(vault).get() == code_secret
    reopened = Tokens(SigningKeys(vault, clock), clock)
    assert (await reopened.verify(token, typ=PASS_TYPE, audience=SITE, issuer=ISSUER))["aud"] == SITE


async def test_rewrap_with_a_key_that_opens_nothing_writes_nothing(store: Store, clock: FakeClock) -> None:
    """A re-wrap from a master key that did not seal the store fails and leaves every value as it was."""
    await fill(Vault(store, new_key()), clock)
    before = {name: await store.redis.get(name) for name in names.sealed()}
    with pytest.raises(SealingError):
        await Vault(store, new_key()).rewrap(new_key())
    assert {name: await store.redis.get(name) for name in names.sealed()} == before


async def test_plaintext_from_before_is_sealed_on_first_read(store: Store, clock: FakeClock) -> None:
    """Secrets a version before sealing stored in the clear are kept, and sealed in the store at the first check."""
    private = Ed25519PrivateKey.generate()
    upcoming = Ed25519PrivateKey.generate()
    listed = [
        {
            "kid": jose.thumbprint(key.public_key()),
            "state": state,
            "private_pem": key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode(),
            "published_at": clock.now.isoformat(),
        }
        for key, state in ((private, "active"), (upcoming, "next"))
    ]
    old_pseudonym, old_code = secrets.token_bytes(32), secrets.token_bytes(32)
    await store.redis.set(names.signing_keys(), msgspec.json.encode(listed))
    await store.redis.set(names.pseudonym_secret(), old_pseudonym)
    await store.redis.set(names.code_secret(), old_code)

    vault = Vault(store, new_key())
    await vault.check()

    for name in names.sealed():
        assert sealed_by(await store.redis.get(name)) == vault.master_key_id
    keys = SigningKeys(vault, clock)
    assert [state.kid for state in await keys.ensure()] == [item["kid"] for item in listed]
    assert (await keys.signing_key())[0] == jose.thumbprint(private.public_key())
    assert await PseudonymSecret(vault).get() == old_pseudonym
    assert await CodeSecret(vault).get() == old_code


def on_disk(server: EmbeddedStore) -> bytes:
    """Every byte of the store's append-only files once the rewrite it was asked for is done."""
    with redis.Redis.from_url(server.url) as client:
        # Waits on the server's own background work, not on time: it ends within a few commands.
        for _ in range(100_000):
            info = client.info("persistence")
            if info["aof_rewrites"] and not (info["aof_rewrite_in_progress"] or info["aof_rewrite_scheduled"]):
                break
        else:
            pytest.fail("the store never finished rewriting its AOF")
    return b"".join(path.read_bytes() for path in sorted((server.dir / "appendonlydir").iterdir()))


async def test_sealing_in_place_rewrites_the_plaintext_off_the_disk(own_store: EmbeddedStore) -> None:
    """After the first check seals secrets from before, the store's AOF holds them no longer in the clear."""
    store = Store(connect(own_store.url))
    old_secret = secrets.token_bytes(32)

    async def plant(one: Redis) -> None:
        await one.set(names.pseudonym_secret(), old_secret)

    await store.durably(plant, names.pseudonym_secret())
    assert old_secret in b"".join(p.read_bytes() for p in (own_store.dir / "appendonlydir").iterdir())

    await Vault(store, new_key()).check()

    assert old_secret not in on_disk(own_store)
    await store.close()


async def test_a_sealed_secret_moved_or_altered_does_not_open(store: Store) -> None:
    """A sealed value copied to another key, or with one byte changed, is refused rather than used."""
    vault = Vault(store, new_key())
    await PseudonymSecret(vault).get()
    sealed = await store.redis.get(names.pseudonym_secret())
    await store.redis.set(names.code_secret(), sealed)
    with pytest.raises(SealingError, match="altered, or moved"):
        await CodeSecret(vault).get()
    flipped = sealed[:-3] + (b"A" if sealed[-3:-2] != b"A" else b"B") + sealed[-2:]
    await store.redis.set(names.pseudonym_secret(), flipped)
    with pytest.raises(SealingError, match="altered, or moved"):
        await vault.check()


def test_a_master_key_never_shows_its_material() -> None:
    """Neither the settings nor the master key print the key: only its id."""
    material = secrets.token_bytes(32)
    settings = Settings(master_key=material)
    shown = repr(settings) + repr(MasterKey(material))
    for form in (material.hex(), base64.urlsafe_b64encode(material).decode().rstrip("="), repr(material)):
        assert form not in shown
    assert MasterKey(material).id in shown


@pytest.mark.parametrize("value", ["too-short", "A" * 43 + "+", base64.urlsafe_b64encode(b"x" * 31).decode()])
def test_a_bad_master_key_setting_names_the_variable_not_the_value(value: str) -> None:
    """SUPPORTGATE_MASTER_KEY that is not 32 bytes of base64url is refused naming the variable, never echoing it."""
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({"SUPPORTGATE_MASTER_KEY": value})
    assert "SUPPORTGATE_MASTER_KEY" in str(refused.value)
    assert value not in str(refused.value)


def test_the_master_key_setting_is_32_bytes_of_base64url() -> None:
    """A base64url master key, padded or not, is read as its 32 bytes."""
    material = secrets.token_bytes(32)
    text = base64.urlsafe_b64encode(material).decode()
    assert Settings.from_env({"SUPPORTGATE_MASTER_KEY": text}).master_key == material
    assert Settings.from_env({"SUPPORTGATE_MASTER_KEY": text.rstrip("=")}).master_key == material


def test_the_key_file_is_made_once_owner_only_and_kept(tmp_path: Path) -> None:
    """Without SUPPORTGATE_MASTER_KEY, the first start makes a 0600 key file in a 0700 data dir; later ones read it."""
    settings = Settings(data_dir=tmp_path / "data")
    first = settings.load_master_key()
    key_file = tmp_path / "data" / MASTER_KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
    assert settings.load_master_key() == first
    assert [path.name for path in (tmp_path / "data").iterdir()] == [MASTER_KEY_FILE]


def test_a_key_file_open_to_others_or_garbled_is_refused(tmp_path: Path) -> None:
    """A key file others may read, or one that holds no key, stops the start with a message naming the file."""
    settings = Settings(data_dir=tmp_path / "data")
    settings.load_master_key()
    key_file = tmp_path / "data" / MASTER_KEY_FILE
    key_file.chmod(0o644)
    with pytest.raises(SettingsError, match="chmod 600"):
        settings.load_master_key()
    key_file.chmod(0o600)
    key_file.write_text("not a key\n")
    with pytest.raises(SettingsError, match="does not hold"):
        settings.load_master_key()


def modes_under(directory: Path) -> dict[str, tuple[str, int]]:
    """The kind (dir, file, socket) and permission bits of ``directory`` and everything in it, by relative path."""
    found: dict[str, tuple[str, int]] = {}
    for path in [directory, *directory.rglob("*")]:
        status = path.lstat()
        kind = "dir" if stat.S_ISDIR(status.st_mode) else "socket" if stat.S_ISSOCK(status.st_mode) else "file"
        found[str(path.relative_to(directory))] = (kind, stat.S_IMODE(status.st_mode))
    return found


async def test_the_data_dir_and_everything_in_it_are_owner_only(tmp_path: Path) -> None:
    """The data dir, the store's dir, its AOF and files, the outbox and the key file: 0700 dirs, 0600 files."""
    data = tmp_path / "data"
    (data / "store").mkdir(parents=True)
    data.chmod(0o755)
    (data / "store").chmod(0o755)
    leftover = data / "store" / "appendonly.aof"
    leftover.write_bytes(b"")
    leftover.chmod(0o644)

    settings = Settings(data_dir=data)
    settings.load_master_key()
    await OutboxMailer(data / "outbox", sender=settings.mail_from).send(
        Mail(to="reader@example.com", subject="Your code", text="123456")
    )
    with EmbeddedStore(settings.ensure_data_dir(), binary=server_binary("valkey")) as server:
        with redis.Redis.from_url(server.url) as client:
            client.set("sg:{t}:probe", b"x")
        modes = modes_under(data)

    assert any(name.startswith("store/appendonlydir/") for name in modes), modes
    assert any(name.startswith("outbox/") for name in modes), modes
    expected = {"dir": 0o700, "file": 0o600, "socket": 0o700}
    assert {name: oct(mode) for name, (kind, mode) in modes.items() if mode != expected[kind]} == {}


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {name: value for name, value in os.environ.items() if not name.startswith("SUPPORTGATE_")}
    return subprocess.run(
        [sys.executable, "-m", "supportgate", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.slow
def test_the_cli_stops_with_one_line_on_a_wrong_master_key(tmp_path: Path) -> None:
    """A master key that does not open the store stops the CLI with exit 2 and one line naming the key ids."""
    data = {"SUPPORTGATE_DATA_DIR": str(tmp_path)}
    settings = Settings(data_dir=tmp_path)
    with EmbeddedStore(settings.ensure_data_dir(), binary=server_binary("valkey")) as server:

        async def seal() -> None:
            store = Store(connect(server.url))
            await PseudonymSecret(Vault(store, MasterKey(settings.load_master_key()))).get()
            await store.close()

        asyncio.run(seal())
        other = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
        result = run_cli("admin", "create-key", "--name", "x", env={**data, "SUPPORTGATE_MASTER_KEY": other})
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "sealed under master key" in result.stderr
    assert other not in result.stderr


@pytest.mark.slow
def test_rewrap_secrets_replaces_the_key_file_and_is_idempotent(tmp_path: Path) -> None:
    """`admin rewrap-secrets` moves the store to a new key file and the old key fails; a rerun changes nothing more."""
    data = {"SUPPORTGATE_DATA_DIR": str(tmp_path)}
    settings = Settings(data_dir=tmp_path)
    old = MasterKey(settings.load_master_key())
    old_material = (tmp_path / MASTER_KEY_FILE).read_text()
    with EmbeddedStore(settings.ensure_data_dir(), binary=server_binary("valkey")) as server:

        async def with_vault(key: MasterKey) -> bytes:
            store = Store(connect(server.url))
            try:
                vault = Vault(store, key)
                await vault.check()
                return await PseudonymSecret(vault).get()
            finally:
                await store.close()

        secret = asyncio.run(with_vault(old))
        result = run_cli("admin", "rewrap-secrets", env=data)
        assert result.returncode == 0, result.stderr
        new = MasterKey(settings.load_master_key())
        assert new.id != old.id
        assert f"from master key {old.id} to {new.id}" in result.stdout
        assert stat.S_IMODE((tmp_path / MASTER_KEY_FILE).stat().st_mode) == 0o600
        assert not (tmp_path / f"{MASTER_KEY_FILE}.new").exists()
        assert asyncio.run(with_vault(new)) == secret
        with pytest.raises(SealingError):
            asyncio.run(with_vault(old))

        newer = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
        env = {**data, "SUPPORTGATE_MASTER_KEY": old_material.strip(), "SUPPORTGATE_NEW_MASTER_KEY": newer}
        refused = run_cli("admin", "rewrap-secrets", env=env)
        assert refused.returncode == 2, refused.stderr
        assert "sealed under master key" in refused.stderr

        env = {**data, "SUPPORTGATE_MASTER_KEY": (tmp_path / MASTER_KEY_FILE).read_text().strip()}
        first = run_cli("admin", "rewrap-secrets", env={**env, "SUPPORTGATE_NEW_MASTER_KEY": newer})
        assert first.returncode == 0, first.stderr
        assert "re-wrapped 1 secret(s)" in first.stdout
        again = run_cli("admin", "rewrap-secrets", env={**env, "SUPPORTGATE_NEW_MASTER_KEY": newer})
        assert again.returncode == 0, again.stderr
        assert "already" in again.stdout
        assert asyncio.run(with_vault(MasterKey(base64.urlsafe_b64decode(newer)))) == secret


@pytest.mark.slow
def test_rewrap_secrets_takes_the_new_key_from_a_file(tmp_path: Path) -> None:
    """With SUPPORTGATE_MASTER_KEY set, `rewrap-secrets --new-key-file` seals the store under that file's key."""
    old, new = secrets.token_bytes(32), secrets.token_bytes(32)
    new_file = tmp_path / "new.key"
    new_file.write_text(base64.urlsafe_b64encode(new).decode())
    new_file.chmod(0o600)
    settings = Settings(data_dir=tmp_path / "data", master_key=old)
    with EmbeddedStore(settings.ensure_data_dir(), binary=server_binary("valkey")) as server:

        async def seal() -> None:
            store = Store(connect(server.url))
            await CodeSecret(Vault(store, MasterKey(old))).get()
            await store.close()

        asyncio.run(seal())
        master = base64.urlsafe_b64encode(old).decode()
        env = {"SUPPORTGATE_DATA_DIR": str(tmp_path / "data"), "SUPPORTGATE_MASTER_KEY": master}
        result = run_cli("admin", "rewrap-secrets", "--new-key-file", str(new_file), env=env)
        assert result.returncode == 0, result.stderr
        assert "set SUPPORTGATE_MASTER_KEY to the new key" in result.stdout
        with redis.Redis.from_url(server.url) as client:
            assert sealed_by(client.get(names.code_secret())) == MasterKey(new).id
    assert not (tmp_path / "data" / MASTER_KEY_FILE).exists()
