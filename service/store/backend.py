"""The one interface each database's fast statements implement (`postgres.py`, `sqlite.py`):
typed parameters in, rows out. Every rule (what a change means, the idempotency key's
lifetime, the rate window, a job's public id, its columns and its `created` event) is
computed once by the store's facade before it reaches a backend; a backend only runs its
named statements. `tests/contract` runs every method on both databases."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from service.domain.changes import Fields, Note
from service.domain.jobs import Job


@dataclass(frozen=True)
class JobMove:
    """One planned change as a compare-and-set: from `expect` (under the claim `owner` when
    given) to `status`, writing `fields`, with its events, counter moves, callback outbox
    row and archive, in one transaction."""

    job_id: int
    expect: str
    owner: str | None
    status: str
    now: datetime
    fields: Fields
    version_bump: int
    terminal: bool  # completed now: next poll cleared, callback status pending
    release: bool  # hand the claim back
    polls: int
    attempts: int
    reset_attempts: bool
    webhooks: int
    events: tuple[Note, ...]
    counts: tuple[tuple[str, int], ...]  # (status, delta) of the per-state counters
    shard: int  # which counter row of the client's takes the deltas
    callback: tuple[str, str] | None  # (webhook id, event type) when the job finished
    archive_until: datetime | None  # queue the outputs' archive, held until then


@dataclass(frozen=True)
class WebhookCount:
    """A webhook that moves nothing, counted on the job as found (its status and webhook
    count: concurrent counters never skip the body cap), with the events to record."""

    job_id: int
    status: str
    webhooks: int
    now: datetime
    events: tuple[Note, ...]


@dataclass(frozen=True)
class NewJob:
    """A creation, every value decided: the job is inserted only when no job holds its
    Idempotency-Key (one that does is reported; the facade judges it), the creation's count
    in the rate window stays within `per_minute`, and the client's unfinished jobs are
    under `max_unfinished`."""

    client_id: int
    public_id: str
    request: dict[str, Any]
    idempotency_key: str | None
    request_hash: str
    now: datetime
    callback_url: str | None
    metadata: dict[str, Any]
    window_start: datetime
    per_minute: int
    max_unfinished: int
    created: Note  # its first event
    shard_count: int


@dataclass(frozen=True)
class Creation:
    """What a creation found, and the job it made (None when it made none)."""

    job: Job | None
    prior_id: int | None = None  # the job the key names
    prior_created_at: datetime | None = None
    prior_hash: str | None = None
    window_count: int = 0
    unfinished: int = 0
    raced: bool = False  # another creation took the same key at the same moment: ask again


class Backend(Protocol):
    """What each database's named statements offer the store."""

    async def move(self, m: JobMove) -> tuple[Job | None, bool]:
        """(the job after, True), or (the job as it is now, False) when it was not where
        `m` expects; (None, False) when it is gone."""
        ...

    async def count_webhook(self, c: WebhookCount) -> Job | None:
        """The job after counting, or None when it had moved (the caller looks again)."""
        ...

    async def record_events(self, job_id: int, now: datetime, events: tuple[Note, ...]) -> None: ...

    async def get_job(self, job_id: int) -> Job | None: ...

    async def find_active_key(self, key_hash: str) -> Mapping[str, Any] | None: ...

    async def create_job(self, n: NewJob) -> Creation: ...

    async def forget_idempotency_key(self, job_id: int) -> None: ...


def event_values(e: Note) -> dict[str, Any]:
    """One event as both backends' statements take it."""
    return {
        "kind": e.kind,
        "source": e.source,
        "from_status": e.from_status,
        "to_status": e.to_status,
        "detail": e.detail,
    }
