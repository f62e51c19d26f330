"""Small builders shared by the tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from service.domain.jobs import Job
from service.domain.requests import JobRequest
from service.domain.states import JobStatus
from service.store.manager import Store

IMAGE = "https://example.invalid/in.png"


async def client_id(store: Store, name: str = "team-a") -> int:
    await store.create_key(name, ["jobs:write", "jobs:read"], datetime.now().astimezone())
    principal_keys = await store.list_keys()
    assert principal_keys
    # the newest client's id: look it up through a job-free query
    from service.store import queries as q

    async with store.engine.connect() as conn:
        return int((await conn.execute(q.get_client_by_name(name))).one().id)


async def queued_job(store: Store, client: int, now: datetime, **request: Any) -> Job:
    job, created = await store.create_job(client, JobRequest(image=IMAGE, **request), None, now)
    assert created
    return job


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
    applied = await store.apply(
        job,
        now,
        source="test",
        to_status=JobStatus.PROCESSING,
        values={
            "provider_id": "99",
            "submitted_at": now,
            "next_poll_at": now + timedelta(seconds=poll_in),
            "lease_owner": None,
            "lease_expires_at": None,
        },
    )
    assert applied.changed and applied.job is not None
    assert applied.job.id == job.id
    return applied.job
