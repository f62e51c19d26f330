"""When to call the provider next: pure functions of `now` (and a random source)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta


def deadline(started_at: datetime, timeout_seconds: float) -> datetime:
    """A job unfinished past this instant ends `timed_out`."""
    return started_at + timedelta(seconds=timeout_seconds)


def is_past_deadline(started_at: datetime, timeout_seconds: float, now: datetime) -> bool:
    return now >= deadline(started_at, timeout_seconds)


def first_poll_at(
    submitted_at: datetime, eta_seconds: float | None, grace_seconds: float
) -> datetime:
    """A processing job is overdue at `submitted_at + eta + grace`: the sweeper's first poll."""
    eta = max(eta_seconds or 0.0, 0.0)
    return submitted_at + timedelta(seconds=eta + grace_seconds)


def backoff_seconds(
    attempt: int,
    base_seconds: float,
    max_seconds: float,
    rng: random.Random | None = None,
    jitter: float = 0.2,
) -> float:
    """`base · 2^attempt`, capped at `max_seconds`, then spread by ±`jitter` (a fraction)."""
    raw: float = min(base_seconds * 2.0 ** min(max(attempt, 0), 60), max_seconds)
    r: float = (rng or random).uniform(-jitter, jitter)
    return max(raw * (1.0 + r), 0.0)


def next_poll_at(
    now: datetime,
    attempt: int,
    base_seconds: float,
    max_seconds: float,
    job_deadline: datetime,
    eta_seconds: float | None = None,
    rng: random.Random | None = None,
) -> datetime:
    """The poll after an unfinished answer: backoff, or the provider's fresh eta if later,
    never past the job's deadline (so the sweeper is there to time it out)."""
    delay = backoff_seconds(attempt, base_seconds, max_seconds, rng)
    if eta_seconds is not None and eta_seconds > delay:
        delay = min(eta_seconds, max_seconds)
    return min(now + timedelta(seconds=delay), job_deadline)


def retry_at(
    now: datetime,
    attempt: int,
    base_seconds: float,
    max_seconds: float,
    retry_after_seconds: float | None = None,
    rng: random.Random | None = None,
) -> datetime:
    """When to retry a provider call that failed retryably (429, 5xx, timeout)."""
    delay = backoff_seconds(attempt, base_seconds, max_seconds, rng)
    if retry_after_seconds is not None:
        delay = max(delay, retry_after_seconds)
    return now + timedelta(seconds=delay)
