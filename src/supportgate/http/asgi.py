"""Reading a body and writing an answer for the endpoints that run as plain ASGI (decide)."""

from __future__ import annotations

from typing import cast

from litestar.exceptions import ClientException
from litestar.types import HTTPReceiveMessage, HTTPResponseBodyEvent, HTTPResponseStartEvent, Receive, Send

from supportgate.errors import PayloadTooLarge

__all__ = ["read_body", "send_answer"]


async def read_body(receive: Receive, content_length: str | None, *, limit: int) -> bytes:
    """The request body, refusing (413) one over ``limit`` bytes before or while reading it."""
    if content_length is not None and content_length.isdigit() and int(content_length) > limit:
        raise PayloadTooLarge("The request body is larger than this endpoint accepts.")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = cast("HTTPReceiveMessage", await receive())
        if message["type"] == "http.disconnect":
            raise ClientException("The client went away before sending the whole body.")
        chunk = message["body"]
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge("The request body is larger than this endpoint accepts.")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def send_answer(send: Send, status: int, body: bytes, headers: dict[str, str]) -> None:
    """Send a whole response: status, ``headers`` plus ``Content-Length``, and ``body``."""
    raw = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
    raw.append((b"content-length", str(len(body)).encode()))
    await send(HTTPResponseStartEvent(type="http.response.start", status=status, headers=raw))
    await send(HTTPResponseBodyEvent(type="http.response.body", body=body, more_body=False))
