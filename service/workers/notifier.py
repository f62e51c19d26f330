"""Deliver one claimed callback to the client's URL, signed per Standard Webhooks, and
record the attempt. At least once: a retry (or a takeover after a crash) resends the same
`webhook-id`, by which the client drops duplicates."""

from __future__ import annotations

import logging
import time

import httpx

from service import metrics
from service.domain import callbacks
from service.domain.scheduling import retry_after_seconds
from service.netguard import UnsafeCallback, guarded_client
from service.runtime.services import Runtime
from service.store.records import Delivery

log = logging.getLogger("service.notifier")

HONOUR_RETRY_AFTER = frozenset({429, 503})


async def deliver(ctx: Runtime, delivery: Delivery, owner: str) -> None:
    s = ctx.settings
    now = ctx.clock()
    delivery = await ctx.store.callbacks.with_body(delivery, now)
    assert delivery.body is not None
    secrets = await ctx.store.clients.client_secrets(delivery.client_id)
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
                retry_after = retry_after_seconds(response.headers.get("retry-after"), now)
        except httpx.TimeoutException:
            error = "timeout"
        except httpx.HTTPError as exc:
            error = f"connection: {type(exc).__name__}"
    latency_ms = round((time.perf_counter() - started) * 1000, 1)

    now = ctx.clock()
    attempt = callbacks.judge(
        delivery.schedule_step,
        status_code,
        error,
        latency_ms,
        now,
        s.callback_schedule,
        unsafe=unsafe,
        retry_after_seconds=retry_after,
    )
    recorded = await ctx.store.callbacks.finish_attempt(delivery, owner, now, attempt)
    metrics.CALLBACKS.labels(attempt.outcome).inc()
    if recorded is None:
        log.warning(
            "callback %s: the claim was taken over; attempt not recorded", delivery.webhook_id
        )
    elif attempt.outcome == callbacks.DEAD:
        log.warning(
            "callback %s is dead after %d attempts (%s)",
            delivery.webhook_id,
            recorded.attempts,
            error or status_code,
        )
    else:
        log.info("callback %s: %s (%s)", delivery.webhook_id, attempt.outcome, error or status_code)
