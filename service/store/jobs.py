"""Jobs: creation (idempotency, rate window, unfinished cap, insert, in one transaction),
reads, the workers' leased claims, and retention."""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection

from service import metrics
from service.domain.changes import Note
from service.domain.jobs import Event, Job
from service.domain.requests import JobRequest
from service.domain.states import JobStatus
from service.store import queries as q
from service.store.backend import Backend, NewJob
from service.store.db import Database
from service.store.records import (
    AtCap,
    Created,
    CreateResult,
    CreationLimits,
    KeyReused,
    RateLimited,
    Replayed,
    aware,
    event_from_row,
    job_from_row,
    request_hash,
)
from service.store.tables import COUNT_SHARDS, jobs

_IN_UTC = datetime(1970, 1, 1, tzinfo=UTC)  # the zone naive aggregates are read in
IDEMPOTENCY_TTL = timedelta(hours=24)  # how long an Idempotency-Key names its job
NO_LIMIT = 2**62  # a creation without limits (the admin's)


class JobStore:
    def __init__(self, db: Database, backend: Backend) -> None:
        self.db = db
        self.backend = backend

    async def create_job(
        self,
        client_id: int,
        request: JobRequest,
        idempotency_key: str | None,
        now: datetime,
        limits: CreationLimits | None = None,
    ) -> CreateResult:
        """In one transaction, exact under concurrent creators of one client (row locks on
        its counters on PostgreSQL, the one writer on SQLite): answer a live
        Idempotency-Key with its job (or refuse another body), count the creation in the
        client's rate window, check the unfinished cap against the counters, then insert
        the queued job, its event and its count, and wake the submitters. An expired key is
        freed and the creation asked again."""
        new = _new_job(client_id, request, idempotency_key, now, limits)
        for _ in range(3):
            found = await self.backend.create_job(new)
            if found.raced:  # the same key, first used concurrently: ask again
                continue
            if found.job is not None:
                metrics.CREATED.inc()  # counted after the commit
                return Created(found.job)
            if found.prior_id is not None:
                assert found.prior_created_at is not None
                if found.prior_created_at < now - IDEMPOTENCY_TTL:
                    await self.backend.forget_idempotency_key(found.prior_id)
                    continue
                if found.prior_hash != new.request_hash:
                    return KeyReused()
                prior = await self.backend.get_job(found.prior_id)
                if prior is None:  # pruned between the two reads: ask again
                    continue
                return Replayed(prior)
            if found.window_count > new.per_minute:
                end = new.window_start + timedelta(seconds=_window(limits))
                return RateLimited(max((end - now).total_seconds(), 1.0))
            return AtCap()
        raise RuntimeError(f"creation for client {client_id} kept racing; giving up")

    # --- read -----------------------------------------------------------------------------

    async def get_job(self, public_id: str, client_id: int | None = None) -> Job | None:
        async with self.db.read() as conn:
            row = (await conn.execute(q.get_job_by_public_id(public_id, client_id))).first()
        return job_from_row(row) if row else None

    async def get_job_by_id(self, job_id: int) -> Job | None:
        return await self.backend.get_job(job_id)

    async def list_jobs(
        self,
        client_id: int | None,
        status: JobStatus | None,
        before_id: int | None,
        limit: int,
        match: str | None = None,
    ) -> list[Job]:
        """Newest first; `client_id` None for every client's; `match` a job id, track id,
        provider id or Idempotency-Key naming the jobs to keep."""
        async with self.db.read() as conn:
            statement = q.list_jobs(client_id, status, before_id, limit, match)
            rows = (await conn.execute(statement)).all()
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
        postgresql = self.db.is_postgresql

        def tx(conn: Connection) -> list[Job]:
            n = limit
            if max_inflight is not None:
                if postgresql:
                    conn.execute(q.lock_capacity())
                inflight = conn.execute(q.count_inflight(now)).scalar_one()
                n = min(limit, max_inflight - int(inflight))
                if n <= 0:
                    return []
            stmt = q.claim_due(
                JobStatus.QUEUED,
                q.Lease(now, owner, lease_until, n),
                extra={
                    "submit_attempts": jobs.c.submit_attempts + 1,
                    "crashed_submits": q.crashed_claim_count(),
                },
            )
            return _in_due_order(job_from_row(r) for r in conn.execute(stmt).all())

        return await self.db.run(tx)

    async def claim_for_poll(
        self, now: datetime, owner: str, lease_until: datetime, limit: int
    ) -> list[Job]:
        stmt = q.claim_due(JobStatus.PROCESSING, q.Lease(now, owner, lease_until, limit))
        return await self.db.run(
            lambda conn: _in_due_order(job_from_row(r) for r in conn.execute(stmt).all())
        )

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
        stmt = q.claim_one(job_id, [JobStatus.PROCESSING], now, owner, lease_until, since)

        def tx(conn: Connection) -> Job | None:
            row = conn.execute(stmt).first()
            return job_from_row(row) if row else None

        return await self.db.run(tx)

    async def extend_lease(self, job_id: int, owner: str, until: datetime) -> bool:
        """Keep a claim longer, if `owner` still holds it."""
        stmt = q.extend_lease(job_id, owner, until)
        return await self.db.run(lambda conn: bool(conn.execute(stmt).rowcount))

    async def inflight(self, now: datetime) -> int:
        async with self.db.read() as conn:
            return int((await conn.execute(q.count_inflight(now))).scalar_one())

    async def next_poll_due(self) -> datetime | None:
        """When the earliest processing job's poll falls due (None: none is processing)."""
        async with self.db.read() as conn:
            due = (await conn.execute(q.next_poll_due())).scalar()
        return aware(due, _IN_UTC) if due is not None else None

    # --- retention ------------------------------------------------------------------------

    async def prune(
        self,
        completed_before: datetime,
        batch_size: int = 1000,
        max_batches: int | None = None,
        keep_stored: bool = False,
    ) -> int | None:
        """Delete finished jobs completed before the cutoff, in batches of one short
        transaction each (`keep_stored`: not those whose outputs are still stored). Returns
        how many, or None when another replica holds the prune lock (PostgreSQL)."""

        def batch(conn: Connection) -> int:
            gone = conn.execute(q.prune_batch(completed_before, batch_size, keep_stored)).all()
            for (client_id, status), k in Counter((r[0], r[1]) for r in gone).items():
                conn.execute(q.bump_status_counts(conn.dialect.name, client_id, 0, {status: -k}))
            return len(gone)

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
                    n = await self.db.run(batch)
                    deleted += n
                    batches += 1
                    if n < batch_size:
                        break
                return deleted
            finally:
                if self.db.is_postgresql:
                    await lock_conn.execute(q.unlock_prune())
                    await lock_conn.commit()


def _window(limits: CreationLimits | None) -> int:
    return limits.window_seconds if limits else 60


def _new_job(
    client_id: int,
    request: JobRequest,
    idempotency_key: str | None,
    now: datetime,
    limits: CreationLimits | None,
) -> NewJob:
    """Every value of a creation, decided once for both databases."""
    epoch = int(now.timestamp())
    window = _window(limits)
    return NewJob(
        client_id=client_id,
        public_id="job_" + secrets.token_hex(12),
        request=request.model_dump(mode="json", exclude={"callback_url", "metadata"}),
        idempotency_key=idempotency_key,
        request_hash=request_hash(request),
        now=now,
        callback_url=request.callback_url,
        metadata=request.metadata,
        window_start=datetime.fromtimestamp(epoch - epoch % window, now.tzinfo),
        per_minute=limits.per_minute if limits else NO_LIMIT,
        max_unfinished=limits.max_unfinished if limits else NO_LIMIT,
        created=Note("created", "api", to_status=JobStatus.QUEUED.value),
        shard_count=COUNT_SHARDS,
    )


def _in_due_order(found: Iterable[Job]) -> list[Job]:
    return sorted(found, key=lambda j: (j.next_poll_at or j.created_at, j.id))
