"""What happens to a job, decided once: every provider answer (submit, poll, webhook), a
cancel and a timeout becomes one typed `Change`; `plan` turns a change and the state it was
decided against into the steps the store applies with compare-and-set. Pure code."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from service.domain import scheduling
from service.domain.circuit import OUTAGE_KINDS
from service.domain.jobs import Job
from service.domain.outcomes import PROVIDER_REJECTED, TIMED_OUT, Outcome, outcome_of, path_to
from service.domain.replies import ProviderReply
from service.domain.states import TERMINAL, JobStatus


@dataclass(frozen=True)
class Policy:
    """The timing settings every decision needs (from Settings, once per process)."""

    eta_grace_seconds: float = 10.0
    job_timeout_seconds: float = 3600.0
    poll_backoff_base_seconds: float = 5.0
    poll_backoff_max_seconds: float = 300.0
    retry_backoff_base_seconds: float = 2.0
    retry_backoff_max_seconds: float = 300.0


@dataclass(frozen=True)
class JobError:
    code: str
    message: str


@dataclass(frozen=True)
class Fields:
    """What a change writes on the job; None leaves a field as it is."""

    provider_id: str | None = None
    provider_status: str | None = None
    fetch_result: str | None = None
    submitted_at: datetime | None = None
    eta_at: datetime | None = None
    next_poll_at: datetime | None = None
    output: tuple[str, ...] | None = None
    error: JobError | None = None


@dataclass(frozen=True)
class Note:
    """An event recorded on a job: beside a change, whether or not the change applies, or
    one of its transitions (`from_status` → `to_status`)."""

    kind: str
    source: str
    detail: dict[str, Any] = field(default_factory=dict)
    from_status: str | None = None
    to_status: str | None = None


@dataclass(frozen=True)
class Change:
    """One decision about one job. `target` None keeps the job in its state (a reschedule);
    a change always bumps the job's version when it applies."""

    source: str
    target: JobStatus | None = None
    fields: Fields = Fields()
    release: bool = False  # hand the worker's claim back
    count_poll: bool = False  # polls + 1
    count_attempt: bool = False  # attempts + 1 (the backoff exponent)
    reset_attempts: bool = False  # attempts = 0 (a fresh submission)
    notes: tuple[Note, ...] = ()

    def with_notes(self, *notes: Note) -> Change:
        return Change(
            self.source,
            self.target,
            self.fields,
            self.release,
            self.count_poll,
            self.count_attempt,
            self.reset_attempts,
            (*notes, *self.notes),
        )


@dataclass(frozen=True)
class Plan:
    """How a change applies to a job found in `expect`: through `steps` (none for a
    reschedule), each a compare-and-set the store makes with its event."""

    expect: JobStatus
    steps: tuple[JobStatus, ...]

    @property
    def final(self) -> JobStatus:
        return self.steps[-1] if self.steps else self.expect

    @property
    def terminal(self) -> bool:
        return self.final in TERMINAL

    @property
    def version_bump(self) -> int:
        return max(len(self.steps), 1)

    def transitions(self) -> list[tuple[JobStatus, JobStatus]]:
        previous, out = self.expect, []
        for step in self.steps:
            out.append((previous, step))
            previous = step
        return out

    def counter_deltas(self) -> dict[str, int]:
        """How the per-state job counters move (a pass through `processing` cancels out)."""
        if not self.steps:
            return {}
        return {self.expect.value: -1, self.final.value: 1}


def plan(current: JobStatus, change: Change) -> Plan | None:
    """The steps `change` takes from `current`, or None when it does not apply (a terminal
    job never changes; a target with no legal path is ignored)."""
    if change.target is None:
        return None if current in TERMINAL else Plan(current, ())
    steps = path_to(current, change.target)
    return Plan(current, tuple(steps)) if steps else None


# --- one function per source of truth ------------------------------------------------------


