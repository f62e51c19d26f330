"""Results without a callback server, on a real uvicorn with the built-in simulator:
`Prefer: wait=N` on creation, `?wait=N&since_version=V` on a read, and the job's events as
Server-Sent Events (read with a real SSE client, resumed with Last-Event-ID); waiters
bounded per client, and woken by signals rather than by reading the database each."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse

from tests.e2e.conftest import Start

pytestmark = pytest.mark.e2e

BODY = {"image": "https://images.example.invalid/a.png", "width": 128, "height": 96}
TERMINAL = {"succeeded", "failed", "timed_out", "canceled"}


async def test_prefer_wait_answers_the_settled_job_201(service: Start) -> None:
    svc = await service(sim_eta_seconds=0.2)
    started = time.monotonic()
    r = await svc.client.post(
        "/v1/jobs", json=BODY, headers={**svc.headers, "Prefer": "wait=20"}, timeout=30
    )
    assert r.status_code == 201, r.text
    assert r.headers["Preference-Applied"] == "wait=20"
    assert r.headers["Location"] == f"/v1/jobs/{r.json()['id']}"
    job = r.json()
    assert job["status"] == "succeeded" and job["output"]
    assert job["archive_status"] is None and job["settled_at"] == job["completed_at"]
    assert time.monotonic() - started < 10  # released by the change, not by the 20 s
    # the same key and body again: 200 (a replay, not a creation), settled as well
    again = await svc.client.post(
        "/v1/jobs",
        json=BODY,
        headers={**svc.headers, "Prefer": "wait=20", "Idempotency-Key": "k-1"},
        timeout=30,
    )
    assert again.status_code == 201
    replay = await svc.client.post(
        "/v1/jobs",
        json=BODY,
        headers={**svc.headers, "Prefer": "wait=20", "Idempotency-Key": "k-1"},
        timeout=30,
    )
    assert replay.status_code == 200 and replay.json()["id"] == again.json()["id"]


async def test_prefer_wait_answers_the_job_as_it_stands_when_time_is_up(service: Start) -> None:
    svc = await service(sim_eta_seconds=60)
    started = time.monotonic()
    r = await svc.client.post(
        "/v1/jobs", json=BODY, headers={**svc.headers, "Prefer": "respond-async, wait=1"}
    )
    assert r.status_code == 202 and r.headers["Preference-Applied"] == "wait=1"
    assert r.json()["status"] in ("queued", "processing")
    assert 0.9 <= time.monotonic() - started < 5
    # no Prefer, or one we cannot read: no wait, and nothing said to have been applied
    for prefer in (None, "wait=soon"):
        extra = {"Prefer": prefer} if prefer else {}
        r = await svc.client.post("/v1/jobs", json=BODY, headers={**svc.headers, **extra})
        assert r.status_code == 202 and "Preference-Applied" not in r.headers


async def test_prefer_wait_over_60_is_held_to_60(service: Start) -> None:
    svc = await service(sim_eta_seconds=0.1)
    r = await svc.client.post(
        "/v1/jobs", json=BODY, headers={**svc.headers, "Prefer": "wait=3600"}, timeout=90
    )
    assert r.headers["Preference-Applied"] == "wait=60" and r.json()["status"] == "succeeded"


async def test_a_read_waits_for_the_end_or_for_a_version_past_the_one_given(
    service: Start,
) -> None:
    svc = await service(sim_eta_seconds=0.3)
    job = await svc.create(BODY)
    url = f"/v1/jobs/{job['id']}"
    changed = await svc.client.get(
        f"{url}?wait=20&since_version={job['version']}", headers=svc.headers, timeout=30
    )
    assert changed.status_code == 200 and changed.json()["version"] > job["version"]
    done = await svc.client.get(f"{url}?wait=20", headers=svc.headers, timeout=30)
    assert done.json()["status"] == "succeeded" and done.json()["settled_at"]
    started = time.monotonic()
    again = await svc.client.get(f"{url}?wait=20", headers=svc.headers)  # settled: at once
    assert again.json() == done.json() and time.monotonic() - started < 1
    for bad in ("wait=61", "wait=-1", "wait=1.5", "since_version=x"):
        r = await svc.client.get(f"{url}?{bad}", headers=svc.headers)
        assert r.status_code == 422, bad


async def test_waiters_are_bounded_per_client_with_a_429(service: Start) -> None:
    svc = await service(sim_eta_seconds=60, max_waiters_per_client=2)
    job = await svc.create(BODY)
    url = f"/v1/jobs/{job['id']}?wait=3"
    held = [
        asyncio.create_task(svc.client.get(url, headers=svc.headers, timeout=10)) for _ in range(2)
    ]
    await asyncio.sleep(0.3)
    refused = await svc.client.get(url, headers=svc.headers)
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "5"
    assert refused.json()["type"] == "/problems/rate-limited"
    stream = await svc.client.get(
        f"/v1/jobs/{job['id']}/events",
        headers={**svc.headers, "Accept": "text/event-stream"},
    )
    assert stream.status_code == 429  # a stream is a waiter too, refused before it starts
    assert [t.status_code for t in await asyncio.gather(*held)] == [200, 200]
    assert (await svc.client.get(url.replace("wait=3", "wait=0"), headers=svc.headers)).is_success


async def test_many_waiters_cost_no_database_reads_while_nothing_changes(
    service: Start,
) -> None:
    """Twenty waiters on a job that does not change for a second and a half: each reads
    the job when it starts (and once more for the first catch-up), and the process reads
    where watched jobs stand once a second for all of them: no read per waiter per tick."""
    svc = await service(sim_eta_seconds=60)
    job = await svc.create(BODY)
    await svc.client.get(f"/v1/jobs/{job['id']}?wait=5&since_version=1", headers=svc.headers)
    jobs = svc.store.jobs
    reads = {"job": 0, "marks": 0}
    real_get, real_marks = jobs.get_job_by_id, svc.store.watching.marks

    async def counted_get(job_id: int) -> Any:
        reads["job"] += 1
        return await real_get(job_id)

    async def counted_marks(ids: Any) -> Any:
        reads["marks"] += 1
        return await real_marks(ids)

    jobs.get_job_by_id = counted_get  # type: ignore[method-assign]
    svc.store.watching.marks = counted_marks  # type: ignore[method-assign]
    fresh = await svc.get(job["id"])
    url = f"/v1/jobs/{job['id']}?wait=2&since_version={fresh['version']}"
    answers = await asyncio.gather(
        *(svc.client.get(url, headers=svc.headers, timeout=10) for _ in range(20))
    )
    assert all(a.status_code == 200 for a in answers)
    assert reads["job"] <= 20 * 2, reads
    assert reads["marks"] <= 3, reads


async def _stream(
    client: httpx.AsyncClient, url: str, headers: dict[str, str]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The events a stream sends, and the settled job it ends with."""
    got = []
    # (a copy: httpx-sse sets Accept in the dict it is given)
    async with aconnect_sse(client, "GET", url, headers=dict(headers), timeout=30) as source:
        assert source.response.status_code == 200
        assert source.response.headers["content-type"].startswith("text/event-stream")
        async for sse in source.aiter_sse():
            data = json.loads(sse.data)
            if sse.event == "settled":
                # no id of its own: the last event id stays the settling event's
                assert sse.id == str(got[-1]["id"]) and data["settled_at"]
                return got, data
            assert sse.id == str(data["id"]) and sse.event == data["kind"]
            got.append(data)
    raise AssertionError(f"the stream ended without its settled job, after {got}")


