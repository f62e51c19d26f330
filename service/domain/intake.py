"""What happens to a provider webhook before it is applied: a token stops working once its
job has been finished for a grace period, and a job keeps a bounded number of bodies."""

from __future__ import annotations

from datetime import datetime, timedelta

from service.domain.jobs import Job
from service.domain.states import TERMINAL

WEBHOOK_BODIES_KEPT = 10  # per job; later webhooks that change nothing are only counted


def token_expired(job: Job, now: datetime, grace_seconds: float) -> bool:
    """A leaked webhook URL is useless once its job has been terminal for the grace period:
    it is refused like an unknown token."""
    return (
        job.status in TERMINAL
        and job.completed_at is not None
        and now - job.completed_at > timedelta(seconds=grace_seconds)
    )


def keeps_body(webhooks_received: int, changes_state: bool) -> bool:
    """Store this webhook's raw body? Always when it moves the job; else only the first
    WEBHOOK_BODIES_KEPT webhooks of the job (counting this one)."""
    return changes_state or webhooks_received <= WEBHOOK_BODIES_KEPT
