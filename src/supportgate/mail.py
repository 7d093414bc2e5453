"""Outgoing mail: the sign-in code and no-support mails, sent over SMTP or written to an outbox."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import ssl
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP as CRLF_LINES
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

import aiosmtplib
import jinja2
import msgspec

from supportgate.languages import normalise_language_tag
from supportgate.settings import Settings

__all__ = [
    "Mail",
    "Mailer",
    "OutboxMailer",
    "SmtpMailer",
    "describe_error",
    "mailer_for",
    "no_support_mail",
    "recipient_domain",
    "sign_in_code_mail",
    "welcome_mail",
]

_log = logging.getLogger("supportgate.mail")
_templates = jinja2.Environment(
    loader=jinja2.PackageLoader("supportgate", "templates/email"),
    autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


class Mail(msgspec.Struct, frozen=True):
    """One mail to one recipient, before it gets a sender and headers."""

    to: str
    """The recipient's address."""
    subject: str
    """The subject line; lock screens show it, so it never holds a secret."""
    text: str
    """The plain-text body."""
    html: str | None = None
    """An HTML alternative to ``text``, if any."""

    def __repr__(self) -> str:
        # The bodies may hold a sign-in code: keep them out of reprs, so out of logs and tracebacks.
        return f"Mail(to={self.to!r}, subject={self.subject!r})"


class Mailer(Protocol):
    """Something that delivers a mail, or raises."""

    async def send(self, mail: Mail) -> None:
        """Deliver ``mail``; raise if it could not be handed on."""
        ...


class SmtpMailer:
    """Sends through the SMTP server named by a URL.

    ``smtp://[user:pass@]host[:port][?starttls=true|false]`` connects to port 587 by default and
    upgrades with STARTTLS when the server offers it; ``starttls=true`` requires the upgrade and
    ``starttls=false`` never attempts it. ``smtps://`` uses TLS from the start, on port 465 by default.
    The user and password are percent-decoded.

    Args:
        url: the server, as above.
        sender: the ``From`` header; its address is also the envelope sender.
        timeout: seconds each step of the SMTP conversation may take.
        tls_context: whom to trust instead of the system's CAs (a private CA, a test server).
    """

    def __init__(
        self,
        url: str,
        *,
        sender: str,
        timeout: float = 10.0,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in {"smtp", "smtps"} or not parts.hostname:
            raise ValueError("the SMTP URL must be smtp://host or smtps://host")
        options = dict(parse_qsl(parts.query, keep_blank_values=True))
        starttls = options.pop("starttls", None)
        if options or (starttls is not None and (parts.scheme != "smtp" or starttls.lower() not in {"true", "false"})):
            raise ValueError("the SMTP URL accepts only ?starttls=true or ?starttls=false, and only on smtp://")
        self._hostname = parts.hostname
        self._use_tls = parts.scheme == "smtps"
        self._port = parts.port or (465 if self._use_tls else 587)
        # None asks aiosmtplib to upgrade exactly when the server offers STARTTLS.
        self._start_tls = None if self._use_tls or starttls is None else starttls.lower() == "true"
        self._username = None if parts.username is None else unquote(parts.username)
        self._password = None if parts.password is None else unquote(parts.password)
        self._sender = sender
        self._envelope_sender = parseaddr(sender)[1]
        self._timeout = timeout
        self._tls_context = tls_context

    async def send(self, mail: Mail) -> None:
        """Deliver ``mail`` over one SMTP connection.

        Raises:
            aiosmtplib.SMTPException: the server could not be reached or refused the mail.
            ssl.SSLError: the server's certificate is not trusted, or TLS failed otherwise.
        """
        message = _message(mail, self._sender)
        try:
            await aiosmtplib.send(
                message,
                sender=self._envelope_sender,
                recipients=[mail.to],
                hostname=self._hostname,
                port=self._port,
                username=self._username,
                password=self._password,
                timeout=self._timeout,
                use_tls=self._use_tls,
                start_tls=self._start_tls,
                tls_context=self._tls_context,
            )
        except Exception as exc:
            _log.warning(
                "SMTP delivery to a recipient at %s failed: %s", recipient_domain(mail.to), describe_error(exc, mail.to)
            )
            raise


class OutboxMailer:
    """Writes each mail as an ``.eml`` file to a directory, for running without a mail server.

    Files are named ``<UTC time>-<random>.eml`` so they sort by time; each appears whole or not at all.
    """

    def __init__(self, directory: Path, *, sender: str) -> None:
        self.directory = directory
        self._sender = sender

    async def send(self, mail: Mail) -> None:
        """Write ``mail`` to the outbox and log where it went.

        Raises:
            OSError: the directory or the file could not be written.
        """
        # RFC 5322 lines end in CRLF, on disk as on the wire.
        data = _message(mail, self._sender).as_bytes(policy=CRLF_LINES)
        name = await asyncio.to_thread(self._write, data)
        _log.info(
            "mail to a recipient at %s: %s (%s/%s)", recipient_domain(mail.to), mail.subject, self.directory.name, name
        )

    def _write(self, data: bytes) -> str:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.directory.chmod(0o700)
        name = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}.eml"
        temporary = self.directory / f".{name}.tmp"
        # Owner-only: the file holds a sign-in code.
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
            temporary.replace(self.directory / name)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        return name


