"""Credentials in request headers: the one parser of ``Authorization: Bearer|DPoP <token>`` and of ``DPoP``."""

from __future__ import annotations

from typing import Literal

from litestar.connection import ASGIConnection

from supportgate.errors import InvalidDpopProof

__all__ = ["access_token", "bearer", "bearer_token", "dpop_proof"]


def bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer …`` header value, if it is one."""
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def bearer_token(connection: ASGIConnection) -> str | None:  # type: ignore[type-arg]
    """The token of the request's ``Authorization: Bearer`` header, if there is one."""
    return bearer(connection.headers.get("authorization"))


def access_token(connection: ASGIConnection) -> tuple[Literal["Bearer", "DPoP"], str] | None:  # type: ignore[type-arg]
    """The scheme and token of the request's ``Authorization: Bearer`` or ``Authorization: DPoP`` header, if any."""
    scheme, _, token = (connection.headers.get("authorization") or "").partition(" ")
    token = token.strip()
    if not token:
        return None
    if scheme.lower() == "bearer":
        return "Bearer", token
    if scheme.lower() == "dpop":
        return "DPoP", token
    return None


def dpop_proof(connection: ASGIConnection) -> str | None:  # type: ignore[type-arg]
    """The request's one ``DPoP`` header (RFC 9449), if it has one.

    A proof has no comma, so a value with one is two headers joined (as HTTP lets a proxy do).

    Raises:
        InvalidDpopProof: if the request has more than one.
    """
    proofs = [proof.strip() for value in connection.headers.getall("dpop", []) for proof in value.split(",")]
    if len(proofs) > 1:
        raise InvalidDpopProof(f"The request has {len(proofs)} DPoP headers; send exactly one proof.")
    return proofs[0] if proofs else None
