"""Every source of truth becomes one typed change, and `plan` turns it into the steps the
store applies: pure decisions, proven without a database at a pinned instant."""

from __future__ import annotations

from datetime import timedelta

import pytest
from freezegun import freeze_time

from service.domain import changes
from service.domain.changes import Change, Fields, JobError, Note, Plan, Policy, plan
from service.domain.outcomes import PROVIDER_ERROR, PROVIDER_REJECTED, TIMED_OUT
from service.domain.replies import ProviderReply, ReplyKind
from service.domain.states import UNFINISHED, JobStatus
from tests.factories import SNAPSHOT_AT, job_snapshot

NOW = SNAPSHOT_AT + timedelta(minutes=1)
POLICY = Policy(
    eta_grace_seconds=10.0,
    job_timeout_seconds=3600.0,
    poll_backoff_base_seconds=5.0,
    poll_backoff_max_seconds=300.0,
    retry_backoff_base_seconds=2.0,
    retry_backoff_max_seconds=300.0,
)

PROCESSING = ProviderReply(
    ReplyKind.PROCESSING, "processing", "p-1", 20.0, "https://x.invalid/fetch/p-1", raw={"a": 1}
)
SUCCESS = ProviderReply(
    ReplyKind.SUCCESS, "success", "p-1", output=("https://x.invalid/o.png",), raw={"b": 2}
)
ERROR = ProviderReply(ReplyKind.ERROR, "error", "p-1", message="nsfw", raw={"c": 3})
UNKNOWN = ProviderReply(ReplyKind.UNKNOWN, "rendering", "p-1", eta_seconds=7.0)


@pytest.fixture(autouse=True)
def _pinned() -> object:
    with freeze_time(NOW) as frozen:
        yield frozen


# --- plan --------------------------------------------------------------------------------


def test_a_result_on_a_queued_job_passes_through_processing() -> None:
    p = plan(JobStatus.QUEUED, Change("webhook", JobStatus.SUCCEEDED))
    assert p == Plan(JobStatus.QUEUED, (JobStatus.PROCESSING, JobStatus.SUCCEEDED))
    assert p.final is JobStatus.SUCCEEDED and p.terminal and p.version_bump == 2
    assert p.transitions() == [
        (JobStatus.QUEUED, JobStatus.PROCESSING),
        (JobStatus.PROCESSING, JobStatus.SUCCEEDED),
    ]
    assert p.counter_deltas() == {"queued": -1, "succeeded": 1}


def test_a_reschedule_stays_put_but_bumps_the_version_once() -> None:
    p = plan(JobStatus.PROCESSING, Change("sweeper"))
    assert p == Plan(JobStatus.PROCESSING, ())
    assert p.final is JobStatus.PROCESSING and not p.terminal
    assert p.version_bump == 1 and p.transitions() == [] and p.counter_deltas() == {}


@pytest.mark.parametrize("done", [s for s in JobStatus if s not in UNFINISHED])
def test_a_finished_job_takes_no_change_at_all(done: JobStatus) -> None:
    assert plan(done, Change("sweeper")) is None
    for target in JobStatus:
        assert plan(done, Change("api", target)) is None


def test_a_target_with_no_legal_path_does_not_apply() -> None:
    assert plan(JobStatus.PROCESSING, Change("api", JobStatus.QUEUED)) is None


def test_with_notes_puts_the_new_notes_first_and_keeps_the_rest() -> None:
    first, second = Note("action", "api"), Note("warning", "api", {"warning": "w"})
    change = changes.cancel("ak_1").with_notes(first, second)
    assert change.notes[:2] == (first, second)
    assert change.notes[2] == changes.acted("cancel", "ak_1")
    assert change.target is JobStatus.CANCELED and change.source == "api"


# --- the submitter -----------------------------------------------------------------------


def test_an_accepted_submit_waits_for_the_eta_and_then_the_grace() -> None:
    change = changes.submit_accepted(PROCESSING, NOW, POLICY)
    assert change.target is JobStatus.PROCESSING
    assert change.release and change.reset_attempts
    f = change.fields
    assert (f.provider_id, f.provider_status, f.fetch_result) == (
        "p-1",
        "processing",
        "https://x.invalid/fetch/p-1",
    )
    assert f.submitted_at == NOW
    assert f.eta_at == NOW + timedelta(seconds=20)
    assert f.next_poll_at == NOW + timedelta(seconds=30)
    assert change.notes == (Note("submit", "submitter", {"reply": {"a": 1}}),)


