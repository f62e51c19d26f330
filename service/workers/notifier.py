"""Deliver one claimed callback to the client's URL, signed per Standard Webhooks, and
record the attempt. At least once: a retry (or a takeover after a crash) resends the same
`webhook-id`, by which the client drops duplicates."""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx

from service import metrics
from service.domain import callbacks
from service.netguard import UnsafeCallback, guarded_client
from service.provider.replies import as_number
from service.store.manager import Delivery
from service.workers.context import WorkContext

log = logging.getLogger("service.notifier")

HONOUR_RETRY_AFTER = frozenset({429, 503})


async def deliver(ctx: WorkContext, delivery: Delivery, owner: str) -> None:
    s = ctx.settings
    now = ctx.clock()
    secrets = await ctx.store.client_secrets(delivery.client_id)
    live = callbacks.live_secrets(
        secrets.current, secrets.previous, secrets.previous_expires_at, now
    )
    timestamp = int(now.timestamp())
    headers = {
        "content-type": "application/json",
        "user-agent": "outpaint-jobs/0.1",
        "webhook-id": delivery.webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": callbacks.signature_header(
            live, delivery.webhook_id, timestamp, delivery.body
        ),
    }
    status_code: int | None = None
    error: str | None = None
    retry_after: float | None = None
    unsafe = False
    started = time.perf_counter()
    try:
        http = await guarded_client(
            delivery.url, s.allow_private_callbacks, s.callback_timeout_seconds
        )
    except UnsafeCallback as exc:
        error, unsafe = f"unsafe_url: {exc}", True
    else:
        try:
            async with http:
                response = await http.post(delivery.url, content=delivery.body, headers=headers)
            status_code = response.status_code
            if status_code in HONOUR_RETRY_AFTER:
                retry_after = as_number(response.headers.get("retry-after"))
        except httpx.TimeoutException:
            error = "timeout"
        except httpx.HTTPError as exc:
            error = f"connection: {type(exc).__name__}"
    latency_ms = round((time.perf_counter() - started) * 1000, 1)

    now = ctx.clock()
    values: dict[str, Any] = {"last_status_code": status_code, "last_error": error}
    if status_code is not None and 200 <= status_code < 300:
        outcome = callbacks.DELIVERED
        values.update(status=outcome, delivered_at=now, next_attempt_at=None)
    elif status_code == 410 or unsafe:
        outcome = callbacks.DEAD  # the receiver is gone, or the URL turned unsafe
        values.update(status=outcome, next_attempt_at=None)
    else:
        later = callbacks.next_attempt(
            now, delivery.schedule_step, s.callback_schedule, retry_after
        )
        outcome = callbacks.FAILING if later else callbacks.DEAD
        values.update(
            status=outcome, next_attempt_at=later, schedule_step=delivery.schedule_step + 1
        )
    event = {
        "webhook_id": delivery.webhook_id,
        "attempt": delivery.attempts + 1,
        "status_code": status_code,
        "latency_ms": latency_ms,
        "error": error,
        "outcome": outcome,
        "next_attempt_at": values["next_attempt_at"].isoformat()
        if values.get("next_attempt_at")
        else None,
    }
    recorded = await ctx.store.finish_attempt(delivery, owner, now, values, event)
    metrics.CALLBACKS.labels(outcome).inc()
    if recorded is None:
        log.warning(
            "callback %s: the claim was taken over; attempt not recorded", delivery.webhook_id
        )
    elif outcome == callbacks.DEAD:
        log.warning(
            "callback %s is dead after %d attempts (%s)",
            delivery.webhook_id,
            recorded.attempts,
            error or status_code,
        )
    else:
        log.info("callback %s: %s (%s)", delivery.webhook_id, outcome, error or status_code)
