"""Secrets at rest: owner-only files on disk."""

from __future__ import annotations

import stat
from pathlib import Path

import redis

from supportgate.mail import Mail, OutboxMailer
from supportgate.settings import Settings
from supportgate.store import EmbeddedStore
from tests.conftest import server_binary


def modes_under(directory: Path) -> dict[str, tuple[str, int]]:
    """The kind (dir, file, socket) and permission bits of ``directory`` and everything in it, by relative path."""
    found: dict[str, tuple[str, int]] = {}
    for path in [directory, *directory.rglob("*")]:
        status = path.lstat()
        kind = "dir" if stat.S_ISDIR(status.st_mode) else "socket" if stat.S_ISSOCK(status.st_mode) else "file"
        found[str(path.relative_to(directory))] = (kind, stat.S_IMODE(status.st_mode))
    return found


async def test_the_data_dir_and_everything_in_it_are_owner_only(tmp_path: Path) -> None:
    """The data dir, the store's dir, its AOF and files, and the outbox: 0700 dirs, 0600 files."""
    data = tmp_path / "data"
    (data / "store").mkdir(parents=True)
    data.chmod(0o755)
    (data / "store").chmod(0o755)
    leftover = data / "store" / "appendonly.aof"
    leftover.write_bytes(b"")
    leftover.chmod(0o644)

    settings = Settings(data_dir=data)
    with EmbeddedStore(settings.ensure_data_dir(), binary=server_binary("valkey")) as server:
        await OutboxMailer(data / "outbox", sender=settings.mail_from).send(
            Mail(to="reader@example.com", subject="Your code", text="123456")
        )
        with redis.Redis.from_url(server.url) as client:
            client.set("sg:{t}:probe", b"x")
        modes = modes_under(data)

    assert any(name.startswith("store/appendonlydir/") for name in modes), modes
    assert any(name.startswith("outbox/") for name in modes), modes
    expected = {"dir": 0o700, "file": 0o600, "socket": 0o700}
    assert {name: oct(mode) for name, (kind, mode) in modes.items() if mode != expected[kind]} == {}
