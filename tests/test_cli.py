"""The ``supportgate`` command as a user runs it: real processes, a real store, real signals."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.processes import free_port, start_supportgate, stop, wait_ready

pytestmark = pytest.mark.slow


def run_cli(*args: str, env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "supportgate", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SUPPORTGATE_REDIS_URL": "http://localhost:6379"}, "SUPPORTGATE_REDIS_URL"),
        ({"SUPPORTGATE_REDIS_URL": "redis://localhost:notaport"}, "SUPPORTGATE_REDIS_URL"),
        ({"SUPPORTGATE_REDIS_URL": "redis://127.0.0.1:1"}, "SUPPORTGATE_REDIS_URL"),
        ({"SUPPORTGATE_MAX_BODY_BYTES": "lots"}, "SUPPORTGATE_MAX_BODY_BYTES"),
        ({"SUPPORTGATE_PUBLIC_URL": "news.example"}, "SUPPORTGATE_PUBLIC_URL"),
        ({"SUPPORTGATE_TRUSTED_PROXIES": "10.0.0.0/8, lb.internal"}, "SUPPORTGATE_TRUSTED_PROXIES"),
        ({"SUPPORTGATE_MASTER_KEY": "not-a-key"}, "SUPPORTGATE_MASTER_KEY"),
    ],
)
def test_bad_settings_stop_with_one_line(tmp_path: Path, env: dict[str, str], named: str) -> None:
    """A bad setting stops the CLI with exit 2 and one line naming the variable, no traceback."""
    result = run_cli("admin", "create-key", "--name", "x", env={"SUPPORTGATE_DATA_DIR": str(tmp_path), **env})
    assert result.returncode == 2
    assert named in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unwritable_data_dir_is_named(tmp_path: Path) -> None:
    """A data dir that cannot be made stops the CLI naming SUPPORTGATE_DATA_DIR."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = run_cli("admin", "create-key", "--name", "x", env={"SUPPORTGATE_DATA_DIR": str(blocker / "data")})
    assert result.returncode == 2
    assert "SUPPORTGATE_DATA_DIR" in result.stderr
    assert "Traceback" not in result.stderr


