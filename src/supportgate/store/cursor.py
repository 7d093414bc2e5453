"""Opaque pagination cursors: the last listed index member, base64url-encoded."""

from __future__ import annotations

import base64
import binascii

from supportgate.errors import BadRequest

__all__ = ["decode_cursor", "encode_cursor"]


def encode_cursor(member: str) -> str:
    """The cursor that resumes a listing after ``member``."""
    return base64.urlsafe_b64encode(member.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The index member a cursor stands for; BadRequest if it is not one of ours."""
    try:
        member = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        member = ""
    if not member or not member.isprintable() or len(member) > 200 or "(" in member or "[" in member:
        raise BadRequest(f"cursor: {cursor[:40]!r} is not a cursor this listing returned")
    return member
