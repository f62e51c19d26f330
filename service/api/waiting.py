"""Holding an answer until a job settles or changes, for clients without a callback
endpoint: `Prefer: wait=N` on creation (RFC 7240), `?wait=N` (until it settles) or
`?wait=N&since_version=V` (until it changes) on a read. No polling: the process's watchers
wake the waiter when the job changes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

from service.api.context import ApiContext
from service.api.params import ascii_int, int_param
from service.api.problems import Problem, rate_limited
from service.domain.jobs import Job
from service.domain.settling import is_settled
from service.runtime.watchers import TooManyWaiters, Waiter

MAX_WAIT_SECONDS = 60
MAX_VERSION = 10**18 - 1
RETRY_AFTER_SECONDS = 5


def prefer_wait(values: list[str]) -> int | None:
    """The `wait=N` preference among `Prefer` header values, at most MAX_WAIT_SECONDS; None
    when absent or unreadable (a preference is a hint: one we cannot read is ignored)."""
    for value in values:
        for preference in value.split(","):
            token = preference.split(";", 1)[0]
            name, _, raw = token.partition("=")
            if name.strip().lower() != "wait":
                continue
            seconds = ascii_int(raw.strip().strip('"'))
            if seconds is not None:
                return min(seconds, MAX_WAIT_SECONDS)
    return None


def wait_params(params: Mapping[str, str]) -> tuple[int, int | None]:
    """(`wait` seconds, `since_version` or None) of a read, each strictly parsed (422)."""
    seconds = int_param(params, "wait", 0, MAX_WAIT_SECONDS, 0)
    since = int_param(params, "since_version", 0, MAX_VERSION, -1)
    return seconds, since if since >= 0 else None


def settled_or_past(since_version: int | None) -> Callable[[Job], bool]:
    """What a waiter waits for: given a version, any change past it (a settled job still
    changes: its callback status); else the job settled (terminal, its outputs kept)."""

    def done(job: Job) -> bool:
        if since_version is not None:
            return job.version > since_version
        return is_settled(job)

    return done


def too_many_waiters(exc: TooManyWaiters) -> Problem:
    scope = "this client" if exc.scope == "client" else "this server"
    return rate_limited(
        f"Too many waiting requests for {scope}; retry, or poll without waiting.",
        RETRY_AFTER_SECONDS,
    )


async def acquire(ctx: ApiContext, job: Job, client_id: int) -> Waiter:
    try:
        return await ctx.watchers.acquire(job.id, client_id)
    except TooManyWaiters as exc:
        raise too_many_waiters(exc) from None


async def hold(
    ctx: ApiContext, job: Job, client_id: int, seconds: float, done: Callable[[Job], bool]
) -> Job:
    """`job` once `done(job)`, or as it stands after `seconds` (or at shutdown)."""
    if seconds <= 0 or done(job):
        return job
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    waiter = await acquire(ctx, job, client_id)
    try:
        while True:
            waiter.arm()
            fresh = await ctx.store.jobs.get_job_by_id(job.id)
            if fresh is None:  # pruned meanwhile: what we had
                return job
            job = fresh
            left = deadline - loop.time()
            if done(job) or left <= 0 or ctx.watchers.closing.is_set():
                return job
            if not await waiter.wait(left):  # time is up and nothing moved: as read
                return job
    finally:
        await ctx.watchers.release(waiter)
