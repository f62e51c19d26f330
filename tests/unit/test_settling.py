"""When a job is settled, and which of its events settled it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from service.domain.jobs import Event, Job
from service.domain.settling import is_settled, may_settle, settles
from service.domain.states import JobStatus
from tests.factories import job_snapshot

AT = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def event(kind: str, to_status: str | None = None, n: int = 1) -> Event:
    return Event(n, 1, AT, kind, "test", None, to_status, {})


def job(status: JobStatus, archive_status: str | None = None) -> Job:
    return job_snapshot(status=status, archive_status=archive_status)


@pytest.mark.parametrize(
    ("status", "archive", "settled"),
    [
        (JobStatus.QUEUED, None, False),
        (JobStatus.PROCESSING, None, False),
        (JobStatus.SUCCEEDED, "pending", False),  # its image is still being kept
        (JobStatus.SUCCEEDED, "done", True),
        (JobStatus.SUCCEEDED, "failed", True),  # given up on: settled all the same
        (JobStatus.SUCCEEDED, None, True),  # nothing kept
        (JobStatus.FAILED, None, True),
        (JobStatus.TIMED_OUT, None, True),
        (JobStatus.CANCELED, None, True),
    ],
)
def test_settled_is_terminal_and_no_longer_keeping(
    status: JobStatus, archive: str | None, settled: bool
) -> None:
    assert is_settled(job(status, archive)) is settled


def test_the_terminal_transition_settles_a_job_with_nothing_to_keep() -> None:
    done = job(JobStatus.SUCCEEDED)
    assert settles(event("transition", "succeeded"), done)
    assert not settles(event("transition", "processing"), done)
    assert not settles(event("webhook"), done)
    assert settles(event("transition", "canceled"), job(JobStatus.CANCELED))


def test_the_archive_settles_a_job_whose_outputs_were_kept() -> None:
    kept = job(JobStatus.SUCCEEDED, "done")
    assert settles(event("archived"), kept)
    assert not settles(event("transition", "succeeded"), kept)
    assert settles(event("archived"), job(JobStatus.SUCCEEDED, "failed"))
    # while the archive is pending nothing has settled the job yet
    pending = job(JobStatus.SUCCEEDED, "pending")
    assert not settles(event("transition", "succeeded"), pending)
    assert not settles(event("archived"), pending)


def test_events_that_may_settle_a_job() -> None:
    assert may_settle(event("archived"))
    assert may_settle(event("transition", "timed_out"))
    assert not may_settle(event("transition", "processing"))
    assert not may_settle(event("callback_attempt"))
    assert not may_settle(event("ignored", "succeeded"))
