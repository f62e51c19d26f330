"""`GET /v1/jobs/{id}/events`: a job's history, a page at a time as JSON, or live as
Server-Sent Events (`Accept: text/event-stream`): each event once, in order, resumable
with `Last-Event-ID`, ending after the event that settled the job with one last message,
`settled`, carrying the settled job."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from service.api import links
from service.api.auth import JOBS_READ, OPS_READ
from service.api.context import ApiContext, ctx_of
from service.api.lookup import visible_job
from service.api.params import ascii_int, int_param, invalid
from service.api.problems import not_found
from service.api.representations import decode_cursor, encode_cursor, event_json, job_json
from service.api.waiting import acquire
from service.domain.jobs import Event, Job
from service.domain.settling import is_settled, may_settle, settles
from service.runtime.watchers import Waiter

EVENTS_PAGE = 100
EVENTS_PAGE_MAX = 500
PING_SECONDS = 15  # a comment line now and then keeps proxies from closing an idle stream
RECHECK_SECONDS = 30.0  # a waiter's longest sleep between looks (signals come sooner)
STOP_GRACE_SECONDS = 2.0  # for a stream to end by itself once the server is stopping


def wants_stream(request: Request) -> bool:
    return "text/event-stream" in request.headers.get("accept", "").lower()


async def list_events(request: Request) -> Response:
    """Oldest first, `EVENTS_PAGE` at a time; pass `next_cursor` back as `cursor`. An event
    link's `token` stands in for the key (a browser's EventSource sends none)."""
    if links.PARAMETER in request.query_params:
        principal, job = await links.linked_job(request)
    else:
        principal, job = await visible_job(request, JOBS_READ, OPS_READ)
    resume = _last_event_id(request)
    if wants_stream(request):
        return await _stream(request, job.id, principal.client_id, resume)
    params = request.query_params
    limit = int_param(params, "limit", 1, EVENTS_PAGE_MAX, EVENTS_PAGE)
    after = decode_cursor(params["cursor"]) if "cursor" in params else resume
    events = await ctx_of(request).store.jobs.list_events(job.id, after, limit + 1)
    page, more = events[:limit], len(events) > limit
    return JSONResponse(
        {
            "items": [event_json(e) for e in page],
            "next_cursor": encode_cursor(page[-1].id) if more and page else None,
        }
    )


def _last_event_id(request: Request) -> int | None:
    """`Last-Event-ID`: resume after this event (a page of JSON too, without `cursor`)."""
    raw = request.headers.get("last-event-id")
    if raw is None:
        return None
    after = ascii_int(raw)
    if after is None:
        raise invalid("Last-Event-ID", "must be the id of an event this API sent", "value")
    return after


async def _stream(request: Request, job_id: int, client_id: int, after: int | None) -> Response:
    ctx = ctx_of(request)
    job = await ctx.store.jobs.get_job_by_id(job_id)
    if job is None:  # pruned since we looked
        raise not_found()
    if is_settled(job) and not await _settles_after(ctx, job, after):
        # Settled, and the client has the settling event: 204 tells an EventSource not to
        # reconnect. Later events (callback attempts) are read as JSON pages.
        return Response(status_code=204)
    waiter = await acquire(ctx, job, client_id)
    stopping = anyio.Event()  # set by sse-starlette when the server is told to stop
    stream = EventSourceResponse(
        _events(ctx, job_id, after, waiter, stopping),
        ping=PING_SECONDS,
        send_timeout=30,
        shutdown_event=stopping,
        shutdown_grace_period=STOP_GRACE_SECONDS,
    )
    return _Holding(stream, lambda: ctx.watchers.release(waiter))


async def _settles_after(ctx: ApiContext, job: Job, after: int | None) -> bool:
    """Whether the event that settled `job` (read before its events) comes after `after`."""
    while True:
        events = await ctx.store.jobs.list_events(job.id, after, EVENTS_PAGE_MAX)
        if any(settles(event, job) for event in events):
            return True
        if len(events) < EVENTS_PAGE_MAX:
            return False
        after = events[-1].id


def _message(event: Event) -> ServerSentEvent:
    body = json.dumps(event_json(event), separators=(",", ":"), ensure_ascii=False)
    return ServerSentEvent(data=body, id=str(event.id), event=event.kind)


def _settled(job: Job) -> ServerSentEvent:
    """The stream's last message: the settled job (no id: a reconnect resumes after the
    settling event, and is answered 204)."""
    body = json.dumps(job_json(job), separators=(",", ":"), ensure_ascii=False)
    return ServerSentEvent(data=body, event="settled")


async def _events(
    ctx: ApiContext, job_id: int, after: int | None, waiter: Waiter, stopping: anyio.Event
) -> AsyncIterator[ServerSentEvent]:
    """Every event past `after`, then each new one as it is recorded, up to the one that
    settled the job, then the settled job. The job is read before its events, so a settled
    job's settling event is among those read; an event that may have settled a job read as
    unsettled sends us to read the job again before it goes out. When the server stops,
    the stream ends as a complete response (a client resumes elsewhere with Last-Event-ID),
    not as a connection cut mid-body."""
    looked_again: int | None = None  # the event we read the job again for
    while True:
        waiter.arm()
        job = await ctx.store.jobs.get_job_by_id(job_id)
        if job is None:  # pruned meanwhile
            return
        events = await ctx.store.jobs.list_events(job_id, after, EVENTS_PAGE_MAX)
        again = len(events) == EVENTS_PAGE_MAX
        for event in events:
            if not is_settled(job) and may_settle(event) and event.id != looked_again:
                looked_again, again = event.id, True
                break
            yield _message(event)
            after = event.id
            if settles(event, job):
                yield _settled(job)
                return
        if again:
            continue
        if is_settled(job):  # its settling event went out before `after` (a race with a
            yield _settled(job)  # prune, say): the job is all that is left to say
            return
        if ctx.watchers.closing.is_set():
            return
        await _changed_or_stopping(waiter, stopping)
        if stopping.is_set():
            ctx.watchers.close()  # the long-polls end too
            return


async def _changed_or_stopping(waiter: Waiter, stopping: anyio.Event) -> None:
    with anyio.move_on_after(RECHECK_SECONDS):
        async with anyio.create_task_group() as group:

            async def first(wait: Callable[[], Awaitable[object]]) -> None:
                await wait()
                group.cancel_scope.cancel()

            group.start_soon(first, waiter.changed.wait)
            group.start_soon(first, stopping.wait)


class _Holding(Response):
    """A streaming response that lets go of its waiter however the stream ends (the job
    finished, the client went away, the server is stopping)."""

    def __init__(self, inner: Response, release: Callable[[], Awaitable[None]]) -> None:
        self.inner = inner
        self.release = release
        self.status_code = inner.status_code
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.inner(scope, receive, send)
        finally:
            await self.release()


routes = [Route("/v1/jobs/{job_id}/events", list_events, methods=["GET"])]
