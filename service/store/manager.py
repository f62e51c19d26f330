"""`Store`: the one manager through which the service reads and writes the database.

Every method is one short transaction; none is open while the service waits on the network.
Every state change is a compare-and-set on the state (and claim) it expects, recorded in
`job_events` in the same transaction.
"""

from __future__ import annotations

import json
import secrets
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from asyncpg.exceptions import UniqueViolationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service import metrics
from service.domain import callbacks, intake
from service.domain.jobs import Event, Job
from service.domain.outcomes import path_to
from service.domain.requests import JobRequest
from service.domain.states import TERMINAL, JobStatus
from service.store import queries as q
from service.store.engine import make_engine
from service.store.records import (
    Applied,
    ClientSecrets,
    Delivery,
    IdempotencyConflict,
    KeyInfo,
    Note,
    Principal,
    TooManyUnfinished,
    aware,
    delivery_from_row,
    event_from_row,
    hash_key,
    job_from_mapping,
    job_from_row,
    percentile,
    request_hash,
)
from service.store.tables import COUNT_SHARDS, jobs

KEY_PREFIX = "opj_"
IDEMPOTENCY_TTL = timedelta(hours=24)
WEBHOOK_SECRET_KEY = "webhook_secret"

__all__ = [
    "Applied",
    "ClientSecrets",
    "Delivery",
    "IdempotencyConflict",
    "KeyInfo",
    "Note",
    "Principal",
    "Store",
    "TooManyUnfinished",
    "hash_key",
    "request_hash",
]


