"""Retention: finished jobs past the cutoff go, with their events, in batches; unfinished
and recent jobs stay; one replica prunes at a time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from service.domain.retention import parse_age
from service.store import Store
from service.store.tables import job_events, jobs
from tests.factories import client_id, queued_job
from tests.seeding import seed_jobs

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


async def count(store: Store, table=jobs) -> int:  # type: ignore[no-untyped-def]
    async with store.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def test_prune_deletes_only_old_finished_jobs_and_their_events(store: Store) -> None:
    cid = await client_id(store)
    async with store.engine.begin() as conn:
        await seed_jobs(conn, cid, 35, "succeeded", NOW - timedelta(days=40), "old")
        await seed_jobs(conn, cid, 5, "failed", NOW - timedelta(days=5), "recent")
        await seed_jobs(conn, cid, 3, "processing", NOW - timedelta(days=40), "stuck")
    old_queued = await queued_job(store, cid, NOW - timedelta(days=40))  # with an event
    async with store.engine.begin() as conn:
        old_ids = [
            r.id
            for r in await conn.execute(select(jobs.c.id).where(jobs.c.public_id.like("job_old_%")))
        ]
        await conn.execute(
            job_events.insert(),
            [
                {"job_id": i, "at": NOW, "kind": "webhook", "source": "provider", "detail": {}}
                for i in old_ids
            ],
        )
    events_before = await count(store, job_events)
    deleted = await store.jobs.prune(NOW - timedelta(days=30), batch_size=10)
    assert deleted == 35
    assert await count(store) == 5 + 3 + 1
    assert await count(store, job_events) == events_before - 35
    assert await store.jobs.get_job_by_id(old_queued.id) is not None
    assert await store.jobs.prune(NOW - timedelta(days=30), batch_size=10) == 0


async def test_one_replica_prunes_at_a_time(store: Store, db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        # SQLite serialises every write; there is no second replica to keep out.
        assert await store.jobs.prune(NOW, batch_size=10) == 0
        return
    from service.store import queries as q

    async with store.engine.connect() as other:  # another replica, mid-prune
        assert (await other.execute(q.try_lock_prune())).scalar()
        try:
            assert await store.jobs.prune(NOW) is None
        finally:
            await other.execute(q.unlock_prune())
    assert await store.jobs.prune(NOW) == 0


@pytest.mark.parametrize(("text", "days"), [("30d", 30), ("2w", 14), ("36h", 1.5), ("1440m", 1)])
def test_ages(text: str, days: float) -> None:
    assert parse_age(text) == timedelta(days=days)


@pytest.mark.parametrize("text", ["", "30", "d", "-1d", "3y", "12h"])
def test_bad_ages(text: str) -> None:
    with pytest.raises(ValueError):
        parse_age(text)
