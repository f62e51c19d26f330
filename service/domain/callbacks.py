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
from datetime import datetime, timedelta

from service.domain.jobs import Job
from service.domain.states import JobStatus
from service.domain.views import job_json, rfc3339

# Immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h: eight attempts over ~27.6 h.
DEFAULT_SCHEDULE: tuple[float, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
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
    """(event type, body) for a job that just reached a terminal state."""
    event_type = EVENT_TYPES[job.status]
    body = {"type": event_type, "timestamp": rfc3339(now), "data": job_json(job)}
    return event_type, json.dumps(body, separators=(",", ":"), sort_keys=True)


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
