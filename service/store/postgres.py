"""PostgreSQL's backend (`backend.Backend`): the named statements of `sql/postgresql.sql`,
run verbatim as prepared statements on asyncpg connections, one round trip each."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import asyncpg

from service.domain.changes import Note
from service.domain.jobs import Job
from service.domain.wakeups import Wake
from service.store import queries as q
from service.store.backend import Creation, JobMove, NewJob, WebhookCount, event_values
from service.store.db import Database
from service.store.records import job_from_mapping
from service.store.sql import POSTGRESQL as SQL


def _events(events: tuple[Note, ...]) -> list[dict[str, Any]]:
    return [event_values(e) for e in events]


class Backend:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def move(self, m: JobMove) -> tuple[Job | None, bool]:
        f = m.fields
        callback_id, event_type = m.callback or (None, None)
        async with self.db.driver() as driver:
            record = await driver.fetchrow(
                SQL["apply_change"],
                m.job_id,
                m.expect,
                m.owner,
                m.status,
                m.version_bump,
                m.now,
                f.provider_id,
                f.provider_status,
                f.fetch_result,
                f.submitted_at,
                f.eta_at,
                f.next_poll_at,
                list(f.output) if f.output is not None else None,
                f.error.code if f.error else None,
                f.error.message if f.error else None,
                m.terminal,
                m.release,
                m.polls,
                m.attempts,
                m.reset_attempts,
                m.webhooks,
                _events(m.events),
                [{"status": s, "n": n} for s, n in m.counts],
                m.shard,
                callback_id,
                event_type,
                q.WATCH_CHANNEL,
                m.archive_until,
            )
            if record is None:  # it had moved (or is gone): as it is now
                found = await driver.fetchrow(SQL["get_job"], m.job_id)
                return (job_from_mapping(found) if found is not None else None), False
        return job_from_mapping(record), True

    async def _job(self, statement: str, *args: Any) -> Job | None:
        """Run `statement`; the job it returns, if any."""
        async with self.db.driver() as driver:
            record = await driver.fetchrow(SQL[statement], *args)
        return job_from_mapping(record) if record is not None else None

    async def count_webhook(self, c: WebhookCount) -> Job | None:
        events = _events(c.events)
        args = (c.job_id, c.status, c.webhooks, c.now, events, q.WATCH_CHANNEL)
        return await self._job("count_webhook", *args)

    async def record_events(self, job_id: int, now: datetime, events: tuple[Note, ...]) -> None:
        async with self.db.driver() as driver:
            await driver.execute(
                SQL["record_events"], job_id, now, _events(events), q.WATCH_CHANNEL
            )

    async def get_job(self, job_id: int) -> Job | None:
        return await self._job("get_job", job_id)

    async def find_active_key(self, key_hash: str) -> Mapping[str, Any] | None:
        async with self.db.driver() as driver:
            record = await driver.fetchrow(SQL["find_active_key"], key_hash)
        return dict(record.items()) if record is not None else None

    async def create_job(self, n: NewJob) -> Creation:
        """One statement (`create_job`), its own transaction: exact under concurrent
        creators of one client without a lock held across round trips. Two first uses of
        one key at once: the loser's insert hits the unique key (`raced`: ask again)."""
        async with self.db.driver() as driver:
            try:
                record = await driver.fetchrow(
                    SQL["create_job"],
                    n.client_id,
                    n.idempotency_key,
                    n.window_start,
                    n.per_minute,
                    n.max_unfinished,
                    n.public_id,
                    n.request,
                    n.request_hash,
                    n.now,
                    n.callback_url,
                    n.metadata,
                    n.shard_count,
                    q.WAKE_CHANNEL,
                    Wake.JOB_CREATED.value,
                    _events((n.created,)),
                    n.created.to_status,
                )
            except asyncpg.UniqueViolationError:
                return Creation(None, raced=True)
            assert record is not None
            if record["window_count"] == 1:  # a new window: drop the old ones
                await driver.execute(SQL["forget_rate_windows"], n.client_id, n.window_start)
        return Creation(
            job_from_mapping(record) if record["id"] is not None else None,
            record["prior_id"],
            record["prior_created_at"],
            record["prior_hash"],
            record["window_count"] or 0,
            record["unfinished"] or 0,
        )

    async def forget_idempotency_key(self, job_id: int) -> None:
        async with self.db.driver() as driver:
            await driver.execute(SQL["forget_idempotency_key"], job_id)
