"""`/v1/jobs` and `/v1/jobs/{id}`: create (optionally waiting until the job settles), read
(optionally waiting until it settles or changes), list."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from typing import TypeVar

from pydantic import ValidationError
from starlette.datastructures import QueryParams
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
)
from service.api.bodies import parse_json, read_body
from service.api.context import ctx_of
from service.api.lookup import visible_job
from service.api.params import CLIENT_NAME, SEARCH, int_param, invalid, pattern_param
from service.api.problems import Problem, rate_limited, validation_problem
from service.api.representations import decode_cursor, encode_cursor, job_json
from service.api.waiting import hold, prefer_wait, settled_or_past, wait_params
from service.domain.jobs import Job
from service.domain.requests import JobRequest
from service.domain.settling import is_settled
from service.domain.states import JobStatus
from service.domain.wakeups import Wake
from service.netguard import UnsafeCallback, check_callback, check_image
from service.settings import SIMULATOR_MOUNT, Settings
from service.store.records import (
    AtCap,
    Created,
    CreationLimits,
    KeyReused,
    Principal,
    RateLimited,
    Replayed,
)

log = logging.getLogger("service.api.jobs")

MAX_IDEMPOTENCY_KEY = 200
T = TypeVar("T")


_IDEMPOTENCY_KEY = re.compile(r"[!-~](?:[ -~]{0,198}[!-~])?")  # as the API document says


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not _IDEMPOTENCY_KEY.fullmatch(key):
        raise Problem(
            400,
            "Bad Idempotency-Key",
            f"The Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII "
            "characters, not starting or ending with a space.",
        )
    return key


def _unsafe(field: str, exc: UnsafeCallback) -> Problem:
    return Problem(
        422,
        "Invalid request",
        f"The {field} may not be used.",
        type_="validation",
        errors=[{"field": field, "message": str(exc), "type": "unsafe_url"}],
    )


def _fetched_by_the_provider(s: Settings, image: str) -> bool:
    """An image URL the provider will fetch (not base64 data, and not the built-in
    simulator's own samples, which it reads without fetching)."""
    if not image.startswith(("http://", "https://")):
        return False
    return not (s.uses_simulator and image.startswith(f"{s.base_url}{SIMULATOR_MOUNT}/samples/"))


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
    wait = prefer_wait(request.headers.getlist("prefer"))
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
            raise _unsafe("callback_url", exc) from None
    if _fetched_by_the_provider(s, job_request.image):
        try:
            await check_image(job_request.image, s.allow_private_callbacks)
        except UnsafeCallback as exc:
            raise _unsafe("image", exc) from None
    now = ctx.runtime.clock()
    limits = CreationLimits(s.client_jobs_per_minute, s.client_max_unfinished)
    result = await ctx.store.jobs.create_job(principal.client_id, job_request, key, now, limits)
    if not can_read(principal):  # it learns the job's id (Location), nothing more
        wait = None
    match result:
        case Replayed(job):
            return await _held(request, principal, job, wait, 200)
        case KeyReused():
            raise _idempotency_conflict()
        case RateLimited(retry_in):
            raise rate_limited(
                f"At most {s.client_jobs_per_minute} jobs a minute per client.",
                math.ceil(retry_in),
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
    return await _held(request, principal, job, wait, 202)


async def _held(
    request: Request, principal: Principal, job: Job, wait: int | None, status_code: int
) -> Response:
    """The job, held until it settles or `wait` seconds pass (`Prefer: wait=N`): a new job
    that settled in time answers 201 Created, one still on its way 202 Accepted; a replay
    answers 200 either way. A key that may not read jobs gets 204 and the job's Location,
    whether the job is new or replayed: neither its state nor its request."""
    location = {"Location": f"/v1/jobs/{job.public_id}"}
    if not can_read(principal):
        return Response(status_code=204, headers=location)
    if wait is not None:
        job = await hold(ctx_of(request), job, principal.client_id, wait, settled_or_past(None))
        if status_code == 202 and is_settled(job):
            status_code = 201
    response = _job_response(job, status_code)
    response.headers.update(location)
    if wait is not None:
        response.headers["Preference-Applied"] = f"wait={wait}"
    return response


async def get_job(request: Request) -> Response:
    principal, job = await visible_job(request, JOBS_READ, OPS_READ)
    seconds, since = wait_params(request.query_params)
    job = await hold(ctx_of(request), job, principal.client_id, seconds, settled_or_past(since))
    return _job_response(job)


def _list_params(
    params: QueryParams,
) -> tuple[JobStatus | None, int, str | None, str | None]:
    """`status`, `limit`, `client` and `q`, or one 422 naming every bad parameter."""
    errors: list[dict[str, str]] = []

    def read(parse: Callable[[], T], default: T) -> T:
        try:
            return parse()
        except Problem as problem:
            errors.extend(problem.errors or [])
            return default

    status = read(lambda: _status_param(params), None)
    limit = read(lambda: int_param(params, "limit", 1, 100, 20), 20)
    client = read(lambda: pattern_param(params, "client", CLIENT_NAME), None)
    match = read(lambda: pattern_param(params, "q", SEARCH), None)
    if errors:
        raise Problem(
            422, "Invalid request", "Invalid query parameters.", type_="validation", errors=errors
        )
    return status, limit, client, match


def _status_param(params: QueryParams) -> JobStatus | None:
    if "status" not in params:
        return None
    try:
        return JobStatus(params["status"])
    except ValueError:
        raise invalid("status", "unknown status", "enum") from None


async def list_jobs(request: Request) -> Response:
    """Newest first; `status`, `client` (a client's name: ops keys see every client's) and
    `q` (a job id, track id, provider id or Idempotency-Key) narrow the list."""
    principal = await require(request, JOBS_READ, OPS_READ)
    params = request.query_params
    status, limit, client, match = _list_params(params)
    before = decode_cursor(params["cursor"]) if "cursor" in params else None
    store = ctx_of(request).store
    client_id = visible_client(principal)
    if client is not None:
        named = await store.clients.client_id_of(client)
        if named is None or client_id not in (None, named):  # no such client, or not ours
            return JSONResponse({"items": [], "next_cursor": None})
        client_id = named
    items = await store.jobs.list_jobs(client_id, status, before, limit + 1, match)
    page, more = items[:limit], len(items) > limit
    return JSONResponse(
        {
            "items": [job_json(j) for j in page],
            "next_cursor": encode_cursor(page[-1].id) if more and page else None,
        }
    )


async def jobs_collection(request: Request) -> Response:
    """One route for the path, so `Allow` (on a 405, or to OPTIONS) names GET and POST."""
    if request.method == "POST":
        return await create_job(request)
    return await list_jobs(request)


routes = [
    Route("/v1/jobs", jobs_collection, methods=["GET", "POST"]),
    Route("/v1/jobs/{job_id}", get_job, methods=["GET"]),
]
