"""The job state machine of the public contract (docs/contract.md), as plain data."""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELED = "canceled"


TERMINAL: frozenset[JobStatus] = frozenset(
    {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.TIMED_OUT, JobStatus.CANCELED}
)
UNFINISHED: frozenset[JobStatus] = frozenset({JobStatus.QUEUED, JobStatus.PROCESSING})


def in_order(states: frozenset[JobStatus]) -> tuple[str, ...]:
    """A set of states by name, in the machine's order: for SQL, counters and the page."""
    return tuple(s.value for s in JobStatus if s in states)


ALLOWED: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset(
        {JobStatus.PROCESSING, JobStatus.FAILED, JobStatus.TIMED_OUT, JobStatus.CANCELED}
    ),
    JobStatus.PROCESSING: frozenset(
        {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.TIMED_OUT, JobStatus.CANCELED}
    ),
    **{s: frozenset() for s in TERMINAL},
}


def can_transition(from_status: JobStatus, to_status: JobStatus) -> bool:
    return to_status in ALLOWED[from_status]
