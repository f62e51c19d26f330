"""Poll one claimed processing job (the sweeper's work, and `POST /v1/jobs/{id}/refresh`)."""

from __future__ import annotations

import logging
from datetime import datetime

from service import metrics
from service.domain import changes
from service.domain.changes import Change, Note
from service.domain.jobs import Job
from service.provider.client import ProviderError, RetryableProviderError
from service.runtime.services import Runtime
from service.store.changes import Applied

log = logging.getLogger("service.poller")


async def poll_job(
    ctx: Runtime,
    job: Job,
    owner: str,
    source: str = "sweeper",
    notes: tuple[Note, ...] = (),
) -> Applied:
    """Poll the provider for `job` and apply what it says; `notes` ride with the change
    (who asked for a refresh)."""
    policy, record = ctx.policy, ctx.record

    async def apply(job: Job, change: Change, now: datetime, owner: str | None) -> Applied:
        return await record(job, change.with_notes(*notes), now, owner)

    now = ctx.clock()
    if changes.is_past_deadline(job, now, policy):
        log.warning("job %s timed out", job.public_id)
        return await apply(job, changes.timed_out(policy, source), now, owner)
    try:
        reply = await ctx.provider.fetch(job.fetch_result, job.provider_id)
    except ProviderError as exc:
        now = ctx.clock()
        retry_after = exc.retry_after if isinstance(exc, RetryableProviderError) else None
        change = changes.poll_failed(job, now, policy, source, exc.kind, str(exc), retry_after)
        log.warning(
            "poll of job %s failed (%s); next at %s",
            job.public_id,
            exc.kind,
            change.fields.next_poll_at,
        )
        metrics.POLLS.labels("error").inc()
        return await apply(job, change, now, owner)

    now = ctx.clock()
    change = changes.poll_answer(job, reply, now, policy, source)
    warned = any(n.kind == "warning" for n in change.notes)
    metrics.POLLS.labels(
        change.target.value if change.target else ("unknown" if warned else "processing")
    ).inc()
    if warned:
        metrics.UNKNOWN_REPLIES.labels(source).inc()
        log.warning("job %s: poll answered %s", job.public_id, reply.raw_status)
    applied = await apply(job, change, now, owner)
    if applied.changed and change.target is not None:
        metrics.RESULTS.labels("poll").inc()
    return applied