async def test_events_stream_live_end_at_the_settling_and_resume(
    service: Start,
) -> None:
    svc = await service(sim_eta_seconds=0.3)
    job = await svc.create(BODY)
    url = f"/v1/jobs/{job['id']}/events"
    streamed, settled = await _stream(svc.client, url, svc.headers)
    # every event once, in order, the same as the history; the last one settled the job
    # (nothing is kept here: its terminal transition), then the settled job itself
    assert [e["id"] for e in streamed] == sorted({e["id"] for e in streamed})
    history = await svc.events(job["id"])
    assert streamed == history
    assert streamed[-1]["kind"] == "transition" and streamed[-1]["to_status"] in TERMINAL
    assert settled == await svc.get(job["id"])
    # resumed after the second event: the rest, no more, no less, and the job again
    resumed, again = await _stream(
        svc.client, url, {**svc.headers, "Last-Event-ID": str(streamed[1]["id"])}
    )
    assert resumed == streamed[2:] and again == settled
    # resumed after the last: nothing left, and 204 tells an EventSource to stop
    last = {**svc.headers, "Accept": "text/event-stream", "Last-Event-ID": str(streamed[-1]["id"])}
    assert (await svc.client.get(url, headers=last)).status_code == 204
    bad = {**svc.headers, "Accept": "text/event-stream", "Last-Event-ID": "x"}
    assert (await svc.client.get(url, headers=bad)).status_code == 422
    # without Accept: text/event-stream, the same route answers pages of JSON
    assert (await svc.client.get(url, headers=svc.headers)).json()["items"] == history


async def test_a_stream_follows_the_job_as_it_happens(service: Start) -> None:
    """Opened while the job is still running: events arrive as they are recorded."""
    svc = await service(sim_eta_seconds=0.8)
    job = await svc.create(BODY)
    url = f"/v1/jobs/{job['id']}/events"
    arrivals: list[tuple[float, dict[str, Any]]] = []
    async with aconnect_sse(
        svc.client, "GET", url, headers=dict(svc.headers), timeout=30
    ) as source:
        async for sse in source.aiter_sse():
            if sse.event != "settled":
                arrivals.append((time.monotonic(), json.loads(sse.data)))
    kinds = [e["kind"] for _, e in arrivals]
    assert kinds[0] == "created" and arrivals[-1][1]["to_status"] == "succeeded"
    assert "webhook" in kinds
    # the result came later than the start: the stream was live, not one dump at the end
    assert arrivals[-1][0] - arrivals[0][0] > 0.3
