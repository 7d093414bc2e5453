"""Typed settings, read once from ``SUPPORTGATE_*`` environment variables."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from supportgate.errors import SettingsError

__all__ = [
    "MASTER_KEY_BYTES",
    "MASTER_KEY_FILE",
    "Network",
    "Settings",
    "master_key_file",
    "parse_master_key",
    "redact_url",
    "write_master_key_file",
]

_PREFIX = "SUPPORTGATE_"
_MAX_AUDIT_RETENTION_DAYS = 36_500  # a century: longer is a typo, and dates past it overflow
_MAX_STRIPE_DAYS = 3660  # ten years of grace or of a one-off payment: longer is a typo
_MIN_METRICS_TOKEN = 16

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
"""An IP range, as ``SUPPORTGATE_TRUSTED_PROXIES`` lists them."""

MASTER_KEY_BYTES = 32
"""Length of the master key that seals the secrets in the store: 256 random bits."""

MASTER_KEY_FILE = "master.key"
"""The key file's name in the data dir, used when ``SUPPORTGATE_MASTER_KEY`` is not set."""

_MAKE_ONE = "make one with: python -c 'import base64,os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())'"


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
    anonymous_decides_per_minute: int = 300
    """How many decides one client address may ask a minute without a site key (bursts up to as many); more get 429."""
    log_level: str = "INFO"
    """Python logging level name."""
    smtp_url: str | None = None
    """SMTP server for outgoing mail: ``smtp://[user:pass@]host[:port]`` or ``smtps://``; none writes to the outbox."""
    mail_from: str = "supportgate <no-reply@localhost>"
    """The ``From`` of every mail the service sends."""
    audit_retention_days: int = 400
    """How many days audit entries are kept; older ones are deleted (checked every hour)."""
    trusted_proxies: tuple[Network, ...] = ()
    """Proxies whose ``Forwarded`` / ``X-Forwarded-For`` name the client; none: the peer is the client."""
    dns_resolver: tuple[str, int] | None = None
    dns_wait_seconds: float = 0.15
    """The DNS server (address, port) that crawlers' addresses are checked against; none: the system's resolver."""
    master_key: bytes | None = field(default=None, repr=False)
    """The 32-byte key that seals the secrets kept in the store; none uses the key file in the data dir."""
    new_master_key: bytes | None = field(default=None, repr=False)
    """Only for ``admin rewrap-secrets``: the master key to seal the secrets under instead."""
    stripe_webhook_secret: str | None = field(default=None, repr=False)
    """The signing secret (``whsec_…``) of the Stripe webhook endpoint; none: ``/v1/webhooks/stripe`` answers 404."""
    stripe_grace_days: int = 3
    """Days of support past the end of a paid Stripe subscription period, while Stripe retries a failed renewal."""
    stripe_one_off_days: int = 30
    """Days of support a one-off Stripe payment (a Checkout Session in ``payment`` mode) grants."""
    metrics_token: str | None = field(default=None, repr=False)
    """A bearer token for ``GET /metrics`` besides admin keys: 16+ ASCII characters. None: admin keys only."""
    access_log: bool = False
    """One JSON line per request on the ``supportgate.access`` logger; ``serve`` turns it on unless set to off."""

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
            anonymous_decides_per_minute=_positive_int(
                "ANONYMOUS_DECIDES_PER_MINUTE",
                get("ANONYMOUS_DECIDES_PER_MINUTE"),
                defaults.anonymous_decides_per_minute,
            ),
            log_level=(get("LOG_LEVEL") or defaults.log_level).upper(),
            smtp_url=get("SMTP_URL"),
            mail_from=get("MAIL_FROM") or defaults.mail_from,
            audit_retention_days=_positive_int(
                "AUDIT_RETENTION_DAYS", get("AUDIT_RETENTION_DAYS"), defaults.audit_retention_days
            ),
            trusted_proxies=_networks("TRUSTED_PROXIES", get("TRUSTED_PROXIES")),
            dns_resolver=_host_port("DNS_RESOLVER", get("DNS_RESOLVER")),
            dns_wait_seconds=_positive_int("DNS_WAIT_MS", get("DNS_WAIT_MS"), int(defaults.dns_wait_seconds * 1000))
            / 1000,
            master_key=_master_key_setting("MASTER_KEY", get("MASTER_KEY")),
            new_master_key=_master_key_setting("NEW_MASTER_KEY", get("NEW_MASTER_KEY")),
            stripe_webhook_secret=get("STRIPE_WEBHOOK_SECRET"),
            stripe_grace_days=_whole_days("STRIPE_GRACE_DAYS", get("STRIPE_GRACE_DAYS"), defaults.stripe_grace_days),
            stripe_one_off_days=_positive_int(
                "STRIPE_ONE_OFF_DAYS", get("STRIPE_ONE_OFF_DAYS"), defaults.stripe_one_off_days
            ),
            metrics_token=get("METRICS_TOKEN"),
            access_log=_on_off("ACCESS_LOG", get("ACCESS_LOG"), default=defaults.access_log),
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        """Check every value; raise SettingsError naming the first bad one."""
        if self.redis_url is not None:
            _check_redis_url(self.redis_url)
        public = urlsplit(self.public_url)
        if public.scheme not in {"http", "https"} or not public.hostname:
            raise SettingsError(f"{_PREFIX}PUBLIC_URL must be an http(s) URL, not {self.public_url!r}")
        if self.log_level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise SettingsError(f"{_PREFIX}LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, not {self.log_level!r}")
        if not 1 <= self.audit_retention_days <= _MAX_AUDIT_RETENTION_DAYS:
            raise SettingsError(
                f"{_PREFIX}AUDIT_RETENTION_DAYS must be 1 to {_MAX_AUDIT_RETENTION_DAYS} days, "
                f"not {self.audit_retention_days!r}"
            )
        if self.decide_deadline_seconds >= self.store_timeout_seconds:
            raise SettingsError(
                f"{_PREFIX}DECIDE_DEADLINE_MS must be below {_PREFIX}STORE_TIMEOUT_SECONDS "
                f"({self.decide_deadline_seconds * 1000:g} ms is not below {self.store_timeout_seconds:g} s)"
            )
        token = self.metrics_token
        if token is not None and (len(token) < _MIN_METRICS_TOKEN or not token.isascii() or " " in token):
            # Never the value itself: it is a secret.
            raise SettingsError(
                f"{_PREFIX}METRICS_TOKEN must be at least {_MIN_METRICS_TOKEN} ASCII characters without spaces; "
                "make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        if self.smtp_url is not None:
            _check_smtp_url(self.smtp_url)
        if self.stripe_webhook_secret is not None and not self.stripe_webhook_secret.startswith("whsec_"):
            raise SettingsError(
                f"{_PREFIX}STRIPE_WEBHOOK_SECRET must be the endpoint's signing secret, starting with 'whsec_' "
                "(Stripe dashboard: Developers, Webhooks, the endpoint, Signing secret)"
            )
        if not 0 <= self.stripe_grace_days <= _MAX_STRIPE_DAYS or not 1 <= self.stripe_one_off_days <= _MAX_STRIPE_DAYS:
            raise SettingsError(
                f"{_PREFIX}STRIPE_GRACE_DAYS must be 0 to {_MAX_STRIPE_DAYS} and {_PREFIX}STRIPE_ONE_OFF_DAYS "
                f"1 to {_MAX_STRIPE_DAYS}, not {self.stripe_grace_days!r} and {self.stripe_one_off_days!r}"
            )
        _check_mail_from(self.mail_from)

    def ensure_data_dir(self) -> Path:
        """Create the data dir if needed, owner-only (``0700``), and prove it is writable."""
        try:
            self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            # An existing dir (made by an older version, or by hand) is closed to others too.
            self.data_dir.chmod(0o700)
            probe = self.data_dir / ".write-test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise SettingsError(
                f"{_PREFIX}DATA_DIR {str(self.data_dir)!r} is not a writable directory: {exc.strerror or exc}"
            ) from exc
        return self.data_dir.resolve()

    def load_master_key(self) -> bytes:
        """The master key: ``SUPPORTGATE_MASTER_KEY``, else the key file in the data dir, made on first start.

        Raises:
            SettingsError: if the key file is unreadable, malformed, or open to others.
        """
        if self.master_key is not None:
            return self.master_key
        return master_key_file(self.ensure_data_dir() / MASTER_KEY_FILE)

    @property
    def audit_retention(self) -> timedelta:
        """How long audit entries are kept."""
        return timedelta(days=self.audit_retention_days)

    @property
    def stripe_grace(self) -> timedelta:
        """How long support lasts past the end of a paid Stripe subscription period."""
        return timedelta(days=self.stripe_grace_days)

    @property
    def stripe_one_off(self) -> timedelta:
        """How long a one-off Stripe payment grants support for."""
        return timedelta(days=self.stripe_one_off_days)

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


