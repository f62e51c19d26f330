"""With 200,000 finished jobs in the table, every claim reads an index, never the table.
(PostgreSQL `EXPLAIN`; SQLite `EXPLAIN QUERY PLAN`.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from service.domain.states import JobStatus
from service.store import queries as q
from service.store.explain import plan
from service.store.manager import Store
from tests.factories import client_id
from tests.seeding import analyze, seed_jobs

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LEASE = NOW + timedelta(seconds=60)


@pytest.fixture
async def big_table(store: Store) -> Store:
    cid = await client_id(store)
    async with store.engine.begin() as conn:
        for i, status in enumerate(("succeeded", "failed", "timed_out", "canceled")):
            await seed_jobs(conn, cid, 50_000, status, NOW - timedelta(days=i + 1), f"f{i}")
        await seed_jobs(conn, cid, 50, "queued", NOW - timedelta(seconds=5), "q")
        await seed_jobs(conn, cid, 50, "processing", NOW - timedelta(seconds=5), "p")
    async with store.engine.begin() as conn:
        await analyze(conn)
    return store


def assert_uses(explained: str, index: str) -> None:
    assert index in explained, explained
    assert "Seq Scan on jobs" not in explained, explained
    assert "SCAN jobs" not in explained.replace("SCAN jobs USING", ""), explained


@pytest.mark.parametrize(
    ("status", "index"),
    [(JobStatus.QUEUED, "ix_jobs_submit_due"), (JobStatus.PROCESSING, "ix_jobs_poll_due")],
)
async def test_claims_use_their_partial_index(
    big_table: Store, status: JobStatus, index: str
) -> None:
    async with big_table.engine.connect() as conn:
        explained = await plan(conn, q.claim_due(status, NOW, "w", LEASE, 16))
    assert_uses(explained, index)


async def test_the_capacity_count_reads_only_unfinished_rows_through_an_index(
    big_table: Store,
) -> None:
    async with big_table.engine.connect() as conn:
        explained = await plan(conn, q.count_inflight(NOW))
    assert "ix_jobs_" in explained, explained  # the partial indexes, or (status, id) by status
    assert "Seq Scan on jobs" not in explained, explained
    assert "SCAN jobs" not in explained.replace("SCAN jobs USING", ""), explained


async def test_the_claims_still_find_the_due_jobs(big_table: Store) -> None:
    assert len(await big_table.claim_for_submit(NOW, "w", LEASE, 100)) == 50
    assert len(await big_table.claim_for_poll(NOW, "w", LEASE, 100)) == 50
