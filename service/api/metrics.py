"""`GET /metrics`: Prometheus text format. Database-derived gauges are refreshed here at
most every METRICS_REFRESH_SECONDS, once for all concurrent scrapes. With METRICS_TOKEN set,
a scrape must carry it as a bearer token."""

from __future__ import annotations

import hmac
import logging
import time

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service import metrics
from service.api.context import ApiContext, ctx_of
from service.api.problems import Problem
from service.store.health import HEALTH, unavailable
from service.throttle import Throttled

log = logging.getLogger("service.metrics")


async def _refresh(ctx: ApiContext) -> None:
    async with ctx.metrics_lock:
        if time.monotonic() - ctx.metrics_refreshed_at < ctx.settings.metrics_refresh_seconds:
            return
        now = ctx.runtime.clock()
        metrics.STATE.jobs = await ctx.store.stats.counts_by_status()
        metrics.STATE.callbacks = await ctx.store.callbacks.deliveries_by_status()
        metrics.STATE.sweeper_lag_seconds = await ctx.store.stats.sweeper_lag_seconds(now)
        metrics.STATE.inflight = await ctx.store.jobs.inflight(now)
        metrics.STATE.inflight_limit = ctx.settings.provider_max_inflight
        metrics.STATE.oldest_queued_seconds = await ctx.store.stats.oldest_queued_seconds(now)
        metrics.STATE.overdue = await ctx.store.stats.overdue(now, ctx.settings.eta_grace_seconds)
        backlog = await ctx.store.archives.backlog()
        metrics.STATE.archive_pending = backlog.pending
        metrics.STATE.archive_oldest_seconds = (
            max((now - backlog.oldest_pending_at).total_seconds(), 0.0)
            if backlog.oldest_pending_at
            else 0.0
        )
        metrics.STATE.stored_bytes = backlog.stored_bytes
        metrics.STATE.archive_failures = backlog.failures
        ctx.metrics_refreshed_at = time.monotonic()


def _authorized(request: Request, token: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


async def metrics_endpoint(request: Request) -> Response:
    token = ctx_of(request).settings.metrics_token
    if token and not _authorized(request, token):
        raise Problem(
            401,
            "Unauthorized",
            "Send `Authorization: Bearer` with the METRICS_TOKEN.",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    try:
        await _refresh(ctx_of(request))
        metrics.STATE.database_up = 1
    except Exception as exc:  # a scrape still answers, with the last values, when the DB is down
        metrics.STATE.database_up = 0
        kind = unavailable(exc)
        if kind is not None:  # an outage: one line per kind per interval, no traceback
            HEALTH.failed(kind, "GET /metrics")
        else:
            _SAID.note(
                type(exc).__name__, "metrics: could not refresh the database gauges (%s)", exc
            )
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)


_SAID = Throttled(log)


routes = [Route("/metrics", metrics_endpoint, methods=["GET"])]