class Store:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @classmethod
    def connect(cls, database_url: str) -> Store:
        """A store on a new engine for `database_url` (SQLite pragmas, pool sizes)."""
        return cls(make_engine(database_url))

    async def close(self) -> None:
        await self.engine.dispose()

    # --- service state ---------------------------------------------------------------------

    async def webhook_secret(self, configured: str | None) -> str:
        """WEBHOOK_SECRET if set; otherwise one generated once and kept in the database."""
        if configured:
            return configured
        async with self.engine.begin() as conn:
            found = (await conn.execute(q.get_state(WEBHOOK_SECRET_KEY))).scalar()
            if found is not None:
                return str(found)
        try:
            async with self.engine.begin() as conn:
                await conn.execute(q.insert_state(WEBHOOK_SECRET_KEY, secrets.token_urlsafe(32)))
        except IntegrityError:
            pass  # another process won the race; read theirs
        async with self.engine.begin() as conn:
            return str((await conn.execute(q.get_state(WEBHOOK_SECRET_KEY))).scalar_one())

    # --- clients and keys --------------------------------------------------------------------

    async def create_key(
        self, client_name: str, scopes: Sequence[str], now: datetime
    ) -> tuple[str, str | None]:
        """A new key for the client (created if new). Returns the key, shown only now, and
        for a new client its callback signing secret."""
        raw_key = KEY_PREFIX + secrets.token_urlsafe(32)  # 256 random bits
        new_secret: str | None = None
        async with self.engine.begin() as conn:
            client = (await conn.execute(q.get_client_by_name(client_name))).first()
            if client is None:
                new_secret = callbacks.new_secret()
                client_id = (
                    await conn.execute(q.insert_client(client_name, new_secret, now))
                ).scalar_one()
            else:
                client_id = client.id
            await conn.execute(
                q.insert_key(client_id, raw_key[:12], hash_key(raw_key), ",".join(scopes), now)
            )
        return raw_key, new_secret

    async def authenticate(self, raw_key: str, now: datetime) -> Principal | None:
        digest = hash_key(raw_key)
        async with self.engine.connect() as conn:
            row = (await conn.execute(q.find_active_key(digest))).first()
        if row is None or not secrets.compare_digest(row.key_hash, digest):
            return None
        stale = now - timedelta(seconds=60)
        if row.last_used_at is None or row.last_used_at < stale:  # a write at most once a minute
            async with self.engine.begin() as conn:
                await conn.execute(q.touch_key(row.id, now, stale))
        return Principal(
            key_id=row.id,
            client_id=row.client_id,
            client_name=row.client_name,
            scopes=frozenset(s for s in row.scopes.split(",") if s),
            default_callback_url=row.default_callback_url,
        )

    async def list_keys(self) -> list[KeyInfo]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q.list_keys())).all()
        return [
            KeyInfo(r.prefix, r.client_name, r.scopes, r.created_at, r.revoked_at, r.last_used_at)
            for r in rows
        ]

    async def revoke_key(self, prefix: str, now: datetime) -> bool:
        async with self.engine.begin() as conn:
            return bool((await conn.execute(q.revoke_key(prefix, now))).rowcount)

    async def count_keys(self) -> int:
        async with self.engine.connect() as conn:
            return int((await conn.execute(q.count_keys())).scalar_one())

    # --- jobs: create and read ---------------------------------------------------------------

    async def count_creation(
        self, client_id: int, now: datetime, window_seconds: int, limit: int
    ) -> float | None:
        """Count one job creation against the client's fixed window (shared by every
        replica). Returns the seconds until the window ends when over `limit`, else None."""
        epoch = int(now.timestamp())
        start = datetime.fromtimestamp(epoch - epoch % window_seconds, now.tzinfo)
        async with self.engine.begin() as conn:
            count = (
                await conn.execute(q.count_rate_window(conn.dialect.name, client_id, start))
            ).scalar_one()
            if count == 1:  # a new window: drop the client's old ones
                await conn.execute(q.forget_rate_windows(client_id, start))
        if count <= limit:
            return None
        return max((start + timedelta(seconds=window_seconds) - now).total_seconds(), 1.0)

    async def create_job(
        self,
        client_id: int,
        request: JobRequest,
        idempotency_key: str | None,
        now: datetime,
        max_unfinished: int | None = None,
    ) -> tuple[Job, bool]:
        """Insert a queued job and its first event. With an Idempotency-Key, the unique
        constraint decides between concurrent identical requests: the loser reads the
        winner's job. Returns (job, created)."""
        digest = request_hash(request)
        if idempotency_key is not None:
            async with self.engine.begin() as conn:
                await conn.execute(
                    q.forget_idempotency_key(client_id, idempotency_key, now - IDEMPOTENCY_TTL)
                )
        values = {
            "public_id": "job_" + secrets.token_hex(12),
            "client_id": client_id,
            "status": JobStatus.QUEUED.value,
            "request": request.model_dump(mode="json", exclude={"callback_url", "metadata"}),
            "idempotency_key": idempotency_key,
            "request_hash": digest,
            "output": [],
            "created_at": now,
            "updated_at": now,
            "next_poll_at": now,
            "callback_url": request.callback_url,
            "metadata": request.metadata,
        }
        try:
            if self.engine.dialect.name == "postgresql" and max_unfinished is not None:
                async with self.engine.connect() as conn:
                    return await self._create_fast(conn, values, now, max_unfinished), True
            async with self.engine.begin() as conn:
                if max_unfinished is not None:  # SQLite: BEGIN IMMEDIATE serialises this
                    unfinished = (
                        await conn.execute(q.count_unfinished_of_client(client_id))
                    ).scalar_one()
                    if unfinished >= max_unfinished:
                        raise TooManyUnfinished(client_id)
                row = (await conn.execute(q.insert_job(values))).one()
                await conn.execute(
                    q.insert_event(row.id, now, "created", "api", {}, None, JobStatus.QUEUED.value)
                )
                await self._count(conn, client_id, row.id, {JobStatus.QUEUED.value: 1})
                await self._notify(conn)
            return job_from_row(row), True
        except (IntegrityError, UniqueViolationError):
            if idempotency_key is None:
                raise
        async with self.engine.connect() as conn:
            found = (
                await conn.execute(q.get_job_by_idempotency_key(client_id, idempotency_key))
            ).one()
        if found.request_hash != digest:
            raise IdempotencyConflict(idempotency_key)
        return job_from_row(found), False

    async def _create_fast(
        self, conn: AsyncConnection, values: dict[str, Any], now: datetime, max_unfinished: int
    ) -> Job:
        """Two prepared statements on the asyncpg connection, in one driver transaction: the
        client's advisory lock, then `CREATE_JOB_SQL` (cap, job, event, count, NOTIFY)."""
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        async with driver.transaction():
            await driver.execute(q.LOCK_CLIENT_DRIVER, values["client_id"])
            record = await driver.fetchrow(
                q.CREATE_JOB_PG_DRIVER,
                values["client_id"],
                values["public_id"],
                json.dumps(values["request"]),
                values["idempotency_key"],
                values["request_hash"],
                now,
                values["callback_url"],
                json.dumps(values["metadata"]),
                max_unfinished,
            )
        if record is None:
            raise TooManyUnfinished(values["client_id"])
        return job_from_mapping(record)

    async def find_by_idempotency_key(
        self, client_id: int, key: str, now: datetime
    ) -> tuple[Job, str] | None:
        """The job a live (under 24 hours old) Idempotency-Key names, with its body's hash."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(q.get_job_by_idempotency_key(client_id, key))).first()
        if row is None or row.created_at < now - IDEMPOTENCY_TTL:
            return None
        return job_from_row(row), row.request_hash

    async def get_job(self, public_id: str, client_id: int | None = None) -> Job | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(q.get_job_by_public_id(public_id, client_id))).first()
        return job_from_row(row) if row else None

    async def get_job_by_id(self, job_id: int) -> Job | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(q.get_job(job_id))).first()
        return job_from_row(row) if row else None

    async def list_jobs(
        self,
        client_id: int | None,
        status: JobStatus | None,
        before_id: int | None,
        limit: int,
    ) -> list[Job]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q.list_jobs(client_id, status, before_id, limit))).all()
        return [job_from_row(r) for r in rows]

    async def list_events(
        self, job_id: int, after_id: int | None = None, limit: int | None = None
    ) -> list[Event]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q.list_events(job_id, after_id, limit))).all()
        return [event_from_row(r) for r in rows]

    # --- claims -----------------------------------------------------------------------------

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
        async with self.engine.begin() as conn:
            if max_inflight is not None:
                if conn.dialect.name == "postgresql":
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
        return sorted((job_from_row(r) for r in rows), key=lambda j: (j.next_poll_at, j.id))

    async def inflight(self, now: datetime) -> int:
        async with self.engine.connect() as conn:
            return int((await conn.execute(q.count_inflight(now))).scalar_one())

    async def claim_for_poll(
        self, now: datetime, owner: str, lease_until: datetime, limit: int
    ) -> list[Job]:
        return await self._claim(q.claim_due(JobStatus.PROCESSING, now, owner, lease_until, limit))

    async def claim_job(
        self, job_id: int, now: datetime, owner: str, lease_until: datetime
    ) -> Job | None:
        rows = await self._claim(
            q.claim_one(job_id, [JobStatus.PROCESSING], now, owner, lease_until)
        )
        return rows[0] if rows else None

    async def claim_for_refresh(
        self, job_id: int, now: datetime, owner: str, lease_until: datetime, interval: float
    ) -> Job | None:
        """Claim a processing job for a client's refresh, at most once per `interval`."""
        rows = await self._claim(
            q.claim_one(
                job_id,
                [JobStatus.PROCESSING],
                now,
                owner,
                lease_until,
                refreshed_before=now - timedelta(seconds=interval),
            )
        )
        return rows[0] if rows else None

    async def _claim(self, stmt: Any) -> list[Job]:
        async with self.engine.begin() as conn:
            rows = (await conn.execute(stmt)).all()
        return sorted((job_from_row(r) for r in rows), key=lambda j: (j.next_poll_at, j.id))

    async def release_claims(self, owner: str, status: JobStatus = JobStatus.PROCESSING) -> None:
        """Hand back claims on shutdown. Only poll claims by default: a submit cut off
        mid-call may have reached the provider, so its claim is left to expire and counts
        as a crashed submit."""
        async with self.engine.begin() as conn:
            await conn.execute(q.release_claims(owner, status))

    # --- changes -----------------------------------------------------------------------------

    async def apply(
        self,
        job: Job,
        now: datetime,
        *,
        source: str,
        to_status: JobStatus | None = None,
        values: dict[str, Any] | None = None,
        owner: str | None = None,
        notes: Iterable[Note] = (),
        increments: Iterable[str] = (),
    ) -> Applied:
        """One transaction: record `notes`, then compare-and-set the job from the state the
        caller saw (`job.status`, and `owner`'s claim if given) to `to_status` with `values`.
        Without `to_status`, only `values` change, under the same conditions.
        `increments` names counters (`polls`, `attempts`) to add one to."""
        values = dict(values or {})
        for name in increments:
            values[name] = jobs.c[name] + 1
        async with self.engine.begin() as conn:
            for note in notes:
                await conn.execute(q.insert_event(job.id, now, note.kind, note.source, note.detail))
            return await self._apply(conn, job, now, source, to_status, values, owner)

    async def _apply(
        self,
        conn: AsyncConnection,
        job: Job,
        now: datetime,
        source: str,
        to_status: JobStatus | None,
        values: dict[str, Any],
        owner: str | None,
    ) -> Applied:
        if to_status is None:
            if job.status in TERMINAL:
                return await self._not_applied(conn, job, now, source, None)
            row = (
                await conn.execute(
                    q.update_job(job.id, values, now, expect_status=job.status, expect_owner=owner)
                )
            ).first()
            if row is None:
                return await self._not_applied(conn, job, now, source, None)
            return Applied(job_from_row(row), True)

        steps = path_to(job.status, to_status)
        if not steps:
            return await self._not_applied(conn, job, now, source, to_status)
        current = job
        for i, step in enumerate(steps):
            step_values: dict[str, Any] = {"status": step.value}
            if i == len(steps) - 1:
                step_values.update(values)
            if step in TERMINAL:
                step_values.update(
                    completed_at=now, next_poll_at=None, lease_owner=None, lease_expires_at=None
                )
                if job.callback_url:
                    step_values["callback_status"] = callbacks.PENDING
            row = (
                await conn.execute(
                    q.update_job(
                        job.id, step_values, now, expect_status=current.status, expect_owner=owner
                    )
                )
            ).first()
            if row is None:
                return await self._not_applied(conn, current, now, source, to_status)
            await conn.execute(
                q.insert_event(
                    job.id, now, "transition", source, {}, current.status.value, step.value
                )
            )
            metrics.TRANSITIONS.labels(step.value, source).inc()
            await self._count(
                conn, job.client_id, job.id, {current.status.value: -1, step.value: 1}
            )
            if step in TERMINAL and row.callback_url:
                await self._enqueue_callback(conn, job_from_row(row), now)
            current = job_from_row(row)
        return Applied(current, True)

    async def _enqueue_callback(self, conn: AsyncConnection, job: Job, now: datetime) -> None:
        """The outbox row, in the terminal transition's own transaction: the notification
        exists exactly when the transition does."""
        assert job.callback_url is not None
        event_type, body = callbacks.payload(job, now)
        await conn.execute(
            q.insert_delivery(
                {
                    "job_id": job.id,
                    "client_id": job.client_id,
                    "webhook_id": callbacks.new_webhook_id(),
                    "event_type": event_type,
                    "url": job.callback_url,
                    "body": body,
                    "status": callbacks.PENDING,
                    "next_attempt_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        )

    async def _count(
        self, conn: AsyncConnection, client_id: int, job_id: int, deltas: dict[str, int]
    ) -> None:
        shard = job_id % COUNT_SHARDS
        await conn.execute(q.bump_status_counts(conn.dialect.name, client_id, shard, deltas))

    async def _notify(self, conn: AsyncConnection) -> None:
        if conn.dialect.name == "postgresql":
            await conn.execute(q.notify_submitters())

    async def _not_applied(
        self,
        conn: AsyncConnection,
        job: Job,
        now: datetime,
        source: str,
        wanted: JobStatus | None,
    ) -> Applied:
        row = (await conn.execute(q.get_job(job.id))).first()
        found = job_from_row(row) if row else None
        detail: dict[str, Any] = {
            "expected": job.status.value,
            "found": found.status.value if found else None,
        }
        if wanted is not None:
            detail["wanted"] = wanted.value
        if found is not None:
            await conn.execute(q.insert_event(job.id, now, "ignored", source, detail))
        return Applied(found, False)

    async def record_webhook(
        self,
        job_id: int,
        now: datetime,
        raw_body: str,
        to_status: JobStatus | None,
        values: dict[str, Any],
        notes: Iterable[Note] = (),
        reject_reason: str | None = None,
        token_grace_seconds: float = 24 * 3600,
    ) -> Applied:
        """Store a webhook's raw body, count it, and apply it, in one transaction.

        With `reject_reason`, the webhook is recorded and counted but changes nothing else.
        A webhook for a job finished more than `token_grace_seconds` ago is refused
        (`expired`) and leaves no trace; past the first few, bodies that change nothing are
        only counted. On PostgreSQL a finishing webhook for a processing job takes one
        round trip (`WEBHOOK_FINISH_PG`).
        """
        notes = list(notes)
        if (
            self.engine.dialect.name == "postgresql"
            and reject_reason is None
            and not notes
            and to_status in (JobStatus.SUCCEEDED, JobStatus.FAILED)
        ):
            assert to_status is not None
            done = await self._webhook_fast(job_id, now, raw_body, to_status, values)
            if done is not None:
                return done
        async with self.engine.begin() as conn:
            found = (await conn.execute(q.get_job(job_id, for_update=True))).first()
            if found is None:
                return Applied(None, False)
            job = job_from_row(found)
            if intake.token_expired(job, now, token_grace_seconds):
                return Applied(job, False, expired=True)
            changes = bool(
                reject_reason is None and to_status is not None and path_to(job.status, to_status)
            )
            row = (
                await conn.execute(q.update_job(job_id, {"webhooks": jobs.c.webhooks + 1}, now))
            ).one()
            job = job_from_row(row)
            if intake.keeps_body(job.webhooks, changes):
                detail: dict[str, Any] = {"body": raw_body}
                if reject_reason:
                    detail["rejected"] = reject_reason
                await conn.execute(q.insert_event(job_id, now, "webhook", "provider", detail))
                for note in notes:
                    await conn.execute(
                        q.insert_event(job_id, now, note.kind, note.source, note.detail)
                    )
            if reject_reason:
                return Applied(job, False)
            if to_status is None and not values:
                return Applied(job, False)
            if not changes and job.webhooks > intake.WEBHOOK_BODIES_KEPT:
                return Applied(job, False)  # only counted
            return await self._apply(conn, job, now, "webhook", to_status, values, None)

    async def prune(
        self, completed_before: datetime, batch_size: int = 1000, max_batches: int | None = None
    ) -> int | None:
        """Delete finished jobs completed before the cutoff, in batches of one short
        transaction each. Returns how many, or None when another replica holds the prune
        lock (PostgreSQL)."""
        async with self.engine.connect() as lock_conn:
            pg = lock_conn.dialect.name == "postgresql"
            if pg:
                got = (await lock_conn.execute(q.try_lock_prune())).scalar()
                await lock_conn.commit()
                if not got:
                    return None
            try:
                deleted = 0
                batches = 0
                while max_batches is None or batches < max_batches:
                    async with self.engine.begin() as conn:
                        gone = (
                            await conn.execute(q.prune_batch(completed_before, batch_size))
                        ).all()
                        for (client_id, status), k in Counter((r[0], r[1]) for r in gone).items():
                            await self._count(conn, client_id, 0, {status: -k})
                    n = len(gone)
                    deleted += n
                    batches += 1
                    if n < batch_size:
                        break
                return deleted
            finally:
                if pg:
                    await lock_conn.execute(q.unlock_prune())
                    await lock_conn.commit()

    # --- callbacks ----------------------------------------------------------------------------

    async def claim_deliveries(
        self, now: datetime, owner: str, lease_until: datetime, limit: int
    ) -> list[Delivery]:
        async with self.engine.begin() as conn:
            rows = (await conn.execute(q.claim_deliveries(now, owner, lease_until, limit))).all()
        return [delivery_from_row(r) for r in rows]

    async def client_secrets(self, client_id: int) -> ClientSecrets:
        async with self.engine.connect() as conn:
            row = (await conn.execute(q.get_client(client_id))).one()
        return ClientSecrets(
            row.callback_secret, row.previous_callback_secret, row.previous_secret_expires_at
        )

    async def finish_attempt(
        self,
        delivery: Delivery,
        owner: str,
        now: datetime,
        values: dict[str, Any],
        event: dict[str, Any],
    ) -> Delivery | None:
        """Record one delivery attempt: the outbox row (compare-and-set on the claim), the
        attempt as a job event, and the job's callback status, in one transaction."""
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    q.finish_attempt(delivery.id, owner, {**values, "updated_at": now})
                )
            ).first()
            if row is None:
                return None
            await conn.execute(
                q.insert_event(delivery.job_id, now, "callback_attempt", "notifier", event)
            )
            await conn.execute(q.set_callback_status(delivery.job_id, row.status, now))
        return delivery_from_row(row)

    async def replay_callback(self, job_id: int, now: datetime) -> Delivery | None:
        async with self.engine.begin() as conn:
            row = (await conn.execute(q.replay_delivery(job_id, now))).first()
            if row is None:
                return None
            await conn.execute(
                q.insert_event(
                    job_id, now, "callback_replay", "api", {"webhook_id": row.webhook_id}
                )
            )
            await conn.execute(q.set_callback_status(job_id, callbacks.PENDING, now))
            await self._notify(conn)
        return delivery_from_row(row)

    async def delivery_of_job(self, job_id: int) -> Delivery | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(q.get_delivery_of_job(job_id))).first()
        return delivery_from_row(row) if row else None

    async def rotate_secret(self, client_name: str, now: datetime, grace: timedelta) -> str | None:
        secret = callbacks.new_secret()
        async with self.engine.begin() as conn:
            done = (
                await conn.execute(q.rotate_client_secret(client_name, secret, now + grace))
            ).rowcount
        return secret if done else None

    async def set_default_callback(self, client_name: str, url: str | None) -> bool:
        async with self.engine.begin() as conn:
            return bool((await conn.execute(q.set_default_callback(client_name, url))).rowcount)

    async def deliveries_by_status(self, client_id: int | None = None) -> dict[str, int]:
        """Callback deliveries by status (read through the outbox's status)."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q.count_deliveries_by_status(client_id))).all()
        counts = {s: 0 for s in ("pending", "failing", "dead")}
        counts.update({str(status): int(n) for status, n in rows})
        return counts

    # --- stats ---------------------------------------------------------------------------------

    async def counts_by_status(self, client_id: int | None = None) -> dict[str, int]:
        async with self.engine.connect() as conn:
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
        async with self.engine.connect() as conn:
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

    async def sweeper_lag_seconds(self, now: datetime) -> float:
        async with self.engine.connect() as conn:
            due = (await conn.execute(q.oldest_overdue_poll(now))).scalar()
        return max((now - aware(due, now)).total_seconds(), 0.0) if due is not None else 0.0

    async def client_id_of(self, name: str) -> int | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(q.get_client_by_name(name))).first()
        return int(row.id) if row else None

    async def _webhook_fast(
        self,
        job_id: int,
        now: datetime,
        raw_body: str,
        to_status: JobStatus,
        values: dict[str, Any],
    ) -> Applied | None:
        """`WEBHOOK_FINISH_PG` as a prepared statement on the asyncpg connection itself, in
        one driver transaction (with the callback's outbox row when there is one). None when
        the general path must run: the job was not processing (a queued job goes through
        processing first; a finished one is a duplicate, subject to token expiry)."""
        async with self.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            async with driver.transaction():
                record = await driver.fetchrow(
                    q.WEBHOOK_FINISH_PG_DRIVER,
                    job_id,
                    now,
                    to_status.value,
                    json.dumps(values.get("output", [])),
                    values.get("error_code"),
                    values.get("error_message"),
                    values.get("provider_status"),
                    values.get("provider_id"),
                    json.dumps({"body": raw_body}),
                    job_id % COUNT_SHARDS,
                )
                if record is None:
                    return Applied(None, False)
                if record["found_status"] != JobStatus.PROCESSING.value:
                    return None
                job = job_from_mapping(record)
                applied = True
                if job.callback_url:
                    event_type, body = callbacks.payload(job, now)
                    await driver.execute(
                        q.INSERT_DELIVERY_DRIVER,
                        job.id,
                        job.client_id,
                        callbacks.new_webhook_id(),
                        event_type,
                        job.callback_url,
                        body,
                        now,
                    )
        if applied:
            metrics.TRANSITIONS.labels(to_status.value, "webhook").inc()
        return Applied(job, applied)

    async def reset_for_tests(self) -> None:
        async with self.engine.begin() as conn:
            for stmt in q.delete_everything():
                await conn.execute(stmt)
