"""The series' store on both databases: flushes add up per minute, series and label;
usage per client and day; old minutes go."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from service.store import Store
from tests.factories import client_id

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
