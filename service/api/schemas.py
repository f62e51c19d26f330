"""The shapes the API answers with, as pydantic models: the source of /openapi.json (and of
the clients teams generate from it). Handlers build plain dicts (`representations.py`); the
schemathesis test checks that what they build conforms to these."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field

from service.domain.states import JobStatus

NO_NUL = "^[^\\u0000]*$"


class CallbackStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILING = "failing"
    DEAD = "dead"


class JobError(BaseModel):
    code: str = Field(description="provider_error, provider_rejected, timed_out, canceled")
    message: str | None


class ArchiveStatus(StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


class Output(BaseModel):
    """One output of a succeeded job, as the output store keeps it."""

    url: str | None = Field(
        description="This service's durable copy (`GET /v1/jobs/{id}/outputs/{n}`); null "
        "when it could not be stored"
    )
    provider_url: str = Field(description="ModelsLab's URL (temporary: about 24 hours)")
    sha256: str | None
    bytes: int | None
    width: int | None
    height: int | None
    content_type: str | None
    error: str | None = Field(
        description="Why it is not stored: not_an_image, too_large, refused, http_4xx, "
        "not_found_by_deadline"
    )


class JobParameters(BaseModel):
    """What was asked of ModelsLab: the request as accepted, defaults filled in (without
    `callback_url` and `metadata`, which the job carries beside it)."""

    image: str
    prompt: str
    negative_prompt: str
    width: int
    height: int
    overlap_width: int
    num_inference_steps: int
    guidance_scale: float
    seed: int | None = None


class Job(BaseModel):
    id: str = Field(description="The public id, `job_` + 24 hex characters")
    track_id: int = Field(description="The integer sent to ModelsLab as track_id")
    status: JobStatus
    request: JobParameters
    output: list[str] = Field(description="Output image URLs once succeeded")
    error: JobError | None
    provider_id: str | None
    eta_at: datetime | None
    next_poll_at: datetime | None
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None
    completed_at: datetime | None
    polls: int
    webhooks: int
    version: int = Field(description="Grows with every change to the job")
    callback_url: str | None
    callback_status: CallbackStatus | None
    metadata: dict[str, Any]
    archive_status: ArchiveStatus | None = Field(
        description="Keeping the outputs (OUTPUT_STORE): pending, done, failed; null when not kept"
    )
    archive_error: str | None = Field(
        description="Why the outputs are not all kept, or not yet: the archive's last reason "
        "(e.g. `http_404` while the provider's URL is not there yet, `store: …` while the "
        "output store refuses writes); null when there is none"
    )
    outputs: list[Output] | None = Field(
        description="Once archived: one entry per `output`, with its durable URL"
    )
    settled_at: datetime | None = Field(
        description="When the job settled: its status terminal and its outputs no longer "
        "being kept (`archive_status` done, failed or null). Every way of waiting ends "
        "here; null until then"
    )


class JobList(BaseModel):
    items: list[Job]
    next_cursor: str | None = Field(description="Pass back as `cursor` for the next page")


class Event(BaseModel):
    id: int = Field(description="Grows with every event; resume a stream after it")
    at: datetime
    kind: str = Field(description="created, submit, webhook, poll, transition, ignored, …")
    source: str
    from_status: JobStatus | None
    to_status: JobStatus | None
    detail: dict[str, Any]


class EventList(BaseModel):
    items: list[Event]
    next_cursor: str | None = Field(description="Pass back as `cursor` for the next page")


class FieldError(BaseModel):
    field: str
    message: str
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details. `type` is a page of this service (`/problems/{name}`)."""

    type: str = Field(json_schema_extra={"format": "uri-reference"})
    title: str
    status: int
    detail: str | None = None
    errors: list[FieldError] | None = None


class ProviderHealth(BaseModel):
    state: Literal["closed", "open", "half_open"]
    since: datetime | None


