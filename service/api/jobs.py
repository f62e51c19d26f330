"""`/v1/jobs`: create, read, list, events, cancel, refresh."""

from __future__ import annotations

import logging
import math
import time
from datetime import datetime

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service import logs
from service.api.auth import (
    JOBS_READ,
    JOBS_WRITE,
    OPS_READ,
    can_read,
    require,
    visible_client,
    writable_client,
)
from service.api.bodies import parse_json, read_body
from service.api.context import ctx_of
from service.api.params import int_param, is_job_id
from service.api.problems import Problem, not_found, validation_problem
from service.api.representations import decode_cursor, encode_cursor, event_json, job_json
from service.domain import changes
from service.domain.jobs import Job
from service.domain.requests import JobRequest
from service.domain.states import TERMINAL, JobStatus
from service.domain.wakeups import Wake
from service.netguard import UnsafeCallback, check_callback
from service.store.records import (
    AtCap,
    Created,
    CreationLimits,
    KeyReused,
    Principal,
    RateLimited,
    Replayed,
)
from service.workers.context import new_owner
from service.workers.poller import poll_job

log = logging.getLogger("service.api.jobs")

MAX_IDEMPOTENCY_KEY = 200


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > MAX_IDEMPOTENCY_KEY or not key.isprintable():
        raise Problem(
            400,
            "Bad Idempotency-Key",
            f"The Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable characters.",
        )
    return key


def _idempotency_conflict() -> Problem:
    return Problem(
        422,
        "Idempotency-Key reused",
        "This Idempotency-Key was used with a different request body.",
        type_="idempotency-conflict",
    )


def _job_response(job: Job, status_code: int = 200) -> JSONResponse:
    return JSONResponse(job_json(job), status_code)


async def create_job(request: Request) -> Response:
    principal = await require(request, JOBS_WRITE)
    ctx = ctx_of(request)
    s = ctx.settings
    key = _idempotency_key(request)
    data = parse_json(await read_body(request, s.max_body_bytes))
    if not isinstance(data, dict):
        raise Problem(
            422,
            "Invalid request",
            "The body must be a JSON object.",
            type_="validation",
            errors=[{"field": "body", "message": "must be an object", "type": "type"}],
        )
    try:
        job_request = JobRequest.model_validate(data)
    except ValidationError as exc:
        raise validation_problem(exc) from None
    if job_request.callback_url is None and principal.default_callback_url:
        job_request = job_request.model_copy(
            update={"callback_url": principal.default_callback_url}
        )
    if job_request.callback_url is not None:
        try:
            await check_callback(job_request.callback_url, s.allow_private_callbacks)
        except UnsafeCallback as exc:
            raise Problem(
                422,
                "Invalid request",
                "The callback_url may not be used.",
                type_="validation",
                errors=[{"field": "callback_url", "message": str(exc), "type": "unsafe_url"}],
            ) from None
    now = ctx.work.clock()
    limits = CreationLimits(s.client_jobs_per_minute, s.client_max_unfinished)
    result = await ctx.store.jobs.create_job(principal.client_id, job_request, key, now, limits)
    match result:
        case Replayed(job):
            return _job_response(job, 200)
        case KeyReused():
            raise _idempotency_conflict()
        case RateLimited(wait):
            raise Problem(
                429,
                "Too many requests",
                f"At most {s.client_jobs_per_minute} jobs a minute per client.",
                type_="rate-limited",
                headers={"Retry-After": str(math.ceil(wait))},
            )
        case AtCap():
            raise Problem(
                429,
                "Too many unfinished jobs",
                f"At most {s.client_max_unfinished} unfinished jobs per client.",
                type_="too-many-unfinished",
                headers={"Retry-After": "30"},
            )
    assert isinstance(result, Created)
    job = result.job
    with logs.job_context(job.public_id, job.id):
        log.info("job created for client %s", principal.client_name)
    ctx.wake(Wake.JOB_CREATED)
    response = _job_response(job, 202)
    response.headers["Location"] = f"/v1/jobs/{job.public_id}"
    return response


async def _visible_job(request: Request, *scopes: str) -> Job:
    principal = await require(request, *scopes)
    job_id = request.path_params["job_id"]
    job = (
        await ctx_of(request).store.jobs.get_job(job_id, visible_client(principal))
        if is_job_id(job_id)
        else None
    )
    if job is None:
        raise not_found()
    return job


async def _writable_job(request: Request) -> tuple[Principal, Job]:
    principal = await require(request, JOBS_WRITE)
    job_id = request.path_params["job_id"]
    job = (
        await ctx_of(request).store.jobs.get_job(job_id, writable_client(principal))
        if is_job_id(job_id)
        else None
    )
    if job is None:
        raise not_found()
    return principal, job


def _answer(principal: Principal, job: Job, empty_status: int) -> Response:
    """The job, for a key that may read it; a key that may only write learns nothing more
    than that the action was taken."""
    if can_read(principal):
        return _job_response(job)
    return Response(status_code=empty_status)


