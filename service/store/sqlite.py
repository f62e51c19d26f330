"""SQLite's backend (`backend.Backend`): the named statements of `sql/sqlite.sql`, run
verbatim on the writer thread's connection, each method one transaction there (the only
writer: what one method reads cannot change before it writes)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from service.domain.changes import Note
from service.domain.jobs import Job
from service.store.backend import Creation, JobMove, NewJob, WebhookCount, event_values
from service.store.db import Database
from service.store.records import job_from_mapping
from service.store.sql import SQLITE as SQL

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
    db: sqlite3.Connection, job_id: int, at: str | None, events: tuple[Note, ...]
) -> None:
    rows = []
    for e in events:
        values = event_values(e)
        rows.append({**values, "job_id": job_id, "at": at, "detail": json.dumps(e.detail)})
    db.executemany(SQL["insert_event"], rows)


def _bump(db: sqlite3.Connection, client_id: int, shard: int, counts: Any) -> None:
    for status, n in counts:
        db.execute(
            SQL["bump_count"], {"client_id": client_id, "status": status, "shard": shard, "n": n}
        )


class Backend:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def move(self, m: JobMove) -> tuple[Job | None, bool]:
        f = m.fields
        at = stamp(m.now)
        params = {
            "id": m.job_id,
            "expect": m.expect,
            "owner": m.owner,
            "status": m.status,
            "version_bump": m.version_bump,
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
            "terminal": m.terminal,
            "release": m.release,
            "polls": m.polls,
            "attempts": m.attempts,
            "reset_attempts": m.reset_attempts,
            "webhooks": m.webhooks,
            "archive": m.archive_until is not None,
        }

        def tx(conn: Connection) -> tuple[Job | None, bool]:
            db = _raw(conn)
            row = db.execute(SQL["apply_change"], params).fetchone()
            if row is None:
                return _job(db.execute(SQL["get_job"], {"id": m.job_id}).fetchone()), False
            job = _job(row)
            assert job is not None
            _insert_events(db, m.job_id, at, m.events)
            _bump(db, job.client_id, m.shard, m.counts)
            if m.callback is not None:
                webhook_id, event_type = m.callback
                due = stamp(m.archive_until) if m.archive_until else at  # held while archiving
                db.execute(
                    SQL["insert_outbox"],
                    {
                        "job_id": m.job_id,
                        "webhook_id": webhook_id,
                        "event_type": event_type,
                        "now": at,
                        "due": due,
                    },
                )
            if m.archive_until is not None:
                db.execute(
                    SQL["queue_archive"],
                    {"job_id": m.job_id, "now": at, "deadline": stamp(m.archive_until)},
                )
            return job, True

        return await self.db.run(tx)

    async def count_webhook(self, c: WebhookCount) -> Job | None:
        at = stamp(c.now)
        params = {"id": c.job_id, "status": c.status, "webhooks": c.webhooks, "now": at}

        def tx(conn: Connection) -> Job | None:
            db = _raw(conn)
            counted = _job(db.execute(SQL["count_webhook"], params).fetchone())
            if counted is not None:
                _insert_events(db, c.job_id, at, c.events)
            return counted

        return await self.db.run(tx)

    async def record_events(self, job_id: int, now: datetime, events: tuple[Note, ...]) -> None:
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

    async def create_job(self, n: NewJob) -> Creation:
        """The same checks as PostgreSQL's `create_job`, in one transaction on the writer."""

        def tx(conn: Connection) -> Creation:
            db = _raw(conn)
            if n.idempotency_key is not None:
                prior = db.execute(
                    SQL["prior_job"], {"client_id": n.client_id, "key": n.idempotency_key}
                ).fetchone()
                if prior is not None:
                    created = datetime.fromisoformat(prior["created_at"]).replace(tzinfo=UTC)
                    return Creation(None, prior["id"], created, prior["request_hash"])
            window_at = {"client_id": n.client_id, "start": stamp(n.window_start)}
            count = db.execute(SQL["count_rate_window"], window_at).fetchone()[0]
            if count == 1:  # a new window: drop the old ones
                db.execute(SQL["forget_rate_windows"], window_at)
            unfinished = db.execute(SQL["count_unfinished"], {"client_id": n.client_id}).fetchone()[
                0
            ]
            if count > n.per_minute or unfinished >= n.max_unfinished:
                return Creation(None, window_count=count, unfinished=unfinished)
            at = stamp(n.now)
            row = db.execute(
                SQL["insert_job"],
                {
                    "public_id": n.public_id,
                    "client_id": n.client_id,
                    "status": n.created.to_status,
                    "request": json.dumps(n.request),
                    "key": n.idempotency_key,
                    "request_hash": n.request_hash,
                    "now": at,
                    "callback_url": n.callback_url,
                    "metadata": json.dumps(n.metadata),
                },
            ).fetchone()
            job = _job(row)
            assert job is not None
            _insert_events(db, job.id, at, (n.created,))
            _bump(db, n.client_id, job.id % n.shard_count, [(job.status.value, 1)])
            return Creation(job, window_count=count, unfinished=unfinished)

        return await self.db.run(tx)

    async def forget_idempotency_key(self, job_id: int) -> None:
        def tx(conn: Connection) -> None:
            _raw(conn).execute(SQL["forget_idempotency_key"], {"id": job_id})

        await self.db.run(tx)
