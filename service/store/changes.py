"""Applying the domain's changes to jobs: compare-and-set on the state a change was decided
against, with its events, counters and callback outbox row, one transaction (one statement
on PostgreSQL) each. What a change means is the domain's (`service.domain.changes`); here it
only becomes rows, through the backend's named statements (`postgres`, `sqlite`)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from service import metrics
from service.domain import archive, intake
from service.domain.changes import Change, Note, Plan, plan
from service.domain.jobs import Job
from service.domain.states import JobStatus
from service.store import postgres, sqlite
from service.store import queries as q
from service.store.db import Database
from service.store.records import Applied

log = logging.getLogger("service.store")


class Statements(Protocol):
    """What each backend's named statements offer the store (postgres.py, sqlite.py)."""

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
    ) -> tuple[Job | None, bool]: ...

    async def count_webhook(
        self, job: Job, now: datetime, events: list[dict[str, Any]]
    ) -> Job | None: ...

    async def record_events(
        self, job_id: int, now: datetime, events: list[dict[str, Any]]
    ) -> None: ...

    async def get_job(self, job_id: int) -> Job | None: ...


def statements_for(db: Database) -> postgres.Statements | sqlite.Statements:
    return postgres.Statements(db) if db.is_postgresql else sqlite.Statements(db)


def _event(
    kind: str, source: str, detail: dict[str, Any], old: str | None = None, new: str | None = None
) -> dict[str, Any]:
    return {"kind": kind, "source": source, "from_status": old, "to_status": new, "detail": detail}


def _transitions(p: Plan, source: str) -> list[dict[str, Any]]:
    return [_event("transition", source, {}, a.value, b.value) for a, b in p.transitions()]


def _notes(notes: Sequence[Note]) -> list[dict[str, Any]]:
    return [_event(n.kind, n.source, n.detail) for n in notes]


def _ignored(source: str, expected: str, found: str, target: JobStatus | None) -> dict[str, Any]:
    detail: dict[str, Any] = {"expected": expected, "found": found}
    if target is not None:
        detail["wanted"] = target.value
    return _event("ignored", source, detail)


def _count(p: Plan, source: str, job: Job | None = None, now: datetime | None = None) -> None:
    """Counted after the commit: a rolled-back change is no transition."""
    for _old, new in p.transitions():
        metrics.TRANSITIONS.labels(new.value, source).inc()
    if job is not None and now is not None and p.final is JobStatus.SUCCEEDED and p.steps:
        metrics.JOB_SECONDS.observe(max((now - job.created_at).total_seconds(), 0.0))


class ChangeStore:
    def __init__(self, db: Database, changed: Callable[[int], None] = lambda _job_id: None) -> None:
        """`changed(job_id)`: after every committed change or event of a job (waiters)."""
        self.db = db
        self.statements: Statements = statements_for(db)
        self._changed = changed
        # Set when outputs are archived (OUTPUT_STORE): a success queues its archive.
        self.archive: archive.ArchivePolicy | None = None

    def _archive_until(self, p: Plan, now: datetime) -> datetime | None:
        if self.archive is None or not archive.starts_archive(p):
            return None
        return archive.deadline(now, self.archive)

    async def apply_change(
        self, job: Job, change: Change, now: datetime, owner: str | None = None
    ) -> Applied:
        """Apply `change`, decided against `job` as the caller saw it (and, for a worker,
        under its claim `owner`). Its notes are recorded whether or not it applies; if the
        job has moved meanwhile nothing else changes and an `ignored` event says so."""
        p = plan(job.status, change)
        notes = _notes(change.notes)
        if p is not None:
            events = [*notes, *_transitions(p, change.source)]
            found, applied = await self.statements.apply(
                job.id, p, change, now, owner, events, 0, self._archive_until(p, now)
            )
            if applied:
                _count(p, change.source, found, now)
                self._changed(job.id)
                return Applied(found, True)
        else:
            found = await self.statements.get_job(job.id)
        if found is None:
            return Applied(None, False)
        why = _ignored(change.source, job.status.value, found.status.value, change.target)
        await self.statements.record_events(job.id, now, [*notes, why])
        self._changed(job.id)
        return Applied(found, False)

    async def record_webhook(
        self,
        job_id: int,
        change: Change,
        now: datetime,
        raw_body: str,
        reject_reason: str | None = None,
        token_grace_seconds: float = 24 * 3600,
    ) -> Applied:
        """Count a webhook, keep its raw body, and apply its change: one transaction for a
        result on a processing job (the usual case), else one more after looking.

        Rejected (`reject_reason`), it is recorded and counted and changes nothing else. For
        a job finished more than `token_grace_seconds` ago it is refused (`expired`) and
        leaves no trace; past the first few, bodies that change nothing are only counted."""
        detail: dict[str, Any] = {"body": raw_body}
        if reject_reason:
            detail["rejected"] = reject_reason
        recorded = [_event("webhook", "provider", detail), *_notes(change.notes)]
        moves = reject_reason is None and change.target is not None
        job: Job | None = None
        if moves:
            p = plan(JobStatus.PROCESSING, change)
            assert p is not None
            job, applied = await self.statements.apply(
                job_id,
                p,
                change,
                now,
                None,
                [*recorded, *_transitions(p, "webhook")],
                1,
                self._archive_until(p, now),
            )
            if applied:
                _count(p, "webhook", job, now)
                self._changed(job_id)
                return Applied(job, True)
        else:
            job = await self.statements.get_job(job_id)
        for _ in range(5):  # the job moved between our look and our write: look again
            if job is None:
                return Applied(None, False)
            if intake.token_expired(job, now, token_grace_seconds):
                return Applied(job, False, expired=True)
            p = plan(job.status, change) if moves else None
            if p is not None and p.steps:  # e.g. a result that beat the submit reply
                events = [*recorded, *_transitions(p, "webhook")]
                job, applied = await self.statements.apply(
                    job_id, p, change, now, None, events, 1, self._archive_until(p, now)
                )
                if applied:
                    _count(p, "webhook", job, now)
                    self._changed(job_id)
                    return Applied(job, True)
                continue
            events = []
            if intake.keeps_body(job.webhooks + 1, False):
                events = list(recorded)
                if moves:
                    events.append(
                        _ignored("webhook", job.status.value, job.status.value, change.target)
                    )
            counted = await self.statements.count_webhook(job, now, events)
            if counted is not None:
                self._changed(job_id)
                return Applied(counted, False)
            job = await self.statements.get_job(job_id)
        log.warning("webhook for job %s: the job kept changing; not recorded", job_id)
        return Applied(job, False)

    async def release_claims(self, owner: str, status: JobStatus = JobStatus.PROCESSING) -> None:
        """Hand back claims on shutdown. Only poll claims by default: a submit cut off
        mid-call may have reached the provider, so its claim is left to expire and counts
        as a crashed submit."""
        await self.db.run(lambda conn: conn.execute(q.release_claims(owner, status)))
