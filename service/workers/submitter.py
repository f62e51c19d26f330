"""Submit one claimed queued job to ModelsLab and record what it said."""

from __future__ import annotations

import logging

from service import metrics, rollup
from service.domain import changes, delivery
from service.domain.jobs import Job
from service.domain.requests import JobRequest
from service.domain.tokens import make_token
from service.provider.client import ProviderRejected, RetryableProviderError
from service.runtime.services import Runtime

log = logging.getLogger("service.submitter")


def webhook_url(ctx: Runtime, job: Job) -> str:
    return f"{ctx.settings.base_url}/webhooks/modelslab/{make_token(ctx.webhook_secret, job.id)}"


async def submit_job(ctx: Runtime, job: Job, owner: str) -> None:
    policy, apply = ctx.policy, ctx.record
    now = ctx.clock()
    if changes.is_past_deadline(job, now, policy):
        await apply(job, changes.submit_timed_out(policy), now, owner)
        return
    if job.crashed_submits > 1:
        log.warning("job %s: two submits cut off by crashes; waiting for a webhook", job.public_id)
        metrics.SUBMITS.labels("skipped").inc()
        await apply(job, changes.submit_skipped(job, policy), now, owner)
        return
    notes: tuple[changes.Note, ...] = ()
    if job.crashed_submits == 1 and job.submit_attempts > 1:
        log.warning("job %s: resubmitting once after a crashed submit", job.public_id)
        notes = (
            changes.Note("resubmit_after_crash", "submitter", {"attempt": job.submit_attempts}),
        )
    request = JobRequest(**job.request, callback_url=job.callback_url, metadata=job.metadata)
    try:
        reply = await ctx.provider.submit(request.provider_fields(), webhook_url(ctx, job), job.id)
    except RetryableProviderError as exc:
        now = ctx.clock()
        change = changes.submit_retry(job, now, policy, exc.kind, str(exc), exc.retry_after)
        log.warning(
            "submit of job %s failed (%s); retry at %s",
            job.public_id,
            exc.kind,
            change.fields.next_poll_at,
        )
        metrics.SUBMITS.labels("error").inc()
        await apply(job, change.with_notes(*notes), now, owner)
        return
    except ProviderRejected as exc:
        log.warning("provider rejected job %s: %s", job.public_id, exc.message)
        metrics.SUBMITS.labels("rejected").inc()
        change = changes.submit_rejected(exc.status_code, exc.message)
        await apply(job, change.with_notes(*notes), ctx.clock(), owner)
        return

    now = ctx.clock()
    change = changes.submit_accepted(reply, now, delivery.submit_policy(policy, ctx.webhooks_lost))
    metrics.SUBMITS.labels("accepted").inc()
    rollup.GENERATIONS[job.client_id] += 1  # a paid generation, charged to its client
    if any(n.kind == "warning" for n in change.notes):
        metrics.UNKNOWN_REPLIES.labels("submit").inc()
        log.warning("job %s: submit answered %s", job.public_id, reply.raw_status)
    applied = await apply(job, change.with_notes(*notes), now, owner)
    if applied.changed:
        log.info("job %s submitted: provider id %s", job.public_id, reply.provider_id)
