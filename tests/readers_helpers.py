"""Helpers for tests that sign readers in through the HTTP API, reading codes from the outbox."""

from __future__ import annotations

import asyncio
import email
import re
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

Client = AsyncTestClient[Litestar]
WELCOME_SUBJECT = "Your support is active"
"""How the welcome mail's subject starts: the sign-in helpers pass over it."""


async def mails_to(
    outbox: Path, address: str, *, count: int = 1, timeout: float = 10, welcome: bool = False
) -> list[EmailMessage]:
    """The mails sent to ``address``, oldest first, once there are ``count`` of them; welcome mails only if asked."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = []
        for path in sorted(outbox.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns) if outbox.is_dir() else []:
            message = email.message_from_bytes(path.read_bytes(), policy=default)
            if message["To"] == address and (welcome or not str(message["Subject"]).startswith(WELCOME_SUBJECT)):
                found.append(message)
        if len(found) >= count or asyncio.get_running_loop().time() > deadline:
            assert len(found) >= count, f"{len(found)} mail(s) to {address} in the outbox, expected {count}"
            return found
        await asyncio.sleep(0.02)


def body(message: EmailMessage) -> str:
    """The plain-text body of a mail."""
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


async def emailed_code(outbox: Path, address: str, *, nth: int = 1) -> str:
    """The sign-in code in the ``nth`` mail to ``address``."""
    message = (await mails_to(outbox, address, count=nth))[nth - 1]
    match = re.search(r"\b(\d{6})\b", body(message))
    assert match, body(message)
    return match.group(1)


async def sign_in(
    client: Client, outbox: Path, address: str, *, device: str = "Test browser", nth: int = 1
) -> dict[str, Any]:
    """Ask for a code, read it from the outbox and verify it; the sign-in answer."""
    asked = await client.post("/v1/auth/code/request", json={"email": address})
    assert asked.status_code == 202, asked.text
    code = await emailed_code(outbox, address, nth=nth)
    answer = await client.post("/v1/auth/code/verify", json={"email": address, "code": code, "device": device})
    assert answer.status_code == 200, answer.text
    signed_in: dict[str, Any] = answer.json()
    return signed_in
