"""Prometheus metrics: one registry, named here, updated from every layer.

A leaf module: it imports nothing of the service, so any module may count into it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry(auto_describe=True)

WEBHOOKS = Counter(
    "outpaint_webhooks_received_total",
    "ModelsLab webhooks received, by outcome: applied, duplicate (recorded, changed nothing), "
    "unknown_token, expired (the job finished over WEBHOOK_TOKEN_GRACE_HOURS ago), mismatch, "
    "malformed, too_large, gone, busy (the job kept changing; the provider retries)",
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


OUTPUT_STORE_ERRORS = Counter(
    "outpaint_output_store_errors_total",
    "Writes (and probes) the output store refused, by kind: missing_bucket, denied, "
    "disk_full, unreachable, error",
    ["kind"],
    registry=REGISTRY,
)
EDGE_ENDED = Counter(
    "outpaint_http_refused_total",
    "Connections and requests the HTTP edge ended before the app saw them, by reason: "
    "connection_budget (past MAX_CONNECTIONS), header_timeout, body_timeout, header_too_large",
    ["reason"],
    registry=REGISTRY,
)


CREATED = Counter(
    "outpaint_jobs_created_total",
    "Jobs created (not replays of an Idempotency-Key)",
    registry=REGISTRY,
)
JOB_SECONDS = Histogram(
    "outpaint_job_seconds",
    "Creation to success: how long a client waited for its result",
    buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600, 7200),
    registry=REGISTRY,
)


RESULTS = Counter(
    "outpaint_provider_results_total",
    "Jobs finished by a provider result, by how it reached us: webhook, or poll (the "
    "sweeper's or a refresh): the provider's delivery health",
    ["via"],
    registry=REGISTRY,
)
for _via in ("webhook", "poll"):  # both series exist from the start (rules compare them)
    RESULTS.labels(_via)
WEBHOOK_LATENESS = Histogram(
    "outpaint_webhook_lateness_seconds",
    "How long after the job's eta its first final webhook arrived (negative: early)",
    buckets=(-10, -1, 0, 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
    registry=REGISTRY,
)


CIRCUIT = Gauge(
    "outpaint_provider_circuit_state",
    "This process's view of ModelsLab: 0 closed (calls go out), 1 half-open (one probe), "
    "2 open (nothing goes out)",
    registry=REGISTRY,
    multiprocess_mode="max",
)
CIRCUIT_OPENED = Counter(
    "outpaint_provider_circuit_opened_total",
    "Times the provider circuit opened (outages: connection errors, timeouts, 5xx in a row)",
    registry=REGISTRY,
)

ARCHIVED = Counter(
    "outpaint_outputs_archived_total",
    "Outputs the archiver settled: stored, or the reason it gave up (not_an_image, "
    "too_large, refused, http_4xx, not_found_by_deadline)",
    ["outcome"],
    registry=REGISTRY,
)
ARCHIVED_BYTES = Counter(
    "outpaint_output_bytes_archived_total",
    "Bytes of outputs stored by this process",
    registry=REGISTRY,
)


class DatabaseState(Collector):
    """Gauges read from the database: refreshed by the /metrics handler at most every few
    seconds and shared by every scrape; one value per deployment, not per process."""

    def __init__(self) -> None:
        self.jobs: dict[str, int] = {}
        self.callbacks: dict[str, int] = {}
        self.sweeper_lag_seconds = 0.0
        self.inflight = 0
        self.archive_pending = 0
        self.overdue = 0
        self.database_up = 1
        self.archive_oldest_seconds = 0.0
        self.stored_bytes = 0
        self.archive_failures: dict[str, int] = {}
        self.oldest_queued_seconds = 0.0
        self.inflight_limit = 0

    def collect(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily("outpaint_jobs", "Jobs by state", labels=["status"])
        for status, n in sorted(self.jobs.items()):
            jobs.add_metric([status], n)
        yield jobs
        callbacks = GaugeMetricFamily(
            "outpaint_callbacks_undelivered",
            "Callback deliveries not delivered, by status",
            labels=["status"],
        )
        for status, n in sorted(self.callbacks.items()):
            callbacks.add_metric([status], n)
        yield callbacks
        yield GaugeMetricFamily(
            "outpaint_sweeper_lag_seconds",
            "Age of the most overdue poll (0 when the sweeper keeps up)",
            value=self.sweeper_lag_seconds,
        )
        yield GaugeMetricFamily(
            "outpaint_provider_inflight", "Jobs unfinished at the provider", value=self.inflight
        )
        yield GaugeMetricFamily(
            "outpaint_provider_inflight_limit",
            "PROVIDER_MAX_INFLIGHT: the most jobs unfinished at the provider at once",
            value=self.inflight_limit,
        )
        yield GaugeMetricFamily(
            "outpaint_jobs_oldest_queued_seconds",
            "How long the oldest queued job has waited to be submitted (0 when none waits)",
            value=self.oldest_queued_seconds,
        )
        yield GaugeMetricFamily(
            "outpaint_jobs_overdue",
            "Processing jobs past their eta + ETA_GRACE_SECONDS (the sweeper's to rescue)",
            value=self.overdue,
        )
        yield GaugeMetricFamily(
            "outpaint_database_up",
            "1 when the last scrape read the database, 0 when it could not (an outage)",
            value=self.database_up,
        )
        yield GaugeMetricFamily(
            "outpaint_archive_pending",
            "Succeeded jobs whose outputs wait to be archived",
            value=self.archive_pending,
        )
        yield GaugeMetricFamily(
            "outpaint_archive_oldest_pending_seconds",
            "Age of the oldest archive still pending (0 when none)",
            value=self.archive_oldest_seconds,
        )
        yield GaugeMetricFamily(
            "outpaint_output_stored_bytes",
            "Bytes of outputs in the output store",
            value=self.stored_bytes,
        )
        failures = GaugeMetricFamily(
            "outpaint_output_archive_failures",
            "Outputs given up on, by reason (all time, kept jobs)",
            labels=["reason"],
        )
        for reason, n in sorted(self.archive_failures.items()):
            failures.add_metric([reason], n)
        yield failures


STATE = DatabaseState()
REGISTRY.register(STATE)


def render() -> bytes:
    """This process's metrics; under `uvicorn --workers N` (PROMETHEUS_MULTIPROC_DIR set),
    every worker's, summed by prometheus-client's multiprocess collector."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        registry.register(STATE)
        return generate_latest(registry)
    return generate_latest(REGISTRY)
