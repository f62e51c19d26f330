"""With 1,000,000 finished jobs in the table, every claim, every stats and series query and
every search reads an index, never the table. (PostgreSQL `EXPLAIN`; SQLite `EXPLAIN QUERY
PLAN`.) One seeded table per backend, all plans checked against it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from service.domain.states import JobStatus
from service.store import Store
from service.store import queries as q
from service.store import queries_archive as qa
from service.store import queries_series as qs
from service.store.explain import plan
from tests.factories import client_id
from tests.seeding import (
    analyze,
    seed_delivered_callbacks,
    seed_done_archives,
    seed_jobs,
    seed_minutes,
    seed_usage,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LEASE = NOW + timedelta(seconds=60)

# (name, statement, the index it must use, or None for "any index")
QUERIES: list[tuple[str, Any, str | None]] = [
    (
        "submit claim",
        q.claim_due(JobStatus.QUEUED, q.Lease(NOW, "w", LEASE, 16)),
        "ix_jobs_submit_due",
    ),
    (
        "poll claim",
        q.claim_due(JobStatus.PROCESSING, q.Lease(NOW, "w", LEASE, 16)),
        "ix_jobs_poll_due",
    ),
    ("capacity count", q.count_inflight(NOW), None),
    ("overdue", q.count_overdue(NOW, None), None),
    ("oldest processing", q.oldest_processing(None), None),
    ("sweeper lag", q.oldest_overdue_poll(NOW), None),
    ("oldest queued", q.oldest_queued(), None),
    ("next poll due", q.next_poll_due(), None),
    ("completed last hour", q.count_completed_since(NOW - timedelta(hours=1), None), None),
    ("completion times", q.completion_times(NOW - timedelta(hours=1), None, 1000), None),
    ("callbacks by status", q.count_deliveries_by_status(None), None),
    ("archive claim", qa.claim_archives(q.Lease(NOW, "w", LEASE, 16)), "ix_output_archives_due"),
    ("archive backlog", qa.archive_backlog(), "ix_output_archives_due"),
    ("stored outputs to delete", qa.stored_of_finished(NOW - timedelta(days=2), 500), None),
    ("prune keeping stored outputs", q.prune_batch(NOW - timedelta(days=2), 500, True), None),
    # the primary key: pk_stats_minutes, or SQLite's sqlite_autoindex_stats_minutes_1
    ("series, 1 h", qs.minutes_since(NOW - timedelta(hours=1)), "_stats_minutes"),
    ("series, 24 h", qs.minutes_since(NOW - timedelta(days=1)), "_stats_minutes"),
    ("series, 7 d", qs.minutes_since(NOW - timedelta(days=7)), "_stats_minutes"),
    # the primary key: pk_usage_days, or SQLite's sqlite_autoindex_usage_days_1
    ("usage", qs.usage_since((NOW - timedelta(days=6)).date()), "_usage_days"),
    ("results by how they came", qs.results_since(NOW - timedelta(minutes=5)), "_stats_minutes"),
]
# The lists (GET /v1/jobs): a search names every way at once, each by its own index (the
# provider id's shows the OR is not a filter on a scan); a small client's list reads its own
# rows, not the big client's. Clients' ids are known only once seeded: (name, whose ("big",
# "small" or None for every client's), state or None, match, the index it must use or None).
LISTS: list[tuple[str, str | None, JobStatus | None, str | None, str | None]] = [
    ("find by any name", None, None, "job_f1_777", "ix_jobs_provider_id"),
    ("find by any name, a track id", None, None, "123456", "ix_jobs_provider_id"),
    ("find by any name, one client", "big", None, "key_f2_99", "ix_jobs_provider_id"),
    ("find by any name, a small client", "small", None, "key_s1_3", "ix_jobs_provider_id"),
    ("find by any name, one state", None, JobStatus.FAILED, "job_f1_777", "ix_jobs_provider_id"),
    ("the big client's list", "big", None, None, None),
    ("a small client's list", "small", None, None, "ix_jobs_client_id_id"),
    ("a small client's failures", "small", JobStatus.FAILED, None, "ix_jobs_client_status_id"),
    ("the big client's failures", "big", JobStatus.FAILED, None, None),
    ("list by state", None, JobStatus.PROCESSING, None, None),
]


def full_scan(explained: str) -> bool:
    return any(
        f"Seq Scan on {t}" in explained or f"SCAN {t}" in explained.replace(f"SCAN {t} USING", "")
        for t in (
            "jobs",
            "callback_deliveries",
            "output_archives",
            "job_outputs",
            "stats_minutes",
            "usage_days",
        )
    )


async def _check(
    store: Store, queries: list[tuple[str, Any, str | None]], problems: list[str], when: str = ""
) -> None:
    """Add each query whose plan scans a big table, or misses its index, to `problems`."""
    async with store.engine.connect() as conn:
        for name, statement, index in queries:
            explained = await plan(conn, statement)
            if full_scan(explained) or (index is not None and index not in explained):
                problems.append(f"{name} {when}:\n{explained}")
            if index is None and "ix_" not in explained and "pk_" not in explained:
                problems.append(f"{name} {when} uses no index:\n{explained}")


async def test_every_hot_query_reads_an_index_on_a_big_table(store: Store) -> None:
    cid = await client_id(store)
    small = await client_id(store, "team-small")
    async with store.engine.begin() as conn:
        for i, status in enumerate(("succeeded", "failed", "timed_out", "canceled")):
            await seed_jobs(conn, cid, 250_000, status, NOW - timedelta(days=i + 1), f"f{i}")
        await seed_jobs(conn, cid, 50, "queued", NOW - timedelta(seconds=5), "q")
        await seed_jobs(conn, cid, 50, "processing", NOW - timedelta(seconds=5), "p")
        await seed_jobs(conn, small, 40, "succeeded", NOW - timedelta(days=1), "s0")
        await seed_jobs(conn, small, 10, "failed", NOW - timedelta(days=1), "s1")
        await seed_delivered_callbacks(conn)
        await seed_done_archives(conn)
        await seed_minutes(conn, NOW)
        await seed_usage(conn, NOW)
    whose = {"big": cid, "small": small, None: None}
    lists = [
        (name, q.list_jobs(whose[owner], status, None, 21, match), index)
        for name, owner, status, match, index in LISTS
    ]
    problems: list[str] = []
    if not store.db.is_postgresql:  # the service never ANALYZEs SQLite: the lists first
        await _check(store, lists, problems, "without statistics")
    async with store.engine.begin() as conn:
        await analyze(conn)
    await _check(store, [*QUERIES, *lists], problems)
    assert not problems, "\n\n".join(problems)
    # And the claims still find exactly the due jobs.
    assert len(await store.jobs.claim_for_submit(NOW, "w", LEASE, 100)) == 50
    assert len(await store.jobs.claim_for_poll(NOW, "w", LEASE, 100)) == 50
