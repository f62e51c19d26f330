"""`GET /v1/stats/series?window=1h|24h|7d`: the per-minute series ops chart (throughput by
outcome, webhook vs poll, lateness and time to result, provider errors and 429s,
callbacks), and the generations the provider accepted per client and day. Primary-key
ranges only: nothing here reads the jobs table."""

from __future__ import annotations

from datetime import timedelta

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.api.auth import OPS_READ, require
from service.api.context import ctx_of
from service.api.params import invalid
from service.domain import series

DAYS = {"1h": 0, "24h": 1, "7d": 6}  # usage: the days the window touches


async def get_series(request: Request) -> Response:
    await require(request, OPS_READ)
    window = request.query_params.get("window", "1h")
    if window not in series.WINDOWS:
        raise invalid("window", "must be 1h, 24h or 7d", "enum")
    ctx = ctx_of(request)
    now = ctx.runtime.clock()
    start = series.since(now, window)
    rows = await ctx.store.series.minutes_since(start)
    usage = await ctx.store.series.usage_since((now - timedelta(days=DAYS[window])).date())
    step, _ = series.WINDOWS[window]
    return JSONResponse(
        {
            "window": window,
            "step_seconds": step,
            "points": series.points(rows, now, window),
            "usage": [
                {"day": day.isoformat(), "client": client, "generations": n}
                for day, client, n in usage
            ],
        }
    )


routes = [Route("/v1/stats/series", get_series, methods=["GET"])]
