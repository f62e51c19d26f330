"""Lost webhooks cost little: once every recent result came by poll (every process's, read
from the series), a submission's first poll goes at the job's eta instead of eta + grace,
and /v1/stats and the log say so, once."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

import pytest

from tests.e2e.conftest import Start

pytestmark = pytest.mark.e2e

BODY = {"image": "https://images.example.invalid/a.png", "width": 128, "height": 96}
GRACE = 3.0


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_with_webhooks_lost_first_polls_go_at_the_eta(
    service: Start, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="service.workers")
    svc = await service(
        sim_eta_seconds=0.3,
        sim_webhook_drop_rate=1.0,
        eta_grace_seconds=GRACE,
        series_flush_seconds=0.1,
    )
    first = [await svc.create(BODY) for _ in range(6)]
    done = await svc.wait_all([j["id"] for j in first], seconds=30)
    assert all(j["status"] == "succeeded" and j["polls"] >= 1 for j in done)
    # every first poll waited for eta + grace: webhooks were still thought to arrive
    assert all((at(j["completed_at"]) - at(j["eta_at"])).total_seconds() >= GRACE for j in done)
    ops, _ = await svc.store.clients.create_key("ops", ["ops:read"], at(done[0]["created_at"]))
    headers = {"Authorization": f"Bearer {ops}"}
    for _ in range(200):  # until the series (flushed every 0.1 s) shows it
        webhooks = (await svc.client.get("/v1/stats", headers=headers)).json()["webhooks"]
        if webhooks["lost"] and any("webhooks look lost" in r.getMessage() for r in caplog.records):
            break
        await asyncio.sleep(0.05)
    assert webhooks["lost"] and webhooks["results_by_webhook"] == 0
    assert webhooks["results_by_poll"] >= 5
    later = await svc.create(BODY)
    [job] = await svc.wait_all([later["id"]], seconds=30)
    assert job["status"] == "succeeded"
    assert (at(job["completed_at"]) - at(job["eta_at"])).total_seconds() < GRACE
    said = [r for r in caplog.records if "webhooks look lost" in r.getMessage()]
    assert len(said) == 1  # once, not per job
