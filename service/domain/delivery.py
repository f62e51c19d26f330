"""Whether ModelsLab's webhooks reach this service, read from how results came in lately,
and what the sweeper does about it: when every recent result came by poll, a first poll goes
at the job's eta rather than eta + grace (a lost webhook then costs a sweep, not the grace).
Pure code."""

from __future__ import annotations

from dataclasses import replace

from service.domain.changes import Policy

WINDOW_SECONDS = 300.0  # how far back results are counted
MIN_POLLED = 5  # results by poll, with none by webhook, that say the webhooks are lost


def webhooks_lost(by_webhook: float, by_poll: float) -> bool:
    """Every result of the window came by poll, and there were enough to tell."""
    return by_poll >= MIN_POLLED and by_webhook == 0


def submit_policy(policy: Policy, lost: bool) -> Policy:
    """The timing a submission's first poll takes: no grace while webhooks are lost."""
    return replace(policy, eta_grace_seconds=0.0) if lost else policy
