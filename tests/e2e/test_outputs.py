"""Durable outputs through the whole service: a job finished by the built-in simulator over
loopback has its output archived to the local store and served back byte-identical, to its
own client only."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Running, Start
from tests.live import LiveServer
from tests.processes import clean_env
from tests.s3 import S3

pytestmark = pytest.mark.e2e

BODY = {"image": "https://example.invalid/in.png", "prompt": "a pier", "width": 128, "height": 96}


async def archived(running: Running, job_id: str) -> dict[str, Any]:
    for _ in range(300):
        job = await running.get(job_id)
        if job["archive_status"] in ("done", "failed"):
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"archive still {job['archive_status']} ({job['status']})")


async def test_a_simulated_output_is_archived_and_served_byte_identical(
    service: Start, tmp_path: Path
) -> None:
    running = await service(sim_eta_seconds=0.2, output_store=str(tmp_path / "outputs"))
    created = await running.create(BODY)
    assert created["archive_status"] is None and created["outputs"] is None
    job = await archived(running, created["id"])
    assert job["status"] == "succeeded" and job["archive_status"] == "done", job
    [entry] = job["outputs"]
    assert entry["provider_url"] == job["output"][0]
    base = str(running.client.base_url)
    assert entry["url"] == f"{base}/v1/jobs/{job['id']}/outputs/0"

    original = await running.client.get(entry["provider_url"])
    ours = await running.client.get(entry["url"], headers=running.headers)
    assert ours.status_code == 200
    assert ours.content == original.content
    assert hashlib.sha256(ours.content).hexdigest() == entry["sha256"]
    assert ours.headers["etag"] == f'"{entry["sha256"]}"'
    assert ours.headers["content-type"] == "image/png" == entry["content_type"]
    assert int(ours.headers["content-length"]) == entry["bytes"] == len(ours.content)
    assert (entry["width"], entry["height"]) == (128, 96)
    again = await running.client.get(
        entry["url"], headers={**running.headers, "If-None-Match": ours.headers["etag"]}
    )
    assert again.status_code == 304 and again.content == b""

    # another client's key, a missing index, no key at all
    raw, _ = await running.store.clients.create_key("team-b", ["jobs:read"], job_now())
    other = await running.client.get(entry["url"], headers={"Authorization": f"Bearer {raw}"})
    assert other.status_code == 404
    assert other.headers["content-type"] == "application/problem+json"
    missing = await running.client.get(f"/v1/jobs/{job['id']}/outputs/1", headers=running.headers)
    assert missing.status_code == 404
    assert (await running.client.get(entry["url"])).status_code == 401


async def test_without_an_output_store_nothing_is_archived(service: Start) -> None:
    running = await service(sim_eta_seconds=0.05)
    job = (await running.wait_all([(await running.create(BODY))["id"]]))[0]
    assert job["status"] == "succeeded"
    assert job["archive_status"] is None and job["outputs"] is None
    r = await running.client.get(f"/v1/jobs/{job['id']}/outputs/0", headers=running.headers)
    assert r.status_code == 404


def job_now() -> Any:
    from tests.conftest import now

    return now()


async def test_with_s3_and_presigning_a_read_redirects_to_a_signed_url(
    service: Start, s3: S3
) -> None:
    running = await service(
        sim_eta_seconds=0.1,
        output_store=s3.store,
        output_store_endpoint=s3.endpoint,
        output_presign_seconds=60,
    )
    job = await archived(running, (await running.create(BODY))["id"])
    assert job["archive_status"] == "done", job
    url = job["outputs"][0]["url"]
    redirect = await running.client.get(url, headers=running.headers)
    assert redirect.status_code == 307
    assert redirect.headers["etag"] == f'"{job["outputs"][0]["sha256"]}"'  # every answer
    location = redirect.headers["location"]
    assert location.startswith(f"{s3.endpoint}/{s3.bucket}/outputs/{job['id']}/0.png?")
    signed = await running.client.get(location)
    original = await running.client.get(job["output"][0])
    assert signed.status_code == 200 and signed.content == original.content
    assert signed.headers["content-type"] == "image/png"  # the object's own


async def test_a_store_that_refuses_writes_is_loud_and_the_job_says_why(
    service: Start, s3: S3
) -> None:
    """A bucket that does not exist yet: /readyz answers 503 naming the store, a succeeded
    job waits for its archive saying why (not settled, so no one is told it is done), and
    once the bucket exists the next try keeps the output and settles the job."""
    bucket = f"late-{s3.bucket}"
    running = await service(
        sim_eta_seconds=0.1,
        output_store=f"s3://{bucket}/outputs",
        output_store_endpoint=s3.endpoint,
        output_archive_retry_base_seconds=0.2,
    )
    ready = await running.client.get("/readyz")
    assert ready.status_code == 503, ready.text
    assert ready.json()["checks"]["output_store"] == (
        f"failing: s3://{bucket}/outputs at {s3.endpoint}: "
        "NoSuchBucket: The specified bucket does not exist"
    )
    job = await running.create(BODY)
    while job["archive_error"] is None:  # each look waits for the job's next change
        r = await running.client.get(
            f"/v1/jobs/{job['id']}?wait=10&since_version={job['version']}",
            headers=running.headers,
            timeout=20,
        )
        job = r.json()
    assert job["status"] == "succeeded" and job["archive_status"] == "pending"
    assert job["archive_error"] == "store: NoSuchBucket: The specified bucket does not exist"
    assert job["settled_at"] is None
    # counted for ops, by kind: on /metrics (this process) and /v1/stats (everyone's)
    ops = await running.store.clients.create_key("ops", ["ops:read"], job_now())
    stats = await running.client.get("/v1/stats", headers={"Authorization": f"Bearer {ops[0]}"})
    assert stats.json()["archive"]["store_errors"]["missing_bucket"] >= 1
    scraped = (await running.client.get("/metrics")).text
    assert 'outpaint_output_store_errors_total{kind="missing_bucket"}' in scraped
    assert httpx.put(f"{s3.endpoint}/{bucket}", timeout=5).status_code == 200
    settled = (
        await running.client.get(
            f"/v1/jobs/{job['id']}?wait=30", headers=running.headers, timeout=40
        )
    ).json()
    assert settled["archive_status"] == "done" and settled["archive_error"] is None
    assert settled["settled_at"] and settled["outputs"][0]["url"]


async def test_moving_the_output_store_loses_no_output(
    service: Start, live: LiveServer, db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Outputs kept in store A, then OUTPUT_STORE moved to B: `serve` says how many are
    elsewhere, they are still served (from A), `outputs migrate` copies them into B after
    checking each SHA-256 (leaving a tampered one in A, listed), and B then serves them."""
    first, second = tmp_path / "a", tmp_path / "b"
    running = await service(sim_eta_seconds=0.05, output_store=str(first))
    jobs = [await archived(running, (await running.create(BODY))["id"]) for _ in range(2)]
    assert all(j["archive_status"] == "done" for j in jobs)
    original = await running.client.get(jobs[0]["outputs"][0]["url"], headers=running.headers)
    (first / f"{jobs[1]['id']}/0.png").write_bytes(b"tampered")

    await live.stop()
    caplog.set_level(logging.WARNING, logger="service.outputs")
    moved = await service(sim_eta_seconds=0.05, output_store=str(second))
    warned = [r.getMessage() for r in caplog.records if r.name == "service.outputs"]
    assert warned == [
        f"2 kept outputs are in other output stores than OUTPUT_STORE {second} (2 in {first}): "
        "they are read from there while those answer; copy them here with "
        "`outpaint-jobs outputs migrate`"
    ]
    url = jobs[0]["outputs"][0]["url"]
    served = await moved.client.get(url, headers=moved.headers)
    assert served.status_code == 200 and served.content == original.content
    assert served.headers["etag"] == f'"{jobs[0]["outputs"][0]["sha256"]}"'

    env = {**clean_env(), "DATABASE_URL": db_url, "OUTPUT_STORE": str(second)}

    async def outputs(command: str) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "service", "outputs", command],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    done = await outputs("migrate")
    assert done.returncode == 1, done.stderr  # one could not be moved: listed
    assert f"mismatch {jobs[1]['id']}/0.png" in done.stdout and f"(in {first})" in done.stdout
    assert f"copied 1 outputs into {second}; 1 left where they are" in done.stdout
    assert (second / f"{jobs[0]['id']}/0.png").read_bytes() == original.content
    assert not (second / f"{jobs[1]['id']}/0.png").exists()
    # B now serves the moved one, whatever becomes of A
    (first / f"{jobs[0]['id']}/0.png").unlink()
    again = await moved.client.get(url, headers=moved.headers)
    assert again.status_code == 200 and again.content == original.content
    # the one left in A answers from A (tampered there: verify lists it)
    verified = await outputs("verify")
    assert "checked 2 stored outputs: 1 missing or mismatched" in verified.stdout
