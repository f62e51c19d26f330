"""A new job is submitted at once, not at the next idle tick: by an in-process signal on
SQLite, and by LISTEN/NOTIFY from another replica on PostgreSQL."""

from __future__ import annotations

import asyncio

import httpx

from service.app import create_app
from service.domain.states import JobStatus
from service.provider.client import ModelsLabClient
from service.provider.simulator import Simulator, SimulatorConfig
from service.runtime.services import Runtime
from service.store import Store
from service.workers.runner import Workers
from tests.conftest import make_settings
from tests.live import LiveServer

BODY = {"image": "https://example.invalid/in.png"}
IDLE = 30.0  # the fallback tick: far longer than this test may wait


async def test_a_job_created_elsewhere_is_submitted_without_waiting_for_the_tick(
    db_url: str, store: Store, live: LiveServer
) -> None:
    simulator = Simulator(SimulatorConfig(public_url=live.url, eta_seconds=5, api_key="k"))
    await live.start(simulator.app)
    settings = make_settings(db_url, submit_idle_seconds=IDLE, sweep_interval_seconds=IDLE)
    sqlite = settings.is_sqlite
    # On SQLite the API and the workers share a process; on PostgreSQL the API replica
    # runs no workers and another replica's workers must hear about the job.
    api_app = create_app(settings, run_workers=sqlite)
    provider = ModelsLabClient(f"{live.url}/api/v6", "k")
    workers = None
    if not sqlite:
        workers = Workers(Runtime(settings, Store(store.db), provider, "s"))
        await workers.start()
        assert workers._listener is not None
        await asyncio.wait_for(workers._listener.connected.wait(), 5)
        await asyncio.sleep(0.1)  # let the initial catch-up tick pass
    try:
        async with api_app.router.lifespan_context(api_app):
            if sqlite:
                api_app.state.ctx.runtime.provider = provider
            await asyncio.sleep(0.1)
            raw, _ = await store.clients.create_key(
                "a", ["jobs:write", "jobs:read"], api_app.state.ctx.runtime.clock()
            )
            transport = httpx.ASGITransport(app=api_app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                created = await client.post(
                    "/v1/jobs", json=BODY, headers={"Authorization": f"Bearer {raw}"}
                )
            job_id = created.json()["track_id"]
            loop = asyncio.get_running_loop()
            started = loop.time()
            while loop.time() - started < 5:
                job = await store.jobs.get_job_by_id(job_id)
                assert job is not None
                if job.status is JobStatus.PROCESSING:
                    break
                await asyncio.sleep(0.01)
            assert job.status is JobStatus.PROCESSING and job.submitted_at is not None
            lag = (job.submitted_at - job.created_at).total_seconds()
            print(
                f"created → submitted in {lag * 1000:.0f} ms ({'in-process' if sqlite else 'NOTIFY'})"
            )
            assert lag < IDLE / 6
    finally:
        if workers is not None:
            await workers.stop(timeout=2)
        await provider.aclose()
