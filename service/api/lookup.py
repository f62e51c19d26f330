"""The job a request names, as the request's key may see it: another client's job, or an
id not of our shape, is a 404 exactly like a job that does not exist."""

from __future__ import annotations

from starlette.requests import Request

from service.api.auth import JOBS_WRITE, require, visible_client, writable_client
from service.api.context import ctx_of
from service.api.params import is_job_id
from service.api.problems import not_found
from service.domain.jobs import Job
from service.store.records import Principal


async def visible_job(request: Request, *scopes: str) -> tuple[Principal, Job]:
    """The job for a key with one of `scopes` that may read it."""
    principal = await require(request, *scopes)
    job_id = request.path_params["job_id"]
    job = (
        await ctx_of(request).store.jobs.get_job(job_id, visible_client(principal))
        if is_job_id(job_id)
        else None
    )
    if job is None:
        raise not_found()
    return principal, job


async def writable_job(request: Request) -> tuple[Principal, Job]:
    """The job for a key that may act on it (its own client's, with jobs:write)."""
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
