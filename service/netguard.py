"""SSRF guard for client callback URLs: http(s) only, and never an address inside our own
network (loopback, private, link-local, multicast, reserved, cloud metadata) unless
ALLOW_PRIVATE_CALLBACKS is set. Names are resolved and every address checked, at creation
and again at delivery (against DNS rebinding)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

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


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    """Connects to the addresses that passed the check, whatever DNS says now; TLS still
    verifies the certificate against the URL's host name (SNI is unchanged)."""

    def __init__(self, addresses: list[Address]) -> None:
        self._addresses = addresses
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        last: Exception | None = None
        for address in self._addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout, OSError) as exc:
                last = exc
        raise httpcore.ConnectError(str(last) if last else "no address to connect to")

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not callback targets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def pinned_transport(addresses: list[Address]) -> httpx.AsyncHTTPTransport:
    """An httpx transport whose connections go only to `addresses` (against DNS rebinding
    between the check and the request)."""
    transport = httpx.AsyncHTTPTransport(retries=0)
    pool = transport._pool
    if not hasattr(pool, "_network_backend"):  # pragma: no cover - httpcore changed
        raise RuntimeError("cannot pin callback addresses with this httpcore version")
    pool._network_backend = _PinnedBackend(addresses)
    return transport
