"""How a job and its events look to clients: in API answers and in callback payloads."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from service.domain.jobs import Event, Job
from service.domain.states import TERMINAL


def rfc3339(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def job_json(job: Job) -> dict[str, Any]:
    return {
        "id": job.public_id,
        "track_id": job.id,
        "status": job.status.value,
        "request": job.request,
        "output": job.output,
        "error": (
            {"code": job.error_code, "message": job.error_message} if job.error_code else None
        ),
        "provider_id": job.provider_id,
        "eta_at": rfc3339(job.eta_at),
        "next_poll_at": None if job.status in TERMINAL else rfc3339(job.next_poll_at),
        "created_at": rfc3339(job.created_at),
        "updated_at": rfc3339(job.updated_at),
        "submitted_at": rfc3339(job.submitted_at),
        "completed_at": rfc3339(job.completed_at),
        "polls": job.polls,
        "webhooks": job.webhooks,
        "version": job.version,
        "callback_url": job.callback_url,
        "callback_status": job.callback_status,
        "metadata": job.metadata,
        "archive_status": job.archive_status,
        "archive_error": job.archive_error,
        "outputs": job.outputs,
        "settled_at": rfc3339(job.settled_at),
    }


def event_json(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": rfc3339(event.at),
        "kind": event.kind,
        "source": event.source,
        "from_status": event.from_status,
        "to_status": event.to_status,
        "detail": event.detail,
    }
