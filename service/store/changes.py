"""Applying the domain's changes to jobs: one transaction (on PostgreSQL usually one
statement) per change, compare-and-set on the state the change was decided against, with
its events, counters and callback outbox row. The meaning of a change is the domain's
(`service.domain.changes`); here it only becomes columns and rows."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from service import metrics
from service.domain import callbacks, intake
from service.domain.changes import Change, Note, Plan, plan
from service.domain.jobs import Job
from service.domain.states import JobStatus
from service.store import queries as q
from service.store.db import Database
from service.store.records import Applied, job_from_mapping, job_from_row
from service.store.sql import POSTGRESQL
from service.store.tables import COUNT_SHARDS, callback_deliveries, job_events, jobs

APPLY_CHANGE = POSTGRESQL["apply_change"]


def _set_columns(p: Plan, change: Change, now: datetime) -> dict[str, Any]:
    """The job's columns after `change`, as an UPDATE's values."""
    f = change.fields
    values: dict[str, Any] = {
        "status": p.final.value,
        "version": jobs.c.version + p.version_bump,
        "updated_at": now,
    }
    for name in ("provider_id", "provider_status", "fetch_result", "submitted_at", "eta_at"):
        if getattr(f, name) is not None:
            values[name] = getattr(f, name)
    if f.next_poll_at is not None:
        values["next_poll_at"] = f.next_poll_at
    if f.output is not None:
        values["output"] = list(f.output)
    if f.error is not None:
        values.update(error_code=f.error.code, error_message=f.error.message)
    if change.count_poll:
        values["polls"] = jobs.c.polls + 1
    if change.reset_attempts:
        values["attempts"] = 0
    elif change.count_attempt:
        values["attempts"] = jobs.c.attempts + 1
    if change.release or p.terminal:
        values.update(lease_owner=None, lease_expires_at=None)
    if p.terminal:
        values.update(
            completed_at=now,
            next_poll_at=None,
            callback_status=case(
                (jobs.c.callback_url.is_not(None), callbacks.PENDING),
                else_=jobs.c.callback_status,
            ),
        )
    return values


def _transition_events(p: Plan, source: str) -> list[dict[str, Any]]:
    return [
        {
            "kind": "transition",
            "source": source,
            "from_status": old.value,
            "to_status": new.value,
            "detail": {},
        }
        for old, new in p.transitions()
    ]


def _note_events(notes: Sequence[Note]) -> list[dict[str, Any]]:
    return [
        {
            "kind": n.kind,
            "source": n.source,
            "from_status": None,
            "to_status": None,
            "detail": n.detail,
        }
        for n in notes
    ]


def _count_transitions(p: Plan, source: str) -> None:
    for _old, new in p.transitions():
        metrics.TRANSITIONS.labels(new.value, source).inc()


class ChangeStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def apply_change(
        self, job: Job, change: Change, now: datetime, owner: str | None = None
    ) -> Applied:
        """Apply `change`, decided against `job` as the caller saw it (and, for a worker,
        under its claim `owner`). Its notes are recorded whether or not it applies; if the
        job has moved meanwhile nothing else changes and an `ignored` event says so."""
        p = plan(job.status, change)
        if p is not None and self.db.is_postgresql:
            done = await self._apply_one_statement(job.id, p, change, now, owner)
            if done is not None:
                _count_transitions(p, change.source)
                return Applied(done, True)
        async with self.db.write() as conn:
            await self._insert_events(conn, job.id, now, _note_events(change.notes))
            applied = await self._apply_in(conn, job, p, change, now, owner)
        if applied.changed and p is not None:
            _count_transitions(p, change.source)
        return applied

    async def record_webhook(
        self,
        job_id: int,
        change: Change,
        now: datetime,
        raw_body: str,
        reject_reason: str | None = None,
        token_grace_seconds: float = 24 * 3600,
    ) -> Applied:
        """Count a webhook, keep its raw body, and apply its change, in one transaction.

        Rejected (`reject_reason`), it is recorded and counted and changes nothing else. For
        a job finished more than `token_grace_seconds` ago it is refused (`expired`) and
        leaves no trace; past the first few, bodies that change nothing are only counted.
        On PostgreSQL a result for a processing job is one statement."""
        body_detail: dict[str, Any] = {"body": raw_body}
        body_event = {"kind": "webhook", "source": "provider"}
        if self.db.is_postgresql and reject_reason is None and change.target is not None:
            p = plan(JobStatus.PROCESSING, change)
            if p is not None:
                events = [
                    {**body_event, "detail": body_detail, "from_status": None, "to_status": None},
                    *_note_events(change.notes),
                ]
                done = await self._apply_one_statement(
                    job_id, p, change, now, None, webhooks=1, events=events
                )
                if done is not None:
                    _count_transitions(p, "webhook")
                    return Applied(done, True)
        async with self.db.write() as conn:
            found = (await conn.execute(q.get_job(job_id, for_update=True))).first()
            if found is None:
                return Applied(None, False)
            job = job_from_row(found)
            if intake.token_expired(job, now, token_grace_seconds):
                return Applied(job, False, expired=True)
            p = plan(job.status, change) if reject_reason is None else None
            moves = p is not None and bool(p.steps)
            counted = (
                await conn.execute(q.update_job(job_id, {"webhooks": jobs.c.webhooks + 1}, now))
            ).one()
            job = job_from_row(counted)
            kept = intake.keeps_body(job.webhooks, moves)
            if kept:
                detail = dict(body_detail)
                if reject_reason:
                    detail["rejected"] = reject_reason
                events = [{**body_event, "detail": detail, "from_status": None, "to_status": None}]
                await self._insert_events(conn, job_id, now, [*events, *_note_events(change.notes)])
            if reject_reason or change.target is None or not (moves or kept):
                return Applied(job, False)
            applied = await self._apply_in(conn, job, p, change, now, None)
        if applied.changed and p is not None:
            _count_transitions(p, "webhook")
        return applied

    async def release_claims(self, owner: str, status: JobStatus = JobStatus.PROCESSING) -> None:
        """Hand back claims on shutdown. Only poll claims by default: a submit cut off
        mid-call may have reached the provider, so its claim is left to expire and counts
        as a crashed submit."""
        async with self.db.write() as conn:
            await conn.execute(q.release_claims(owner, status))

    # --- mechanism ----------------------------------------------------------------------

    async def _apply_in(
        self,
        conn: AsyncConnection,
        job: Job,
        p: Plan | None,
        change: Change,
        now: datetime,
        owner: str | None,
    ) -> Applied:
        """Compare-and-set inside an open transaction, with the transitions' events, the
        counters and the outbox row; or the `ignored` event."""
        if p is None:
            return await self._ignored(conn, job, now, change)
        conditions = [jobs.c.id == job.id, jobs.c.status == p.expect.value]
        if owner is not None:
            conditions.append(jobs.c.lease_owner == owner)
        row = (
            await conn.execute(
                update(jobs)
                .where(and_(*conditions))
                .values(**_set_columns(p, change, now))
                .returning(*jobs.c)
            )
        ).first()
        if row is None:
            return await self._ignored(conn, job, now, change)
        after = job_from_row(row)
        await self._insert_events(conn, job.id, now, _transition_events(p, change.source))
        deltas = p.counter_deltas()
        if deltas:
            await conn.execute(
                q.bump_status_counts(
                    conn.dialect.name, after.client_id, job.id % COUNT_SHARDS, deltas
                )
            )
        if p.terminal and after.callback_url:
            await conn.execute(
                insert(callback_deliveries).values(
                    job_id=after.id,
                    client_id=after.client_id,
                    webhook_id=callbacks.new_webhook_id(),
                    event_type=callbacks.EVENT_TYPES[p.final],
                    url=after.callback_url,
                    status=callbacks.PENDING,
                    next_attempt_at=now,
                    created_at=now,
                    updated_at=now,
                )
            )
        return Applied(after, True)

    async def _ignored(
        self, conn: AsyncConnection, job: Job, now: datetime, change: Change
    ) -> Applied:
        row = (await conn.execute(select(jobs).where(jobs.c.id == job.id))).first()
        found = job_from_row(row) if row else None
        if found is None:
            return Applied(None, False)
        detail: dict[str, Any] = {"expected": job.status.value, "found": found.status.value}
        if change.target is not None:
            detail["wanted"] = change.target.value
        await self._insert_events(
            conn,
            job.id,
            now,
            [
                {
                    "kind": "ignored",
                    "source": change.source,
                    "from_status": None,
                    "to_status": None,
                    "detail": detail,
                }
            ],
        )
        return Applied(found, False)

    async def _insert_events(
        self, conn: AsyncConnection, job_id: int, now: datetime, events: list[dict[str, Any]]
    ) -> None:
        if events:
            await conn.execute(
                insert(job_events), [{"job_id": job_id, "at": now, **e} for e in events]
            )

    async def _apply_one_statement(
        self,
        job_id: int,
        p: Plan,
        change: Change,
        now: datetime,
        owner: str | None,
        webhooks: int = 0,
        events: list[dict[str, Any]] | None = None,
    ) -> Job | None:
        """PostgreSQL: `apply_change` from postgresql.sql, one round trip. None when the job
        was not where `p` expects it (the general path then records why)."""
        f = change.fields
        all_events = [
            *(events if events is not None else _note_events(change.notes)),
            *_transition_events(p, change.source),
        ]
        outbox = p.terminal and bool(p.steps)
        async with self.db.driver() as driver:
            record = await driver.fetchrow(
                APPLY_CHANGE,
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
                json.dumps(list(f.output)) if f.output is not None else None,
                f.error.code if f.error else None,
                f.error.message if f.error else None,
                p.terminal,
                change.release or p.terminal,
                1 if change.count_poll else 0,
                1 if change.count_attempt else 0,
                change.reset_attempts,
                webhooks,
                json.dumps(all_events),
                json.dumps([{"status": s, "n": n} for s, n in p.counter_deltas().items()]),
                job_id % COUNT_SHARDS,
                callbacks.new_webhook_id() if outbox else None,
                callbacks.EVENT_TYPES[p.final] if outbox else None,
            )
        return job_from_mapping(record) if record is not None else None
