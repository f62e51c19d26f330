"""PostgreSQL's faster implementations of store methods: the named statements of
`sql/postgresql.sql`, run verbatim as prepared statements on asyncpg connections, one round
trip each where the general path takes a transaction. `tests/contract` holds them to the
general path's results."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from service.domain import callbacks
from service.domain.changes import Change, Plan
from service.domain.jobs import Job
from service.domain.requests import JobRequest
from service.domain.wakeups import Wake
from service.store import queries as q
from service.store.db import Database
from service.store.records import (
    AtCap,
    Created,
    CreateResult,
    CreationLimits,
    KeyReused,
    RateLimited,
    Replayed,
    job_from_mapping,
)
from service.store.sql import POSTGRESQL as SQL
from service.store.tables import COUNT_SHARDS

IDEMPOTENCY_TTL = timedelta(hours=24)


class Statements:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def apply(
        self,
        job_id: int,
        p: Plan,
        change: Change,
        now: datetime,
        owner: str | None,
        events: list[dict[str, Any]],
        webhooks: int = 0,
        archive_until: datetime | None = None,
    ) -> tuple[Job | None, bool]:
        """`apply_change`: (the job after the change, True), or (the job as it was, False)
        when it had moved; (None, False) when it is gone. `archive_until`: queue the
        archive of its outputs (and hold its callback) until then."""
        f = change.fields
        outbox = p.terminal and bool(p.steps)
        async with self.db.driver() as driver:
            record = await driver.fetchrow(
                SQL["apply_change"],
                job_id,
                p.expect.value,
                owner,
                p.final.value,
                p.version_bump + webhooks,
                now,
                f.provider_id,
                f.provider_status,
                f.fetch_result,
                f.submitted_at,
                f.eta_at,
                f.next_poll_at,
                list(f.output) if f.output is not None else None,
                f.error.code if f.error else None,
                f.error.message if f.error else None,
                p.terminal,
                change.release or p.terminal,
                1 if change.count_poll else 0,
                1 if change.count_attempt else 0,
                change.reset_attempts,
                webhooks,
                events,
                [{"status": s, "n": n} for s, n in p.counter_deltas().items()],
                job_id % COUNT_SHARDS,
                callbacks.new_webhook_id() if outbox else None,
                callbacks.EVENT_TYPES[p.final] if outbox else None,
                q.WATCH_CHANNEL,
                archive_until,
            )
            if record is None:  # it had moved (or is gone): as it is now
                found = await driver.fetchrow(SQL["get_job"], job_id)
                return (job_from_mapping(found) if found is not None else None), False
        return job_from_mapping(record), True

    async def count_webhook(
        self, job: Job, now: datetime, events: list[dict[str, Any]]
    ) -> Job | None:
        """Count a webhook that moves nothing on `job` as found; None if it had changed."""
        async with self.db.driver() as driver:
            record = await driver.fetchrow(
                SQL["count_webhook"],
                job.id,
                job.status.value,
                job.webhooks,
                now,
                events,
                q.WATCH_CHANNEL,
            )
        return job_from_mapping(record) if record is not None else None

    async def record_events(self, job_id: int, now: datetime, events: list[dict[str, Any]]) -> None:
        async with self.db.driver() as driver:
            await driver.execute(SQL["record_events"], job_id, now, events, q.WATCH_CHANNEL)

    async def get_job(self, job_id: int) -> Job | None:
        async with self.db.driver() as driver:
            record = await driver.fetchrow(SQL["get_job"], job_id)
        return job_from_mapping(record) if record is not None else None

    async def find_active_key(self, key_hash: str) -> Any:
        async with self.db.driver() as driver:
            return await driver.fetchrow(SQL["find_active_key"], key_hash)

    async def create_job(
        self,
        client_id: int,
        request: JobRequest,
        idempotency_key: str | None,
        digest: str,
        now: datetime,
        limits: CreationLimits | None,
    ) -> CreateResult:
        """`JobStore.create_job` as one statement (`create_job`): one round trip, its own
        transaction. Two concurrent first uses of one key: the loser's insert hits the
        unique key and it asks again (and replays the winner's job); an expired key is
        freed, then it asks again."""
        epoch = int(now.timestamp())
        window = limits.window_seconds if limits else 60
        start = datetime.fromtimestamp(epoch - epoch % window, now.tzinfo)
        fields = request.model_dump(mode="json", exclude={"callback_url", "metadata"})
        for _ in range(3):
            try:
                async with self.db.driver() as driver:
                    record = await driver.fetchrow(
                        SQL["create_job"],
                        client_id,
                        idempotency_key,
                        start,
                        limits.per_minute if limits else _NO_LIMIT,
                        limits.max_unfinished if limits else _NO_LIMIT,
                        "job_" + secrets.token_hex(12),
                        fields,
                        digest,
                        now,
                        request.callback_url,
                        request.metadata,
                        COUNT_SHARDS,
                        q.WAKE_CHANNEL,
                        Wake.JOB_CREATED.value,
                    )
                    assert record is not None
                    if record["prior_id"] is not None:
                        if record["prior_created_at"] < now - IDEMPOTENCY_TTL:
                            await driver.execute(SQL["forget_idempotency_key"], record["prior_id"])
                            continue
                        if record["prior_hash"] != digest:
                            return KeyReused()
                        prior = await driver.fetchrow(SQL["get_job"], record["prior_id"])
                        assert prior is not None
                        return Replayed(job_from_mapping(prior))
                    if record["window_count"] == 1:  # a new window: drop the old ones
                        await driver.execute(SQL["forget_rate_windows"], client_id, start)
            except asyncpg.UniqueViolationError:
                continue  # the same key, first used concurrently: ask again
            if record["id"] is not None:
                return Created(job_from_mapping(record))
            if limits is not None and record["window_count"] > limits.per_minute:
                end = start + timedelta(seconds=window)
                return RateLimited(max((end - now).total_seconds(), 1.0))
            return AtCap()
        raise RuntimeError(f"creation for client {client_id} kept racing; giving up")


_NO_LIMIT = 2**62
