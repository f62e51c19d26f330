"""When to call the provider next: pure functions of `now` (and a random source)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

# However long the provider says to wait (an eta or a retry_after of 1e12), no date moves
# further than this; callers clamp it to the job's deadline besides.
MAX_DELAY_SECONDS = 366 * 24 * 3600.0


def _after(now: datetime, seconds: float, not_after: datetime | None = None) -> datetime:
    """`now + seconds`, clamped to [now, now + MAX_DELAY_SECONDS] and to `not_after`."""
    at = now + timedelta(seconds=min(max(seconds, 0.0), MAX_DELAY_SECONDS))
    return at if not_after is None else min(at, not_after)


def deadline(started_at: datetime, timeout_seconds: float) -> datetime:
    """A job unfinished past this instant ends `timed_out`."""
    return started_at + timedelta(seconds=timeout_seconds)


def is_past_deadline(started_at: datetime, timeout_seconds: float, now: datetime) -> bool:
    return now >= deadline(started_at, timeout_seconds)


def first_poll_at(
    submitted_at: datetime,
    eta_seconds: float | None,
    grace_seconds: float,
    not_after: datetime | None = None,
) -> datetime:
    """A processing job is overdue at `submitted_at + eta + grace`: the sweeper's first poll
    (never after `not_after`, the job's deadline, however large the eta)."""
    eta = min(max(eta_seconds or 0.0, 0.0), MAX_DELAY_SECONDS)
    return _after(submitted_at, eta + grace_seconds, not_after)


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
    return _after(now, delay, job_deadline)


def retry_at(
    now: datetime,
    attempt: int,
    base_seconds: float,
    max_seconds: float,
    retry_after_seconds: float | None = None,
    rng: random.Random | None = None,
    not_after: datetime | None = None,
) -> datetime:
    """When to retry a provider call that failed retryably (429, 5xx, timeout): backoff, or
    the provider's retry_after if longer, never past `not_after` (the job's deadline)."""
    delay = backoff_seconds(attempt, base_seconds, max_seconds, rng)
    if retry_after_seconds is not None:
        delay = max(delay, retry_after_seconds)
    return _after(now, delay, not_after)


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """A `Retry-After` header: delay-seconds, or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return min(float(text[:12]), MAX_DELAY_SECONDS)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        return None
    return min(max((when - now).total_seconds(), 0.0), MAX_DELAY_SECONDS)
