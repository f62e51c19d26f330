"""Submit one claimed queued job to ModelsLab and record what it said."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from service import metrics
from service.domain import scheduling
from service.domain.jobs import Job
from service.domain.outcomes import PROVIDER_REJECTED, TIMED_OUT, outcome_of
from service.domain.requests import JobRequest
from service.domain.states import JobStatus
from service.domain.tokens import make_token
from service.provider.client import ProviderRejected, RetryableProviderError
from service.store.manager import Note
from service.workers.context import RELEASE, WorkContext

log = logging.getLogger("service.submitter")


def webhook_url(ctx: WorkContext, job: Job) -> str:
    return f"{ctx.settings.base_url}/webhooks/modelslab/{make_token(ctx.webhook_secret, job.id)}"


async def submit_job(ctx: WorkContext, job: Job, owner: str) -> None:
    s = ctx.settings
    now = ctx.clock()
    if scheduling.is_past_deadline(job.created_at, s.job_timeout_seconds, now):
        await ctx.store.apply(
            job,
            now,
            source="submitter",
            to_status=JobStatus.TIMED_OUT,
            values={
                "error_code": TIMED_OUT,
                "error_message": f"not submitted within {s.job_timeout_seconds:g} s",
            },
            owner=owner,
        )
        return
    notes: list[Note] = []
    if job.crashed_submits > 1:
        await _give_up_resubmitting(ctx, job, owner, now)
        return
    if job.crashed_submits == 1 and job.submit_attempts > 1:
        log.warning("job %s: resubmitting once after a crashed submit", job.public_id)
        notes.append(Note("resubmit_after_crash", "submitter", {"attempt": job.submit_attempts}))
    request = JobRequest(**job.request, callback_url=job.callback_url, metadata=job.metadata)
    try:
        reply = await ctx.provider.submit(request.provider_fields(), webhook_url(ctx, job), job.id)
    except RetryableProviderError as exc:
        now = ctx.clock()
        when = scheduling.retry_at(
            now,
            job.submit_attempts - 1,
            s.retry_backoff_base_seconds,
            s.retry_backoff_max_seconds,
            exc.retry_after,
            not_after=scheduling.deadline(job.created_at, s.job_timeout_seconds),
        )
        log.warning("submit of job %s failed (%s); retry at %s", job.public_id, exc.kind, when)
        metrics.SUBMITS.labels("error").inc()
        await ctx.store.apply(
            job,
            now,
            source="submitter",
            values={"next_poll_at": when, **RELEASE},
            owner=owner,
            notes=[
                *notes,
                Note(
                    "submit_error",
                    "submitter",
                    {"kind": exc.kind, "message": str(exc), "retry_at": when.isoformat()},
                ),
            ],
        )
        return
    except ProviderRejected as exc:
        now = ctx.clock()
        log.warning("provider rejected job %s: %s", job.public_id, exc.message)
        metrics.SUBMITS.labels("rejected").inc()
        await ctx.store.apply(
            job,
            now,
            source="submitter",
            to_status=JobStatus.FAILED,
            values={"error_code": PROVIDER_REJECTED, "error_message": exc.message},
            owner=owner,
            notes=[
                *notes,
                Note(
                    "submit_rejected",
                    "submitter",
                    {"status_code": exc.status_code, "message": exc.message},
                ),
            ],
        )
        return

    now = ctx.clock()
    outcome = outcome_of(reply)
    values: dict[str, Any] = {
        "provider_id": reply.provider_id,
        "provider_status": reply.raw_status,
        "fetch_result": reply.fetch_result,
        "submitted_at": now,
    }
    to_status = outcome.to_status or JobStatus.PROCESSING
    if to_status is JobStatus.PROCESSING:
        deadline = scheduling.deadline(now, s.job_timeout_seconds)
        values.update(
            eta_at=scheduling.first_poll_at(now, reply.eta_seconds, 0.0, deadline),
            next_poll_at=scheduling.first_poll_at(
                now, reply.eta_seconds, s.eta_grace_seconds, deadline
            ),
            attempts=0,
            **RELEASE,
        )
    elif to_status is JobStatus.SUCCEEDED:
        values["output"] = list(outcome.output)
    else:
        values.update(error_code=outcome.error_code, error_message=outcome.error_message)
    metrics.SUBMITS.labels("accepted").inc()
    if outcome.warning:
        metrics.UNKNOWN_REPLIES.labels("submit").inc()
        log.warning("job %s: submit answered %s", job.public_id, outcome.warning)
    applied = await ctx.store.apply(
        job,
        now,
        source="submitter",
        to_status=to_status,
        values=values,
        owner=owner,
        notes=[*notes, Note("submit", "submitter", {"reply": reply.raw})],
    )
    if applied.changed:
        log.info("job %s submitted: provider id %s", job.public_id, reply.provider_id)


async def _give_up_resubmitting(ctx: WorkContext, job: Job, owner: str, now: datetime) -> None:
    """The one resubmission after a crash was itself cut off. ModelsLab has no idempotency
    key, so a third send could pay for a third generation: instead wait for the webhook
    (its URL names this job) until the job's deadline, where the sweeper times it out."""
    log.warning("job %s: two submits cut off by crashes; waiting for a webhook", job.public_id)
    metrics.SUBMITS.labels("skipped").inc()
    deadline = scheduling.deadline(job.created_at, ctx.settings.job_timeout_seconds)
    await ctx.store.apply(
        job,
        now,
        source="submitter",
        to_status=JobStatus.PROCESSING,
        values={"provider_status": "unknown", "next_poll_at": deadline, **RELEASE},
        owner=owner,
        notes=[
            Note(
                "submit_skipped",
                "submitter",
                {"reason": "crashed_twice", "crashed_submits": job.crashed_submits},
            )
        ],
    )
