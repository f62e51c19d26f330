"""The series ops chart through the whole service: jobs created and finished by the
simulator show up in /v1/stats/series once the process has flushed, with the webhook share,
time to result and the generations charged to their client."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import now
from tests.e2e.conftest import Start

pytestmark = pytest.mark.e2e

BODY = {"image": "https://example.invalid/in.png", "prompt": "a quay", "width": 128, "height": 96}


async def test_finished_jobs_appear_in_the_series_with_their_clients_usage(
    service: Start,
) -> None:
    running = await service(sim_eta_seconds=0.05, series_flush_seconds=0.1)
    raw, _ = await running.store.clients.create_key("ops", ["ops:read"], now())
    ops = {"Authorization": f"Bearer {raw}"}
    ids = [(await running.create(BODY))["id"] for _ in range(3)]
    jobs = await running.wait_all(ids)
    assert all(j["status"] == "succeeded" for j in jobs)

    body: dict[str, Any] = {}
    for _ in range(100):
        r = await running.client.get("/v1/stats/series?window=1h", headers=ops)
        assert r.status_code == 200, r.text
        body = r.json()
        totals = {
            "created": sum(p["created"] for p in body["points"]),
            "succeeded": sum(p["finished"]["succeeded"] for p in body["points"]),
            "results": sum(sum(p["results"].values()) for p in body["points"]),
        }
        if totals == {"created": 3, "succeeded": 3, "results": 3} and body["usage"]:
            break
        await asyncio.sleep(0.05)
    assert totals == {"created": 3, "succeeded": 3, "results": 3}, body["points"][-2:]
    assert body["window"] == "1h" and body["step_seconds"] == 60 and len(body["points"]) == 60
    busy = [p for p in body["points"] if p["finished"]["succeeded"]]
    assert all(p["to_result_p50_seconds"] is not None for p in busy)
    assert any(p["webhook_share"] is not None for p in busy)
    assert body["usage"] == [
        {"day": now().date().isoformat(), "client": "team-a", "generations": 3}
    ]
    assert all(p["archive_backlog"] is None for p in body["points"])  # the archive is off


async def test_archived_outputs_and_the_backlog_appear_in_the_series(
    service: Start, tmp_path: Path
) -> None:
    running = await service(
        sim_eta_seconds=0.05, series_flush_seconds=0.1, output_store=str(tmp_path / "out")
    )
    raw, _ = await running.store.clients.create_key("ops", ["ops:read"], now())
    ops = {"Authorization": f"Bearer {raw}"}
    ids = [(await running.create(BODY))["id"] for _ in range(2)]
    await running.wait_all(ids)
    points: list[dict[str, Any]] = []
    for _ in range(100):
        r = await running.client.get("/v1/stats/series?window=1h", headers=ops)
        points = r.json()["points"]
        if sum(p["archived"]["stored"] for p in points) == 2:
            break
        await asyncio.sleep(0.05)
    assert sum(p["archived"]["stored"] for p in points) == 2
    assert sum(p["archived"]["not_stored"] for p in points) == 0
    levels = [p["archive_backlog"] for p in points if p["archive_backlog"] is not None]
    assert levels and all(level >= 0 for level in levels)
    assert points[-1]["archive_backlog"] is not None  # recorded every flush, 0 included


async def test_the_series_is_for_ops_and_takes_known_windows_only(service: Start) -> None:
    running = await service()
    r = await running.client.get("/v1/stats/series", headers=running.headers)
    assert r.status_code == 403  # a client key holds no ops:read
    raw, _ = await running.store.clients.create_key("ops", ["ops:read"], now())
    ops = {"Authorization": f"Bearer {raw}"}
    bad = await running.client.get("/v1/stats/series?window=2h", headers=ops)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "window"
    for window, count in (("24h", 96), ("7d", 168)):
        r = await running.client.get(f"/v1/stats/series?window={window}", headers=ops)
        assert r.status_code == 200 and len(r.json()["points"]) == count
