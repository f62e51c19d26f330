"""What a change does to a job as it stands, decided in one place: move the job, keep it as
it is (recording why), or refuse with a reason. Webhooks, actions and workers all ask here,
and the store's settle loop applies the answer, asking again when the job moved meanwhile.
Pure code: `now` is passed in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from service.domain.changes import Change, Note, Plan, plan
from service.domain.jobs import Job
from service.domain.states import TERMINAL, JobStatus

WEBHOOK_BODIES_KEPT = 10  # per job; later webhooks that change nothing are only counted
SETTLE_TRIES = 5  # reads of a job that keeps moving under one caller before it gives up


class Refusal(StrEnum):
    """Why nothing was applied, as the caller is told (the API maps each to an answer)."""

    GONE = "gone"  # no such job (pruned, or never)
    EXPIRED = "expired"  # a webhook for a job finished longer ago than its token's grace
    FINISHED = "finished"  # an action asked of a job already finished
    MISMATCH = "mismatch"  # a webhook whose body names another job: recorded, not applied
    BUSY = "busy"  # the job kept moving under us (SETTLE_TRIES reads)


@dataclass(frozen=True)
class Standing:
    """What a decision reads of a job: its state, its claim, its webhook count, when it
    finished. `presumed` when not read but guessed (see `presumption`)."""

    status: JobStatus
    lease_owner: str | None = None
    webhooks: int = 0
    completed_at: datetime | None = None
    presumed: bool = False

    @classmethod
    def of(cls, job: Job) -> Standing:
        return cls(job.status, job.lease_owner, job.webhooks, job.completed_at)


@dataclass(frozen=True)
class WebhookCall:
    """The provider's call that carries a change: its raw body (kept, up to a cap per job),
    why it was rejected before looking at the job (its body names another job), and how
    long its token works after the job finished."""

    raw_body: str
    rejected: str | None = None
    token_grace_seconds: float = 24 * 3600.0


@dataclass(frozen=True)
class Ask:
    """A change and who asks for it.

    `expect` binds a change decided against one state of the job (a worker's answer from
    the provider, a timeout: they depend on what the job was), and `owner` to a worker's
    claim: if the job is no longer there, nothing moves and an `ignored` event says so.
    Without `expect` the change means the same from any state (a webhook's result, a
    cancel) and is planned from wherever the job stands. `refuse_finished`: an action on a
    finished job is refused, not recorded."""

    change: Change
    expect: JobStatus | None = None
    owner: str | None = None
    webhook: WebhookCall | None = None
    refuse_finished: bool = False


@dataclass(frozen=True)
class Move:
    """Compare-and-set the job from `plan.expect` through `plan.steps`, recording `events`
    (in order) in the same transaction; `webhooks`: calls to count on the job."""

    plan: Plan
    events: tuple[Note, ...]
    webhooks: int = 0


@dataclass(frozen=True)
class Keep:
    """The job stays as it is: record `events` (on the job as found, when `count_webhook`:
    its webhook count goes up by one) and answer `refusal` (None: a duplicate, fine)."""

    events: tuple[Note, ...]
    count_webhook: bool = False
    refusal: Refusal | None = None


Decision = Move | Keep | Refusal


def presumption(ask: Ask) -> Standing | None:
    """Where to try first without reading the job: a webhook that carries a result almost
    always finds its job processing (one statement instead of a read and a write); if it
    does not, the compare-and-set fails and the job is read."""
    if ask.webhook is not None and ask.webhook.rejected is None and ask.change.target:
        return Standing(JobStatus.PROCESSING, presumed=True)
    return None


def token_expired(job: Standing, now: datetime, grace_seconds: float) -> bool:
    """A leaked webhook URL is useless once its job has been terminal for the grace period:
    it is refused like an unknown token."""
    return (
        job.status in TERMINAL
        and job.completed_at is not None
        and now - job.completed_at > timedelta(seconds=grace_seconds)
    )


def keeps_body(webhooks_received: int) -> bool:
    """Store the raw body of a webhook that moves nothing? Only the first
    WEBHOOK_BODIES_KEPT webhooks of a job (counting this one); one that moves it, always."""
    return webhooks_received <= WEBHOOK_BODIES_KEPT


def transitions(p: Plan, source: str) -> tuple[Note, ...]:
    return tuple(Note("transition", source, {}, a.value, b.value) for a, b in p.transitions())


def ignored(source: str, expected: JobStatus, found: JobStatus, wanted: JobStatus | None) -> Note:
    detail: dict[str, str] = {"expected": expected.value, "found": found.value}
    if wanted is not None:
        detail["wanted"] = wanted.value
    return Note("ignored", source, detail)


def decide(job: Standing | None, ask: Ask, now: datetime) -> Decision:
    """What `ask` does to `job` as it stands (None: there is no such job)."""
    if job is None:
        return Refusal.GONE
    change, call = ask.change, ask.webhook
    if call is None:
        return _decide_change(job, ask)
    if token_expired(job, now, call.token_grace_seconds):
        return Refusal.EXPIRED
    received = Note("webhook", "provider", _webhook_detail(call))
    recorded = (received, *change.notes)
    kept = keeps_body(job.webhooks + 1)
    if call.rejected is not None:
        return Keep(recorded if kept else (), count_webhook=True, refusal=Refusal.MISMATCH)
    p = plan(job.status, change) if change.target is not None else None
    if p is not None and p.steps:  # a result: from processing, or beating the submit reply
        return Move(p, (*recorded, *transitions(p, "webhook")), webhooks=1)
    if not kept:  # past the cap, a webhook that changes nothing is only counted
        return Keep((), count_webhook=True)
    if change.target is not None:  # a result for a job already finished: a duplicate
        recorded = (*recorded, ignored("webhook", job.status, job.status, change.target))
    return Keep(recorded, count_webhook=True)


def _decide_change(job: Standing, ask: Ask) -> Decision:
    change = ask.change
    if ask.refuse_finished and job.status in TERMINAL:
        return Refusal.FINISHED
    bound = ask.expect is not None and ask.expect is not job.status
    claimed = ask.owner is not None and job.lease_owner != ask.owner
    p = None if bound or claimed else plan(job.status, change)
    if p is not None:
        return Move(p, (*change.notes, *transitions(p, change.source)))
    why = ignored(change.source, ask.expect or job.status, job.status, change.target)
    return Keep((*change.notes, why))


def _webhook_detail(call: WebhookCall) -> dict[str, str]:
    detail = {"body": call.raw_body}
    if call.rejected:
        detail["rejected"] = call.rejected
    return detail
