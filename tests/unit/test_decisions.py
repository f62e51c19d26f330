"""What a change does to a job as it stands: every branch of the one decision that
webhooks, actions and workers share, at a pinned instant, without a database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from freezegun import freeze_time

from service.domain import changes
from service.domain.changes import Change, Note, Plan
from service.domain.decisions import (
    WEBHOOK_BODIES_KEPT,
    Ask,
    Keep,
    Move,
    Refusal,
    Standing,
    WebhookCall,
    decide,
    presumption,
)
from service.domain.states import JobStatus as S
from tests.factories import SNAPSHOT_AT, job_snapshot

NOW = SNAPSHOT_AT + timedelta(minutes=1)
RESULT = Change("webhook", S.SUCCEEDED, changes.Fields(output=("u",)))
UPDATE = Change("webhook")
HOOK = WebhookCall('{"status":"success"}', token_grace_seconds=3600.0)
RECEIVED = Note("webhook", "provider", {"body": '{"status":"success"}'})


@pytest.fixture(autouse=True)
def _pinned() -> object:
    with freeze_time(NOW) as frozen:
        yield frozen


def test_there_is_nothing_to_decide_about_a_job_that_is_gone() -> None:
    assert decide(None, Ask(changes.cancel()), NOW) is Refusal.GONE
    assert decide(None, Ask(RESULT, webhook=HOOK), NOW) is Refusal.GONE


def test_a_standing_reads_what_decisions_need_of_a_job() -> None:
    job = job_snapshot(status=S.PROCESSING, lease_owner="w", webhooks=3, completed_at=NOW)
    assert Standing.of(job) == Standing(S.PROCESSING, "w", 3, NOW)


# --- webhooks ----------------------------------------------------------------------------


def test_a_result_moves_a_processing_job_keeping_the_body_first() -> None:
    decision = decide(Standing(S.PROCESSING), Ask(RESULT, webhook=HOOK), NOW)
    assert decision == Move(
        Plan(S.PROCESSING, (S.SUCCEEDED,)),
        (RECEIVED, Note("transition", "webhook", {}, "processing", "succeeded")),
        webhooks=1,
    )


def test_a_result_that_beat_the_submit_reply_passes_through_processing() -> None:
    decision = decide(Standing(S.QUEUED), Ask(RESULT, webhook=HOOK), NOW)
    assert isinstance(decision, Move)
    assert decision.plan.steps == (S.PROCESSING, S.SUCCEEDED)
    assert [e.kind for e in decision.events] == ["webhook", "transition", "transition"]


def test_a_result_moves_even_past_the_body_cap() -> None:
    late = Standing(S.PROCESSING, webhooks=WEBHOOK_BODIES_KEPT + 5)
    decision = decide(late, Ask(RESULT, webhook=HOOK), NOW)
    assert isinstance(decision, Move) and decision.events[0] == RECEIVED


def test_a_duplicate_result_is_counted_and_says_why_it_changed_nothing() -> None:
    done = Standing(S.SUCCEEDED, completed_at=NOW)
    decision = decide(done, Ask(RESULT, webhook=HOOK), NOW)
    why = Note(
        "ignored", "webhook", {"expected": "succeeded", "found": "succeeded", "wanted": "succeeded"}
    )
    assert decision == Keep((RECEIVED, why), count_webhook=True)


def test_an_update_is_counted_with_its_body_until_the_cap_then_only_counted() -> None:
    warned = Change("webhook", notes=(Note("warning", "webhook", {"warning": "w"}),))
    first = decide(Standing(S.PROCESSING), Ask(warned, webhook=HOOK), NOW)
    assert first == Keep((RECEIVED, warned.notes[0]), count_webhook=True)
    at_cap = Standing(S.PROCESSING, webhooks=WEBHOOK_BODIES_KEPT - 1)
    assert decide(at_cap, Ask(UPDATE, webhook=HOOK), NOW) == Keep((RECEIVED,), True)
    past = Standing(S.PROCESSING, webhooks=WEBHOOK_BODIES_KEPT)
    assert decide(past, Ask(UPDATE, webhook=HOOK), NOW) == Keep((), count_webhook=True)


def test_a_body_naming_another_job_is_recorded_counted_and_refused() -> None:
    call = WebhookCall("{}", rejected="track_id_mismatch")
    decision = decide(Standing(S.PROCESSING), Ask(RESULT, webhook=call), NOW)
    rejected = Note("webhook", "provider", {"body": "{}", "rejected": "track_id_mismatch"})
    assert decision == Keep((rejected,), count_webhook=True, refusal=Refusal.MISMATCH)
    past = Standing(S.PROCESSING, webhooks=WEBHOOK_BODIES_KEPT)
    assert decide(past, Ask(RESULT, webhook=call), NOW) == Keep((), True, Refusal.MISMATCH)


def test_a_token_stops_working_once_its_job_has_been_finished_for_the_grace() -> None:
    finished = Standing(S.SUCCEEDED, completed_at=NOW - timedelta(seconds=3600))
    assert isinstance(decide(finished, Ask(RESULT, webhook=HOOK), NOW), Keep)
    later = Standing(S.SUCCEEDED, completed_at=NOW - timedelta(seconds=3601))
    assert decide(later, Ask(RESULT, webhook=HOOK), NOW) is Refusal.EXPIRED
    running = Standing(S.PROCESSING, completed_at=None)
    assert decide(running, Ask(UPDATE, webhook=HOOK), NOW + timedelta(days=9)) != Refusal.EXPIRED


def test_only_a_webhook_carrying_a_result_is_tried_before_reading_the_job() -> None:
    guess = presumption(Ask(RESULT, webhook=HOOK))
    assert guess == Standing(S.PROCESSING, presumed=True)
    assert presumption(Ask(UPDATE, webhook=HOOK)) is None
    assert presumption(Ask(RESULT, webhook=WebhookCall("{}", rejected="x"))) is None
    assert presumption(Ask(changes.cancel())) is None


# --- actions and workers -----------------------------------------------------------------


def test_a_cancel_moves_from_wherever_the_job_stands_and_is_refused_once_finished() -> None:
    cancel = Ask(changes.cancel("ak_1"), refuse_finished=True)
    for status in (S.QUEUED, S.PROCESSING):
        decision = decide(Standing(status), cancel, NOW)
        assert isinstance(decision, Move) and decision.plan == Plan(status, (S.CANCELED,))
        assert decision.events[0] == changes.acted("cancel", "ak_1")
        assert decision.webhooks == 0
    for status in (S.SUCCEEDED, S.FAILED, S.TIMED_OUT, S.CANCELED):
        assert decide(Standing(status), cancel, NOW) is Refusal.FINISHED


def test_a_workers_change_applies_only_where_it_was_decided_and_under_its_claim() -> None:
    poll = Change("sweeper", release=True, notes=(Note("poll", "sweeper"),))
    ask = Ask(poll, expect=S.PROCESSING, owner="w")
    mine = decide(Standing(S.PROCESSING, lease_owner="w"), ask, NOW)
    assert mine == Move(Plan(S.PROCESSING, ()), (Note("poll", "sweeper"),))
    theirs = decide(Standing(S.PROCESSING, lease_owner="x"), ask, NOW)
    assert theirs == Keep(
        (
            Note("poll", "sweeper"),
            Note("ignored", "sweeper", {"expected": "processing", "found": "processing"}),
        )
    )
    moved = decide(Standing(S.SUCCEEDED, lease_owner="w"), ask, NOW)
    assert isinstance(moved, Keep) and moved.events[-1].detail == {
        "expected": "processing",
        "found": "succeeded",
    }


def test_a_change_decided_against_one_state_is_not_replanned_from_another() -> None:
    timeout = Ask(changes.timed_out(changes.Policy(), "sweeper"), expect=S.QUEUED)
    decision = decide(Standing(S.PROCESSING), timeout, NOW)
    assert isinstance(decision, Keep) and decision.refusal is None
    assert decision.events[-1].detail == {
        "expected": "queued",
        "found": "processing",
        "wanted": "timed_out",
    }


def test_a_change_with_no_legal_path_is_recorded_as_ignored() -> None:
    back = Ask(Change("api", S.QUEUED))
    assert decide(Standing(S.PROCESSING), back, NOW) == Keep(
        (
            Note(
                "ignored",
                "api",
                {"expected": "processing", "found": "processing", "wanted": "queued"},
            ),
        )
    )
