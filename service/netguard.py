"""SSRF guard for client callback URLs: http(s) only, and never an address inside our own
network (loopback, private, link-local, multicast, reserved, cloud metadata) unless
ALLOW_PRIVATE_CALLBACKS is set. Names are resolved and every address checked, at creation
and again at delivery (against DNS rebinding)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud metadata endpoints that are not caught by the generic ranges everywhere.
METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


class UnsafeCallback(ValueError):
    """The URL may not be called back."""


def is_forbidden(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        address in METADATA
        or address.is_multicast
        or address.is_loopback
        or address.is_link_local
        or address.is_private
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def split_callback(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeCallback("must be an http(s) URL with a host")
    if parts.username or parts.password:
        raise UnsafeCallback("must not carry credentials")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UnsafeCallback("has an invalid port") from None
    return parts.hostname, port


async def resolve(host: str, port: int, timeout: float = 3.0) -> list[Address]:
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout
        )
    except (OSError, TimeoutError):
        raise UnsafeCallback(f"host {host!r} does not resolve") from None
    return [ipaddress.ip_address(info[4][0]) for info in infos]


async def check_callback(url: str, allow_private: bool) -> list[Address]:
    """The addresses `url` may be delivered to; raises UnsafeCallback otherwise. Deliver
    to one of these addresses (not to the name again) so the check is what gets used."""
    host, port = split_callback(url)
    addresses = await resolve(host, port)
    if not addresses:
        raise UnsafeCallback(f"host {host!r} does not resolve")
    if not allow_private:
        bad = [a for a in addresses if is_forbidden(a)]
        if bad:
            raise UnsafeCallback(
                "resolves to an address inside a private, loopback, link-local, multicast "
                "or metadata range; set ALLOW_PRIVATE_CALLBACKS to allow it"
            )
    return addresses
