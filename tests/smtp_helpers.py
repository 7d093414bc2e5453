"""A real SMTP server for tests (aiosmtpd) that keeps what it is given, or refuses it."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage

from aiosmtpd import smtp as smtpd
from aiosmtpd.controller import Controller

from tests.processes import free_port


@dataclass
class Delivered:
    """One mail as the server took it: the envelope, the parsed message, and how the session looked."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    tls: bool
    login: bytes | None


@dataclass
class Recorder:
    """An aiosmtpd handler that keeps every mail it is given."""

    delivered: list[Delivered] = field(default_factory=list)
    attempts: int = 0
    """How many mails were offered, taken or not."""
    refuse: str | None = None
    """An SMTP reply to refuse every mail with (``451 try again later``), or None to take them."""

    async def handle_DATA(self, server: smtpd.SMTP, session: smtpd.Session, envelope: smtpd.Envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        """Keep the mail and accept it, or refuse it while ``refuse`` is set."""
        self.attempts += 1
        if self.refuse is not None:
            return self.refuse
        content = envelope.original_content or b""
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        auth = session.auth_data
        self.delivered.append(
            Delivered(
                mail_from=envelope.mail_from or "",
                rcpt_tos=list(envelope.rcpt_tos),
                message=message,
                tls=server.transport is not None and server.transport.get_extra_info("ssl_object") is not None,
                login=auth.login if isinstance(auth, smtpd.LoginPassword) else None,
            )
        )
        return "250 OK"


StartServer = Callable[..., tuple[Recorder, int]]


StartServer = Callable[..., tuple["Recorder", int]]
"""The ``smtp_server`` fixture: start a server with aiosmtpd options, get its recorder and port."""


@dataclass
class SmtpServers:
    """Starts aiosmtpd servers on free local ports and stops them all at the end."""

    controllers: list[Controller] = field(default_factory=list)

    def __call__(self, **options: object) -> tuple[Recorder, int]:
        """A new server with aiosmtpd ``options``: its recorder and its port."""
        recorder = Recorder()
        port = free_port()
        controller = Controller(recorder, hostname="127.0.0.1", port=port, **options)
        controller.start()
        self.controllers.append(controller)
        return recorder, port

    def stop(self) -> None:
        """Stop every server started."""
        for controller in self.controllers:
            controller.stop()
