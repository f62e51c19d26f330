"""A job as the domain sees it: a read-only snapshot of one row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from service.domain.states import JobStatus


@dataclass(frozen=True)
class Job:
    id: int  # also the track_id sent to ModelsLab
    public_id: str
    client_id: int
    status: JobStatus
    request: dict[str, Any]
    provider_id: str | None
    eta_at: datetime | None
    fetch_result: str | None
    output: list[str]
    error_code: str | None
    error_message: str | None
    provider_status: str | None
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None
    completed_at: datetime | None
    next_poll_at: datetime | None
    polls: int
    webhooks: int
    attempts: int
    submit_attempts: int
    crashed_submits: int
    version: int
    lease_owner: str | None
    lease_expires_at: datetime | None
    callback_url: str | None
    callback_status: str | None
    metadata: dict[str, Any]
    refreshed_at: datetime | None = None  # the last POST /refresh that polled the provider
    archive_status: str | None = None  # pending, done, failed; None: not archived
    outputs: list[dict[str, Any]] | None = None  # as clients see them, once archived
    archive_error: str | None = None  # why its outputs are not (all) kept, or not yet
    settled_at: datetime | None = None  # terminal, and its outputs no longer being kept

    @property
    def track_id(self) -> int:
        return self.id

    @property
    def clock_start(self) -> datetime:
        """JOB_TIMEOUT_SECONDS runs from submission, or from creation while still queued."""
        return self.submitted_at or self.created_at


@dataclass(frozen=True)
class Event:
    id: int
    job_id: int
    at: datetime
    kind: str
    source: str
    from_status: str | None
    to_status: str | None
    detail: dict[str, Any]
