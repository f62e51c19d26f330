"""What archiving a succeeded job's outputs means: which changes start it, when a fetch that
found nothing yet is tried again, when to give up, and how a stored output looks to clients.
Pure code: `now` is passed in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from service.domain import scheduling
from service.domain.changes import Plan
from service.domain.states import JobStatus

PENDING, DONE, FAILED = "pending", "done", "failed"


@dataclass(frozen=True)
class ArchivePolicy:
    """From Settings: how long an output may take to appear, and the retry backoff."""

    deadline_seconds: float = 23 * 3600.0
    retry_base_seconds: float = 5.0
    retry_max_seconds: float = 600.0


def starts_archive(p: Plan) -> bool:
    """A change that makes a job succeed queues its archive (in the same transaction)."""
    return p.terminal and bool(p.steps) and p.final is JobStatus.SUCCEEDED


def deadline(now: datetime, policy: ArchivePolicy) -> datetime:
    return now + timedelta(seconds=policy.deadline_seconds)


@dataclass(frozen=True)
class Stored:
    """One output kept: where (`object_key`) and what (checksum, size, image shape)."""

    n: int
    provider_url: str
    object_key: str
    sha256: str
    bytes: int
    width: int
    height: int
    content_type: str
    store: str = ""  # the output store that holds it (its name)


@dataclass(frozen=True)
class Unstored:
    """One output given up on, and why (not an image, too large, refused, not there by the
    deadline)."""

    n: int
    provider_url: str
    reason: str


Result = Stored | Unstored


@dataclass(frozen=True)
class Retry:
    """Nothing final yet (the URL answered 404, a timeout): try again at `at`."""

    at: datetime
    reason: str


STORE_MISS = "store: "  # a miss of the output store's (it refused a write), not the URL's


def after_miss(
    now: datetime, attempts: int, deadline_at: datetime, reason: str, policy: ArchivePolicy
) -> Retry | None:
    """An output not kept yet: when to look again, never past the deadline, or None when
    the deadline has passed: give up. A URL not there yet backs off from `attempts`; a
    store refusing writes is an outage, not this output's: a short jittered pause without
    backoff of its own (the archiver waits on the store meanwhile, and once it answers
    again the backlog goes at once, like jobs after a provider outage)."""
    if now >= deadline_at:
        return None
    growth = 0 if reason.startswith(STORE_MISS) else attempts
    ceiling = policy.retry_base_seconds if growth == 0 else policy.retry_max_seconds
    at = scheduling.retry_at(now, growth, policy.retry_base_seconds, ceiling, not_after=deadline_at)
    return Retry(at, reason)


def given_up(miss: str) -> str:
    """Why an output still missing at the deadline is given up on: the store kept refusing
    it, or its URL never had it."""
    return "not_stored_by_deadline" if miss.startswith(STORE_MISS) else "not_found_by_deadline"


def status_of(results: list[Result]) -> str:
    """`done` when every output is stored, else `failed` (a job's status never changes)."""
    return DONE if results and all(isinstance(r, Stored) for r in results) else FAILED


_STORED_FIELDS = ("object_key", "sha256", "bytes", "width", "height", "content_type", "store")


def record(result: Result) -> dict[str, Any]:
    """Every field of one output's result, None where it has none (a job_outputs row)."""
    if isinstance(result, Stored):
        fields, error = {k: getattr(result, k) for k in _STORED_FIELDS}, None
    else:
        fields, error = dict.fromkeys(_STORED_FIELDS), result.reason
    return {"n": result.n, "provider_url": result.provider_url, **fields, "error": error}


def output_json(result: Result, url: str) -> dict[str, Any]:
    """One entry of a job's `outputs`: our durable `url` (None when not stored) beside the
    provider's, with the checksum and shape; `error` says why an output is not stored."""
    fields = record(result)
    del fields["n"], fields["object_key"], fields["store"]  # the position; where is ours
    return {"url": url if isinstance(result, Stored) else None, **fields}
