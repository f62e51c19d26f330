"""What ops read: counts by state from the counter table, and figures from partial-index
ranges only, so none of them reads finished history."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from service.domain.states import JobStatus
from service.store import queries as q
from service.store.db import Database
from service.store.records import aware, percentile

CIRCUIT_KEY = "provider_circuit"


class StatsStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def counts_by_status(self, client_id: int | None = None) -> dict[str, int]:
        async with self.db.read() as conn:
            rows = (await conn.execute(q.status_count_totals(client_id))).all()
        counts = {s.value: 0 for s in JobStatus}
        counts.update({str(status): int(n) for status, n in rows})
        return counts

    async def stats(
        self,
        now: datetime,
        grace_seconds: float,
        window_seconds: float,
        client_id: int | None = None,
        sample_limit: int = 100_000,
    ) -> dict[str, Any]:
        """Everything `GET /v1/stats` shows, each from a counter table or an index range."""
        async with self.db.read() as conn:
            overdue = (
                await conn.execute(
                    q.count_overdue(now - timedelta(seconds=grace_seconds), client_id)
                )
            ).scalar_one()
            oldest = (await conn.execute(q.oldest_processing(client_id))).scalar()
            hour = (
                await conn.execute(q.count_completed_since(now - timedelta(hours=1), client_id))
            ).scalar_one()
            times = (
                await conn.execute(
                    q.completion_times(
                        now - timedelta(seconds=window_seconds), client_id, sample_limit
                    )
                )
            ).all()
        if oldest is not None:
            oldest = aware(oldest, now)
        durations = [
            (aware(done, now) - aware(created, now)).total_seconds() for created, done in times
        ]
        return {
            "counts": await self.counts_by_status(client_id),
            "overdue": int(overdue),
            "oldest_processing_seconds": (
                round((now - oldest).total_seconds(), 3) if oldest is not None else None
            ),
            "completed_last_hour": int(hour),
            "p50_seconds": percentile(durations, 50),
            "p95_seconds": percentile(durations, 95),
            "window_seconds": window_seconds,
            "sample_size": len(durations),
        }

    async def record_circuit(self, state: str, now: datetime) -> None:
        """The provider circuit's state, as the worker that saw it change last saw it."""
        value = json.dumps({"state": state, "since": now.isoformat()})
        stmt = q.upsert_state(self.db.engine.dialect.name, CIRCUIT_KEY, value)
        await self.db.run(lambda conn: conn.execute(stmt))

    async def probe_write(self, now: datetime) -> None:
        """One real write (readiness): fails when the database cannot take writes."""
        stmt = q.upsert_state(self.db.engine.dialect.name, "readiness_probe", now.isoformat())
        await self.db.run(lambda conn: conn.execute(stmt))

    async def circuit(self) -> dict[str, Any]:
        async with self.db.read() as conn:
            found = (await conn.execute(q.get_state(CIRCUIT_KEY))).scalar()
        return json.loads(found) if found else {"state": "closed", "since": None}

    async def overdue(self, now: datetime, grace_seconds: float) -> int:
        """Processing jobs past eta + grace (a partial-index range)."""
        async with self.db.read() as conn:
            stmt = q.count_overdue(now - timedelta(seconds=grace_seconds), None)
            return int((await conn.execute(stmt)).scalar_one())

    async def oldest_queued_seconds(self, now: datetime) -> float:
        """How long the oldest queued job has waited to be submitted (0 when none waits)."""
        async with self.db.read() as conn:
            created = (await conn.execute(q.oldest_queued())).scalar()
        return max((now - aware(created, now)).total_seconds(), 0.0) if created else 0.0

    async def sweeper_lag_seconds(self, now: datetime) -> float:
        async with self.db.read() as conn:
            due = (await conn.execute(q.oldest_overdue_poll(now))).scalar()
        return max((now - aware(due, now)).total_seconds(), 0.0) if due is not None else 0.0