def mailer_for(settings: Settings) -> Mailer:
    """The SMTP mailer when ``smtp_url`` is set, else the outbox in the data dir."""
    if settings.smtp_url is not None:
        return SmtpMailer(settings.smtp_url, sender=settings.mail_from)
    return OutboxMailer(settings.data_dir / "outbox", sender=settings.mail_from)


def sign_in_code_mail(*, to: str, code: str, minutes: int, site_name: str | None, lang: str = "en") -> Mail:
    """The mail that carries a sign-in code, valid for ``minutes``; the subject leaves the code out."""
    return _render("sign_in_code", lang, to=to, code=code, minutes=minutes, site=site_name or "supportgate")


def no_support_mail(*, to: str, site_name: str | None, support_url: str | None, lang: str = "en") -> Mail:
    """The mail for an address with no active support: how to become a supporter, and whom to ask."""
    return _render(
        "no_support",
        lang,
        to=to,
        site=site_name or "supportgate",
        site_name=site_name,
        support_url=support_url,
    )


def welcome_mail(*, to: str, tier_name: str, sites: list[str], install_url: str, lang: str = "en") -> Mail:
    """The mail for a new supporter: what their support unlocks, where the extension is, how to sign in."""
    return _render("welcome", lang, to=to, tier=tier_name, sites=sites, install_url=install_url)


def _render(name: str, lang: str, *, to: str, **context: object) -> Mail:
    """Render a template pair in ``lang``, or the closest language there is, English last.

    The ``.txt`` template sets ``subject``; the ``.html`` one gets it to use as its title.
    """
    candidates = [f"{code}/" for code in _languages(lang)] + [""]
    text = _templates.select_template([f"{prefix}{name}.txt" for prefix in candidates])
    module = text.make_module({"to": to, **context})
    subject = getattr(module, "subject", None)
    if subject is None:
        raise LookupError(f"the mail template {text.name} sets no subject")
    # One line whatever the site is called: a header cannot hold a line break.
    subject = " ".join(str(subject).split())
    html = _templates.select_template([f"{prefix}{name}.html" for prefix in candidates])
    return Mail(to=to, subject=subject, text=str(module), html=html.render(to=to, subject=subject, **context))


def _languages(lang: str) -> list[str]:
    """``de-AT`` → ``["de-at", "de"]`` (the template folders' names); anything but a language tag → ``[]``."""
    normal = normalise_language_tag(lang.strip())
    if normal is None:
        return []
    tag = normal.lower()
    primary = tag.split("-", 1)[0]
    return [tag, primary] if primary != tag else [tag]


def _message(mail: Mail, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message["Date"] = format_datetime(datetime.now(UTC))
    # An explicit domain: without one, make_msgid asks DNS for this host's name, which can block.
    message["Message-ID"] = make_msgid(domain=recipient_domain(parseaddr(sender)[1]) or "localhost")
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(mail.text)
    if mail.html is not None:
        message.add_alternative(mail.html, subtype="html")
    return message


def recipient_domain(address: str) -> str:
    """The part of an address after its ``@``: all a log line may say about a recipient."""
    return address.rpartition("@")[2]


def describe_error(exc: BaseException, address: str) -> str:
    """The error for a log line, with the recipient's address taken out (servers often echo it)."""
    text = f"{type(exc).__name__}: {exc}"
    return re.sub(re.escape(address), "<recipient>", text, flags=re.IGNORECASE) if address else text
