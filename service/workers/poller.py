"""Poll one claimed processing job (the sweeper's work, and `POST /v1/jobs/{id}/refresh`)."""

from __future__ import annotations

import logging

from service import metrics
from service.domain import scheduling
from service.domain.jobs import Job
from service.domain.outcomes import TIMED_OUT, outcome_of
from service.domain.states import JobStatus
from service.provider.client import ProviderError, RetryableProviderError
from service.store.manager import Applied, Note
from service.workers.context import RELEASE, WorkContext

log = logging.getLogger("service.poller")


async def poll_job(ctx: WorkContext, job: Job, owner: str, source: str = "sweeper") -> Applied:
    s = ctx.settings
    now = ctx.clock()
    deadline = scheduling.deadline(job.clock_start, s.job_timeout_seconds)
    if now >= deadline:
        log.warning("job %s timed out", job.public_id)
        return await ctx.store.apply(
            job,
            now,
            source=source,
            to_status=JobStatus.TIMED_OUT,
            values={
                "error_code": TIMED_OUT,
                "error_message": f"no result within {s.job_timeout_seconds:g} s of submission",
            },
            owner=owner,
        )
    try:
        reply = await ctx.provider.fetch(job.fetch_result, job.provider_id)
    except ProviderError as exc:
        now = ctx.clock()
        retry_after = exc.retry_after if isinstance(exc, RetryableProviderError) else None
        when = scheduling.retry_at(
            now,
            job.attempts,
            s.retry_backoff_base_seconds,
            s.retry_backoff_max_seconds,
            retry_after,
            not_after=deadline,
        )
        log.warning("poll of job %s failed (%s); next at %s", job.public_id, exc.kind, when)
        metrics.POLLS.labels("error").inc()
        return await ctx.store.apply(
            job,
            now,
            source=source,
            values={"next_poll_at": when, **RELEASE},
            owner=owner,
            increments=("attempts",),
            notes=[Note("poll_error", source, {"kind": exc.kind, "message": str(exc)})],
        )

    now = ctx.clock()
    outcome = outcome_of(reply)
    notes = [Note("poll", source, {"reply": reply.raw})]
    values: dict[str, object] = {"provider_status": reply.raw_status}
    metrics.POLLS.labels(
        outcome.to_status.value
        if outcome.to_status
        else ("unknown" if outcome.warning else "processing")
    ).inc()
    if outcome.warning:
        metrics.UNKNOWN_REPLIES.labels(source).inc()
        log.warning("job %s: poll answered %s", job.public_id, outcome.warning)
        notes.append(Note("warning", source, {"warning": outcome.warning}))
    if outcome.to_status is JobStatus.SUCCEEDED:
        values["output"] = list(outcome.output)
    elif outcome.to_status is JobStatus.FAILED:
        values.update(error_code=outcome.error_code, error_message=outcome.error_message)
    else:
        values.update(
            next_poll_at=scheduling.next_poll_at(
                now,
                job.attempts,
                s.poll_backoff_base_seconds,
                s.poll_backoff_max_seconds,
                deadline,
                outcome.eta_seconds,
            ),
            **RELEASE,
        )
    applied = await ctx.store.apply(
        job,
        now,
        source=source,
        to_status=outcome.to_status,
        values=values,
        owner=owner,
        notes=notes,
        increments=("polls", "attempts") if outcome.to_status is None else ("polls",),
    )
    if applied.changed and outcome.to_status is not None:
        metrics.RESULTS.labels("poll").inc()
    return applied
