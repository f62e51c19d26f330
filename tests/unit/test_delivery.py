"""When the webhooks look lost, and what a submission's first poll then takes."""

from __future__ import annotations

from service.domain.changes import Policy
from service.domain.delivery import submit_policy, webhooks_lost


def test_every_result_by_poll_with_enough_of_them_means_lost() -> None:
    assert webhooks_lost(by_webhook=0, by_poll=5)
    assert not webhooks_lost(by_webhook=0, by_poll=4)  # too few to tell
    assert not webhooks_lost(by_webhook=1, by_poll=500)  # some still arrive
    assert not webhooks_lost(by_webhook=0, by_poll=0)


def test_while_lost_a_first_poll_takes_no_grace() -> None:
    policy = Policy(eta_grace_seconds=10.0)
    assert submit_policy(policy, lost=True).eta_grace_seconds == 0.0
    assert submit_policy(policy, lost=True).job_timeout_seconds == policy.job_timeout_seconds
    assert submit_policy(policy, lost=False) is policy
