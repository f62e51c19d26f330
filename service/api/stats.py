"""`GET /v1/stats`: what ops need at a glance, from counters and index ranges only."""

from __future__ import annotations

from datetime import timedelta

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.api.auth import OPS_READ, require
from service.api.context import ctx_of
from service.api.params import CLIENT_NAME, int_param, pattern_param
from service.api.problems import not_found
from service.domain import delivery

MAX_WINDOW = 7 * 24 * 3600


async def stats(request: Request) -> Response:
    await require(request, OPS_READ)
    ctx = ctx_of(request)
    params = request.query_params
    window = int_param(params, "window_seconds", 60, MAX_WINDOW, 3600)
    client_id = None
    client = pattern_param(params, "client", CLIENT_NAME)
    if client is not None:
        client_id = await ctx.store.clients.client_id_of(client)
        if client_id is None:
            raise not_found("Client")
    body = await ctx.store.stats.stats(
        ctx.runtime.clock(), ctx.settings.eta_grace_seconds, window, client_id
    )
    body["callbacks"] = await ctx.store.callbacks.deliveries_by_status(client_id)
    body["provider"] = await ctx.store.stats.circuit()
    backlog = await ctx.store.archives.backlog()  # the deployment's, whatever `client`
    now = ctx.runtime.clock()
    since = now - timedelta(seconds=delivery.WINDOW_SECONDS)
    came = await ctx.store.series.results_since(since)  # every process's, from the series
    by_webhook, by_poll = came.get("webhook", 0.0), came.get("poll", 0.0)
    body["webhooks"] = {
        "window_seconds": delivery.WINDOW_SECONDS,
        "results_by_webhook": int(by_webhook),
        "results_by_poll": int(by_poll),
        "lost": delivery.webhooks_lost(by_webhook, by_poll),
    }
    body["archive"] = {
        "enabled": ctx.runtime.objects is not None,
        "pending": backlog.pending,
        "oldest_pending_seconds": (
            round((now - backlog.oldest_pending_at).total_seconds(), 3)
            if backlog.oldest_pending_at
            else None
        ),
        "stored_outputs": backlog.stored,
        "stored_bytes": backlog.stored_bytes,
        "failures": backlog.failures,
        "store_errors": backlog.store_errors,
    }
    return JSONResponse(body)


routes = [Route("/v1/stats", stats, methods=["GET"])]
