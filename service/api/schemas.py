"""The shapes the API answers with, as pydantic models: the source of /openapi.json.

Handlers build plain dicts (`representations.py`); the schemathesis test checks that what
they build conforms to these."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from service.domain.states import JobStatus

Timestamp = str  # RFC 3339, UTC, e.g. 2026-11-25T12:00:00.000000Z


class JobError(BaseModel):
    code: str = Field(description="provider_error, provider_rejected, timed_out, canceled")
    message: str | None


class Job(BaseModel):
    id: str = Field(description="The public id, `job_` + 24 hex characters")
    track_id: int = Field(description="The integer sent to ModelsLab as track_id")
    status: JobStatus
    request: dict[str, Any] = Field(description="The request as accepted, defaults filled in")
    output: list[str] = Field(description="Output image URLs once succeeded")
    error: JobError | None
    provider_id: str | None
    eta_at: Timestamp | None = Field(json_schema_extra={"format": "date-time"})
    next_poll_at: Timestamp | None = Field(json_schema_extra={"format": "date-time"})
    created_at: Timestamp = Field(json_schema_extra={"format": "date-time"})
    updated_at: Timestamp = Field(json_schema_extra={"format": "date-time"})
    submitted_at: Timestamp | None = Field(json_schema_extra={"format": "date-time"})
    completed_at: Timestamp | None = Field(json_schema_extra={"format": "date-time"})
    polls: int
    webhooks: int
    version: int = Field(description="Grows with every change to the job")
    callback_url: str | None
    callback_status: Literal["pending", "delivered", "failing", "dead"] | None
    metadata: dict[str, Any]


class JobList(BaseModel):
    items: list[Job]
    next_cursor: str | None = Field(description="Pass back as `cursor` for the next page")


class Event(BaseModel):
    at: Timestamp = Field(json_schema_extra={"format": "date-time"})
    kind: str = Field(description="created, submit, webhook, poll, transition, ignored, …")
    source: str
    from_status: str | None
    to_status: str | None
    detail: dict[str, Any]


class EventList(BaseModel):
    items: list[Event]
    next_cursor: str | None = None


class FieldError(BaseModel):
    field: str
    message: str
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str | None = None
    errors: list[FieldError] | None = None


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


class CallbackReplay(BaseModel):
    webhook_id: str
    status: str
    attempts: int


class WebhookAck(BaseModel):
    received: Literal[True]
    applied: bool


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    status: str
    checks: dict[str, str]


MODELS: list[type[BaseModel]] = [
    Job,
    JobList,
    Event,
    EventList,
    Problem,
    CallbackReplay,
    Stats,
    WebhookAck,
    Health,
    Ready,
]
