"""The state machine of the public contract (docs/contract.md)."""

import pytest

from service.domain.outcomes import path_to
from service.domain.states import (
    TERMINAL,
    JobStatus,
    can_transition,
)

S = JobStatus


@pytest.mark.parametrize(
    ("src", "dst"),
    [
        (S.QUEUED, S.PROCESSING),
        (S.QUEUED, S.CANCELED),
        (S.QUEUED, S.FAILED),
        (S.PROCESSING, S.SUCCEEDED),
        (S.PROCESSING, S.FAILED),
        (S.PROCESSING, S.TIMED_OUT),
        (S.PROCESSING, S.CANCELED),
    ],
)
def test_contract_transitions_are_allowed(src: JobStatus, dst: JobStatus) -> None:
    assert can_transition(src, dst)


@pytest.mark.parametrize("terminal", sorted(TERMINAL))
@pytest.mark.parametrize("dst", list(JobStatus))
def test_a_terminal_state_never_changes(terminal: JobStatus, dst: JobStatus) -> None:
    assert not can_transition(terminal, dst)


def test_processing_never_goes_back_to_queued() -> None:
    assert not can_transition(S.PROCESSING, S.QUEUED)


def test_a_queued_job_reported_done_passes_through_processing() -> None:
    assert path_to(S.QUEUED, S.SUCCEEDED) == [S.PROCESSING, S.SUCCEEDED]
    assert path_to(S.PROCESSING, S.SUCCEEDED) == [S.SUCCEEDED]
    assert path_to(S.QUEUED, S.FAILED) == [S.FAILED]


def test_no_path_out_of_a_terminal_state() -> None:
    assert path_to(S.SUCCEEDED, S.FAILED) == []
    assert path_to(S.CANCELED, S.SUCCEEDED) == []
