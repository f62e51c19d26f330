"""Event links, for browsers (whose `EventSource` cannot send a key): `POST
/v1/jobs/{id}/event-links` answers an absolute URL of that job's event stream carrying a
signed token instead of a key, read-only, for that one job, valid EVENT_LINK_TTL_SECONDS
(and only while the key that made it is not revoked); and the check of such a token."""

from __future__ import annotations

from datetime import timedelta

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.api.auth import JOBS_READ, OPS_READ, can_read, visible_client
from service.api.context import ctx_of
from service.api.lookup import visible_job
from service.api.params import is_job_id
from service.api.problems import Problem
from service.api.representations import rfc3339
from service.domain.jobs import Job
from service.domain.links import make_link, read_link
from service.store.records import Principal

PARAMETER = "token"


async def create_event_link(request: Request) -> Response:
    principal, job = await visible_job(request, JOBS_READ, OPS_READ)
    ctx = ctx_of(request)
    expires_at = ctx.runtime.clock() + timedelta(seconds=ctx.settings.event_link_ttl_seconds)
    token = make_link(ctx.runtime.webhook_secret, job.id, principal.key_id, expires_at)
    url = f"{ctx.settings.base_url}/v1/jobs/{job.public_id}/events?{PARAMETER}={token}"
    return JSONResponse(
        {"url": url, "expires_at": rfc3339(expires_at)},
        status_code=201,
        headers={"Cache-Control": "no-store"},
    )


def _refused() -> Problem:
    return Problem(
        401, "Unauthorized", "The event link is unknown, expired, or its key was revoked."
    )


async def linked_job(request: Request) -> tuple[Principal, Job]:
    """The job an event link in the query names, for the key that made it (which must
    still be active and still able to read that job); 401 otherwise."""
    ctx = ctx_of(request)
    grant = read_link(
        ctx.runtime.webhook_secret, request.query_params[PARAMETER], ctx.runtime.clock()
    )
    job_id = request.path_params["job_id"]
    if grant is None or not is_job_id(job_id):
        raise _refused()
    principal = await ctx.store.clients.active_key(grant.key_id)
    if principal is None or not can_read(principal):
        raise _refused()
    job = await ctx.store.jobs.get_job(job_id, visible_client(principal))
    if job is None or job.id != grant.job_id:
        raise _refused()
    return principal, job


routes = [Route("/v1/jobs/{job_id}/event-links", create_event_link, methods=["POST"])]