def _result_fields(reply: ProviderReply, outcome: Outcome) -> Fields:
    error = (
        JobError(outcome.error_code, outcome.error_message or "")
        if outcome.to_status is JobStatus.FAILED and outcome.error_code
        else None
    )
    return Fields(
        provider_id=reply.provider_id,
        provider_status=reply.raw_status,
        output=outcome.output if outcome.to_status is JobStatus.SUCCEEDED else None,
        error=error,
    )


def _warnings(outcome: Outcome, source: str) -> tuple[Note, ...]:
    return (Note("warning", source, {"warning": outcome.warning}),) if outcome.warning else ()


def submit_accepted(reply: ProviderReply, now: datetime, policy: Policy) -> Change:
    """ModelsLab answered the submit with a reply: processing (the usual), or already a
    result. Either way the job has been submitted now."""
    outcome = outcome_of(reply)
    target = outcome.to_status or JobStatus.PROCESSING
    result = _result_fields(reply, outcome)
    notes = (Note("submit", "submitter", {"reply": reply.raw}), *_warnings(outcome, "submitter"))
    if target is not JobStatus.PROCESSING:
        fields = Fields(
            provider_id=result.provider_id,
            provider_status=result.provider_status,
            fetch_result=reply.fetch_result,
            submitted_at=now,
            output=result.output,
            error=result.error,
        )
        return Change("submitter", target, fields, notes=notes)
    deadline = scheduling.deadline(now, policy.job_timeout_seconds)
    fields = Fields(
        provider_id=reply.provider_id,
        provider_status=reply.raw_status,
        fetch_result=reply.fetch_result,
        submitted_at=now,
        eta_at=scheduling.first_poll_at(now, reply.eta_seconds, 0.0, deadline),
        next_poll_at=scheduling.first_poll_at(
            now, reply.eta_seconds, policy.eta_grace_seconds, deadline
        ),
    )
    return Change("submitter", target, fields, release=True, reset_attempts=True, notes=notes)


def submit_retry(
    job: Job,
    now: datetime,
    policy: Policy,
    kind: str,
    message: str,
    retry_after: float | None,
) -> Change:
    """A retryable failure: the job stays queued until the retry time, never past its
    deadline. An outage (connection, timeout, 5xx) is the provider's, not the job's: no
    backoff of its own, just a short jittered pause (the circuit holds everyone back); a
    rate limit backs off per job."""
    deadline = scheduling.deadline(job.created_at, policy.job_timeout_seconds)
    if kind in OUTAGE_KINDS:
        when = _soon(now, policy, retry_after, deadline)
    else:
        when = scheduling.retry_at(
            now,
            job.submit_attempts - 1,
            policy.retry_backoff_base_seconds,
            policy.retry_backoff_max_seconds,
            retry_after,
            not_after=deadline,
        )
    note = Note(
        "submit_error",
        "submitter",
        {"kind": kind, "message": message, "retry_at": when.isoformat()},
    )
    return Change("submitter", fields=Fields(next_poll_at=when), release=True, notes=(note,))


def submit_rejected(status_code: int, message: str) -> Change:
    note = Note("submit_rejected", "submitter", {"status_code": status_code, "message": message})
    return Change(
        "submitter",
        JobStatus.FAILED,
        Fields(error=JobError(PROVIDER_REJECTED, message)),
        notes=(note,),
    )


def submit_timed_out(policy: Policy) -> Change:
    message = f"not submitted within {policy.job_timeout_seconds:g} s"
    return Change("submitter", JobStatus.TIMED_OUT, Fields(error=JobError(TIMED_OUT, message)))


def submit_skipped(job: Job, policy: Policy) -> Change:
    """The one resubmission after a crash was itself cut off: ModelsLab has no idempotency
    key, so instead of a third send, wait for the webhook (its URL names the job) until the
    deadline, where the sweeper times the job out."""
    deadline = scheduling.deadline(job.created_at, policy.job_timeout_seconds)
    note = Note(
        "submit_skipped",
        "submitter",
        {"reason": "crashed_twice", "crashed_submits": job.crashed_submits},
    )
    return Change(
        "submitter",
        JobStatus.PROCESSING,
        Fields(provider_status="unknown", next_poll_at=deadline),
        release=True,
        notes=(note,),
    )


