"""`POST /webhooks/modelslab/{token}`: ModelsLab's callback.

The token names the job and proves the caller had our URL. The raw body is stored and
applied in one transaction, and the 2xx goes out only after that commit.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service import logs, metrics
from service.api.bodies import parse_json, read_body
from service.api.context import ApiContext, ctx_of
from service.api.problems import Problem, refused
from service.domain.changes import webhook_reply
from service.domain.decisions import WebhookCall
from service.domain.redaction import redact
from service.domain.states import TERMINAL
from service.domain.tokens import read_token
from service.provider.replies import parse_reply

log = logging.getLogger("service.webhooks")


def _refuse(outcome: str, problem: Problem) -> Problem:
    metrics.WEBHOOKS.labels(outcome).inc()
    return problem


def _unknown() -> Problem:
    return _refuse("unknown_token", Problem(404, "Not found", type_="not-found"))


async def modelslab_webhook(request: Request) -> Response:
    ctx = ctx_of(request)
    token = request.path_params["token"]
    track_id = read_token(ctx.runtime.webhook_secret, token)
    if track_id is None:
        log.warning("webhook refused: unknown token")
        raise _unknown()
    with logs.job_context(None, track_id):
        return await _receive(request, ctx, token, track_id)


async def _receive(request: Request, ctx: ApiContext, token: str, track_id: int) -> Response:
    try:
        body = await read_body(request, ctx.settings.max_body_bytes)
        data = parse_json(body)
    except Problem as problem:
        refusal = "too_large" if problem.status == 413 else "malformed"
        log.warning("webhook for track_id %s refused: %s", track_id, refusal)
        raise _refuse(refusal, problem) from None
    reply = parse_reply(redact(data, [token]))
    raw = redact(body.decode("utf-8", errors="replace"), [token])
    now = ctx.runtime.clock()

    given = data.get("track_id") if isinstance(data, dict) else None
    rejected = None
    if given not in (None, "") and reply.track_id != track_id:
        rejected = "track_id_mismatch"  # recorded and counted, then refused

    change = webhook_reply(reply)
    if any(n.kind == "warning" for n in change.notes):
        metrics.UNKNOWN_REPLIES.labels("webhook").inc()
        log.warning("webhook for track_id %s: %s", track_id, change.notes[0].detail["warning"])
    grace = ctx.settings.webhook_token_grace_hours * 3600
    applied = await ctx.store.changes.record_webhook(
        track_id, change, now, WebhookCall(raw, rejected, grace)
    )
    if applied.refusal is not None:
        log.warning("webhook for track_id %s refused: %s", track_id, applied.refusal.value)
        raise _refuse(applied.refusal.value, refused(applied.refusal, applied.job))
    assert applied.job is not None
    metrics.WEBHOOKS.labels("applied" if applied.changed else "duplicate").inc()
    if applied.changed and applied.job.status in TERMINAL:
        metrics.RESULTS.labels("webhook").inc()
        if applied.job.eta_at is not None:
            metrics.WEBHOOK_LATENESS.observe((now - applied.job.eta_at).total_seconds())
    ctx.finished(applied)
    log.info(
        "webhook for job %s (%s): %s",
        applied.job.public_id,
        reply.raw_status,
        "applied" if applied.changed else "recorded",
    )
    return JSONResponse({"received": True, "applied": applied.changed})


routes = [Route("/webhooks/modelslab/{token}", modelslab_webhook, methods=["POST"])]
