"""What a process waiting on jobs asks of the database: to be told when a job changes
(PostgreSQL: a `job_watchers` row per job and process, so only watched jobs NOTIFY), and
where watched jobs stand (one read for all of them, the waiters' catch-up)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from service.store import queries as q
from service.store.db import Database
from service.store.sql import POSTGRESQL as SQL

Mark = tuple[int, int]  # (version, last event id): grows with every change a waiter sees


class WatchStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        # Called with a job's id after this process changed it (committed), so waiters in
        # this process wake without a round trip; other processes hear the NOTIFY.
        self.on_changed: list[Callable[[int], None]] = []

    def changed(self, job_id: int) -> None:
        for callback in self.on_changed:
            callback(job_id)

    @property
    def notifies(self) -> bool:
        """Whether changes made by other processes are announced (PostgreSQL)."""
        return self.db.is_postgresql

    async def watch(self, job_id: int, watcher: str, until: datetime) -> None:
        if self.db.is_postgresql:
            async with self.db.driver() as driver:
                await driver.execute(SQL["watch_job"], job_id, watcher, until)

    async def unwatch(self, job_id: int, watcher: str) -> None:
        if self.db.is_postgresql:
            async with self.db.driver() as driver:
                await driver.execute(SQL["unwatch_job"], job_id, watcher)

    async def keep_watching(self, watcher: str, until: datetime, now: datetime) -> None:
        """Extend this process's rows; drop those of processes that stopped extending."""
        if self.db.is_postgresql:
            async with self.db.driver() as driver:
                await driver.execute(SQL["keep_watching"], watcher, until, now)

    async def unwatch_all(self, watcher: str) -> None:
        if self.db.is_postgresql:
            async with self.db.driver() as driver:
                await driver.execute(SQL["unwatch_all"], watcher)

    async def marks(self, job_ids: Sequence[int]) -> dict[int, Mark]:
        """Each job's version and last event id (a job that is gone is left out)."""
        if not job_ids:
            return {}
        async with self.db.read() as conn:
            rows = (await conn.execute(q.job_marks(job_ids))).all()
        return {r.id: (r.version, r.last_event or 0) for r in rows}
