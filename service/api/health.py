"""`/healthz` (the process answers) and `/readyz` (the database reachable and writable,
migrations at head, and the output store keeping what is written to it)."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.api.context import ApiContext, ctx_of
from service.store.health import UNREACHABLE, unavailable
from service.store.migrate import MigrationsNotFound, current_revision, head_revision

MIN_FREE_BYTES = 1024 * 1024


async def healthz(request: Request) -> Response:
    """Liveness: the process answers, and its background loops (if any) still run."""
    workers = ctx_of(request).workers
    if workers is not None and not workers.alive:
        return JSONResponse({"status": "workers stopped"}, 503)
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    ctx = ctx_of(request)
    checks: dict[str, str] = {}
    try:
        current = await _revision(ctx)
    except Exception as exc:  # any failure to reach the database means not ready
        checks["database"] = f"unreachable: {type(exc).__name__}"
        return JSONResponse({"status": "unavailable", "checks": checks}, 503)
    checks["database"] = "ok"
    try:
        head = head_revision(ctx.settings.database_url)
    except MigrationsNotFound as exc:
        checks["migrations"] = f"cannot tell: {exc}"
        return JSONResponse({"status": "unavailable", "checks": checks}, 503)
    if current != head:
        checks["migrations"] = f"behind: at {current}, head is {head}"
        return JSONResponse({"status": "unavailable", "checks": checks}, 503)
    checks["migrations"] = "ok"
    writes = await _can_write(ctx)
    checks["writes"] = writes
    if ctx.output_store is not None:  # checked at most every 30 s (a write, a read, a delete)
        checks["output_store"] = await ctx.output_store.status()
    if any(value != "ok" for value in checks.values()):
        return JSONResponse({"status": "unavailable", "checks": checks}, 503)
    return JSONResponse({"status": "ok", "checks": checks})


async def _revision(ctx: ApiContext) -> str | None:
    """The database's migration revision, read through a pooled connection. A connection
    that died with a restarted server fails once and takes the pool's suspicion with it
    (each pooled connection is then pinged before use), so one look again tells whether
    the database itself is away."""
    for attempt in (1, 2):
        try:
            async with asyncio.timeout(3):
                async with ctx.store.engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
                return await current_revision(ctx.store.engine)
        except Exception as exc:
            if attempt == 2 or unavailable(exc) != UNREACHABLE:
                raise
    raise AssertionError("unreachable")


async def _can_write(ctx: ApiContext) -> str:
    """Reading is not enough: a full disk, a read-only database or a lost primary still
    answer reads. A real write (one row of service state) must go through, and SQLite's
    disk must have room left (its WAL can absorb small writes on a full disk)."""
    try:
        async with asyncio.timeout(3):
            await ctx.store.stats.probe_write(ctx.runtime.clock())
    except Exception as exc:
        return f"failing: {unavailable(exc) or type(exc).__name__}"
    free = ctx.store.free_disk_bytes()
    if free is not None and free < MIN_FREE_BYTES:
        return f"failing: {free} bytes free on the database's disk"
    return "ok"


routes = [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"])]
