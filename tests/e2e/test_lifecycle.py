"""The whole service on a real uvicorn, with the built-in simulator over loopback HTTP:
a job goes queued → processing → succeeded through a real webhook, or through the
sweeper when the webhook is lost."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.e2e.conftest import Running, Start

pytestmark = pytest.mark.e2e

BODY = {
    "image": "https://example.invalid/in.png",
    "prompt": "a harbour at dusk",
    "width": 256,
    "height": 192,
}


def split(running: Running) -> tuple[httpx.AsyncClient, dict[str, str]]:
    return running.client, running.headers


async def wait_until_done(
    client: httpx.AsyncClient, headers: dict[str, str], job_id: str
) -> dict[str, Any]:
    for _ in range(300):
        job = (await client.get(f"/v1/jobs/{job_id}", headers=headers)).json()
        if job["status"] not in ("queued", "processing"):
            return job  # type: ignore[no-any-return]
        await asyncio.sleep(0.05)
    raise AssertionError(f"job still {job['status']}")


async def transitions(
    client: httpx.AsyncClient, headers: dict[str, str], job_id: str
) -> list[tuple[str, str, str]]:
    events = (await client.get(f"/v1/jobs/{job_id}/events", headers=headers)).json()["items"]
    return [
        (e["from_status"], e["to_status"], e["source"]) for e in events if e["kind"] == "transition"
    ]


async def test_a_job_succeeds_through_a_real_webhook_with_a_png_of_the_asked_size(
    service: Start,
) -> None:
    client, headers = split(await service(sim_eta_seconds=0.3, eta_grace_seconds=30))
    created = await client.post("/v1/jobs", json=BODY, headers=headers)
    assert created.status_code == 202
    job = await wait_until_done(client, headers, created.json()["id"])
    assert job["status"] == "succeeded", job
    assert job["webhooks"] == 1 and job["polls"] == 0
    assert await transitions(client, headers, job["id"]) == [
        ("queued", "processing", "submitter"),
        ("processing", "succeeded", "webhook"),
    ]
    png = await client.get(job["output"][0])
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(png.content)).size == (256, 192)


async def test_a_dropped_webhook_is_recovered_by_the_sweeper_no_earlier_than_the_eta(
    service: Start,
) -> None:
    client, headers = split(
        await service(sim_eta_seconds=0.6, eta_grace_seconds=0.2, sim_webhook_drop_rate=1.0)
    )
    created = await client.post("/v1/jobs", json=BODY, headers=headers)
    job = await wait_until_done(client, headers, created.json()["id"])
    assert job["status"] == "succeeded", job
    assert job["webhooks"] == 0 and job["polls"] >= 1
    assert await transitions(client, headers, job["id"]) == [
        ("queued", "processing", "submitter"),
        ("processing", "succeeded", "sweeper"),
    ]
    events = (await client.get(f"/v1/jobs/{job['id']}/events", headers=headers)).json()["items"]
    polls = [e["at"] for e in events if e["kind"] == "poll"]
    assert polls and min(polls) >= job["eta_at"]  # RFC 3339 UTC strings sort as times


async def test_a_failed_generation_reaches_failed_with_the_providers_message(
    service: Start,
) -> None:
    client, headers = split(
        await service(sim_eta_seconds=0.2, eta_grace_seconds=30, sim_failure_rate=1.0)
    )
    created = await client.post("/v1/jobs", json=BODY, headers=headers)
    job = await wait_until_done(client, headers, created.json()["id"])
    assert job["status"] == "failed"
    assert job["error"] == {"code": "provider_error", "message": "Simulated generation failure"}


async def test_refresh_polls_the_provider_now(service: Start) -> None:
    client, headers = split(
        await service(sim_eta_seconds=0.3, eta_grace_seconds=60, sim_webhook_drop_rate=1.0)
    )
    created = (await client.post("/v1/jobs", json=BODY, headers=headers)).json()
    for _ in range(100):
        job = (await client.get(f"/v1/jobs/{created['id']}", headers=headers)).json()
        if job["status"] == "processing":
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.4)
    refreshed = (await client.post(f"/v1/jobs/{created['id']}/refresh", headers=headers)).json()
    assert refreshed["status"] == "succeeded" and refreshed["polls"] == 1
