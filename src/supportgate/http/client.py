"""Where a request came from: the one place every feature asks for the client's address.

Behind a load balancer the connection's peer is the balancer, and every reader would share its
rate limits. A peer in ``SUPPORTGATE_TRUSTED_PROXIES`` is believed about whom it forwarded for:
its ``Forwarded`` (RFC 7239) or ``X-Forwarded-For`` is walked from the right, past the trusted
proxies, and the first hop that is not one is the client. What a client wrote further left is
never read, so it cannot choose its own address. A hop that is malformed or hidden (``unknown``,
``_hidden``) ends the walk at the last address that was vouched for.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence

from litestar.types import Scope

from supportgate.settings import Network, Settings

__all__ = ["client_ip", "forwarded_client"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_TCHARS = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"  # RFC 7230 token
_PAIR = re.compile(rf'\s*({_TCHARS})=({_TCHARS}|"(?:[^"\\]|\\.)*")\s*')
_PORT = r"(?::(?:[0-9]{1,5}|_[A-Za-z0-9._-]+))?"
_BRACKETED = re.compile(rf"\[([0-9A-Fa-f:.]+)\]{_PORT}")
_IPV4 = re.compile(rf"([0-9.]+){_PORT}")


def client_ip(scope: Scope) -> str:
    """The client's address, for rate limits and crawler ranges: the peer, or whom a trusted proxy forwarded for.

    ``"unknown"`` when the connection has no peer address (a unix socket).
    """
    settings: Settings = scope["app"].state.settings
    client = scope.get("client")
    return forwarded_client(client[0] if client else "", scope["headers"], settings.trusted_proxies)


def forwarded_client(peer: str, headers: Iterable[tuple[bytes, bytes]], trusted: Sequence[Network]) -> str:
    """The client behind ``peer``, as the proxies in ``trusted`` say in ``headers`` (ASGI's name-value pairs).

    When a request carries both headers and they name different clients, neither is believed:
    a proxy that writes one passes the other through from the client untouched.
    """
    peer_address = _address(peer)
    if peer_address is None:
        return peer or "unknown"
    if not _is_trusted(peer_address, trusted):
        return str(peer_address)
    forwarded: list[IPAddress | None] = []
    forwarded_for: list[IPAddress | None] = []
    for name, value in headers:
        # Each line on its own: a quote a client left open must not swallow what a proxy added.
        if name == b"forwarded":
            forwarded += _forwarded_hops(value.decode("latin-1"))
        elif name == b"x-forwarded-for":
            forwarded_for += _forwarded_for_hops(value.decode("latin-1"))
    found = {_walk(peer_address, hops, trusted) for hops in (forwarded, forwarded_for) if hops}
    return str(found.pop() if len(found) == 1 else peer_address)


def _walk(peer: IPAddress, hops: Sequence[IPAddress | None], trusted: Sequence[Network]) -> IPAddress:
    """From the right: the first hop no trusted proxy is at, or the last good one before a bad hop."""
    last_good = peer
    for hop in reversed(hops):
        if hop is None:
            return last_good
        if not _is_trusted(hop, trusted):
            return hop
        last_good = hop
    return last_good


def _is_trusted(address: IPAddress, trusted: Sequence[Network]) -> bool:
    return any(address in network for network in trusted)


def _forwarded_for_hops(value: str) -> list[IPAddress | None]:
    """``X-Forwarded-For``: addresses, some proxies add a port (``[v6]:port``, ``v4:port``)."""
    return [_node(item.strip(), bare_ipv6=True) for item in value.split(",")]


def _forwarded_hops(value: str) -> list[IPAddress | None]:
    """``Forwarded``: the ``for=`` of each element."""
    return [_forwarded_for(element) for element in _split(value, ",")]


def _forwarded_for(element: str) -> IPAddress | None:
    """The node an element is ``for=``; None if it names none, names two, or does not parse."""
    nodes = []
    for pair in _split(element, ";"):
        if not pair.strip():
            continue
        match = _PAIR.fullmatch(pair)
        if match is None:
            return None
        if match[1].lower() == "for":
            nodes.append(_unquote(match[2]))
    return _node(nodes[0], bare_ipv6=False) if len(nodes) == 1 else None


def _split(value: str, separator: str) -> list[str]:
    """``value`` split at ``separator`` outside quoted strings (RFC 7230's quoted-string, escapes included)."""
    parts, start, quoted, escaped = [], 0, False, False
    for index, char in enumerate(value):
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append(value[start:index])
            start = index + 1
    parts.append(value[start:])
    return parts


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def _node(text: str, *, bare_ipv6: bool) -> IPAddress | None:
    """The address of a node (``192.0.2.4``, ``192.0.2.4:80``, ``[2001:db8::1]:80``); None if hidden or bad."""
    bracketed = _BRACKETED.fullmatch(text)
    if bracketed:
        return _address(bracketed[1])
    ipv4 = _IPV4.fullmatch(text)
    if ipv4:
        return _address(ipv4[1])
    return _address(text) if bare_ipv6 and ":" in text else None


def _address(text: str) -> IPAddress | None:
    """``text`` as an address, an IPv4-mapped IPv6 one as its IPv4; None if it is none."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
