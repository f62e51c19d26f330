"""How jobs and events look on the wire."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any

from service.api.problems import Problem
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
        "callback_status": None,
        "metadata": job.metadata,
    }


def event_json(event: Event) -> dict[str, Any]:
    return {
        "at": rfc3339(event.at),
        "kind": event.kind,
        "source": event.source,
        "from_status": event.from_status,
        "to_status": event.to_status,
        "detail": event.detail,
    }


def encode_cursor(job_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{job_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    kind, _, value = raw.partition(":")
    if kind != "id" or not value.isdigit():
        raise Problem(
            422,
            "Invalid request",
            "The cursor is not one this API gave out.",
            type_="validation",
            errors=[{"field": "cursor", "message": "invalid cursor", "type": "cursor"}],
        )
    return int(value)
