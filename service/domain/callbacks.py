"""Callbacks to clients, per the Standard Webhooks specification: event payloads, the
retry schedule, and signatures. Pure code: `now` and secrets are passed in."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from service.domain.jobs import Job
from service.domain.states import JobStatus
from service.domain.views import job_json, rfc3339

JITTER = 0.1

EVENT_TYPES = {
    JobStatus.SUCCEEDED: "job.succeeded",
    JobStatus.FAILED: "job.failed",
    JobStatus.TIMED_OUT: "job.timed_out",
    JobStatus.CANCELED: "job.canceled",
}

PENDING, FAILING, DELIVERED, DEAD = "pending", "failing", "delivered", "dead"


def new_secret() -> str:
    """`whsec_` + standard base64 of 32 random bytes, as the specification's libraries expect."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def new_webhook_id() -> str:
    return "msg_" + secrets.token_hex(16)


def payload(job: Job, now: datetime) -> tuple[str, str]:
    """(event type, body) for a job in a terminal state: the body every attempt of the
    event sends, built once, at the first attempt. `timestamp` is when the job finished."""
    event_type = EVENT_TYPES[job.status]
    when = job.completed_at or now
    body = {"type": event_type, "timestamp": rfc3339(when), "data": job_json(job)}
    return event_type, json.dumps(body, separators=(",", ":"), sort_keys=True)


@dataclass(frozen=True)
class Attempt:
    """One delivery attempt, judged: what the outbox row and the job's event record."""

    outcome: str  # delivered, failing, dead
    status_code: int | None
    error: str | None
    latency_ms: float
    next_attempt_at: datetime | None
    advance: bool  # one step further along the retry schedule


def judge(
    step: int,
    status_code: int | None,
    error: str | None,
    latency_ms: float,
    now: datetime,
    schedule: Sequence[float],
    *,
    unsafe: bool = False,
    retry_after_seconds: float | None = None,
    rng: random.Random | None = None,
) -> Attempt:
    """A 2xx delivers; a 410 or a URL turned unsafe kills the delivery; anything else
    (another status, a timeout, a connection error) retries on the schedule until it is
    spent (then dead), waiting at least a 429/503's Retry-After."""
    if status_code is not None and 200 <= status_code < 300:
        return Attempt(DELIVERED, status_code, error, latency_ms, None, False)
    if status_code == 410 or unsafe:
        return Attempt(DEAD, status_code, error, latency_ms, None, False)
    later = next_attempt(now, step, schedule, retry_after_seconds, rng)
    return Attempt(FAILING if later else DEAD, status_code, error, latency_ms, later, True)


def _key(secret: str) -> bytes:
    raw = secret.removeprefix("whsec_")
    return base64.b64decode(raw + "=" * (-len(raw) % 4))


def sign(secret: str, webhook_id: str, timestamp: int, body: str) -> str:
    mac = hmac.new(_key(secret), f"{webhook_id}.{timestamp}.{body}".encode(), hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def signature_header(secrets_: Iterable[str], webhook_id: str, timestamp: int, body: str) -> str:
    """One `v1,` signature per live secret, space-separated (rotation's grace period)."""
    return " ".join(sign(s, webhook_id, timestamp, body) for s in secrets_)


def live_secrets(
    current: str, previous: str | None, previous_expires_at: datetime | None, now: datetime
) -> list[str]:
    if previous and previous_expires_at and now < previous_expires_at:
        return [current, previous]
    return [current]


def next_attempt(
    now: datetime,
    step: int,
    schedule: Sequence[float],
    retry_after_seconds: float | None = None,
    rng: random.Random | None = None,
) -> datetime | None:
    """When to try again after failed attempt number `step` (0-based), or None when the
    schedule is spent (the delivery is dead). A `Retry-After` longer than the schedule's
    delay wins."""
    if step + 1 >= len(schedule):
        return None
    delay = schedule[step + 1] * (1 + (rng or random).uniform(-JITTER, JITTER))
    if retry_after_seconds is not None:
        delay = max(delay, min(retry_after_seconds, 86400.0))
    return now + timedelta(seconds=delay)


def parse_schedule(text: str) -> tuple[float, ...]:
    values = tuple(float(part) for part in text.split(",") if part.strip())
    if not values or any(v < 0 for v in values):
        raise ValueError("CALLBACK_RETRY_SCHEDULE: comma-separated seconds, none negative")
    return values