def test_create_key_prints_a_working_key(tmp_path: Path) -> None:
    """`admin create-key` prints one admin key, and leaves no store running."""
    result = run_cli("admin", "create-key", "--name", "ops", env={"SUPPORTGATE_DATA_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"sga_[0-9a-f]{12}_[0-9a-f]{48}", result.stdout.strip())
    assert not (tmp_path / "store" / "store.sock").exists()


def start_demo(data_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SUPPORTGATE_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"}
    return start_supportgate("demo", "--port", str(port), env=env, log=log)


def wait_for_banner(process: subprocess.Popen[bytes], port: int, log: Path) -> str:
    """Wait for /readyz; return what the demo printed up to then (its banner)."""
    return wait_ready(f"http://127.0.0.1:{port}", process, log, printed="admin API key", timeout=30)


def test_demo_seeds_serves_and_keeps_its_data(tmp_path: Path) -> None:
    """`demo` seeds tiers, a site and a supporter, prints a working key, stops on Ctrl-C, and keeps the data.

    It builds the extension packages for its URL on the first start and finds them on the second.
    """
    port = free_port()
    log = tmp_path / "demo.log"
    demo = start_demo(tmp_path, port, log)
    try:
        banner = wait_for_banner(demo, port, log)
        key = re.search(r"admin API key\s+(\S+)", banner)
        assert key, banner
        headers = {"Authorization": f"Bearer {key.group(1)}"}
        base = f"http://127.0.0.1:{port}"
        tiers = httpx.get(f"{base}/v1/admin/tiers", headers=headers).json()["items"]
        assert {t["id"]: t["entitlements"] for t in tiers} == {
            "patron": ["adblock_ok", "ad_free"],
            "supporter": ["adblock_ok"],
        }
        assert httpx.get(f"{base}/v1/admin/sites/demo", headers=headers).status_code == 200
        supporters = httpx.get(f"{base}/v1/admin/supporters", headers=headers).json()["items"]
        assert [(s["email"], s["tier"]) for s in supporters] == [("reader@example.com", "supporter")]
        assert re.search(rf"extension \S+ for {base} built: ", banner), banner
        assert f"extension      {base}/extension" in banner
        assert f"admin console  {base}/admin/" in banner
        console = httpx.get(f"{base}/admin/")
        assert console.status_code == 303
        assert console.headers["location"].startswith("/admin/login?next=")
        download = httpx.get(f"{base}/extension/supportgate-firefox.zip")
        assert (download.status_code, download.headers["content-type"]) == (200, "application/zip")
    finally:
        assert stop(demo, timeout=15) == 0
    assert not (tmp_path / "store" / "store.sock").exists(), "the store was left running"

    again = start_demo(tmp_path, port, log)
    try:
        banner = wait_for_banner(again, port, log)
        new_key = re.search(r"admin API key\s+(\S+)", banner)
        assert new_key
        base = f"http://127.0.0.1:{port}"
        old = httpx.get(f"{base}/v1/admin/supporters", headers=headers)
        assert old.status_code == 401, "the previous demo key should be replaced"
        fresh = httpx.get(f"{base}/v1/admin/supporters", headers={"Authorization": f"Bearer {new_key.group(1)}"})
        assert [s["id"] for s in fresh.json()["items"]] == [s["id"] for s in supporters]
        assert re.search(rf"extension \S+ for {base} found: ", banner), "the second start rebuilt the packages"
        assert httpx.get(f"{base}/extension/supportgate-firefox.zip").content == download.content
    finally:
        assert stop(again, timeout=15) == 0


def test_serve_uses_an_external_store_with_several_workers(tmp_path: Path, store_url: str) -> None:
    """`serve --workers 2` with SUPPORTGATE_REDIS_URL answers from every worker and stops on Ctrl-C.

    Its extension source points nowhere: it says so once and serves no packages.
    """
    port = free_port()
    log = tmp_path / "serve.log"
    env = {
        **os.environ,
        "SUPPORTGATE_REDIS_URL": store_url,
        "SUPPORTGATE_DATA_DIR": str(tmp_path / "unused"),
        "SUPPORTGATE_EXTENSION_SOURCE": str(tmp_path / "no-extension-here"),
    }
    server = start_supportgate("serve", "--port", str(port), "--workers", "2", env=env, log=log)
    try:
        deadline = time.monotonic() + 30
        ready = 0
        while ready < 20 and time.monotonic() < deadline:
            try:
                ready += httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                time.sleep(0.2)
            assert server.poll() is None, log.read_text()
        assert ready == 20, log.read_text()
        assert log.read_text().count("Started worker") == 2
        assert log.read_text().count("the extension packages are not available from this gate") == 1
        missing = httpx.get(f"http://127.0.0.1:{port}/extension/supportgate-chromium.zip")
        assert (missing.status_code, missing.headers["content-type"]) == (404, "application/problem+json")
        assert "not available from this gate" in httpx.get(f"http://127.0.0.1:{port}/extension").text
        assert not (tmp_path / "unused" / "store").exists(), "an external store must not start the embedded one"
    finally:
        assert stop(server, timeout=15) == 0


def test_rotate_keys_waits_for_publication_unless_forced(tmp_path: Path) -> None:
    """`admin rotate-keys` refuses a next key published moments ago with one line, and rotates with --force."""
    env = {"SUPPORTGATE_DATA_DIR": str(tmp_path)}
    refused = run_cli("admin", "rotate-keys", env=env)
    assert refused.returncode == 2
    assert "Traceback" not in refused.stderr
    assert "--force" in refused.stderr or "force" in refused.stderr
    forced = run_cli("admin", "rotate-keys", "--force", env=env)
    assert forced.returncode == 0, forced.stderr
    states = [line.split()[0] for line in forced.stdout.strip().splitlines()]
    assert sorted(states) == ["active", "next", "retiring"]


def test_list_and_revoke_admin_keys(tmp_path: Path) -> None:
    """`admin list-keys` shows ids and names, no secret; `admin revoke-key` revokes, but not the last key."""
    env = {"SUPPORTGATE_DATA_DIR": str(tmp_path)}
    first = run_cli("admin", "create-key", "--name", "ops", env=env).stdout.strip()
    second = run_cli("admin", "create-key", "--name", "leaked", env=env).stdout.strip()
    listed = run_cli("admin", "list-keys", env=env)
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[-1]: line.split()[0] for line in listed.stdout.strip().splitlines()}
    assert rows == {"ops": first.split("_")[1], "leaked": second.split("_")[1]}
    assert first.split("_")[2] not in listed.stdout
    revoked = run_cli("admin", "revoke-key", rows["leaked"], env=env)
    assert revoked.returncode == 0, revoked.stderr
    assert "leaked" not in run_cli("admin", "list-keys", env=env).stdout
    last = run_cli("admin", "revoke-key", rows["ops"], env=env)
    assert last.returncode == 2
    assert "last admin key" in last.stderr
    assert "Traceback" not in last.stderr
    unknown = run_cli("admin", "revoke-key", "0123456789ab", env=env)
    assert unknown.returncode == 2
    assert "0123456789ab" in unknown.stderr
