"""Prometheus metrics: one registry, named here, updated from every layer.

A leaf module: it imports nothing of the service, so any module may count into it.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

WEBHOOKS = Counter(
    "outpaint_webhooks_received_total",
    "ModelsLab webhooks received, by outcome: applied, duplicate (recorded, changed nothing), "
    "unknown_token, mismatch, malformed, too_large, gone",
    ["outcome"],
    registry=REGISTRY,
)
POLLS = Counter(
    "outpaint_polls_total",
    "Fetches of one job's result, by outcome: succeeded, failed, processing, unknown, error",
    ["outcome"],
    registry=REGISTRY,
)
SUBMITS = Counter(
    "outpaint_submits_total",
    "Outpaint submissions, by outcome: accepted, rejected, error, skipped",
    ["outcome"],
    registry=REGISTRY,
)
PROVIDER_ERRORS = Counter(
    "outpaint_provider_errors_total",
    "Failed calls to ModelsLab, by operation (submit, fetch) and kind "
    "(rate_limited, server_error, timeout, connection, bad_reply, redirect, rejected)",
    ["operation", "kind"],
    registry=REGISTRY,
)
PROVIDER_LATENCY = Histogram(
    "outpaint_provider_request_seconds",
    "Latency of calls to ModelsLab, by operation",
    ["operation"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30),
    registry=REGISTRY,
)
UNKNOWN_REPLIES = Counter(
    "outpaint_unknown_replies_total",
    "Provider replies with a status the service does not know (or success without output), "
    "by source",
    ["source"],
    registry=REGISTRY,
)
TRANSITIONS = Counter(
    "outpaint_transitions_total",
    "Job state changes, by target state and source (submitter, webhook, sweeper, refresh, api)",
    ["to_status", "source"],
    registry=REGISTRY,
)


CALLBACKS = Counter(
    "outpaint_callback_deliveries_total",
    "Attempts to deliver a callback to a client, by outcome: delivered, failing, dead",
    ["outcome"],
    registry=REGISTRY,
)


def render() -> bytes:
    return generate_latest(REGISTRY)
