"""Outgoing mail against a real SMTP server (aiosmtpd), the outbox, the templates and the settings."""

from __future__ import annotations

import email
import email.policy
import ipaddress
import logging
import re
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiosmtplib
import pytest
from aiosmtpd import smtp as smtpd
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from supportgate.errors import SettingsError
from supportgate.mail import (
    Mail,
    Mailer,
    OutboxMailer,
    SmtpMailer,
    mailer_for,
    no_support_mail,
    sign_in_code_mail,
)
from supportgate.settings import Settings
from tests.smtp_helpers import StartServer

SENDER = "News Example <no-reply@news.example>"
READER = "reader@example.com"
CODE = "428913"
USER, PASSWORD = "mailer", "p@ss:w/rd%"


def check_password(
    _server: smtpd.SMTP, _session: smtpd.Session, _envelope: smtpd.Envelope, _mechanism: str, data: Any
) -> smtpd.AuthResult:
    """Accept only USER with PASSWORD."""
    ok = isinstance(data, smtpd.LoginPassword) and data == (USER.encode(), PASSWORD.encode())
    # handled=False has aiosmtpd answer a failure with 535 itself.
    return smtpd.AuthResult(success=ok, handled=False, auth_data=data if ok else None)


@dataclass(frozen=True)
class Tls:
    """A self-signed certificate for 127.0.0.1, as the server's context and a client context trusting it."""

    server: ssl.SSLContext
    client: ssl.SSLContext


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "supportgate test server")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    return Tls(server=server, client=ssl.create_default_context(cafile=str(cert_file)))


def code_mail() -> Mail:
    return sign_in_code_mail(to=READER, code=CODE, minutes=10, site_name="News Example")


def bodies(message: EmailMessage) -> tuple[str, str]:
    """The plain-text and HTML bodies of a multipart/alternative message."""
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None
    assert html is not None
    return text.get_content(), html.get_content()


# One suite, both mailers: each reads back the message it last sent.
Backend = tuple[Mailer, Callable[[], EmailMessage]]


