"""Typed settings, read once from ``SUPPORTGATE_*`` environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from supportgate.errors import SettingsError

__all__ = ["Settings", "redact_url"]

_PREFIX = "SUPPORTGATE_"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the service is configured with; validated when built."""

    redis_url: str | None = None
    """URL of an external Redis or Valkey (``redis://``, ``rediss://``, ``unix://``); none starts the embedded store."""
    data_dir: Path = field(default_factory=lambda: Path(".supportgate"))
    """Where the embedded store keeps its data, and where the outbox lives."""
    public_url: str = "http://127.0.0.1:8000"
    """The URL readers and sites reach the service at; also the token issuer."""
    max_body_bytes: int = 64 * 1024
    """Largest request body accepted; larger ones get 413."""
    store_timeout_seconds: float = 2.0
    """How long one store command, and any request that is not a page view, may wait on the store before 503."""
    decide_deadline_seconds: float = 0.1
    """How long one page view (decide, gate.js, the wall) may wait on the store, all its calls together."""
    log_level: str = "INFO"
    """Python logging level name."""
    smtp_url: str | None = None
    """SMTP server for outgoing mail: ``smtp://[user:pass@]host[:port]`` or ``smtps://``; none writes to the outbox."""
    mail_from: str = "supportgate <no-reply@localhost>"
    """The ``From`` of every mail the service sends."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from the environment.

        Raises:
            SettingsError: naming the variable whose value is wrong.
        """
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(_PREFIX + name, "").strip()
            return value or None

        defaults = cls()
        settings = cls(
            redis_url=get("REDIS_URL"),
            data_dir=Path(get("DATA_DIR") or defaults.data_dir),
            public_url=(get("PUBLIC_URL") or defaults.public_url).rstrip("/"),
            max_body_bytes=_positive_int("MAX_BODY_BYTES", get("MAX_BODY_BYTES"), defaults.max_body_bytes),
            store_timeout_seconds=_positive_float(
                "STORE_TIMEOUT_SECONDS", get("STORE_TIMEOUT_SECONDS"), defaults.store_timeout_seconds
            ),
            decide_deadline_seconds=_positive_int(
                "DECIDE_DEADLINE_MS", get("DECIDE_DEADLINE_MS"), int(defaults.decide_deadline_seconds * 1000)
            )
            / 1000,
            log_level=(get("LOG_LEVEL") or defaults.log_level).upper(),
            smtp_url=get("SMTP_URL"),
            mail_from=get("MAIL_FROM") or defaults.mail_from,
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        """Check every value; raise SettingsError naming the first bad one."""
        if self.redis_url is not None:
            url = urlsplit(self.redis_url)
            if url.scheme not in {"redis", "rediss", "unix"}:
                shown = redact_url(self.redis_url)
                raise SettingsError(f"{_PREFIX}REDIS_URL must start with redis://, rediss:// or unix://, not {shown!r}")
            try:
                url.port  # noqa: B018 - parsing the port is the check
            except ValueError:
                raise SettingsError(f"{_PREFIX}REDIS_URL has an invalid port: {redact_url(self.redis_url)!r}") from None
            if url.scheme != "unix" and not url.hostname:
                raise SettingsError(f"{_PREFIX}REDIS_URL has no host: {redact_url(self.redis_url)!r}")
            if url.scheme == "unix" and not url.path:
                raise SettingsError(f"{_PREFIX}REDIS_URL has no socket path: {redact_url(self.redis_url)!r}")
        public = urlsplit(self.public_url)
        if public.scheme not in {"http", "https"} or not public.hostname:
            raise SettingsError(f"{_PREFIX}PUBLIC_URL must be an http(s) URL, not {self.public_url!r}")
        if self.log_level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise SettingsError(f"{_PREFIX}LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, not {self.log_level!r}")
        if self.decide_deadline_seconds >= self.store_timeout_seconds:
            raise SettingsError(
                f"{_PREFIX}DECIDE_DEADLINE_MS must be below {_PREFIX}STORE_TIMEOUT_SECONDS "
                f"({self.decide_deadline_seconds * 1000:g} ms is not below {self.store_timeout_seconds:g} s)"
            )
        if self.smtp_url is not None:
            _check_smtp_url(self.smtp_url)
        _check_mail_from(self.mail_from)

    def ensure_data_dir(self) -> Path:
        """Create the data dir if needed and prove it is writable."""
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            probe = self.data_dir / ".write-test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise SettingsError(
                f"{_PREFIX}DATA_DIR {str(self.data_dir)!r} is not a writable directory: {exc.strerror or exc}"
            ) from exc
        return self.data_dir.resolve()

    @property
    def issuer(self) -> str:
        """The ``iss`` of every token the service signs."""
        return self.public_url


def _positive_int(name: str, raw: str | None, default: int) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{_PREFIX}{name} must be a whole number, not {raw!r}") from None
    if value <= 0:
        raise SettingsError(f"{_PREFIX}{name} must be positive, not {raw!r}")
    return value


def _positive_float(name: str, raw: str | None, default: float) -> float:
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{_PREFIX}{name} must be a number, not {raw!r}") from None
    if value <= 0:
        raise SettingsError(f"{_PREFIX}{name} must be positive, not {raw!r}")
    return value


def _check_smtp_url(raw: str) -> None:
    shown = redact_url(raw)
    url = urlsplit(raw)
    if url.scheme not in {"smtp", "smtps"}:
        raise SettingsError(f"{_PREFIX}SMTP_URL must start with smtp:// or smtps://, not {shown!r}")
    try:
        url.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        raise SettingsError(f"{_PREFIX}SMTP_URL has an invalid port: {shown!r}") from None
    if not url.hostname:
        raise SettingsError(f"{_PREFIX}SMTP_URL has no host: {shown!r}")
    for name, value in parse_qsl(url.query, keep_blank_values=True):
        # A misspelt option would otherwise be ignored and leave STARTTLS in its default state.
        if url.scheme != "smtp" or name != "starttls" or value.lower() not in {"true", "false"}:
            raise SettingsError(
                f"{_PREFIX}SMTP_URL accepts only ?starttls=true or ?starttls=false on smtp://: {shown!r}"
            )


def _check_mail_from(raw: str) -> None:
    _, address = parseaddr(raw)
    local, at, domain = address.rpartition("@")
    if not (local and at and domain) or "\r" in raw or "\n" in raw:
        raise SettingsError(f"{_PREFIX}MAIL_FROM must hold an address like 'News <no-reply@news.example>', not {raw!r}")


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
