"""Outages end cleanly: the database, the disk and the provider go away and come back. The
database ones run on a PostgreSQL cluster of the test's own (tests/pgcluster.py), never the
shared one; the disk one on a small tmpfs; the provider one on the simulator over HTTP."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import io
import logging
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from starlette.applications import Starlette

from service.app import create_app
from service.domain.states import JobStatus
from service.domain.tokens import make_token
from service.provider.simulator import Simulator, SimulatorConfig
from service.store import Store
from service.store.health import HEALTH
from service.store.migrate import upgrade
from tests.conftest import make_settings
from tests.e2e.conftest import FAST
from tests.live import LiveServer
from tests.pgcluster import PrivateCluster

pytestmark = pytest.mark.e2e


def png64() -> str:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (1, 2, 3)).save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode()


BODY = {"image": png64(), "width": 64, "height": 64}


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivateCluster]:
    c = PrivateCluster().create()
    c.start()
    try:
        yield c
    finally:
        c.remove()


@dataclass
class Rig:
    client: httpx.AsyncClient
    app: Starlette
    headers: dict[str, str]
    simulator: Simulator
    provider: LiveServer
    url: str

    @property
    def store(self) -> Store:
        store: Store = self.app.state.ctx.store
        return store

    async def create(self, n: int) -> list[dict[str, Any]]:
        """As a client does: a 503 is retried after its Retry-After (here, sooner)."""
        jobs = []
        for _ in range(n):
            for _ in range(200):
                r = await self.client.post("/v1/jobs", json=BODY, headers=self.headers)
                if r.status_code != 503:
                    break
                assert r.headers["retry-after"]
                await asyncio.sleep(0.05)
            assert r.status_code == 202, r.text
            jobs.append(r.json())
        return jobs

    async def settle(self, jobs: list[dict[str, Any]], seconds: float = 30) -> list[Any]:
        deadline = time.monotonic() + seconds
        while True:
            try:
                found = [await self.store.jobs.get_job(j["id"]) for j in jobs]
            except Exception:  # the database may still be coming back
                await asyncio.sleep(0.05)
                continue
            if all(j is not None and j.status.value not in ("queued", "processing") for j in found):
                return found
            if time.monotonic() > deadline:
                raise AssertionError([(j.public_id, j.status) for j in found if j])
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running(
    url: str, live: LiveServer, workers: bool = True, **overrides: object
) -> AsyncIterator[Rig]:
    provider = LiveServer()
    simulator = Simulator(
        SimulatorConfig(
            public_url=provider.url, eta_seconds=0.3, api_key="test-key", allow_private_urls=True
        )
    )
    await provider.start(simulator.app)
    values: dict[str, object] = {
        **FAST,
        "modelslab_api_key": "test-key",
        "modelslab_base_url": f"{provider.url}/api/v6",
        "public_base_url": live.url,
        "eta_grace_seconds": 5,
    }
    values.update(overrides)
    app = create_app(
        make_settings(url, host="127.0.0.1", port=live.port, **values), run_workers=workers
    )
    await live.start(app)
    ctx = app.state.ctx
    raw, _ = await ctx.store.clients.create_key(
        "team-a", ["jobs:write", "jobs:read"], ctx.runtime.clock()
    )
    client = httpx.AsyncClient(base_url=live.url, timeout=10)
    try:
        yield Rig(client, app, {"Authorization": f"Bearer {raw}"}, simulator, provider, url)
    finally:
        await client.aclose()
        await live.stop()
        await provider.stop()


@pytest.fixture
def outage_db(cluster: PrivateCluster) -> str:
    name = cluster.new_database()
    url = cluster.url_for(name)
    upgrade(url)
    return url


def one_generation_each(rig: Rig, jobs: list[Any]) -> None:
    assert all(j.status is JobStatus.SUCCEEDED for j in jobs), [j.status for j in jobs]
    assert all(rig.simulator.accepted[str(j.id)] == 1 for j in jobs), dict(rig.simulator.accepted)


# --- 1. no second generation from a local fault ------------------------------------------


@pytest.mark.postgresql
@pytest.mark.parametrize("fault", ["killed connections", "restart"])
async def test_a_database_fault_while_recording_the_reply_costs_no_second_generation(
    cluster: PrivateCluster,
    outage_db: str,
    live: LiveServer,
    monkeypatch: pytest.MonkeyPatch,
    fault: str,
) -> None:
    """At the very moment the submitter records ModelsLab's answer, every connection to the
    database dies (or the database restarts): the write is retried within the claim, and
    no job is sent twice."""
    database = outage_db.rsplit("/", 1)[1]
    async with running(outage_db, live) as rig:
        original = rig.store.changes.apply_change
        struck: set[int] = set()

        async def strike_then_apply(job: Any, change: Any, now: Any, owner: Any = None) -> Any:
            submitted = change.source == "submitter" and change.target is JobStatus.PROCESSING
            if submitted and job.id not in struck:
                struck.add(job.id)
                if fault == "restart":
                    await asyncio.to_thread(cluster.restart)
                else:
                    await asyncio.to_thread(cluster.terminate_backends, database)
            return await original(job, change, now, owner)

        monkeypatch.setattr(rig.store.changes, "apply_change", strike_then_apply)
        jobs = await rig.create(4)
        done = await rig.settle(jobs, seconds=60)
    assert len(struck) == 4
    one_generation_each(rig, done)
    assert all(j.crashed_submits == 0 for j in done)


# --- 4. an outage is a 503, and a few log lines ----------------------------------------------


@pytest.mark.postgresql
async def test_while_postgresql_is_stopped_requests_get_503_and_logs_stay_short(
    cluster: PrivateCluster,
    outage_db: str,
    live: LiveServer,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.INFO)
    HEALTH.interval_seconds = 10.0
    monkeypatch.setattr(HEALTH, "stable_seconds", 0.5)  # well this long: said once
    async with running(outage_db, live) as rig:
        [job] = await rig.create(1)
        await rig.settle([job])
        answers: list[httpx.Response] = []
        stop_at = len(caplog.records)
        await asyncio.to_thread(cluster.stop)
        try:
            started = time.monotonic()
            while time.monotonic() - started < 3:
                for call in (
                    rig.client.post("/v1/jobs", json=BODY, headers=rig.headers),
                    rig.client.get(f"/v1/jobs/{job['id']}", headers=rig.headers),
                    rig.client.post(
                        f"/webhooks/modelslab/{make_token('test-webhook-secret', job['track_id'])}",
                        json={"status": "processing"},
                    ),
                    rig.client.get("/readyz"),
                    rig.client.get("/metrics"),  # a scrape logs no traceback either
                ):
                    answers.append(await call)
                await asyncio.sleep(0.05)
            during = caplog.records[stop_at:]
        finally:
            await asyncio.to_thread(cluster.start)
        for _ in range(200):  # until the database answers, and has for a while
            r = await rig.client.get(f"/v1/jobs/{job['id']}", headers=rig.headers)
            if r.status_code == 200 and any(
                "database available again" in m.getMessage() for m in caplog.records[stop_at:]
            ):
                break
            await asyncio.sleep(0.05)
        assert r.status_code == 200
        assert (await rig.client.get("/readyz")).status_code == 200
        after = [r.getMessage() for r in caplog.records[stop_at:]]
    refused = [
        a
        for a in answers
        if a.request.url.path not in ("/readyz", "/metrics") and "webhooks" not in str(a.url)
    ]
    scrapes = [a for a in answers if a.request.url.path == "/metrics"]
    assert scrapes and all(
        a.status_code == 200 and "outpaint_database_up 0.0" in a.text for a in scrapes
    )
    assert refused and all(a.status_code == 503 for a in refused), {a.status_code for a in refused}
    assert all(
        a.headers["retry-after"] and a.headers["content-type"] == "application/problem+json"
        for a in refused
    )
    assert all(a.status_code == 503 for a in answers if "webhooks" in str(a.url))
    assert all(a.status_code == 503 for a in answers if a.request.url.path == "/readyz")
    loud = [r for r in during if r.levelno >= logging.WARNING]
    assert not [r for r in loud if r.exc_info or r.exc_text], "no traceback during an outage"
    assert len(answers) > 40 and len(loud) <= 12, [r.getMessage() for r in loud]
    assert any("database available again" in m for m in after)


# --- 3. readiness tells the truth ------------------------------------------------------------


@pytest.mark.postgresql
async def test_after_a_restart_the_first_requests_find_fresh_connections(
    cluster: PrivateCluster, outage_db: str, live: LiveServer
) -> None:
    """Connections that died with the server are pinged before they are used again (the
    LISTEN connection's loss raised the suspicion): no false 503 once it is back."""
    async with running(outage_db, live, workers=False) as rig:
        job = (await rig.client.post("/v1/jobs", json=BODY, headers=rig.headers)).json()
        url = f"/v1/jobs/{job['id']}"
        warm = [rig.client.get(url, headers=rig.headers) for _ in range(12)]
        warm += [rig.client.get("/readyz") for _ in range(4)]
        assert all(r.status_code == 200 for r in await asyncio.gather(*warm))
        await asyncio.to_thread(cluster.restart)  # returns once it accepts connections
        first = await rig.client.get("/readyz")
        assert first.status_code == 200, first.text
        after = await asyncio.gather(*(rig.client.get(url, headers=rig.headers) for _ in range(12)))
        assert [r.status_code for r in after] == [200] * 12


@pytest.mark.postgresql
async def test_readiness_fails_while_postgresql_is_away_and_recovers(
    cluster: PrivateCluster, outage_db: str, live: LiveServer
) -> None:
    async with running(outage_db, live, workers=False) as rig:
        assert (await rig.client.get("/readyz")).json()["checks"]["writes"] == "ok"
        await asyncio.to_thread(cluster.stop)
        try:
            r = await rig.client.get("/readyz")
            assert r.status_code == 503 and r.json()["checks"]["database"].startswith("unreachable")
            assert (await rig.client.get("/healthz")).status_code == 200  # alive, not ready
        finally:
            await asyncio.to_thread(cluster.start)
        for _ in range(100):
            if (await rig.client.get("/readyz")).status_code == 200:
                break
            await asyncio.sleep(0.05)
        assert (await rig.client.get("/readyz")).status_code == 200


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs (the test runs as root, as CI does)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    with filler.open("wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


async def test_a_full_disk_is_not_ready_answers_503_and_recovers(
    small_disk: Path, live: LiveServer
) -> None:
    url = f"sqlite+aiosqlite:///{small_disk / 'service.db'}"
    await asyncio.to_thread(upgrade, url)
    async with running(url, live, workers=False) as rig:
        assert (await rig.client.get("/readyz")).status_code == 200
        filler = fill(small_disk)
        try:
            r = await rig.client.get("/readyz")
            assert r.status_code == 503 and r.json()["checks"]["writes"].startswith("failing")
            created = [
                await rig.client.post("/v1/jobs", json=BODY, headers=rig.headers) for _ in range(5)
            ]
            assert all(c.status_code == 503 and c.headers["retry-after"] for c in created)
            assert (await rig.client.get("/healthz")).status_code == 200
        finally:
            with contextlib.suppress(OSError):
                filler.unlink()
        assert (await rig.client.get("/readyz")).status_code == 200
        r = await rig.client.post("/v1/jobs", json=BODY, headers=rig.headers)
        assert r.status_code == 202


# --- 2. the provider's health is one state ----------------------------------------------------


async def test_after_a_provider_outage_the_backlog_goes_at_once_and_no_job_fails(
    db_url: str, live: LiveServer
) -> None:
    """ModelsLab vanishes with jobs in flight and more arriving; the circuit opens (nothing
    is sent but the probe); when it is back the first queued job is submitted within a few
    seconds, and every job succeeds."""
    async with running(
        db_url,
        live,
        provider_max_inflight=3,
        provider_circuit_threshold=2,
        provider_circuit_open_seconds=0.3,
        provider_circuit_max_open_seconds=1.0,
        retry_backoff_base_seconds=0.2,
        retry_backoff_max_seconds=30,
        poll_backoff_base_seconds=0.2,
        poll_backoff_max_seconds=30,
        eta_grace_seconds=0.5,
        sim_eta_seconds=0.3,
        provider_timeout_seconds=1,
        lease_seconds=5,
    ) as rig:
        # Results only by polls, so the outage meets the sweeper too.
        rig.simulator.config = SimulatorConfig(
            **{**rig.simulator.config.__dict__, "webhook_drop_rate": 1.0}
        )
        first = await rig.create(3)  # in flight when the provider goes
        await asyncio.sleep(0.2)
        await rig.provider.stop()
        try:
            await asyncio.sleep(1.5)
            during = await rig.create(4)  # arrive during the outage
            await asyncio.sleep(2.0)
            assert rig.app.state.ctx.runtime.provider.circuit.state.value in ("open", "half_open")
            ops, _ = await rig.store.clients.create_key(
                "ops", ["ops:read"], rig.app.state.ctx.runtime.clock()
            )
            stats = await rig.client.get("/v1/stats", headers={"Authorization": f"Bearer {ops}"})
        finally:
            await rig.provider.start(rig.simulator.app)
        back = time.monotonic()
        submitted = None
        while time.monotonic() - back < 10:
            job = await rig.store.jobs.get_job(during[0]["id"])
            if job is not None and job.submitted_at is not None:
                submitted = time.monotonic() - back
                break
            await asyncio.sleep(0.05)
        done = await rig.settle(first + during, seconds=30)
    assert submitted is not None and submitted < 5, submitted
    assert all(j.status is JobStatus.SUCCEEDED for j in done), [j.status for j in done]
    assert stats.status_code == 200 and stats.json()["provider"]["state"] in ("open", "half_open")
