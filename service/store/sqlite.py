"""SQLite's implementations of the store's hot methods: the named statements of
`sql/sqlite.sql`, run verbatim on the writer thread's connection, each method one
transaction there. `tests/contract` holds them to PostgreSQL's results."""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from service.domain import callbacks
from service.domain.changes import Change, Plan
from service.domain.jobs import Job
from service.domain.requests import JobRequest
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
from service.store.sql import SQLITE as SQL
from service.store.tables import COUNT_SHARDS

IDEMPOTENCY_TTL = timedelta(hours=24)
_DATES = (
    "eta_at",
    "created_at",
    "updated_at",
    "submitted_at",
    "completed_at",
    "next_poll_at",
    "lease_expires_at",
    "refreshed_at",
    "settled_at",
    "revoked_at",
    "last_used_at",
)
_JSON = ("request", "output", "metadata", "outputs")


def stamp(value: datetime | None) -> str | None:
    """A datetime as SQLAlchemy's SQLite DateTime stores it: naive UTC text."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _values(row: sqlite3.Row) -> dict[str, Any]:
    out = dict(zip(row.keys(), row, strict=True))
    for name in _DATES:
        if isinstance(out.get(name), str):
            out[name] = datetime.fromisoformat(out[name]).replace(tzinfo=UTC)
    for name in _JSON:
        if isinstance(out.get(name), str):
            out[name] = json.loads(out[name])
    return out


def _job(row: sqlite3.Row | None) -> Job | None:
    return job_from_mapping(_values(row)) if row is not None else None


def _raw(conn: Connection) -> sqlite3.Connection:
    raw = conn.connection.driver_connection
    assert isinstance(raw, sqlite3.Connection)
    raw.row_factory = sqlite3.Row
    return raw


def _insert_events(
    db: sqlite3.Connection, job_id: int, now: str | None, events: list[dict[str, Any]]
) -> None:
    db.executemany(
        SQL["insert_event"],
        [
            {
                "job_id": job_id,
                "at": now,
                "kind": e["kind"],
                "source": e["source"],
                "from_status": e["from_status"],
                "to_status": e["to_status"],
                "detail": json.dumps(e["detail"]),
            }
            for e in events
        ],
    )


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
        """As PostgreSQL's `apply_change`: (the job after, True) or (as it was, False)."""
        f = change.fields
        at = stamp(now)
        params = {
            "id": job_id,
            "expect": p.expect.value,
            "owner": owner,
            "status": p.final.value,
            "version_bump": p.version_bump + webhooks,
            "now": at,
            "provider_id": f.provider_id,
            "provider_status": f.provider_status,
            "fetch_result": f.fetch_result,
            "submitted_at": stamp(f.submitted_at),
            "eta_at": stamp(f.eta_at),
            "next_poll_at": stamp(f.next_poll_at),
            "output": json.dumps(list(f.output)) if f.output is not None else None,
            "error_code": f.error.code if f.error else None,
            "error_message": f.error.message if f.error else None,
            "terminal": p.terminal,
            "release": change.release or p.terminal,
            "polls": 1 if change.count_poll else 0,
            "attempts": 1 if change.count_attempt else 0,
            "reset_attempts": change.reset_attempts,
            "webhooks": webhooks,
            "archive": archive_until is not None,
        }

        def tx(conn: Connection) -> tuple[Job | None, bool]:
            db = _raw(conn)
            row = db.execute(SQL["apply_change"], params).fetchone()
            if row is None:
                return _job(db.execute(SQL["get_job"], {"id": job_id}).fetchone()), False
            job = _job(row)
            assert job is not None
            _insert_events(db, job_id, at, events)
            for status, n in p.counter_deltas().items():
                db.execute(
                    SQL["bump_count"],
                    {
                        "client_id": job.client_id,
                        "status": status,
                        "shard": job_id % COUNT_SHARDS,
                        "n": n,
                    },
                )
            if p.terminal and p.steps:
                db.execute(
                    SQL["insert_outbox"],
                    {
                        "job_id": job_id,
                        "webhook_id": callbacks.new_webhook_id(),
                        "event_type": callbacks.EVENT_TYPES[p.final],
                        "now": at,
                        # held until the archive is done (or its deadline)
                        "due": stamp(archive_until) if archive_until else at,
                    },
                )
            if archive_until is not None:
                db.execute(
                    SQL["queue_archive"],
                    {"job_id": job_id, "now": at, "deadline": stamp(archive_until)},
                )
            return job, True

        return await self.db.run(tx)

    async def count_webhook(
        self, job: Job, now: datetime, events: list[dict[str, Any]]
    ) -> Job | None:
        at = stamp(now)
        params = {"id": job.id, "status": job.status.value, "webhooks": job.webhooks, "now": at}

        def tx(conn: Connection) -> Job | None:
            db = _raw(conn)
            counted = _job(db.execute(SQL["count_webhook"], params).fetchone())
            if counted is not None:
                _insert_events(db, job.id, at, events)
            return counted

        return await self.db.run(tx)

    async def record_events(self, job_id: int, now: datetime, events: list[dict[str, Any]]) -> None:
        def tx(conn: Connection) -> None:
            _insert_events(_raw(conn), job_id, stamp(now), events)

        await self.db.run(tx)

    async def get_job(self, job_id: int) -> Job | None:
        return await self.db.run(
            lambda conn: _job(_raw(conn).execute(SQL["get_job"], {"id": job_id}).fetchone())
        )

    async def find_active_key(self, key_hash: str) -> Mapping[str, Any] | None:
        def tx(conn: Connection) -> Mapping[str, Any] | None:
            row = _raw(conn).execute(SQL["find_active_key"], {"key_hash": key_hash}).fetchone()
            return _values(row) if row is not None else None

        return await self.db.run(tx)

    async def create_job(
        self,
        client_id: int,
        request: JobRequest,
        idempotency_key: str | None,
        digest: str,
        now: datetime,
        limits: CreationLimits | None,
    ) -> CreateResult:
        """`JobStore.create_job` as one transaction on the writer (the only writer: the
        checks and the insert cannot interleave with another creation)."""
        epoch = int(now.timestamp())
        window = limits.window_seconds if limits else 60
        start = datetime.fromtimestamp(epoch - epoch % window, now.tzinfo)
        fields = request.model_dump(mode="json", exclude={"callback_url", "metadata"})

        def tx(conn: Connection) -> CreateResult:
            db = _raw(conn)
            if idempotency_key is not None:
                prior = db.execute(
                    SQL["prior_job"], {"client_id": client_id, "key": idempotency_key}
                ).fetchone()
                if prior is not None:
                    created = datetime.fromisoformat(prior["created_at"]).replace(tzinfo=UTC)
                    if created >= now - IDEMPOTENCY_TTL:
                        if prior["request_hash"] != digest:
                            return KeyReused()
                        job = _job(db.execute(SQL["get_job"], {"id": prior["id"]}).fetchone())
                        assert job is not None
                        return Replayed(job)
                    db.execute(SQL["forget_idempotency_key"], {"id": prior["id"]})
            if limits is not None:
                window_at = {"client_id": client_id, "start": stamp(start)}
                count = db.execute(SQL["count_rate_window"], window_at).fetchone()[0]
                if count == 1:
                    db.execute(SQL["forget_rate_windows"], window_at)
                if count > limits.per_minute:
                    end = start + timedelta(seconds=window)
                    return RateLimited(max((end - now).total_seconds(), 1.0))
                open_jobs = db.execute(
                    SQL["count_unfinished"], {"client_id": client_id}
                ).fetchone()[0]
                if open_jobs >= limits.max_unfinished:
                    return AtCap()
            at = stamp(now)
            row = db.execute(
                SQL["insert_job"],
                {
                    "public_id": "job_" + secrets.token_hex(12),
                    "client_id": client_id,
                    "request": json.dumps(fields),
                    "key": idempotency_key,
                    "request_hash": digest,
                    "now": at,
                    "callback_url": request.callback_url,
                    "metadata": json.dumps(request.metadata),
                },
            ).fetchone()
            job = _job(row)
            assert job is not None
            _insert_events(
                db,
                job.id,
                at,
                [
                    {
                        "kind": "created",
                        "source": "api",
                        "from_status": None,
                        "to_status": "queued",
                        "detail": {},
                    }
                ],
            )
            db.execute(
                SQL["bump_count"],
                {
                    "client_id": client_id,
                    "status": "queued",
                    "shard": job.id % COUNT_SHARDS,
                    "n": 1,
                },
            )
            return Created(job)

        return await self.db.run(tx)