def _whole_days(name: str, raw: str | None, default: int) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{_PREFIX}{name} must be a whole number of days, not {raw!r}") from None
    if value < 0:
        raise SettingsError(f"{_PREFIX}{name} must be 0 or more, not {raw!r}")
    return value


def _on_off(name: str, raw: str | None, *, default: bool) -> bool:
    if raw is None:
        return default
    value = raw.lower()
    if value not in {"on", "off"}:
        raise SettingsError(f"{_PREFIX}{name} must be on or off, not {raw!r}")
    return value == "on"


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


def _networks(name: str, raw: str | None) -> tuple[Network, ...]:
    networks = []
    for item in (raw or "").split(","):
        cidr = item.strip()
        if not cidr:
            continue
        try:
            networks.append(ipaddress.ip_network(cidr, strict=False))
        except ValueError:
            raise SettingsError(
                f"{_PREFIX}{name} holds {cidr!r}, which is not an IP range such as 10.0.0.0/8 or fd00::/8"
            ) from None
    return tuple(networks)


def _host_port(name: str, raw: str | None) -> tuple[str, int] | None:
    """``address:port`` (``[v6]:port`` for IPv6; the port defaults to 53) as a pair, or None when unset."""
    if raw is None:
        return None
    host, port = raw, "53"
    if raw.startswith("["):
        host, bracket, rest = raw[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            host = ""
        port = rest[1:] if rest else port
    elif raw.count(":") == 1:
        host, _, port = raw.partition(":")
    address: ipaddress.IPv4Address | ipaddress.IPv6Address | None
    try:
        address, number = ipaddress.ip_address(host), int(port)
    except ValueError:
        address, number = None, 0
    if address is None or not 0 < number < 65536:
        raise SettingsError(
            f"{_PREFIX}{name} must be a DNS server's IP address and port, such as 127.0.0.1:53 or [::1]:53, not {raw!r}"
        )
    return str(address), number


def parse_master_key(raw: str) -> bytes | None:
    """The 32 bytes of a master key written in base64url (padded or not), or None if it is not one."""
    text = raw.strip()
    try:
        key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    if len(key) != MASTER_KEY_BYTES or not text.replace("-", "").replace("_", "").rstrip("=").isalnum():
        return None
    return key


def _master_key_setting(name: str, raw: str | None) -> bytes | None:
    if raw is None:
        return None
    key = parse_master_key(raw)
    if key is None:
        # Never the value itself: it is a secret, and a near miss of one is half of it.
        raise SettingsError(f"{_PREFIX}{name} must be {MASTER_KEY_BYTES} random bytes in base64url; {_MAKE_ONE}")
    return key


def master_key_file(path: Path) -> bytes:
    """The master key in the key file ``path``, made there (``0600``, whole or not at all) if there is none.

    Raises:
        SettingsError: if the file cannot be read or written, is open to others, or holds no key.
    """
    try:
        if not path.exists():
            write_master_key_file(path, secrets.token_bytes(MASTER_KEY_BYTES), replace=False)
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise SettingsError(f"the master key file {path} is open to others (mode {mode:04o}): chmod 600 it")
        key = parse_master_key(path.read_text(encoding="ascii", errors="replace"))
    except OSError as exc:
        raise SettingsError(f"the master key file {path} cannot be used: {exc.strerror or exc}") from exc
    if key is None:
        raise SettingsError(f"the master key file {path} does not hold a {MASTER_KEY_BYTES}-byte base64url key")
    return key


def write_master_key_file(path: Path, key: bytes, *, replace: bool) -> None:
    """Write ``key`` to the key file ``path`` (``0600``), whole or not at all.

    Without ``replace``, a file already there is kept: two processes starting at once keep one key.
    """
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as file:
            file.write(base64.urlsafe_b64encode(key).decode("ascii") + "\n")
            file.flush()
            os.fsync(file.fileno())
        if replace:
            temporary.replace(path)
        else:
            # link, unlike rename, fails if the name exists.
            os.link(temporary, path)
    except FileExistsError:
        pass
    finally:
        temporary.unlink(missing_ok=True)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _check_redis_url(raw: str) -> None:
    url = urlsplit(raw)
    if url.scheme not in {"redis", "rediss", "unix"}:
        shown = redact_url(raw)
        raise SettingsError(f"{_PREFIX}REDIS_URL must start with redis://, rediss:// or unix://, not {shown!r}")
    try:
        url.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        raise SettingsError(f"{_PREFIX}REDIS_URL has an invalid port: {redact_url(raw)!r}") from None
    if url.scheme != "unix" and not url.hostname:
        raise SettingsError(f"{_PREFIX}REDIS_URL has no host: {redact_url(raw)!r}")
    if url.scheme == "unix" and not url.path:
        raise SettingsError(f"{_PREFIX}REDIS_URL has no socket path: {redact_url(raw)!r}")


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
