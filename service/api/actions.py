"""`/v1/jobs/{id}/…` actions: cancel, refresh (poll the provider now), replay the
callback."""

from __future__ import annotations

import math
import time
from datetime import datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.api.auth import can_read
from service.api.context import ctx_of
from service.api.lookup import writable_job
from service.api.problems import Problem, rate_limited, refused
from service.api.representations import job_json
from service.domain import changes
from service.domain.decisions import Ask
from service.domain.jobs import Job
from service.domain.states import JobStatus
from service.domain.wakeups import Wake
from service.runtime.polling import poll_job
from service.runtime.services import new_owner
from service.store.records import Principal


def _answer(principal: Principal, job: Job, empty_status: int) -> Response:
    """The job, for a key that may read it; a key that may only write learns nothing more
    than that the action was taken."""
    if can_read(principal):
        return JSONResponse(job_json(job))
    return Response(status_code=empty_status)


async def cancel_job(request: Request) -> Response:
    principal, job = await writable_job(request)
    ctx = ctx_of(request)
    cancel = Ask(changes.cancel(principal.key_prefix), refuse_finished=True)
    applied = await ctx.store.changes.settle(job.id, cancel, ctx.runtime.clock(), job)
    if applied.refusal is not None:
        raise refused(applied.refusal, applied.job)
    ctx.finished(applied)
    assert applied.job is not None
    return _answer(principal, applied.job, 204)


async def refresh_job(request: Request) -> Response:
    """Poll the provider for this job now: at most once per REFRESH_INTERVAL_SECONDS per
    job (across replicas: the claim checks the job's last refresh), else 429."""
    principal, job = await writable_job(request)
    ctx = ctx_of(request)
    if job.status is JobStatus.PROCESSING:
        provider = ctx.runtime.provider
        if provider.may_call(1) == 0:
            raise Problem(
                503,
                "Provider unavailable",
                "ModelsLab is not answering; the job is polled as soon as it does.",
                type_="provider-unavailable",
                headers={
                    "Retry-After": str(
                        max(math.ceil(provider.circuit.seconds_until_probe(time.monotonic())), 1)
                    )
                },
            )
        owner = new_owner("refresh")
        now = ctx.runtime.clock()
        interval = ctx.settings.refresh_interval_seconds
        claimed = await ctx.store.jobs.claim_for_refresh(
            job.id, now, owner, ctx.runtime.lease_until(now), interval
        )
        provider.unused(1, 1 if claimed is not None else 0)
        if claimed is not None:
            applied = await poll_job(
                ctx.runtime,
                claimed,
                owner,
                source="refresh",
                notes=(changes.acted("refresh", principal.key_prefix),),
            )
            ctx.finished(applied)
            if applied.job is not None:
                return _answer(principal, applied.job, 202)
        job = await ctx.store.jobs.get_job_by_id(job.id) or job
        wait = _refresh_wait(job, now, interval)
        if wait is not None:
            raise rate_limited(f"A job is refreshed at most once every {interval:g} s.", wait)
    elif job.status is JobStatus.QUEUED:
        ctx.wake(Wake.JOB_CREATED)
    return _answer(principal, job, 202)


def _refresh_wait(job: Job, now: datetime, interval: float) -> int | None:
    if job.status is not JobStatus.PROCESSING or job.refreshed_at is None:
        return None
    left = (job.refreshed_at - now).total_seconds() + interval
    return max(math.ceil(left), 1) if left > 0 else None


async def replay_callback(request: Request) -> Response:
    """Send the job's callback event again: a new attempt, the same webhook-id."""
    principal, job = await writable_job(request)
    ctx = ctx_of(request)
    if job.callback_url is None:
        raise Problem(
            409,
            "Conflict",
            "The job has no callback URL, so there is no callback to send.",
            type_="no-callback-yet",
        )
    delivery = await ctx.store.callbacks.replay_callback(
        job.id, ctx.runtime.clock(), principal.key_prefix
    )
    if delivery is None:
        raise Problem(
            409,
            "Conflict",
            "The job has not finished; there is no event yet.",
            type_="no-callback-yet",
        )
    ctx.wake(Wake.CALLBACK_DUE)
    return JSONResponse(
        {
            "webhook_id": delivery.webhook_id,
            "status": delivery.status,
            "attempts": delivery.attempts,
        },
        202,
    )


routes = [
    Route("/v1/jobs/{job_id}/cancel", cancel_job, methods=["POST"]),
    Route("/v1/jobs/{job_id}/refresh", refresh_job, methods=["POST"]),
    Route("/v1/jobs/{job_id}/callbacks/replay", replay_callback, methods=["POST"]),
]
