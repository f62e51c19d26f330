"""The provider circuit: closed, open after outages in a row, half-open with one probe that
always settles."""

from __future__ import annotations

from service.domain.circuit import Circuit, State


def opened(now: float = 0.0) -> Circuit:
    c = Circuit(threshold=2, open_seconds=1.0, max_open_seconds=8.0, probe_seconds=30.0)
    c.failed("timeout", now)
    assert c.failed("connection", now) and c.state is State.OPEN
    return c


def test_opens_after_outages_in_a_row_only() -> None:
    c = Circuit(threshold=2)
    c.failed("timeout", 0)
    c.succeeded(0)
    c.failed("timeout", 0)
    assert c.state is State.CLOSED
    c.failed("server_error", 0)
    assert c.state is State.OPEN


def test_half_open_grants_one_probe_and_its_success_closes() -> None:
    c = opened()
    assert c.capacity(0.5, 8) == 0
    assert c.capacity(1.0, 8) == 1 and c.state is State.HALF_OPEN
    assert c.capacity(1.1, 8) == 0  # the probe is out
    assert c.succeeded(1.2) and c.state is State.CLOSED
    assert c.capacity(1.3, 8) == 8


def test_a_failed_probe_opens_again_for_longer() -> None:
    c = opened()
    assert c.capacity(1.0, 1) == 1
    assert c.failed("timeout", 1.0)
    assert c.state is State.OPEN and c.seconds_until_probe(1.0) == 2.0


def test_a_probe_answered_with_a_non_outage_failure_settles_it() -> None:
    """A 429, a bad reply or a redirect shows the provider is there: the circuit closes
    instead of staying half-open with its probe out for ever."""
    for kind in ("rate_limited", "bad_reply", "redirect"):
        c = opened()
        assert c.capacity(1.0, 4) == 1
        assert not c.failed(kind, 1.1)
        assert c.state is State.CLOSED and not c.probing
        assert c.capacity(1.2, 4) == 4


def test_a_probe_that_never_settles_is_replaced_after_probe_seconds() -> None:
    c = opened()
    assert c.capacity(1.0, 4) == 1  # taken, and then never reported (a skipped job)
    assert c.capacity(20.0, 4) == 0
    assert c.capacity(31.0, 4) == 1  # a new probe
    assert c.succeeded(31.5) and c.state is State.CLOSED