def test_a_submit_answered_with_the_result_finishes_the_job_at_once() -> None:
    change = changes.submit_accepted(SUCCESS, NOW, POLICY)
    assert change.target is JobStatus.SUCCEEDED and not change.release
    assert change.fields.output == ("https://x.invalid/o.png",)
    assert change.fields.submitted_at == NOW and change.fields.error is None
    failed = changes.submit_accepted(ERROR, NOW, POLICY)
    assert failed.target is JobStatus.FAILED
    assert failed.fields.error == JobError(PROVIDER_ERROR, "nsfw")
    assert failed.fields.output is None


def test_a_submit_with_an_unknown_status_waits_and_says_why() -> None:
    change = changes.submit_accepted(UNKNOWN, NOW, POLICY)
    assert change.target is JobStatus.PROCESSING
    assert change.notes[1] == Note("warning", "submitter", {"warning": "unknown_status:rendering"})


def test_a_provider_outage_retries_soon_without_backoff_of_the_jobs_own() -> None:
    job = job_snapshot(submit_attempts=9)
    change = changes.submit_retry(job, NOW, POLICY, "timeout", "read timed out", None)
    assert change.target is None and change.release and not change.count_attempt
    when = change.fields.next_poll_at
    assert when is not None
    assert timedelta(seconds=1.6) <= when - NOW <= timedelta(seconds=2.4)  # base ±20 %
    assert change.notes[0].detail == {
        "kind": "timeout",
        "message": "read timed out",
        "retry_at": when.isoformat(),
    }


def test_a_rate_limit_backs_off_per_job_and_honours_retry_after() -> None:
    job = job_snapshot(submit_attempts=4)  # the fourth try: 2 · 2³ = 16 s ±20 %
    change = changes.submit_retry(job, NOW, POLICY, "rate_limited", "429", None)
    when = change.fields.next_poll_at
    assert when is not None
    assert timedelta(seconds=12.8) <= when - NOW <= timedelta(seconds=19.2)
    later = changes.submit_retry(job, NOW, POLICY, "rate_limited", "429", 120.0)
    assert later.fields.next_poll_at == NOW + timedelta(seconds=120)


def test_a_retry_never_passes_the_jobs_deadline() -> None:
    job = job_snapshot(submit_attempts=1)
    late = SNAPSHOT_AT + timedelta(seconds=3590)
    change = changes.submit_retry(job, late, POLICY, "rate_limited", "429", 600.0)
    assert change.fields.next_poll_at == SNAPSHOT_AT + timedelta(seconds=3600)


def test_a_rejected_submit_fails_the_job_with_the_providers_message() -> None:
    change = changes.submit_rejected(402, "no credits")
    assert change.target is JobStatus.FAILED
    assert change.fields.error == JobError(PROVIDER_REJECTED, "no credits")
    assert change.notes[0].detail == {"status_code": 402, "message": "no credits"}


def test_a_submit_that_never_went_out_times_out_saying_how_long() -> None:
    change = changes.submit_timed_out(POLICY)
    assert change.target is JobStatus.TIMED_OUT
    assert change.fields.error == JobError(TIMED_OUT, "not submitted within 3600 s")


def test_a_second_crashed_submit_waits_for_the_webhook_until_the_deadline() -> None:
    job = job_snapshot(crashed_submits=2)
    change = changes.submit_skipped(job, POLICY)
    assert change.target is JobStatus.PROCESSING and change.release
    assert change.fields == Fields(
        provider_status="unknown", next_poll_at=SNAPSHOT_AT + timedelta(hours=1)
    )
    assert change.notes[0].detail == {"reason": "crashed_twice", "crashed_submits": 2}


# --- the sweeper and refreshes -----------------------------------------------------------


def test_a_poll_that_finds_the_result_finishes_and_counts_the_poll() -> None:
    job = job_snapshot(status=JobStatus.PROCESSING, submitted_at=SNAPSHOT_AT)
    change = changes.poll_answer(job, SUCCESS, NOW, POLICY, "sweeper")
    assert change.target is JobStatus.SUCCEEDED and change.count_poll
    assert change.fields.output == ("https://x.invalid/o.png",)
    assert change.notes == (Note("poll", "sweeper", {"reply": {"b": 2}}),)
    failed = changes.poll_answer(job, ERROR, NOW, POLICY, "refresh")
    assert failed.source == "refresh"
    assert failed.fields.error == JobError(PROVIDER_ERROR, "nsfw")


