"""The series ops chart: each process's per-minute counts added in one short transaction
per flush, read back by window; and generations per client and day."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime

from sqlalchemy import Connection

from service.store import queries_series as qs
from service.store.db import Database

Minute = tuple[datetime, str, str, float]  # (minute, series, label, n)


class SeriesStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(
        self,
        minute: datetime,
        counts: Mapping[tuple[str, str], float],
        day: date,
        generations: Mapping[int, int],
        levels: Mapping[tuple[str, str], float] | None = None,
    ) -> None:
        """Add a flush's counts to `minute` and its generations to `day`, and keep the
        highest of each level (`levels`) in `minute`: one transaction."""
        if not counts and not generations and not levels:
            return

        def tx(conn: Connection) -> None:
            if counts:
                conn.execute(qs.add_minute(conn.dialect.name, minute, counts))
            if levels:
                conn.execute(qs.peak_minute(conn.dialect.name, minute, levels))
            if generations:
                conn.execute(qs.add_usage(conn.dialect.name, day, generations))

        await self.db.run(tx)

    async def minutes_since(self, since: datetime) -> list[Minute]:
        async with self.db.read() as conn:
            rows = (await conn.execute(qs.minutes_since(since))).all()
        return [(r[0], str(r[1]), str(r[2]), float(r[3])) for r in rows]

    async def results_since(self, since: datetime) -> dict[str, float]:
        """Provider results by how they came (webhook, poll) since `since`."""
        async with self.db.read() as conn:
            rows = (await conn.execute(qs.results_since(since))).all()
        return {str(label): float(n) for label, n in rows}

    async def usage_since(self, since: date) -> list[tuple[date, str, int]]:
        async with self.db.read() as conn:
            rows = (await conn.execute(qs.usage_since(since))).all()
        return [(r[0], str(r[1]), int(r[2])) for r in rows]

    async def forget_minutes(self, before: datetime) -> None:
        await self.db.run(lambda conn: conn.execute(qs.forget_minutes(before)))
