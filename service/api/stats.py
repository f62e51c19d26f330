"""`GET /v1/stats`: what ops need at a glance, from counters and index ranges only."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.api.auth import OPS_READ, require
from service.api.context import ctx_of
from service.api.problems import Problem

MAX_WINDOW = 7 * 24 * 3600


def _invalid(field: str, message: str) -> Problem:
    return Problem(
        422,
        "Invalid request",
        "Invalid query parameters.",
        type_="validation",
        errors=[{"field": field, "message": message, "type": "value"}],
    )


async def stats(request: Request) -> Response:
    await require(request, OPS_READ)
    ctx = ctx_of(request)
    params = request.query_params
    window = 3600
    if params.get("window_seconds"):
        raw = params["window_seconds"]
        if not raw.isdigit() or not 60 <= int(raw) <= MAX_WINDOW:
            raise _invalid("window_seconds", f"must be 60 to {MAX_WINDOW}")
        window = int(raw)
    client_id = None
    if params.get("client"):
        client_id = await ctx.store.client_id_of(params["client"])
        if client_id is None:
            raise _invalid("client", "no such client")
    body = await ctx.store.stats(
        ctx.work.clock(), ctx.settings.eta_grace_seconds, window, client_id
    )
    body["callbacks"] = await ctx.store.deliveries_by_status(client_id)
    return JSONResponse(body)


routes = [Route("/v1/stats", stats, methods=["GET"])]
