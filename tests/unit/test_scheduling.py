"""Poll scheduling: pure functions of `now`, pinned with freezegun."""

import random
from datetime import UTC, datetime, timedelta

from freezegun import freeze_time

from service.clock import utcnow
from service.domain import scheduling

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_first_poll_is_eta_plus_grace_after_submission() -> None:
    assert scheduling.first_poll_at(T0, 146.58, 10) == T0 + timedelta(seconds=156.58)


def test_first_poll_without_eta_waits_the_grace_only() -> None:
    assert scheduling.first_poll_at(T0, None, 10) == T0 + timedelta(seconds=10)


def test_backoff_doubles_and_is_capped() -> None:
    no_jitter = [scheduling.backoff_seconds(a, 5, 300, jitter=0) for a in range(8)]
    assert no_jitter == [5, 10, 20, 40, 80, 160, 300, 300]


def test_backoff_jitter_stays_within_bounds_and_spreads() -> None:
    rng = random.Random(7)
    values = [scheduling.backoff_seconds(3, 5, 300, rng) for _ in range(200)]
    assert all(32 <= v <= 48 for v in values)
    assert len({round(v, 3) for v in values}) > 50


@freeze_time("2026-11-25 12:00:00")
def test_next_poll_uses_the_later_of_backoff_and_fresh_eta() -> None:
    now = utcnow()
    far = now + timedelta(hours=1)
    rng = random.Random(1)
    soon = scheduling.next_poll_at(now, 0, 5, 300, far, eta_seconds=None, rng=rng)
    assert now + timedelta(seconds=4) <= soon <= now + timedelta(seconds=6)
    later = scheduling.next_poll_at(now, 0, 5, 300, far, eta_seconds=120, rng=rng)
    assert later == now + timedelta(seconds=120)


@freeze_time("2026-11-25 12:00:00")
def test_next_poll_never_passes_the_deadline() -> None:
    now = utcnow()
    deadline = now + timedelta(seconds=30)
    assert scheduling.next_poll_at(now, 10, 5, 300, deadline) == deadline


def test_deadline_and_timeout() -> None:
    assert scheduling.deadline(T0, 3600) == T0 + timedelta(hours=1)
    assert not scheduling.is_past_deadline(T0, 3600, T0 + timedelta(seconds=3599))
    assert scheduling.is_past_deadline(T0, 3600, T0 + timedelta(seconds=3600))


def test_retry_honours_retry_after_when_longer() -> None:
    at = scheduling.retry_at(T0, 0, 2, 300, retry_after_seconds=60, rng=random.Random(0))
    assert at == T0 + timedelta(seconds=60)


def test_an_enormous_eta_or_retry_after_is_clamped_to_the_deadline() -> None:
    deadline = T0 + timedelta(hours=1)
    assert scheduling.first_poll_at(T0, 1e12, 10, deadline) == deadline
    assert scheduling.first_poll_at(T0, 1e308, 10) == T0 + timedelta(
        seconds=scheduling.MAX_DELAY_SECONDS
    )
    assert scheduling.retry_at(T0, 0, 2, 300, 1e12, not_after=deadline) == deadline
    assert scheduling.next_poll_at(T0, 3, 5, 300, deadline, eta_seconds=1e300) <= deadline


def test_retry_after_takes_seconds_or_an_http_date() -> None:
    assert scheduling.retry_after_seconds("120", T0) == 120
    assert scheduling.retry_after_seconds("Wed, 25 Nov 2026 12:02:00 GMT", T0) == 120
    assert scheduling.retry_after_seconds("Wed, 25 Nov 2026 11:00:00 GMT", T0) == 0
    assert scheduling.retry_after_seconds("9" * 400, T0) == scheduling.MAX_DELAY_SECONDS
    for nonsense in ("", None, "soon", "²", "-5", "Wed, 99 Nov 2026 12:02:00 GMT"):
        assert scheduling.retry_after_seconds(nonsense, T0) is None
