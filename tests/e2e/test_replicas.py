"""Three replicas on one PostgreSQL database, every webhook lost, slow fetches, one
replica SIGKILLed mid-run: every job succeeds through the other sweepers, and the
simulator never sees two fetches of one job overlap."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.live import free_port
from tests.processes import STANDALONE_SIM, Proc, clean_env, wait_healthy

pytestmark = [pytest.mark.e2e, pytest.mark.postgresql]

BODY = {"image": "https://example.invalid/in.png", "prompt": "dunes", "width": 128, "height": 128}
JOBS = 36


async def test_three_replicas_one_killed_every_job_succeeds_without_overlapping_fetches(
    db_url: str, tmp_path: Path
) -> None:
    assert db_url.startswith("postgresql")
    sim_port = free_port()
    ports = [free_port() for _ in range(3)]
    base_env = clean_env()
    sim = Proc(
        ["simulator", "--port", str(sim_port)],
        {
            **base_env,
            **STANDALONE_SIM,
            "SIM_ETA_SECONDS": "0.5",
            "SIM_WEBHOOK_DROP_RATE": "1",
            "SIM_FETCH_DELAY_SECONDS": "0.3",
        },
        tmp_path / "sim.log",
    )
    env = {
        **base_env,
        "DATABASE_URL": db_url,
        "MODELSLAB_API_KEY": "test-key",
        "MODELSLAB_BASE_URL": f"http://127.0.0.1:{sim_port}/api/v6",
        "WEBHOOK_SECRET": "replicas",
        "LEASE_SECONDS": "2",
        "PROVIDER_TIMEOUT_SECONDS": "1",
        "SWEEP_INTERVAL_SECONDS": "0.1",
        "SUBMIT_IDLE_SECONDS": "0.5",
        "ETA_GRACE_SECONDS": "0.05",
        "POLL_BACKOFF_BASE_SECONDS": "0.1",
        "POLL_BACKOFF_MAX_SECONDS": "0.4",
        "POLL_RATE_PER_SECOND": "200",
        "PROVIDER_MAX_INFLIGHT": "100",
    }
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "service",
            "keys",
            "create",
            "--name",
            "r",
            "--scopes",
            "jobs:write,jobs:read",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    headers = {"Authorization": f"Bearer {made.stdout.split()[-1]}"}
    replicas = [
        Proc(
            ["serve"],
            {**env, "PORT": str(p), "PUBLIC_BASE_URL": f"http://127.0.0.1:{p}"},
            tmp_path / f"r{i}.log",
        )
        for i, p in enumerate(ports)
    ]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    try:
        await wait_healthy(f"http://127.0.0.1:{sim_port}")
        for url in urls:
            await wait_healthy(url)
        async with httpx.AsyncClient(timeout=10) as client:
            ids = []
            for i in range(JOBS):
                r = await client.post(f"{urls[i % 3]}/v1/jobs", json=BODY, headers=headers)
                assert r.status_code == 202
                ids.append(r.json()["id"])
            await asyncio.sleep(0.8)  # submitted, and the first polls under way
            replicas[1].kill(signal.SIGKILL)
            deadline = time.monotonic() + 60
            while True:
                jobs = [
                    (await client.get(f"{urls[0]}/v1/jobs/{j}", headers=headers)).json()
                    for j in ids
                ]
                if (
                    all(j["status"] not in ("queued", "processing") for j in jobs)
                    or time.monotonic() > deadline
                ):
                    break
                await asyncio.sleep(0.2)
            log = (await client.get(f"http://127.0.0.1:{sim_port}/_sim/log")).json()
    finally:
        for r in replicas:
            r.kill(signal.SIGTERM)
        sim.kill(signal.SIGTERM)
    assert [j["status"] for j in jobs] == ["succeeded"] * JOBS, (tmp_path / "r0.log").read_text()[
        -2000:
    ]
    assert all(j["webhooks"] == 0 and j["polls"] >= 1 for j in jobs)
    assert log["fetch_overlaps"] == 0
    assert sum(log["fetches"].values()) >= JOBS
    assert max(log["accepted"].values()) <= 2  # at most one resubmission after the kill
