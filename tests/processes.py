"""Real processes for the tests: a free loopback port, ``python -m supportgate`` started, waited for and stopped."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx
import pytest

__all__ = [
    "find_binary",
    "free_port",
    "nginx_conf",
    "run_captured",
    "start_supportgate",
    "stop",
    "wait_ready",
]


def free_port() -> int:
    """A loopback TCP port nothing listens on just now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_supportgate(*args: str, env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``python -m supportgate <args>`` with exactly ``env``, its output in ``log``, leading a session of its own.

    Its own session lets :func:`stop` signal it and every worker it forks, as Ctrl-C in a terminal would.
    """
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "supportgate", *args],
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_ready(
    base: str,
    process: subprocess.Popen[bytes],
    log: Path,
    *,
    printed: str = "",
    timeout: float = 60.0,
    interval: float = 0.2,
    request_timeout: float = 1.0,
) -> str:
    """Wait until ``base``/readyz answers 200 (and ``log`` holds ``printed``); what ``log`` holds then.

    Fails with the log if the process exits or ``timeout`` passes first.
    """
    deadline = time.monotonic() + timeout
    while True:
        written = log.read_text(errors="replace")
        try:
            if printed in written and httpx.get(f"{base}/readyz", timeout=request_timeout).status_code == 200:
                return written
        except httpx.HTTPError:
            pass
        assert process.poll() is None, f"the process stopped:\n{log.read_text(errors='replace')}"
        assert time.monotonic() < deadline, f"not ready in {timeout:g} s:\n{log.read_text(errors='replace')}"
        time.sleep(interval)


def stop(
    process: subprocess.Popen[bytes], sig: int = signal.SIGINT, *, timeout: float = 20.0, must_stop: bool = False
) -> int:
    """Send ``sig`` (to its whole process group when it leads one), wait; kill it if it hangs. Its exit status.

    With ``must_stop``, a process that hangs fails the test once it is killed.
    """
    group = _leads_its_group(process)
    _signal(process, sig, group=group)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _signal(process, signal.SIGKILL, group=group)
        process.wait()
        if must_stop:
            raise AssertionError(f"process {process.pid} did not stop within {timeout:g} s of signal {sig}") from None
        return process.returncode


def _signal(process: subprocess.Popen[bytes], sig: int, *, group: bool) -> None:
    if group:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
    elif process.poll() is None:
        process.send_signal(sig)


def _leads_its_group(process: subprocess.Popen[bytes]) -> bool:
    try:
        return os.getpgid(process.pid) == process.pid
    except ProcessLookupError:
        return False


def run_captured(
    args: Sequence[str], *, timeout: float, cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``args`` to the end (or ``timeout``), its output captured as text; the caller checks its status."""
    return subprocess.run(
        list(args),
        cwd=cwd,
        env=None if env is None else dict(env),
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def find_binary(name: str, *, untested: str) -> str:
    """Debian's ``name`` (on PATH, or in /usr/sbin or /usr/bin), or skip the test saying what goes ``untested``."""
    found = shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if Path(p).exists()), None)
    if found is None:
        pytest.skip(f"{name} is not installed (`apt-get install {name}`; .ci/run installs it): {untested}")
    return found


def nginx_conf(prefix: Path, temp: Path, http: str) -> str:
    """An nginx.conf for an unprivileged nginx in the foreground, its ``http`` block holding ``http``.

    Its pid file and error log are in ``prefix``, its temp files in ``temp``.
    """
    temp_paths = "".join(
        f"  {kind}_temp_path {temp}/{name};\n"
        for kind, name in (
            ("client_body", "body"),
            ("proxy", "proxy"),
            ("fastcgi", "fastcgi"),
            ("uwsgi", "uwsgi"),
            ("scgi", "scgi"),
        )
    )
    return f"""daemon off;
master_process on;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 64; }}
http {{
{temp_paths}{http}
}}
"""
