"""Jobs: creation (idempotency, rate window, unfinished cap, insert, in one transaction),
reads, the workers' leased claims, and retention."""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from service.domain.jobs import Event, Job
from service.domain.requests import JobRequest
from service.domain.states import JobStatus
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
    event_from_row,
    job_from_row,
    request_hash,
)
from service.store.tables import COUNT_SHARDS, jobs

IDEMPOTENCY_TTL = timedelta(hours=24)


class JobStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- create ---------------------------------------------------------------------------

    async def create_job(
        self,
        client_id: int,
        request: JobRequest,
        idempotency_key: str | None,
        now: datetime,
        limits: CreationLimits | None = None,
    ) -> CreateResult:
        """In one transaction, serialised per client (an advisory lock on PostgreSQL, the
        one writer on SQLite): answer a live Idempotency-Key with its job (or refuse another
        body), count the creation in the client's rate window, check the unfinished cap
        against the counters, then insert the queued job, its event and its count, and wake
        the submitters."""
        digest = request_hash(request)
        async with self.db.write() as conn:
            if self.db.is_postgresql:
                await conn.execute(q.lock_client(client_id))
            if idempotency_key is not None:
                found = await self._live_key(conn, client_id, idempotency_key, now)
                if found is not None:
                    job, found_digest = found
                    return Replayed(job) if found_digest == digest else KeyReused()
            if limits is not None:
                refused = await self._within_limits(conn, client_id, now, limits)
                if refused is not None:
                    return refused
            row = (
                await conn.execute(
                    q.insert_job(
                        {
                            "public_id": "job_" + secrets.token_hex(12),
                            "client_id": client_id,
                            "status": JobStatus.QUEUED.value,
                            "request": request.model_dump(
                                mode="json", exclude={"callback_url", "metadata"}
                            ),
                            "idempotency_key": idempotency_key,
                            "request_hash": digest,
                            "output": [],
                            "created_at": now,
                            "updated_at": now,
                            "next_poll_at": now,
                            "callback_url": request.callback_url,
                            "metadata": request.metadata,
                        }
                    )
                )
            ).one()
            await conn.execute(
                q.insert_event(row.id, now, "created", "api", {}, None, JobStatus.QUEUED.value)
            )
            await conn.execute(
                q.bump_status_counts(
                    conn.dialect.name, client_id, row.id % COUNT_SHARDS, {"queued": 1}
                )
            )
            if self.db.is_postgresql:
                await conn.execute(q.notify_workers(q.WAKE_JOB_CREATED))
        return Created(job_from_row(row))

    async def _live_key(
        self, conn: AsyncConnection, client_id: int, key: str, now: datetime
    ) -> tuple[Job, str] | None:
        """The job a live (under 24 hours old) Idempotency-Key names, with its body's hash;
        an older key is freed to name a new job."""
        row = (await conn.execute(q.get_job_by_idempotency_key(client_id, key))).first()
        if row is None:
            return None
        if row.created_at < now - IDEMPOTENCY_TTL:
            await conn.execute(q.forget_idempotency_key(client_id, key, now - IDEMPOTENCY_TTL))
            return None
        return job_from_row(row), row.request_hash

    async def _within_limits(
        self, conn: AsyncConnection, client_id: int, now: datetime, limits: CreationLimits
    ) -> RateLimited | AtCap | None:
        """Count this creation in the client's fixed window (shared by every replica), then
        check the cap on unfinished jobs (from the sharded counters: O(shards))."""
        epoch = int(now.timestamp())
        start = datetime.fromtimestamp(epoch - epoch % limits.window_seconds, now.tzinfo)
        count = (
            await conn.execute(q.count_rate_window(conn.dialect.name, client_id, start))
        ).scalar_one()
        if count == 1:  # a new window: drop the client's old ones
            await conn.execute(q.forget_rate_windows(client_id, start))
        if count > limits.per_minute:
            end = start + timedelta(seconds=limits.window_seconds)
            return RateLimited(max((end - now).total_seconds(), 1.0))
        unfinished = (await conn.execute(q.count_unfinished_of_client(client_id))).scalar_one()
        if unfinished >= limits.max_unfinished:
            return AtCap()
        return None

    # --- read -----------------------------------------------------------------------------

    async def get_job(self, public_id: str, client_id: int | None = None) -> Job | None:
        async with self.db.read() as conn:
            row = (await conn.execute(q.get_job_by_public_id(public_id, client_id))).first()
        return job_from_row(row) if row else None

    async def get_job_by_id(self, job_id: int) -> Job | None:
        async with self.db.read() as conn:
            row = (await conn.execute(q.get_job(job_id))).first()
        return job_from_row(row) if row else None

    async def list_jobs(
        self,
        client_id: int | None,
        status: JobStatus | None,
        before_id: int | None,
        limit: int,
    ) -> list[Job]:
        async with self.db.read() as conn:
            rows = (await conn.execute(q.list_jobs(client_id, status, before_id, limit))).all()
        return [job_from_row(r) for r in rows]

    async def list_events(
        self, job_id: int, after_id: int | None = None, limit: int | None = None
    ) -> list[Event]:
        async with self.db.read() as conn:
            rows = (await conn.execute(q.list_events(job_id, after_id, limit))).all()
        return [event_from_row(r) for r in rows]

    # --- claims ---------------------------------------------------------------------------

    async def claim_for_submit(
        self,
        now: datetime,
        owner: str,
        lease_until: datetime,
        limit: int,
        max_inflight: int | None = None,
    ) -> list[Job]:
        """Claim queued jobs, oldest due first, without letting the jobs unfinished at the
        provider pass `max_inflight` across every process sharing the database."""
        async with self.db.write() as conn:
            if max_inflight is not None:
                if self.db.is_postgresql:
                    await conn.execute(q.lock_capacity())
                inflight = (await conn.execute(q.count_inflight(now))).scalar_one()
                limit = min(limit, max_inflight - int(inflight))
                if limit <= 0:
                    return []
            stmt = q.claim_due(
                JobStatus.QUEUED,
                now,
                owner,
                lease_until,
                limit,
                extra={
                    "submit_attempts": jobs.c.submit_attempts + 1,
                    "crashed_submits": q.crashed_claim_count(),
                },
            )
            rows = (await conn.execute(stmt)).all()
        return _in_due_order(job_from_row(r) for r in rows)

    async def claim_for_poll(
        self, now: datetime, owner: str, lease_until: datetime, limit: int
    ) -> list[Job]:
        async with self.db.write() as conn:
            rows = (
                await conn.execute(
                    q.claim_due(JobStatus.PROCESSING, now, owner, lease_until, limit)
                )
            ).all()
        return _in_due_order(job_from_row(r) for r in rows)

    async def claim_for_refresh(
        self,
        job_id: int,
        now: datetime,
        owner: str,
        lease_until: datetime,
        interval: float | None = None,
    ) -> Job | None:
        """Claim one processing job for a client's refresh; with `interval`, at most once
        per that many seconds (its last refresh is stamped)."""
        since = now - timedelta(seconds=interval) if interval is not None else None
        async with self.db.write() as conn:
            row = (
                await conn.execute(
                    q.claim_one(job_id, [JobStatus.PROCESSING], now, owner, lease_until, since)
                )
            ).first()
        return job_from_row(row) if row else None

    async def inflight(self, now: datetime) -> int:
        async with self.db.read() as conn:
            return int((await conn.execute(q.count_inflight(now))).scalar_one())

    # --- retention ------------------------------------------------------------------------

    async def prune(
        self, completed_before: datetime, batch_size: int = 1000, max_batches: int | None = None
    ) -> int | None:
        """Delete finished jobs completed before the cutoff, in batches of one short
        transaction each. Returns how many, or None when another replica holds the prune
        lock (PostgreSQL)."""
        async with self.db.read() as lock_conn:
            if self.db.is_postgresql:
                got = (await lock_conn.execute(q.try_lock_prune())).scalar()
                await lock_conn.commit()
                if not got:
                    return None
            try:
                deleted = 0
                batches = 0
                while max_batches is None or batches < max_batches:
                    async with self.db.write() as conn:
                        gone = (
                            await conn.execute(q.prune_batch(completed_before, batch_size))
                        ).all()
                        for (client_id, status), k in Counter((r[0], r[1]) for r in gone).items():
                            await conn.execute(
                                q.bump_status_counts(conn.dialect.name, client_id, 0, {status: -k})
                            )
                    deleted += len(gone)
                    batches += 1
                    if len(gone) < batch_size:
                        break
                return deleted
            finally:
                if self.db.is_postgresql:
                    await lock_conn.execute(q.unlock_prune())
                    await lock_conn.commit()


def _in_due_order(found: Iterable[Job]) -> list[Job]:
    return sorted(found, key=lambda j: (j.next_poll_at or j.created_at, j.id))
