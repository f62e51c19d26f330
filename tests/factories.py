"""Small builders shared by the tests, and test-only helpers that reach the tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, update

from service import rollup
from service.domain.changes import Change, Fields
from service.domain.jobs import Job
from service.domain.requests import JobRequest
from service.domain.states import JobStatus
from service.store import Store
from service.store.records import Created
from service.store.tables import (
    api_keys,
    archive_counts,
    callback_deliveries,
    clients,
    job_events,
    job_outputs,
    jobs,
    output_archives,
    output_stores,
    rate_windows,
    service_state,
    stats_minutes,
    status_counts,
    usage_days,
)

IMAGE = "https://images.example.invalid/in.png"
SNAPSHOT_AT = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def job_snapshot(**fields: Any) -> Job:
    """A job as a row would read, without a database: queued, created at SNAPSHOT_AT."""
    values: dict[str, Any] = {
        "id": 1,
        "public_id": "job_" + "0" * 24,
        "client_id": 1,
        "status": JobStatus.QUEUED,
        "request": {"image": IMAGE, "prompt": "a pier"},
        "provider_id": None,
        "eta_at": None,
        "fetch_result": None,
        "output": [],
        "error_code": None,
        "error_message": None,
        "provider_status": None,
        "created_at": SNAPSHOT_AT,
        "updated_at": SNAPSHOT_AT,
        "submitted_at": None,
        "completed_at": None,
        "next_poll_at": SNAPSHOT_AT,
        "polls": 0,
        "webhooks": 0,
        "attempts": 0,
        "submit_attempts": 0,
        "crashed_submits": 0,
        "version": 1,
        "lease_owner": None,
        "lease_expires_at": None,
        "callback_url": None,
        "callback_status": None,
        "metadata": {},
    }
    values.update(fields)
    return Job(**values)


async def client_id(store: Store, name: str = "team-a") -> int:
    await store.clients.create_key(name, ["jobs:write", "jobs:read"], datetime.now().astimezone())
    found = await store.clients.client_id_of(name)
    assert found is not None
    return found


async def queued_job(store: Store, client: int, now: datetime, **request: Any) -> Job:
    result = await store.jobs.create_job(client, JobRequest(image=IMAGE, **request), None, now)
    assert isinstance(result, Created)
    return result.job


def accepted(now: datetime, poll_in: float = 10.0) -> Change:
    """What the submitter records when ModelsLab accepted a job (provider id 99)."""
    return Change(
        "test",
        JobStatus.PROCESSING,
        Fields(
            provider_id="99",
            submitted_at=now,
            next_poll_at=now + timedelta(seconds=poll_in),
        ),
        release=True,
    )


async def processing_job(
    store: Store,
    client: int,
    now: datetime,
    poll_in: float = 10.0,
    callback_url: str | None = None,
) -> Job:
    """A job as the submitter leaves it after ModelsLab accepted it (no claim involved, so a
    background submitter racing for the queued row cannot get in the way)."""
    job = await queued_job(store, client, now, callback_url=callback_url)
    applied = await store.changes.apply_change(job, accepted(now, poll_in), now)
    assert applied.changed and applied.job is not None
    assert applied.job.id == job.id
    return applied.job


def to(status: JobStatus, source: str = "test", **fields: Any) -> Change:
    """A change to `status` (with `fields`), as a test would make it by hand."""
    return Change(source, status, Fields(**fields))


async def force(store: Store, job_id: int, **columns: Any) -> Job:
    """Test only: set columns of a job directly (a state the flow would take long to
    reach, such as an eta in the past)."""
    stmt = update(jobs).where(jobs.c.id == job_id).values(**columns)
    await store.db.run(lambda conn: conn.execute(stmt))
    job = await store.jobs.get_job_by_id(job_id)
    assert job is not None
    return job


async def empty_every_table(store: Store) -> None:
    """Test only: empty every table, children first."""

    def empty(conn: Connection) -> None:
        for table in (
            callback_deliveries,
            job_events,
            job_outputs,
            output_archives,
            archive_counts,
            output_stores,
            stats_minutes,
            usage_days,
            jobs,
            rate_windows,
            status_counts,
            api_keys,
            clients,
            service_state,
        ):
            conn.execute(delete(table))

    await store.db.run(empty)
    # The generations this process counted but has not flushed name clients just deleted:
    # a later test's series flush would insert usage for them and fail on the foreign key.
    rollup.GENERATIONS.clear()
