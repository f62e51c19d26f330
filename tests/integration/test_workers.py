"""The submitter and the poller against the simulator over real HTTP, on a real database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import pytest

from service.domain.states import JobStatus
from service.provider.client import ModelsLabClient
from service.provider.simulator import Simulator, SimulatorConfig
from service.runtime.polling import poll_job
from service.runtime.services import Runtime
from service.store import Store
from service.workers.runner import Workers
from service.workers.submitter import submit_job
from tests.conftest import make_settings, now
from tests.factories import client_id, queued_job
from tests.live import BlackHole, LiveServer, free_port


@dataclass
class Rig:
    ctx: Runtime
    sim: Simulator
    client: int


async def make_rig(
    store: Store,
    db_url: str,
    live: LiveServer,
    key: str = "k",
    base: str | None = None,
    **sim: object,
) -> Rig:
    simulator = Simulator(SimulatorConfig(public_url=live.url, api_key="k", **sim))  # type: ignore[arg-type]
    await live.start(simulator.app)
    settings = make_settings(
        db_url,
        eta_grace_seconds=0.2,
        lease_seconds=10,
        provider_timeout_seconds=2,
        retry_backoff_base_seconds=1,
        poll_backoff_base_seconds=0.2,
    )
    provider = ModelsLabClient(base or f"{live.url}/api/v6", key, timeout_seconds=2)
    ctx = Runtime(settings=settings, store=store, provider=provider, webhook_secret="s")
    return Rig(ctx, simulator, await client_id(store))


@pytest.fixture
async def rig(store: Store, db_url: str, live: LiveServer) -> AsyncIterator[Rig]:
    r = await make_rig(store, db_url, live, eta_seconds=0.3)
    yield r
    await r.ctx.provider.aclose()


async def claim_one_for_submit(store: Store, owner: str = "w"):  # type: ignore[no-untyped-def]
    t = now()
    [job] = await store.jobs.claim_for_submit(t, owner, t + timedelta(seconds=10), 1)
    return job


async def claim_for_poll(store: Store, owner: str = "w"):  # type: ignore[no-untyped-def]
    [job] = await store.jobs.list_jobs(None, None, None, 1)
    t = now()
    claimed = await store.jobs.claim_for_refresh(job.id, t, owner, t + timedelta(seconds=10))
    assert claimed is not None
    return claimed


async def test_submit_moves_a_job_to_processing_with_its_first_poll_after_eta(
    rig: Rig, store: Store
) -> None:
    job = await queued_job(store, rig.client, now(), width=256, height=192)
    claimed = await claim_one_for_submit(store)
    await submit_job(rig.ctx, claimed, "w")
    fresh = await store.jobs.get_job_by_id(job.id)
    assert fresh is not None and fresh.status is JobStatus.PROCESSING
    assert fresh.provider_id and fresh.fetch_result and fresh.submitted_at
    assert fresh.lease_owner is None
    assert fresh.eta_at == fresh.submitted_at + timedelta(seconds=0.3)
    assert fresh.next_poll_at == fresh.submitted_at + timedelta(seconds=0.5)
    assert rig.sim.submits[str(job.id)] == 1  # the integer track_id reached the provider


async def test_poll_before_ready_reschedules_and_after_ready_succeeds(
    rig: Rig, store: Store
) -> None:
    await queued_job(store, rig.client, now())
    await submit_job(rig.ctx, await claim_one_for_submit(store), "w")
    early = await poll_job(rig.ctx, await claim_for_poll(store), owner="w")
    assert early.job is not None
    assert early.job.status is JobStatus.PROCESSING and early.job.polls == 1
    assert early.job.next_poll_at is not None and early.job.next_poll_at > now()
    await asyncio.sleep(0.35)
    done = await poll_job(rig.ctx, await claim_for_poll(store), owner="w")
    assert done.job is not None and done.job.status is JobStatus.SUCCEEDED
    assert done.job.output and done.job.polls == 2


async def test_a_provider_verdict_fails_the_job(
    store: Store, db_url: str, live: LiveServer
) -> None:
    rig = await make_rig(store, db_url, live, key="")  # the simulator answers 401 without a key
    try:
        job = await queued_job(store, rig.client, now())
        await submit_job(rig.ctx, await claim_one_for_submit(store), "w")
        fresh = await store.jobs.get_job_by_id(job.id)
        assert fresh is not None and fresh.status is JobStatus.FAILED
        assert (fresh.error_code, fresh.error_message) == ("provider_rejected", "Invalid API key")
    finally:
        await rig.ctx.provider.aclose()


async def test_a_provider_outage_leaves_the_job_queued_for_a_retry(
    store: Store, db_url: str, live: LiveServer
) -> None:
    rig = await make_rig(store, db_url, live, base=f"http://127.0.0.1:{free_port()}/api/v6")
    try:
        job = await queued_job(store, rig.client, now())
        await submit_job(rig.ctx, await claim_one_for_submit(store), "w")
        fresh = await store.jobs.get_job_by_id(job.id)
        assert fresh is not None and fresh.status is JobStatus.QUEUED
        assert (
            fresh.lease_owner is None
            and fresh.next_poll_at is not None
            and fresh.next_poll_at > now()
        )
        kinds = [e.kind for e in await store.jobs.list_events(job.id)]
        assert kinds[-1] == "submit_error"
    finally:
        await rig.ctx.provider.aclose()


async def test_a_failed_generation_fails_the_job(
    store: Store, db_url: str, live: LiveServer
) -> None:
    rig = await make_rig(store, db_url, live, eta_seconds=0.0, failure_rate=1.0)
    try:
        await queued_job(store, rig.client, now())
        await submit_job(rig.ctx, await claim_one_for_submit(store), "w")
        done = await poll_job(rig.ctx, await claim_for_poll(store), owner="w")
        assert done.job is not None and done.job.status is JobStatus.FAILED
        assert done.job.error_message == "Simulated generation failure"
    finally:
        await rig.ctx.provider.aclose()


async def test_past_the_timeout_a_job_ends_timed_out_without_a_poll(rig: Rig, store: Store) -> None:
    long_ago = now() - timedelta(hours=2)
    await queued_job(store, rig.client, long_ago)
    await submit_job(rig.ctx, await claim_one_for_submit(store), "w")
    [job] = await store.jobs.list_jobs(None, None, None, 1)
    assert job.status is JobStatus.TIMED_OUT and job.error_code == "timed_out"
    assert sum(rig.sim.submits.values()) == 0


async def test_the_runner_submits_a_new_job_at_once_and_sweeps_it_done(
    rig: Rig, store: Store
) -> None:
    workers = Workers(rig.ctx)
    rig.ctx.settings = rig.ctx.settings.model_copy(
        update={"sweep_interval_seconds": 0.1, "submit_idle_seconds": 30}
    )
    await workers.start()
    try:
        await asyncio.sleep(0.05)
        job = await queued_job(store, rig.client, now())
        workers.wake()  # the idle tick is 30 s: only the wake-up can submit it this fast
        for _ in range(100):
            fresh = await store.jobs.get_job_by_id(job.id)
            assert fresh is not None
            if fresh.status is JobStatus.SUCCEEDED:
                break
            await asyncio.sleep(0.05)
        assert fresh.status is JobStatus.SUCCEEDED and fresh.polls >= 1  # no webhook server here
    finally:
        await workers.stop(timeout=5)


async def test_the_runner_survives_a_dead_provider_and_hands_back_claims(
    store: Store, db_url: str, live: LiveServer
) -> None:
    rig = await make_rig(store, db_url, live, base=f"http://127.0.0.1:{free_port()}/api/v6")
    workers = Workers(rig.ctx)
    await workers.start()
    try:
        job = await queued_job(store, rig.client, now())
        workers.wake()
        for _ in range(100):
            events = [e.kind for e in await store.jobs.list_events(job.id)]
            if "submit_error" in events:
                break
            await asyncio.sleep(0.02)
        assert "submit_error" in events
        assert all(not t.done() for t in workers._tasks)  # the loops are still alive
    finally:
        await workers.stop(timeout=5)
        await rig.ctx.provider.aclose()
    fresh = await store.jobs.get_job_by_id(job.id)
    assert fresh is not None and fresh.status is JobStatus.QUEUED and fresh.lease_owner is None


async def test_one_resubmission_after_a_crashed_submit(rig: Rig, store: Store) -> None:
    job = await queued_job(store, rig.client, now())
    t = now()
    await store.jobs.claim_for_submit(
        t, "dead", t + timedelta(seconds=1), 1
    )  # then the worker dies
    later = t + timedelta(seconds=2)
    [claimed] = await store.jobs.claim_for_submit(later, "w", later + timedelta(seconds=10), 1)
    assert claimed.crashed_submits == 1
    await submit_job(rig.ctx, claimed, "w")
    fresh = await store.jobs.get_job_by_id(job.id)
    assert fresh is not None and fresh.status is JobStatus.PROCESSING
    assert "resubmit_after_crash" in [e.kind for e in await store.jobs.list_events(job.id)]
    assert rig.sim.accepted[str(job.id)] == 1


async def test_never_a_second_resubmission_after_crashes(rig: Rig, store: Store) -> None:
    job = await queued_job(store, rig.client, now())
    t = now()
    for i in range(2):  # two workers die holding the claim
        t = t + timedelta(seconds=2)
        await store.jobs.claim_for_submit(t, f"dead{i}", t + timedelta(seconds=1), 1)
    t = t + timedelta(seconds=2)
    [claimed] = await store.jobs.claim_for_submit(t, "w", t + timedelta(seconds=10), 1)
    assert claimed.crashed_submits == 2
    await submit_job(rig.ctx, claimed, "w")
    assert rig.sim.submits[str(job.id)] == 0  # not sent a third time
    fresh = await store.jobs.get_job_by_id(job.id)
    assert fresh is not None and fresh.status is JobStatus.PROCESSING
    assert fresh.next_poll_at == fresh.created_at + timedelta(
        seconds=rig.ctx.settings.job_timeout_seconds
    )
    assert [
        e.detail["reason"]
        for e in await store.jobs.list_events(job.id)
        if e.kind == "submit_skipped"
    ] == ["crashed_twice"]


async def test_stop_leaves_an_interrupted_submit_claimed(
    store: Store, db_url: str, live: LiveServer
) -> None:
    """A submit cut off by shutdown may have reached the provider: its claim is not handed
    back, so the next claim counts it as crashed."""
    rig = await make_rig(store, db_url, live, eta_seconds=0.2)
    hang = BlackHole()
    await hang.start()
    rig.ctx.provider = ModelsLabClient(f"{hang.url}/api/v6", "k", timeout_seconds=20)
    workers = Workers(rig.ctx)
    try:
        await workers.start()
        job = await queued_job(store, rig.client, now())
        workers.wake()
        await asyncio.sleep(0.3)
        await workers.stop(timeout=0.2)
    finally:
        await rig.ctx.provider.aclose()
        await hang.stop()
    fresh = await store.jobs.get_job_by_id(job.id)
    assert (
        fresh is not None
        and fresh.status is JobStatus.QUEUED
        and fresh.lease_owner == workers.owner
    )
