"""The database's health log: one line per kind per interval however failures interleave
with successes, and one line once it has stayed well for a few seconds. An injected clock."""

from __future__ import annotations

import logging

import pytest

from service.store.health import Health


def test_a_flapping_database_logs_once_per_kind_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="service.store.health")
    seconds = [100.0]
    health = Health(interval_seconds=10.0, stable_seconds=5.0, clock=lambda: seconds[0])
    # 223 refused writes over 12 s, each followed by a read that went through
    for _ in range(223):
        health.failed("disk_full", "POST /v1/jobs")
        health.succeeded()
        seconds[0] += 12 / 223
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines  # at 0 s and 10 s: no "available again" in between
    assert all(line.startswith("database disk full (POST /v1/jobs)") for line in lines)
    assert lines[1].endswith("; 186 failure(s) of this kind since the last such line")
    # well for 4.9 s: not yet said; for 5 s: said once, with what it missed since
    seconds[0] += 4.9 - 12 / 223
    health.succeeded()
    assert len(caplog.records) == 2
    seconds[0] += 0.1
    health.succeeded()
    health.succeeded()
    assert [r.getMessage() for r in caplog.records][2].startswith("database available again:")
    assert len(caplog.records) == 3 and "(36 more failures)" in caplog.records[2].getMessage()
    # a new outage is said at once
    health.failed("unreachable", "GET /v1/jobs")
    assert caplog.records[3].getMessage().startswith("database unreachable (GET /v1/jobs)")
