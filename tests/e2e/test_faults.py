"""Every fault of the real provider, through real HTTP: each job ends in the state the
simulator decided, reached by exactly one transition, with everything else recorded."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.e2e.conftest import Running, Start

pytestmark = pytest.mark.e2e

BODY = {"image": "https://example.invalid/in.png", "prompt": "fog", "width": 128, "height": 128}
TERMINAL = {"succeeded", "failed", "timed_out", "canceled"}


async def run_jobs(svc: Running, n: int) -> list[dict[str, Any]]:
    ids = [(await svc.create(BODY))["id"] for _ in range(n)]
    return await svc.wait_all(ids)


async def settle(svc: Running, jobs: list[dict[str, Any]], webhooks: int) -> list[dict[str, Any]]:
    """Wait for the webhooks still on their way after the job finished."""
    for _ in range(60):
        jobs = [await svc.get(j["id"]) for j in jobs]
        if all(j["webhooks"] >= webhooks for j in jobs):
            break
        await asyncio.sleep(0.05)
    return jobs


async def assert_exactly_once(svc: Running, job: dict[str, Any]) -> list[dict[str, Any]]:
    events = await svc.events(job["id"])
    into_terminal = [e for e in events if e["kind"] == "transition" and e["to_status"] in TERMINAL]
    assert len(into_terminal) == 1, (job["id"], into_terminal)
    assert into_terminal[0]["to_status"] == job["status"]
    expected = {"success": "succeeded", "failed": "failed"}[
        svc.simulator.outcomes[str(job["track_id"])]
    ]
    assert job["status"] == expected, job
    return events


async def test_duplicate_webhooks_make_one_transition(service: Start) -> None:
    svc = await service(sim_eta_seconds=0.2, eta_grace_seconds=30, sim_webhook_duplicate_rate=1.0)
    for job in await settle(svc, await run_jobs(svc, 4), 2):
        await assert_exactly_once(svc, job)
        assert job["webhooks"] == 2


async def test_a_stale_webhook_after_the_final_one_changes_nothing(service: Start) -> None:
    svc = await service(sim_eta_seconds=0.2, eta_grace_seconds=30, sim_webhook_reorder_rate=1.0)
    for job in await settle(svc, await run_jobs(svc, 3), 2):
        assert job["status"] == "succeeded" and job["webhooks"] == 2
        await assert_exactly_once(svc, job)


async def test_late_webhooks_race_the_sweeper_and_one_wins(service: Start) -> None:
    svc = await service(sim_eta_seconds=0.2, eta_grace_seconds=0.1, sim_webhook_delay_seconds=0.4)
    for job in await run_jobs(svc, 4):
        await assert_exactly_once(svc, job)


async def test_failed_generations_fail_with_the_providers_message(service: Start) -> None:
    svc = await service(
        sim_eta_seconds=0.2, eta_grace_seconds=0.2, sim_failure_rate=0.5, sim_seed=3
    )
    jobs = await run_jobs(svc, 6)
    assert {j["status"] for j in jobs} == {"succeeded", "failed"}
    for job in jobs:
        await assert_exactly_once(svc, job)
        if job["status"] == "failed":
            assert job["error"] == {
                "code": "provider_error",
                "message": "Simulated generation failure",
            }


async def test_a_full_provider_queue_answers_429_and_jobs_wait_queued(service: Start) -> None:
    svc = await service(
        sim_eta_seconds=0.3, eta_grace_seconds=30, sim_queue_limit=2, provider_max_inflight=10
    )
    jobs = await run_jobs(svc, 5)
    assert all(j["status"] == "succeeded" for j in jobs)
    errors = []
    for job in jobs:
        events = await assert_exactly_once(svc, job)
        errors += [e["detail"] for e in events if e["kind"] == "submit_error"]
    assert errors and all(e["kind"] == "rate_limited" for e in errors)
    assert svc.simulator.peak_unfinished <= 2


async def test_provider_5xx_is_retried_until_the_job_succeeds(service: Start) -> None:
    svc = await service(
        sim_eta_seconds=0.1,
        eta_grace_seconds=0.1,
        sim_error_rate=0.4,
        sim_seed=11,
        sim_webhook_drop_rate=1.0,
    )
    jobs = await run_jobs(svc, 10)
    errors: list[str] = []
    for job in jobs:
        events = await assert_exactly_once(svc, job)
        errors += [
            e["detail"]["kind"] for e in events if e["kind"] in ("submit_error", "poll_error")
        ]
    # Every 5xx the provider gave was seen, retried, and recorded as such; with 10 jobs at
    # a 40 % error rate, a run without any is vanishingly rare (call order, and so which
    # calls fail, varies from run to run).
    assert svc.simulator.errors_sent > 0
    assert len(errors) == svc.simulator.errors_sent and set(errors) == {"server_error"}


async def test_capacity_caps_jobs_unfinished_at_the_provider(service: Start) -> None:
    svc = await service(sim_eta_seconds=0.2, eta_grace_seconds=0.1, provider_max_inflight=2)
    jobs = await run_jobs(svc, 6)
    assert all(j["status"] == "succeeded" for j in jobs)
    assert svc.simulator.peak_unfinished <= 2
    # Oldest first: submission order follows creation order.
    submitted = sorted(jobs, key=lambda j: j["submitted_at"])
    assert [j["track_id"] for j in submitted] == sorted(j["track_id"] for j in jobs)


async def test_every_fault_at_once(service: Start) -> None:
    svc = await service(
        sim_eta_seconds=0.2,
        eta_grace_seconds=0.2,
        sim_webhook_drop_rate=0.3,
        sim_webhook_duplicate_rate=0.3,
        sim_webhook_reorder_rate=0.3,
        sim_webhook_delay_seconds=0.2,
        sim_failure_rate=0.2,
        sim_queue_limit=4,
        sim_error_rate=0.2,
        sim_seed=5,
        provider_max_inflight=6,
    )
    jobs = await run_jobs(svc, 20)
    for job in jobs:
        await assert_exactly_once(svc, job)
    assert max(svc.simulator.accepted.values()) == 1  # no crash here: one generation each
    metrics = (await svc.client.get("/metrics")).text
    for family in (
        "outpaint_webhooks_received_total",
        "outpaint_provider_errors_total",
        "outpaint_polls_total",
    ):
        assert family in metrics
