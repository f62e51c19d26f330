"""Applying the domain's decisions to jobs: one settle loop (read, decide, apply, read again
if the job moved) serves webhooks, actions and workers. What a change does is decided by
`service.domain.decisions`; here a decision becomes a compare-and-set with its events,
counters, callback outbox row and archive, through the backend's named statements."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from service import metrics
from service.domain import archive, callbacks
from service.domain.changes import Change
from service.domain.decisions import (
    SETTLE_TRIES,
    Ask,
    Keep,
    Move,
    Refusal,
    Standing,
    WebhookCall,
    decide,
    presumption,
)
from service.domain.jobs import Job
from service.domain.states import JobStatus
from service.store import queries as q
from service.store.backend import Backend, JobMove, WebhookCount
from service.store.db import Database
from service.store.tables import COUNT_SHARDS

log = logging.getLogger("service.store")


@dataclass(frozen=True)
class Applied:
    """What came of an ask: the job after it (or as found when nothing moved), whether it
    moved, and why not when it was refused."""

    job: Job | None
    changed: bool
    refusal: Refusal | None = None


def _count(move: Move, source: str, job: Job | None, now: datetime) -> None:
    """Counted after the commit: a rolled-back change is no transition."""
    p = move.plan
    for _old, new in p.transitions():
        metrics.TRANSITIONS.labels(new.value, source).inc()
    if job is not None and p.final is JobStatus.SUCCEEDED and p.steps:
        metrics.JOB_SECONDS.observe(max((now - job.created_at).total_seconds(), 0.0))


class ChangeStore:
    def __init__(
        self,
        db: Database,
        backend: Backend,
        changed: Callable[[int], None] = lambda _job_id: None,
        archive_policy: archive.ArchivePolicy | None = None,
    ) -> None:
        """`changed(job_id)`: after every committed change or event of a job (waiters).
        `archive_policy`: outputs are archived (OUTPUT_STORE), so a success queues it."""
        self.db = db
        self.backend = backend
        self._changed = changed
        self._archive = archive_policy

    async def settle(self, job_id: int, ask: Ask, now: datetime, job: Job | None = None) -> Applied:
        """Decide `ask` against the job as it stands (`job` if the caller has just read
        it), apply the decision, and when the job moved meanwhile, read it and decide
        again, up to SETTLE_TRIES times."""
        standing = Standing.of(job) if job is not None else presumption(ask)
        if standing is None:
            job = await self.backend.get_job(job_id)
            standing = Standing.of(job) if job is not None else None
        for _ in range(SETTLE_TRIES):
            decision = decide(standing, ask, now)
            if isinstance(decision, Refusal):
                return Applied(job, False, decision)
            if isinstance(decision, Move):
                found, moved = await self.backend.move(self._move(job_id, ask, decision, now))
                if moved:
                    _count(decision, ask.change.source, found, now)
                    self._changed(job_id)
                    return Applied(found, True)
            elif decision.count_webhook:
                assert standing is not None and not standing.presumed
                counted = await self.backend.count_webhook(
                    WebhookCount(
                        job_id, standing.status.value, standing.webhooks, now, decision.events
                    )
                )
                if counted is not None:
                    self._changed(job_id)
                    return Applied(counted, False, decision.refusal)
                found = await self.backend.get_job(job_id)
            else:
                await self._keep(job_id, decision, now)
                return Applied(job, False, decision.refusal)
            job = found
            standing = Standing.of(job) if job is not None else None
        log.warning("job %s kept changing under a %s change; gave up", job_id, ask.change.source)
        return Applied(job, False, Refusal.BUSY)

    async def _keep(self, job_id: int, decision: Keep, now: datetime) -> None:
        if decision.events:
            await self.backend.record_events(job_id, now, decision.events)
            self._changed(job_id)

    def _move(self, job_id: int, ask: Ask, move: Move, now: datetime) -> JobMove:
        p, change = move.plan, ask.change
        finished = p.terminal and bool(p.steps)
        archive_until = None
        if self._archive is not None and archive.starts_archive(p):
            archive_until = archive.deadline(now, self._archive)
        return JobMove(
            job_id=job_id,
            expect=p.expect.value,
            owner=ask.owner,
            status=p.final.value,
            now=now,
            fields=change.fields,
            version_bump=p.version_bump + move.webhooks,
            terminal=p.terminal,
            release=change.release or p.terminal,
            polls=1 if change.count_poll else 0,
            attempts=1 if change.count_attempt else 0,
            reset_attempts=change.reset_attempts,
            webhooks=move.webhooks,
            events=move.events,
            counts=tuple(p.counter_deltas().items()),
            shard=job_id % COUNT_SHARDS,
            callback=(
                (callbacks.new_webhook_id(), callbacks.EVENT_TYPES[p.final]) if finished else None
            ),
            archive_until=archive_until,
        )

    async def apply_change(
        self, job: Job, change: Change, now: datetime, owner: str | None = None
    ) -> Applied:
        """Apply `change`, decided against `job` as the caller saw it (and, for a worker,
        under its claim `owner`). Its notes are recorded whether or not it applies; if the
        job has moved meanwhile nothing else changes and an `ignored` event says so."""
        return await self.settle(job.id, Ask(change, expect=job.status, owner=owner), now, job)

    async def record_webhook(
        self, job_id: int, change: Change, now: datetime, call: WebhookCall
    ) -> Applied:
        """Count a webhook, keep its raw body, and apply its change: one statement for a
        result on a processing job (the usual case), else one more after looking."""
        return await self.settle(job_id, Ask(change, webhook=call), now)

    async def release_claims(self, owner: str, status: JobStatus = JobStatus.PROCESSING) -> None:
        """Hand back claims on shutdown. Only poll claims by default: a submit cut off
        mid-call may have reached the provider, so its claim is left to expire and counts
        as a crashed submit."""
        await self.db.run(lambda conn: conn.execute(q.release_claims(owner, status)))
