"""`/healthz` (the process answers) and `/readyz` (database reachable, migrations at head)."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.api.context import ctx_of
from service.store.migrate import MigrationsNotFound, current_revision, head_revision


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
        async with asyncio.timeout(3):
            async with ctx.store.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            current = await current_revision(ctx.store.engine)
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
    return JSONResponse({"status": "ok", "checks": checks})


routes = [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"])]
