"""The series' store on both databases: flushes add up per minute, series and label;
levels keep their highest; usage per client and day; old minutes go."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from service.domain import archive
from service.domain.archive import ArchivePolicy
from service.domain.states import JobStatus
from service.store import Store
from tests.factories import client_id, processing_job, to

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


async def test_flushes_add_up_and_old_minutes_go(store: Store) -> None:
    team = await client_id(store, "team-a")
    await store.series.add(
        T0, {("created", ""): 2, ("results", "webhook"): 1}, T0.date(), {team: 2}
    )
    await store.series.add(T0, {("created", ""): 1}, T0.date(), {team: 1})  # another process
    old = T0 - timedelta(days=9)
    await store.series.add(old, {("created", ""): 5}, old.date(), {})
    rows = await store.series.minutes_since(T0 - timedelta(days=10))
    assert sorted(rows) == sorted(
        [(old, "created", "", 5.0), (T0, "created", "", 3.0), (T0, "results", "webhook", 1.0)]
    )
    assert await store.series.usage_since(T0.date()) == [(T0.date(), "team-a", 3)]
    await store.series.forget_minutes(T0 - timedelta(days=8))
    assert {r[0] for r in await store.series.minutes_since(old)} == {T0}


async def test_a_level_keeps_the_highest_any_process_saw_in_the_minute(store: Store) -> None:
    backlog = {("archive_backlog", ""): 4.0}
    await store.series.add(T0, {}, T0.date(), {}, backlog)
    await store.series.add(T0, {}, T0.date(), {}, {("archive_backlog", ""): 9.0})  # another
    await store.series.add(T0, {("created", ""): 1}, T0.date(), {}, {("archive_backlog", ""): 2.0})
    await store.series.add(T0 + timedelta(minutes=1), {}, T0.date(), {}, backlog)
    rows = await store.series.minutes_since(T0)
    assert sorted(rows) == [
        (T0, "archive_backlog", "", 9.0),
        (T0, "created", "", 1.0),
        (T0 + timedelta(minutes=1), "archive_backlog", "", 4.0),
    ]


async def test_the_pending_archives_are_counted(store: Store) -> None:
    """What the flusher records as the archive backlog (both databases)."""
    store = Store(store.db, ArchivePolicy(deadline_seconds=3600, retry_base_seconds=1))
    team = await client_id(store, "team-a")
    assert await store.archives.pending() == 0
    for _ in range(3):
        job = await processing_job(store, team, T0)
        change = to(JobStatus.SUCCEEDED, output=("http://127.0.0.1:9/o.png",))
        assert (await store.changes.apply_change(job, change, T0)).changed
    assert await store.archives.pending() == 3
    [task] = await store.archives.claim_archives(T0, "w", T0 + timedelta(seconds=60), 1)
    given_up = archive.Unstored(0, "http://127.0.0.1:9/o.png", "not_an_image")
    assert await store.archives.settle(task, "w", T0, [given_up], ["x"])
    assert await store.archives.pending() == 2
