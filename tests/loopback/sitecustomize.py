"""Tests never leave the machine: an audit hook in every Python process of the test suite
refuses (and records) any connection to, or name lookup of, anything but loopback.

The test process installs it from `tests/conftest.py`; every Python process a test starts
loads this file as `sitecustomize` through PYTHONPATH (set by the conftest), and appends
what it refused to the file named by OUTPAINT_LOOPBACK_LOG, which the suite checks after
every test. uvloop is kept out so that every socket goes through Python's audited calls.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from typing import Any

LOG_ENV = "OUTPAINT_LOOPBACK_LOG"
violations: list[str] = []


def is_loopback(host: Any) -> bool:
    """Loopback and unspecified addresses, `localhost`, and names under `.invalid` (RFC
    6761: they never resolve)."""
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    name = str(host).strip("[]").lower().rstrip(".")
    if name in ("", "localhost", "invalid") or name.endswith((".localhost", ".invalid")):
        return True
    try:
        address = ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified


def _refuse(what: str) -> None:
    line = f"pid {os.getpid()}: {what}"
    violations.append(line)
    path = os.environ.get(LOG_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as log:
            log.write(line + "\n")
    raise ConnectionRefusedError(f"refused by the tests' loopback guard: {what}")


LOOKUPS = frozenset(
    {
        "socket.getaddrinfo",
        "socket.gethostbyname",
        "socket.gethostbyname_ex",
        "socket.gethostbyaddr",
    }
)


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event in ("socket.connect", "socket.sendto"):
        address = args[1]
        if isinstance(address, tuple) and address and not is_loopback(address[0]):
            _refuse(f"{event} {address!r}")
    elif event in LOOKUPS and not is_loopback(args[0]):
        _refuse(f"{event} {args[0]!r}")


def install() -> None:
    """Once per process (audit hooks cannot be removed)."""
    if getattr(sys, "_outpaint_loopback_guard", False):
        return
    sys._outpaint_loopback_guard = True  # type: ignore[attr-defined]
    sys.addaudithook(_hook)
    sys.modules.setdefault("uvloop", None)  # type: ignore[arg-type]


if os.environ.get(LOG_ENV):
    install()
