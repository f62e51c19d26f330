"""How a job and its events look on the wire: RFC 3339 in UTC, and no next poll once a job
has finished."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from service.domain.jobs import Event
from service.domain.states import JobStatus
from service.domain.views import event_json, job_json, rfc3339
from tests.factories import SNAPSHOT_AT, job_snapshot


def test_times_are_utc_with_a_z() -> None:
    assert rfc3339(None) is None
    plus_two = datetime(2026, 12, 4, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    assert rfc3339(plus_two) == "2026-12-04T12:00:00Z"
    assert (
        rfc3339(datetime(2026, 12, 4, 12, 0, 0, 500, tzinfo=UTC)) == "2026-12-04T12:00:00.000500Z"
    )


def test_a_job_reads_with_its_error_and_next_poll_while_unfinished() -> None:
    job = job_snapshot(status=JobStatus.PROCESSING, next_poll_at=SNAPSHOT_AT)
    out = job_json(job)
    assert out["id"] == job.public_id and out["track_id"] == job.id
    assert out["status"] == "processing" and out["error"] is None
    assert out["next_poll_at"] == "2026-12-04T12:00:00Z"
    failed = job_snapshot(status=JobStatus.FAILED, error_code="provider_error", error_message="x")
    out = job_json(failed)
    assert out["error"] == {"code": "provider_error", "message": "x"}
    assert out["next_poll_at"] is None  # a finished job is not polled again


def test_an_event_reads_as_recorded() -> None:
    event = Event(7, 1, SNAPSHOT_AT, "transition", "webhook", "processing", "succeeded", {})
    assert event_json(event) == {
        "id": 7,
        "at": "2026-12-04T12:00:00Z",
        "kind": "transition",
        "source": "webhook",
        "from_status": "processing",
        "to_status": "succeeded",
        "detail": {},
    }
