"""The suite's own guard: nothing a test runs may reach past loopback."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from tests import loopback_guard


def test_a_connection_past_loopback_is_refused_and_recorded() -> None:
    before = len(loopback_guard.refusals())
    with socket.socket() as sock, pytest.raises(ConnectionRefusedError, match="loopback guard"):
        sock.connect(("192.0.2.1", 9))  # TEST-NET-1: refused before any packet is sent
    assert len(loopback_guard.refusals()) == before + 1
    loopback_guard.forget_last()


def test_a_name_lookup_is_refused_unless_it_is_local_or_invalid() -> None:
    assert socket.getaddrinfo("localhost", 80)
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("outpaint.invalid", 80)  # allowed, and never resolves
    with pytest.raises(ConnectionRefusedError):
        socket.getaddrinfo("outpaint.test", 80)
    loopback_guard.forget_last()


def test_processes_the_tests_start_carry_the_guard() -> None:
    code = "import socket; socket.create_connection(('192.0.2.1', 9), timeout=1)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode != 0 and "loopback guard" in done.stderr
    assert "192.0.2.1" in loopback_guard.refusals()[-1]
    loopback_guard.forget_last()
