"""SSRF guard for every URL a client or a provider hands us (callbacks, image URLs passed to
the provider, and the simulator's images and webhooks): http(s) only, and never an address
inside our own network (loopback, private, link-local, multicast, reserved, cloud metadata;
literal in any numeric form, or resolved) unless ALLOW_PRIVATE_CALLBACKS is set. Names are
resolved and every address checked, at creation and again at delivery (against DNS
rebinding)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import re
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud metadata endpoints that are not caught by the generic ranges everywhere.
METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


class UnsafeCallback(ValueError):
    """The URL may not be called back."""


class Unresolvable(UnsafeCallback):
    """The URL's host does not resolve (so it could not be reached anyway)."""


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


_LABEL = re.compile(r"(?!-)[A-Za-z0-9_\-\u0080-\uffff]{1,63}(?<!-)")


def literal_address(host: str) -> Address | None:
    """The address a host names literally, in any form a resolver takes as one: dotted,
    IPv6, or the old numeric IPv4 forms (`2130706433`, `0x7f.1`, `0177.0.0.1`, `127.1`),
    which inet_aton reads without asking DNS. None for a name."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    if host and all(c in "0123456789abcdefxABCDEFX." for c in host):
        with contextlib.suppress(OSError):
            return ipaddress.IPv4Address(socket.inet_aton(host))
    return None


def check_host(host: str) -> None:
    """A literal address, or a name whose every label is 1 to 63 characters and which IDNA
    can encode; else UnsafeCallback (never a UnicodeError from the resolver)."""
    if literal_address(host) is not None:
        return
    name = host[:-1] if host.endswith(".") else host
    if not name or len(name) > 253 or not name.isprintable():
        raise UnsafeCallback("has an invalid host name")
    if not all(_LABEL.fullmatch(label) for label in name.split(".")):
        raise UnsafeCallback("has an invalid host name")
    try:
        name.encode("idna")
    except UnicodeError:
        raise UnsafeCallback("has an invalid host name") from None


def split_callback(url: str) -> tuple[str, int]:
    if len(url) > 2048 or not url.isprintable():
        raise UnsafeCallback("must be a printable URL of at most 2048 characters")
    return _split(url)


def _split(url: str) -> tuple[str, int]:
    """(host, port) of an http(s) URL without credentials whose host has our shape."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeCallback("must be an http(s) URL with a host")
    if parts.username or parts.password:
        raise UnsafeCallback("must not carry credentials")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UnsafeCallback("has an invalid port") from None
    check_host(parts.hostname)
    return parts.hostname, port


async def resolve(host: str, port: int, timeout: float = 3.0) -> list[Address]:
    literal = literal_address(host)
    if literal is not None:
        return [literal]
    if host.rstrip(".").lower().rpartition(".")[2] == "invalid":
        # RFC 6761: resolvers should refuse .invalid at once; never ask the network.
        raise Unresolvable(f"host {host!r} does not resolve")
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout
        )
    except (OSError, TimeoutError, UnicodeError):
        raise Unresolvable(f"host {host!r} does not resolve") from None
    return [ipaddress.ip_address(info[4][0]) for info in infos]


async def check_callback(url: str, allow_private: bool) -> list[Address]:
    """The addresses `url` may be delivered to; raises UnsafeCallback otherwise. Deliver
    to one of these addresses (not to the name again) so the check is what gets used."""
    host, port = split_callback(url)
    addresses = await resolve(host, port)
    if not addresses:
        raise Unresolvable(f"host {host!r} does not resolve")
    if not allow_private:
        bad = [a for a in addresses if is_forbidden(a)]
        if bad:
            raise UnsafeCallback(
                "resolves to an address inside a private, loopback, link-local, multicast "
                "or metadata range; set ALLOW_PRIVATE_CALLBACKS to allow it"
            )
    return addresses


async def check_image(url: str, allow_private: bool) -> None:
    """An image URL the provider is to fetch: http(s), no credentials, and no address
    inside our network (literal, in any numeric form, or what the name resolves to) unless
    ALLOW_PRIVATE_CALLBACKS; raises UnsafeCallback. A name that does not resolve passes:
    the provider cannot fetch it either, and says so."""
    if not url.isprintable():
        raise UnsafeCallback("must be a printable URL")
    host, port = _split(url)
    if allow_private:
        return
    try:
        addresses = await resolve(host, port)
    except Unresolvable:
        return
    if any(is_forbidden(a) for a in addresses):
        raise UnsafeCallback(
            "names an address inside a private, loopback, link-local, multicast or metadata "
            "range; set ALLOW_PRIVATE_CALLBACKS to allow it"
        )


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


class _Stream(httpx.AsyncByteStream):
    def __init__(self, inner: Any) -> None:
        self._inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _httpx_errors():
            async for part in self._inner:
                yield part

    async def aclose(self) -> None:
        with _httpx_errors():
            await self._inner.aclose()


@contextlib.contextmanager
def _httpx_errors() -> Iterator[None]:
    """httpcore's exceptions as httpx's classes of the same name (httpx mirrors them)."""
    try:
        yield
    except httpcore.TimeoutException as exc:
        kind = getattr(httpx, type(exc).__name__, httpx.TimeoutException)
        raise kind(str(exc)) from exc
    except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol) as exc:
        kind = next(
            (getattr(httpx, c.__name__) for c in type(exc).__mro__ if hasattr(httpx, c.__name__)),
            httpx.TransportError,
        )
        raise kind(str(exc)) from exc


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One verifying context per process: building one loads the CA bundle (tens of
    milliseconds), which a client per callback or output would pay every time."""
    return httpx.create_ssl_context()


class PinnedTransport(httpx.AsyncBaseTransport):
    """An httpx transport over an httpcore connection pool whose network backend connects
    only to `addresses` (those that passed the check), against DNS rebinding between the
    check and the request. Built on public seams only: httpcore's `network_backend`."""

    def __init__(self, addresses: list[Address]) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=_ssl_context(),
            network_backend=_PinnedBackend(addresses),
            retries=0,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _httpx_errors():
            response = await self._pool.handle_async_request(core)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_Stream(response.stream),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


async def guarded_client(url: str, allow_private: bool, timeout: float) -> httpx.AsyncClient:
    """A client for `url` that connects only to addresses the guard allowed (it raises
    UnsafeCallback otherwise), follows no redirects, and reads no proxy settings."""
    addresses = await check_callback(url, allow_private)
    return httpx.AsyncClient(
        transport=PinnedTransport(addresses),
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        trust_env=False,
    )