def poll_answer(
    job: Job, reply: ProviderReply, now: datetime, policy: Policy, source: str
) -> Change:
    """The provider's answer to a fetch: a result ends the job; anything else reschedules
    the next poll with backoff (or the fresh eta), never past the deadline."""
    outcome = outcome_of(reply)
    notes = (Note("poll", source, {"reply": reply.raw}), *_warnings(outcome, source))
    if outcome.to_status is not None:
        result = _result_fields(reply, outcome)
        fields = Fields(
            provider_id=result.provider_id or None,
            provider_status=result.provider_status,
            output=result.output,
            error=result.error,
        )
        return Change(source, outcome.to_status, fields, count_poll=True, notes=notes)
    deadline = scheduling.deadline(job.clock_start, policy.job_timeout_seconds)
    when = scheduling.next_poll_at(
        now,
        job.attempts,
        policy.poll_backoff_base_seconds,
        policy.poll_backoff_max_seconds,
        deadline,
        outcome.eta_seconds,
    )
    return Change(
        source,
        fields=Fields(provider_status=reply.raw_status, next_poll_at=when),
        release=True,
        count_poll=True,
        count_attempt=True,
        notes=notes,
    )


def poll_failed(
    job: Job,
    now: datetime,
    policy: Policy,
    source: str,
    kind: str,
    message: str,
    retry_after: float | None,
) -> Change:
    deadline = scheduling.deadline(job.clock_start, policy.job_timeout_seconds)
    note = Note("poll_error", source, {"kind": kind, "message": message})
    if kind in OUTAGE_KINDS:  # the provider's outage, not this job's answer: no backoff
        when = _soon(now, policy, retry_after, deadline)
        return Change(source, fields=Fields(next_poll_at=when), release=True, notes=(note,))
    when = scheduling.retry_at(
        now,
        job.attempts,
        policy.retry_backoff_base_seconds,
        policy.retry_backoff_max_seconds,
        retry_after,
        not_after=deadline,
    )
    return Change(
        source,
        fields=Fields(next_poll_at=when),
        release=True,
        count_attempt=True,
        notes=(note,),
    )


def _soon(now: datetime, policy: Policy, retry_after: float | None, deadline: datetime) -> datetime:
    """After an outage answer: the base retry delay, jittered (so the backlog does not
    return all at once), or a longer Retry-After."""
    return scheduling.retry_at(
        now,
        0,
        policy.retry_backoff_base_seconds,
        policy.retry_backoff_base_seconds,
        retry_after,
        not_after=deadline,
    )


def timed_out(policy: Policy, source: str) -> Change:
    message = f"no result within {policy.job_timeout_seconds:g} s of submission"
    return Change(source, JobStatus.TIMED_OUT, Fields(error=JobError(TIMED_OUT, message)))


def webhook_reply(reply: ProviderReply) -> Change:
    """A webhook: a result ends the job (from processing, or from queued through processing
    when it beat the submit reply); anything else is only recorded."""
    outcome = outcome_of(reply)
    notes = _warnings(outcome, "webhook")
    if outcome.to_status is None:
        return Change("webhook", notes=notes)
    return Change("webhook", outcome.to_status, _result_fields(reply, outcome), notes=notes)


def acted(action: str, key_prefix: str) -> Note:
    """Who asked for an action on a job (cancel, refresh, replay): the key's prefix."""
    return Note("action", "api", {"action": action, "key": key_prefix})


def cancel(key_prefix: str = "") -> Change:
    return Change(
        "api",
        JobStatus.CANCELED,
        Fields(error=JobError("canceled", "canceled by the client")),
        notes=(acted("cancel", key_prefix),),
    )


def is_past_deadline(job: Job, now: datetime, policy: Policy) -> bool:
    """Queued jobs time out from creation, submitted ones from submission."""
    return scheduling.is_past_deadline(job.clock_start, policy.job_timeout_seconds, now)