def test_a_poll_still_processing_reschedules_with_backoff_or_the_fresh_eta() -> None:
    job = job_snapshot(status=JobStatus.PROCESSING, submitted_at=SNAPSHOT_AT, attempts=0)
    change = changes.poll_answer(job, PROCESSING, NOW, POLICY, "sweeper")
    assert change.target is None and change.release
    assert change.count_poll and change.count_attempt
    assert change.fields.provider_status == "processing"
    assert change.fields.next_poll_at == NOW + timedelta(seconds=20)  # the eta beats 5 s


def test_a_poll_with_an_unknown_status_warns_and_waits() -> None:
    job = job_snapshot(status=JobStatus.PROCESSING, submitted_at=SNAPSHOT_AT)
    change = changes.poll_answer(job, UNKNOWN, NOW, POLICY, "sweeper")
    assert change.target is None
    assert Note("warning", "sweeper", {"warning": "unknown_status:rendering"}) in change.notes


def test_a_failed_poll_retries_an_outage_soon_and_backs_off_otherwise() -> None:
    job = job_snapshot(status=JobStatus.PROCESSING, submitted_at=SNAPSHOT_AT, attempts=3)
    outage = changes.poll_failed(job, NOW, POLICY, "sweeper", "connection", "refused", None)
    assert not outage.count_attempt and outage.release
    soon = outage.fields.next_poll_at
    assert soon is not None and soon - NOW <= timedelta(seconds=2.4)
    other = changes.poll_failed(job, NOW, POLICY, "sweeper", "client_error", "418", None)
    assert other.count_attempt
    backed = other.fields.next_poll_at
    assert backed is not None and backed - NOW >= timedelta(seconds=12.8)  # 2 · 2³ −20 %
    assert other.notes[0] == Note(
        "poll_error", "sweeper", {"kind": "client_error", "message": "418"}
    )


def test_a_job_past_its_deadline_times_out_from_submission_or_creation() -> None:
    queued = job_snapshot()
    assert not changes.is_past_deadline(queued, SNAPSHOT_AT + timedelta(seconds=3599), POLICY)
    assert changes.is_past_deadline(queued, SNAPSHOT_AT + timedelta(seconds=3600), POLICY)
    submitted = job_snapshot(submitted_at=SNAPSHOT_AT + timedelta(minutes=30))
    assert not changes.is_past_deadline(submitted, SNAPSHOT_AT + timedelta(hours=1), POLICY)
    change = changes.timed_out(POLICY, "sweeper")
    assert change.target is JobStatus.TIMED_OUT
    assert change.fields.error == JobError(TIMED_OUT, "no result within 3600 s of submission")


# --- webhooks and the API ----------------------------------------------------------------


def test_a_webhook_result_finishes_and_an_update_only_records() -> None:
    done = changes.webhook_reply(SUCCESS)
    assert done.source == "webhook" and done.target is JobStatus.SUCCEEDED
    assert done.fields.provider_id == "p-1" and not done.release
    update = changes.webhook_reply(PROCESSING)
    assert update == Change("webhook")
    odd = changes.webhook_reply(UNKNOWN)
    assert odd.target is None
    assert odd.notes == (Note("warning", "webhook", {"warning": "unknown_status:rendering"}),)


def test_a_success_without_output_or_a_malformed_reply_is_a_warning_not_a_result() -> None:
    empty = ProviderReply(ReplyKind.UNKNOWN, "success")
    assert changes.webhook_reply(empty).notes[0].detail == {"warning": "success_without_output"}
    bad = ProviderReply(ReplyKind.UNKNOWN, "success", problem="output_not_a_list")
    assert changes.webhook_reply(bad).notes[0].detail == {
        "warning": "malformed_reply:output_not_a_list"
    }


def test_a_cancel_says_who_asked() -> None:
    change = changes.cancel("ak_9")
    assert change.target is JobStatus.CANCELED
    assert change.fields.error == JobError("canceled", "canceled by the client")
    assert change.notes == (Note("action", "api", {"action": "cancel", "key": "ak_9"}),)