class ArchiveStats(BaseModel):
    """The output archive across the deployment (not narrowed by `client`)."""

    enabled: bool = Field(description="An OUTPUT_STORE is configured")
    pending: int = Field(description="Succeeded jobs whose outputs wait to be archived")
    oldest_pending_seconds: float | None
    stored_outputs: int
    stored_bytes: int
    failures: dict[str, int] = Field(description="Outputs given up on, by reason")
    store_errors: dict[str, int] = Field(
        description="Writes the output store refused (each tried again), by kind: "
        "missing_bucket, denied, disk_full, unreachable, error"
    )


class WebhookHealth(BaseModel):
    """How provider results reached the service lately (every process's, from the series)."""

    window_seconds: float
    results_by_webhook: int
    results_by_poll: int
    lost: bool = Field(
        description="Every result of the window came by poll (at least 5): the sweeper then "
        "polls each job at its eta instead of eta + ETA_GRACE_SECONDS"
    )


class Stats(BaseModel):
    counts: dict[str, int] = Field(description="Jobs by state")
    overdue: int = Field(description="Processing jobs past eta + ETA_GRACE_SECONDS")
    oldest_processing_seconds: float | None
    completed_last_hour: int
    p50_seconds: float | None = Field(description="Creation to success, over the window")
    p95_seconds: float | None
    window_seconds: float
    sample_size: int
    callbacks: dict[str, int] = Field(description="Callback deliveries pending, failing, dead")
    provider: ProviderHealth
    archive: ArchiveStats
    webhooks: WebhookHealth


class SeriesPoint(BaseModel):
    at: datetime = Field(description="The start of the step")
    created: int
    finished: dict[str, int] = Field(description="Jobs finished in the step, by state")
    results: dict[str, int] = Field(description="Provider results by how they came: webhook, poll")
    webhook_share: float | None = Field(description="webhook / (webhook + poll)")
    provider_errors: dict[str, int] = Field(description="Failed provider calls by kind")
    rate_limited: int = Field(description="Provider 429s")
    callbacks: dict[str, int] = Field(description="Callback attempts by outcome")
    lateness_p50_seconds: float | None = Field(description="Final webhooks after the eta")
    lateness_p95_seconds: float | None
    to_result_p50_seconds: float | None = Field(description="Creation to success")
    to_result_p95_seconds: float | None
    archived: dict[str, int] = Field(
        description="Outputs archived in the step: stored, or not_stored (given up on)"
    )
    archive_backlog: int | None = Field(
        description="The most outputs waiting to be archived seen in the step; null when "
        "the archive is off"
    )


class Usage(BaseModel):
    day: date
    client: str
    generations: int = Field(description="Generations the provider accepted (resubmissions too)")


class Series(BaseModel):
    window: Literal["1h", "24h", "7d"]
    step_seconds: int
    points: list[SeriesPoint]
    usage: list[Usage]


class EventLink(BaseModel):
    """A URL of one job's event stream that needs no Authorization header, for a browser's
    `EventSource` (read-only, this job only)."""

    url: str = Field(description="Absolute; its `token` stands in for the key: keep it private")
    expires_at: datetime = Field(
        description="After this a new connection is refused (401); one already open goes on"
    )


class CallbackReplay(BaseModel):
    webhook_id: str
    status: str
    attempts: int


class Me(BaseModel):
    """The calling key: whose it is and what it may do."""

    client: str = Field(description="The client the key belongs to")
    key_prefix: str = Field(description="The key's display prefix (events name the acting key)")
    scopes: list[Literal["jobs:write", "jobs:read", "ops:read", "admin"]]


class CallbackEvent(BaseModel):
    """What a job's callback POSTs when it finishes, signed per Standard Webhooks."""

    type: Literal["job.succeeded", "job.failed", "job.timed_out", "job.canceled"]
    timestamp: datetime = Field(description="When the job finished")
    data: Job


MODELS: list[type[BaseModel]] = [
    Job,
    JobList,
    Event,
    EventList,
    Problem,
    CallbackReplay,
    EventLink,
    Stats,
    Series,
    CallbackEvent,
    Me,
]