@pytest.fixture(params=["smtp", "outbox"])
def backend(request: pytest.FixtureRequest, smtp_server: StartServer, tmp_path: Path) -> Backend:
    if request.param == "smtp":
        recorder, port = smtp_server()

        def last_sent() -> EmailMessage:
            delivered = recorder.delivered[-1]
            assert delivered.mail_from == "no-reply@news.example"
            assert delivered.rcpt_tos == [READER]
            return delivered.message

        return SmtpMailer(f"smtp://127.0.0.1:{port}", sender=SENDER), last_sent

    outbox = tmp_path / "outbox"

    def last_written() -> EmailMessage:
        data = max(outbox.glob("*.eml")).read_bytes()
        message = email.message_from_bytes(data, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        return message

    return OutboxMailer(outbox, sender=SENDER), last_written


async def test_the_sign_in_code_is_in_the_body_not_the_subject(backend: Backend) -> None:
    """The sign-in mail goes to the reader with every required header, and the code only in its bodies."""
    mailer, last = backend
    await mailer.send(code_mail())
    message = last()
    assert message["From"] == SENDER
    assert message["To"] == READER
    assert message["Subject"] == "Your sign-in code for News Example"
    assert CODE not in message["Subject"]
    assert message["Auto-Submitted"] == "auto-generated"
    assert re.fullmatch(r"<[^@>]+@news\.example>", message["Message-ID"])
    assert message["Date"].datetime.tzinfo is not None
    assert message.get_content_type() == "multipart/alternative"
    text, html = bodies(message)
    assert CODE in text
    assert "10 minutes" in text
    assert "did not ask for this" in text
    assert f">{CODE}</p>" in html


async def test_the_no_support_mail_says_how_to_become_a_supporter(backend: Backend) -> None:
    """The no-support mail says no support was found and links to the support page."""
    mailer, last = backend
    url = "https://news.example/support?plan=a&ref=mail"
    await mailer.send(no_support_mail(to=READER, site_name="News Example", support_url=url))
    message = last()
    assert message["To"] == READER
    text, html = bodies(message)
    assert "couldn't find active support for this address" in text
    assert url in text
    assert 'href="https://news.example/support?plan=a&amp;ref=mail"' in html
    assert "contact the people who run News Example" in " ".join(text.split())


# The server warns that AUTH without TLS is unsafe: these tests want exactly that, to see the login.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
async def test_smtp_signs_in_with_the_user_and_password_from_the_url(smtp_server: StartServer) -> None:
    """The URL's percent-encoded user and password are decoded and used for AUTH."""
    recorder, port = smtp_server(auth_required=True, auth_require_tls=False, authenticator=check_password)
    mailer = SmtpMailer(f"smtp://{USER}:{quote(PASSWORD, safe='')}@127.0.0.1:{port}", sender=SENDER)
    await mailer.send(code_mail())
    assert [d.login for d in recorder.delivered] == [USER.encode()]


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
async def test_a_refused_login_is_raised_and_logged_without_the_address(
    smtp_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A wrong password raises to the caller; the log names the recipient's domain only, never the code."""
    recorder, port = smtp_server(auth_required=True, auth_require_tls=False, authenticator=check_password)
    mailer = SmtpMailer(f"smtp://{USER}:wrong@127.0.0.1:{port}", sender=SENDER)
    with caplog.at_level(logging.WARNING, logger="supportgate.mail"), pytest.raises(aiosmtplib.SMTPAuthenticationError):
        await mailer.send(code_mail())
    assert recorder.delivered == []
    assert "example.com" in caplog.text
    assert READER not in caplog.text
    assert CODE not in caplog.text


async def test_starttls_is_used_when_the_server_offers_it(smtp_server: StartServer, tls: Tls) -> None:
    """By default the connection is upgraded with STARTTLS when offered, and the login is sent after the upgrade."""
    recorder, port = smtp_server(
        tls_context=tls.server, require_starttls=True, auth_required=True, authenticator=check_password
    )
    url = f"smtp://{USER}:{quote(PASSWORD, safe='')}@127.0.0.1:{port}"
    await SmtpMailer(url, sender=SENDER, tls_context=tls.client).send(code_mail())
    assert [(d.tls, d.login) for d in recorder.delivered] == [(True, USER.encode())]


async def test_an_untrusted_certificate_is_refused(smtp_server: StartServer, tls: Tls) -> None:
    """With the default TLS context a self-signed server certificate stops the send."""
    recorder, port = smtp_server(tls_context=tls.server, require_starttls=True)
    mailer = SmtpMailer(f"smtp://127.0.0.1:{port}", sender=SENDER)
    with pytest.raises(ssl.SSLCertVerificationError):
        await mailer.send(code_mail())
    assert recorder.delivered == []


async def test_starttls_false_never_upgrades(smtp_server: StartServer, tls: Tls) -> None:
    """``?starttls=false`` sends in plain text even to a server that offers STARTTLS."""
    recorder, port = smtp_server(tls_context=tls.server)
    mailer = SmtpMailer(f"smtp://127.0.0.1:{port}?starttls=false", sender=SENDER, tls_context=tls.client)
    await mailer.send(code_mail())
    assert [d.tls for d in recorder.delivered] == [False]


async def test_starttls_true_refuses_a_server_without_it(smtp_server: StartServer) -> None:
    """``?starttls=true`` makes TLS required: a server that does not offer STARTTLS gets nothing."""
    recorder, port = smtp_server()
    mailer = SmtpMailer(f"smtp://127.0.0.1:{port}?starttls=true", sender=SENDER)
    with pytest.raises(aiosmtplib.SMTPException):
        await mailer.send(code_mail())
    assert recorder.delivered == []


async def test_smtps_speaks_tls_from_the_start(smtp_server: StartServer, tls: Tls) -> None:
    """An ``smtps://`` URL connects with implicit TLS."""
    recorder, port = smtp_server(ssl_context=tls.server)
    mailer = SmtpMailer(f"smtps://127.0.0.1:{port}", sender=SENDER, tls_context=tls.client)
    await mailer.send(code_mail())
    assert [d.tls for d in recorder.delivered] == [True]


@pytest.mark.parametrize(
    "url",
    [
        "http://mail.example",
        "smtp://",
        "smtps://mail.example?starttls=true",
        "smtp://mail.example?starttls=maybe",
        "smtp://mail.example?startls=false",
    ],
)
def test_the_mailer_refuses_a_bad_url(url: str) -> None:
    """A URL that is not a usable smtp:// or smtps:// one is refused when the mailer is built."""
    with pytest.raises(ValueError, match="SMTP URL"):
        SmtpMailer(url, sender=SENDER)


async def test_the_outbox_writes_an_eml_file_and_logs_where(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The outbox writes a private, time-named .eml file and logs its domain and file, never the address or code."""
    outbox = tmp_path / "data" / "outbox"
    with caplog.at_level(logging.INFO, logger="supportgate.mail"):
        await OutboxMailer(outbox, sender=SENDER).send(code_mail())
    [written] = list(outbox.iterdir())
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{8}\.eml", written.name)
    assert outbox.stat().st_mode & 0o777 == 0o700
    assert written.stat().st_mode & 0o777 == 0o600
    assert b"\r\n" in written.read_bytes()
    message = email.message_from_bytes(written.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    assert CODE in bodies(message)[0]
    domain = READER.rpartition("@")[2]
    assert [r.getMessage() for r in caplog.records] == [
        f"mail to a recipient at {domain}: Your sign-in code for News Example (outbox/{written.name})"
    ]
    assert READER not in caplog.text


def test_mailer_for_sends_over_smtp_when_a_url_is_set(tmp_path: Path) -> None:
    """``mailer_for`` builds an SMTP mailer for a configured URL and the outbox in the data dir otherwise."""
    assert isinstance(mailer_for(Settings(smtp_url="smtp://mail.example", data_dir=tmp_path)), SmtpMailer)
    outbox = mailer_for(Settings(data_dir=tmp_path))
    assert isinstance(outbox, OutboxMailer)
    assert outbox.directory == tmp_path / "outbox"


def test_an_unknown_language_falls_back_to_english() -> None:
    """A language with no templates, or a value that is no language tag, gets the English mail."""
    english = code_mail()
    for lang in ["de", "pt-BR", "../../etc", ""]:
        assert sign_in_code_mail(to=READER, code=CODE, minutes=10, site_name="News Example", lang=lang) == english


def test_the_html_escapes_what_it_is_given() -> None:
    """A site name with markup is escaped in the HTML body and kept as text in the plain one."""
    mail = no_support_mail(to=READER, site_name="<b>News</b> & Co", support_url=None)
    assert mail.html is not None
    assert "&lt;b&gt;News&lt;/b&gt; &amp; Co" in mail.html
    assert "<b>" not in mail.html
    assert "visit <b>News</b> & Co and look for how to support it" in mail.text


def test_without_a_site_or_support_url_the_mails_still_read_well() -> None:
    """With no site name the sign-in mail names supportgate and the no-support mail points to the referring site."""
    assert sign_in_code_mail(to=READER, code=CODE, minutes=1, site_name=None).subject == (
        "Your sign-in code for supportgate"
    )
    assert "valid for 1 minute." in sign_in_code_mail(to=READER, code=CODE, minutes=1, site_name=None).text
    mail = no_support_mail(to=READER, site_name=None, support_url=None)
    assert "visit the site you came from" in mail.text


def test_a_mail_repr_leaves_the_bodies_out() -> None:
    """The repr of a mail shows its recipient and subject but not the code in its bodies."""
    assert CODE not in repr(code_mail())


@pytest.mark.parametrize(
    "url",
    [
        "http://u:hunter2@mail.example",
        "smtp://u:hunter2@",
        "smtp://u:hunter2@mail.example:port",
        "smtp://u:hunter2@mail.example:99999",
        "smtp://u:hunter2@mail.example?starttls=yes",
        "smtps://u:hunter2@mail.example?starttls=true",
    ],
)
def test_a_bad_smtp_url_names_the_variable_and_hides_the_password(url: str) -> None:
    """A bad ``SUPPORTGATE_SMTP_URL`` stops the settings with a message that names it and redacts the password."""
    with pytest.raises(SettingsError, match="SUPPORTGATE_SMTP_URL") as raised:
        Settings.from_env({"SUPPORTGATE_SMTP_URL": url})
    assert "hunter2" not in str(raised.value)


@pytest.mark.parametrize("sender", ["supportgate", "News <news.example>", "@news.example"])
def test_a_mail_from_without_an_address_names_the_variable(sender: str) -> None:
    """A ``SUPPORTGATE_MAIL_FROM`` that holds no address stops the settings with a message naming it."""
    with pytest.raises(SettingsError, match="SUPPORTGATE_MAIL_FROM"):
        Settings.from_env({"SUPPORTGATE_MAIL_FROM": sender})


def test_mail_settings_are_read_from_the_environment() -> None:
    """The SMTP URL and sender come from their variables; without them mail goes to the outbox from no-reply."""
    settings = Settings.from_env(
        {"SUPPORTGATE_SMTP_URL": "smtps://u:p@mail.example:2465", "SUPPORTGATE_MAIL_FROM": SENDER}
    )
    assert (settings.smtp_url, settings.mail_from) == ("smtps://u:p@mail.example:2465", SENDER)
    defaults = Settings.from_env({})
    assert (defaults.smtp_url, defaults.mail_from) == (None, "supportgate <no-reply@localhost>")