async def get_job(request: Request) -> Response:
    return _job_response(await _visible_job(request, JOBS_READ, OPS_READ))


async def list_jobs(request: Request) -> Response:
    principal = await require(request, JOBS_READ, OPS_READ)
    params = request.query_params
    errors = []
    status: JobStatus | None = None
    if params.get("status"):
        try:
            status = JobStatus(params["status"])
        except ValueError:
            errors.append({"field": "status", "message": "unknown status", "type": "enum"})
    try:
        limit = int_param(params, "limit", 1, 100, 20)
    except Problem as problem:
        errors.extend(problem.errors or [])
    if errors:
        raise Problem(
            422, "Invalid request", "Invalid query parameters.", type_="validation", errors=errors
        )
    before = decode_cursor(params["cursor"]) if params.get("cursor") else None
    items = await ctx_of(request).store.jobs.list_jobs(
        visible_client(principal), status, before, limit + 1
    )
    page, more = items[:limit], len(items) > limit
    return JSONResponse(
        {
            "items": [job_json(j) for j in page],
            "next_cursor": encode_cursor(page[-1].id) if more and page else None,
        }
    )


EVENTS_PAGE = 100
EVENTS_PAGE_MAX = 500


async def list_events(request: Request) -> Response:
    """Oldest first, `EVENTS_PAGE` at a time; pass `next_cursor` back as `cursor`."""
    job = await _visible_job(request, JOBS_READ, OPS_READ)
    params = request.query_params
    limit = int_param(params, "limit", 1, EVENTS_PAGE_MAX, EVENTS_PAGE)
    after = decode_cursor(params["cursor"]) if params.get("cursor") else None
    events = await ctx_of(request).store.jobs.list_events(job.id, after, limit + 1)
    page, more = events[:limit], len(events) > limit
    return JSONResponse(
        {
            "items": [event_json(e) for e in page],
            "next_cursor": encode_cursor(page[-1].id) if more and page else None,
        }
    )


async def cancel_job(request: Request) -> Response:
    principal, job = await _writable_job(request)
    ctx = ctx_of(request)
    for _ in range(3):  # the job may move under us (queued → processing); follow it
        if job.status in TERMINAL:
            raise Problem(
                409, "Conflict", f"The job is already {job.status.value}.", type_="job-terminal"
            )
        applied = await ctx.store.changes.apply_change(job, changes.cancel(), ctx.work.clock())
        ctx.finished(applied)
        if applied.changed and applied.job is not None:
            return _answer(principal, applied.job, 204)
        if applied.job is None:
            raise not_found()
        job = applied.job
    raise Problem(409, "Conflict", "The job kept changing; try again.", type_="job-busy")


async def refresh_job(request: Request) -> Response:
    """Poll the provider for this job now: at most once per REFRESH_INTERVAL_SECONDS per
    job (across replicas: the claim checks the job's last refresh), else 429."""
    principal, job = await _writable_job(request)
    ctx = ctx_of(request)
    if job.status is JobStatus.PROCESSING:
        provider = ctx.work.provider
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
        now = ctx.work.clock()
        interval = ctx.settings.refresh_interval_seconds
        claimed = await ctx.store.jobs.claim_for_refresh(
            job.id, now, owner, ctx.work.lease_until(now), interval
        )
        provider.unused(1, 1 if claimed is not None else 0)
        if claimed is not None:
            applied = await poll_job(ctx.work, claimed, owner, source="refresh")
            ctx.finished(applied)
            if applied.job is not None:
                return _answer(principal, applied.job, 202)
        job = await ctx.store.jobs.get_job_by_id(job.id) or job
        wait = _refresh_wait(job, now, interval)
        if wait is not None:
            raise Problem(
                429,
                "Too many requests",
                f"A job is refreshed at most once every {interval:g} s.",
                type_="rate-limited",
                headers={"Retry-After": str(wait)},
            )
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
    _principal, job = await _writable_job(request)
    ctx = ctx_of(request)
    if job.callback_url is None:
        raise Problem(404, "Not found", "This job has no callback.", type_="not-found")
    delivery = await ctx.store.callbacks.replay_callback(job.id, ctx.work.clock())
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
    Route("/v1/jobs", create_job, methods=["POST"]),
    Route("/v1/jobs", list_jobs, methods=["GET"]),
    Route("/v1/jobs/{job_id}", get_job, methods=["GET"]),
    Route("/v1/jobs/{job_id}/events", list_events, methods=["GET"]),
    Route("/v1/jobs/{job_id}/cancel", cancel_job, methods=["POST"]),
    Route("/v1/jobs/{job_id}/refresh", refresh_job, methods=["POST"]),
    Route("/v1/jobs/{job_id}/callbacks/replay", replay_callback, methods=["POST"]),
]
