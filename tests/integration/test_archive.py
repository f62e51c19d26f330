"""The output archive against real parts: a scripted image server on loopback, the local
output store on disk, the archiver in real workers, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import obstore
import pytest
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service.domain.jobs import Job
from service.domain.states import JobStatus
from service.provider.client import ModelsLabClient
from service.runtime.services import Runtime
from service.store import Store
from service.store.objects import Objects
from service.workers.runner import Workers
from tests.conftest import make_settings, now
from tests.factories import processing_job, to
from tests.live import LiveServer
from tests.s3 import S3


def png(width: int = 48, height: int = 32) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 120, 40)).save(out, "PNG")
    return out.getvalue()


@dataclass
class Images:
    """The provider's CDN: serves each path from a script (status codes, then the bytes)."""

    bodies: dict[str, bytes] = field(default_factory=dict)
    scripts: dict[str, list[int]] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)

    async def endpoint(self, request: Request) -> Response:
        name = request.path_params["name"]
        self.hits[name] = self.hits.get(name, 0) + 1
        script = self.scripts.get(name, [])
        if script:
            return Response(status_code=script.pop(0))
        body = self.bodies.get(name)
        if body is None:
            return Response(status_code=404)
        kind = "text/html" if body.startswith(b"<") else "image/png"
        return Response(body, media_type=kind)


@dataclass
class Rig:
    store: Store
    images: Images
    base: str
    workers: Workers
    objects: Objects
    root: Path
    client_id: int


async def _rig(
    store: Store, db_url: str, live: LiveServer, tmp_path: Path, **overrides: Any
) -> AsyncIterator[Rig]:
    images = Images()
    await live.start(Starlette(routes=[Route("/img/{name}", images.endpoint)]))
    raw, _ = await store.clients.create_key("team-a", ["jobs:write", "jobs:read"], now())
    principal = await store.clients.authenticate(raw, now())
    assert principal is not None
    root = tmp_path / "outputs"
    settings = make_settings(
        db_url,
        **{
            "allow_private_callbacks": True,
            "output_store": str(root),
            "output_archive_retry_base_seconds": 0.05,
            "output_max_bytes": 64 * 1024,
            "submit_idle_seconds": 0.05,
            "sweep_interval_seconds": 60,
            "public_base_url": "http://outputs.example.invalid",
            **overrides,
        },
    )
    objects = Objects.from_setting(settings.output_store, settings.output_store_endpoint)
    assert objects is not None
    provider = ModelsLabClient("http://127.0.0.1:9/api/v6", "k")
    store = Store(store.db, settings.archive_policy())  # outputs archived: a success queues it
    workers = Workers(Runtime(settings, store, provider, "s", objects=objects))
    await workers.start()
    yield Rig(store, images, f"{live.url}/img", workers, objects, root, principal.client_id)
    await workers.stop(timeout=2)
    await provider.aclose()


@pytest.fixture
async def rig(store: Store, db_url: str, live: LiveServer, tmp_path: Path) -> AsyncIterator[Rig]:
    async for r in _rig(store, db_url, live, tmp_path):
        yield r


async def succeed(rig: Rig, *names: str, callback_url: str | None = None) -> Job:
    job = await processing_job(rig.store, rig.client_id, now(), callback_url=callback_url)
    output = tuple(f"{rig.base}/{name}" for name in names)
    applied = await rig.store.changes.apply_change(
        job, to(JobStatus.SUCCEEDED, output=output), now()
    )
    assert applied.changed and applied.job is not None
    assert applied.job.archive_status == "pending"
    rig.workers.finished(applied)
    return applied.job


async def until(rig: Rig, job_id: int, done: Callable[[Job], bool], seconds: float = 5) -> Job:
    """The job once `done(job)`, looked at every 20 ms."""
    for _ in range(int(seconds / 0.02)):
        job = await rig.store.jobs.get_job_by_id(job_id)
        assert job is not None
        if done(job):
            return job
        await asyncio.sleep(0.02)
    raise AssertionError(f"job {job_id} did not get there")


async def archived(rig: Rig, job_id: int, seconds: float = 5) -> Job:
    return await until(rig, job_id, lambda j: j.archive_status in ("done", "failed"), seconds)


async def test_an_output_is_stored_byte_identical_with_its_checksum_and_shape(rig: Rig) -> None:
    body = png(48, 32)
    rig.images.bodies["a.png"] = body
    job = await archived(rig, (await succeed(rig, "a.png")).id)
    assert job.status is JobStatus.SUCCEEDED and job.archive_status == "done"
    assert job.outputs == [
        {
            "url": f"http://outputs.example.invalid/v1/jobs/{job.public_id}/outputs/0",
            "provider_url": f"{rig.base}/a.png",
            "sha256": hashlib.sha256(body).hexdigest(),
            "bytes": len(body),
            "width": 48,
            "height": 32,
            "content_type": "image/png",
            "error": None,
        }
    ]
    [stored] = await rig.store.archives.outputs_of([job.id])
    assert stored.object_key == f"{job.public_id}/0.png"
    assert (rig.root / stored.object_key).read_bytes() == body
    assert await rig.objects.read(stored.object_key) == body
    kinds = [e.kind for e in await rig.store.jobs.list_events(job.id)]
    assert kinds.count("archived") == 1


async def test_a_url_that_is_not_there_yet_is_tried_again_until_it_is(rig: Rig) -> None:
    rig.images.bodies["late.png"] = png()
    rig.images.scripts["late.png"] = [404] * 5
    started = await succeed(rig, "late.png")
    assert started.settled_at is None and started.archive_error is None
    # while it waits the job says why, in a new version; it is not settled yet
    waiting = await until(rig, started.id, lambda j: j.archive_error is not None)
    assert waiting.archive_error == "http_404" and waiting.archive_status == "pending"
    assert waiting.version > started.version and waiting.settled_at is None
    job = await archived(rig, started.id)
    assert job.archive_status == "done" and job.archive_error is None
    assert job.completed_at is not None and job.settled_at is not None
    assert job.settled_at > job.completed_at
    assert rig.images.hits["late.png"] == 6


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<html><body>not found</body></html>", "not_an_image"),
        (png(400, 400) + b"\0" * 70_000, "too_large"),
    ],
)
async def test_what_is_not_an_image_or_too_large_fails_the_archive_not_the_job(
    rig: Rig, body: bytes, reason: str
) -> None:
    rig.images.bodies["bad"] = body
    job = await archived(rig, (await succeed(rig, "bad")).id)
    assert job.status is JobStatus.SUCCEEDED and job.archive_status == "failed"
    assert job.outputs is not None and job.outputs[0]["error"] == reason
    assert job.archive_error == reason and job.settled_at is not None
    assert job.outputs[0]["url"] is None
    assert not list(rig.root.rglob("*.*"))
    backlog = await rig.store.archives.backlog()
    assert backlog.failures == {reason: 1} and backlog.pending == 0


async def test_the_deadline_ends_the_retries(
    store: Store, db_url: str, live: LiveServer, tmp_path: Path
) -> None:
    async for rig in _rig(store, db_url, live, tmp_path, output_archive_deadline_hours=0.0001):
        job = await archived(rig, (await succeed(rig, "never.png")).id)  # 404 for good
        assert job.archive_status == "failed"
        assert job.outputs is not None and job.outputs[0]["error"] == "not_found_by_deadline"
        assert rig.images.hits["never.png"] >= 2


async def test_a_private_address_is_refused_unless_allowed(
    store: Store, db_url: str, live: LiveServer, tmp_path: Path
) -> None:
    async for rig in _rig(store, db_url, live, tmp_path, allow_private_callbacks=False):
        rig.images.bodies["a.png"] = png()
        job = await archived(rig, (await succeed(rig, "a.png")).id)
        assert job.archive_status == "failed"
        assert job.outputs is not None and job.outputs[0]["error"] == "refused"
        assert rig.images.hits == {}  # never fetched


async def test_the_callback_waits_for_the_archive_and_carries_the_durable_links(
    rig: Rig,
) -> None:
    rig.images.bodies["a.png"] = png()
    rig.images.scripts["a.png"] = [404, 404]
    job = await succeed(rig, "a.png", callback_url="http://127.0.0.1:9/hook")
    delivery = await rig.store.callbacks.delivery_of_job(job.id)
    assert delivery is not None and delivery.next_attempt_at is not None
    assert delivery.next_attempt_at > now()  # held while the outputs are archived
    await archived(rig, job.id)
    for _ in range(250):
        delivery = await rig.store.callbacks.delivery_of_job(job.id)
        assert delivery is not None
        if delivery.body is not None:
            break
        await asyncio.sleep(0.02)
    assert delivery.body is not None
    assert f"/v1/jobs/{job.public_id}/outputs/0" in delivery.body
    assert '"archive_status":"done"' in delivery.body.replace(" ", "")


async def test_retention_deletes_stored_objects_before_their_jobs(rig: Rig) -> None:
    from service.workers import retention

    rig.images.bodies["a.png"] = png()
    job = await archived(rig, (await succeed(rig, "a.png")).id)
    [stored] = await rig.store.archives.outputs_of([job.id])
    assert stored.object_key is not None and (rig.root / stored.object_key).exists()

    class Failing:
        """An output store whose deletes fail (a bucket policy, an outage)."""

        async def delete(self, key: str) -> None:
            raise OSError("denied")

    later = now() + timedelta(days=1)
    kept = await retention.prune(rig.store, Failing(), later)  # type: ignore[arg-type]
    assert kept == 0  # the object could not go: neither does its job
    assert await rig.store.jobs.get_job_by_id(job.id) is not None
    assert (rig.root / stored.object_key).exists()

    assert await retention.prune(rig.store, rig.objects, later) == 1
    assert await rig.store.jobs.get_job_by_id(job.id) is None
    assert not (rig.root / stored.object_key).exists()
    assert await rig.store.archives.outputs_of([job.id]) == []


async def test_outputs_verify_reports_a_changed_object(rig: Rig, db_url: str) -> None:
    """`outpaint-jobs outputs verify` as a process: clean, then one object altered on disk."""
    import subprocess
    import sys

    from tests.processes import clean_env

    rig.images.bodies["a.png"] = png()
    rig.images.bodies["b.png"] = png(64, 64)
    job = await archived(rig, (await succeed(rig, "a.png", "b.png")).id)
    assert job.archive_status == "done"
    env = {**clean_env(), "DATABASE_URL": db_url, "OUTPUT_STORE": str(rig.root)}

    def verify() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "service", "outputs", "verify"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    clean = await asyncio.to_thread(verify)
    assert clean.returncode == 0, clean.stderr
    assert "checked 2 stored outputs: 0 missing or mismatched" in clean.stdout
    (rig.root / f"{job.public_id}/1.png").write_bytes(b"tampered")
    found = await asyncio.to_thread(verify)
    assert found.returncode == 1
    assert f"mismatch {job.public_id}/1.png" in found.stdout
    assert "checked 2 stored outputs: 1 missing or mismatched" in found.stdout


async def test_the_s3_store_keeps_serves_signs_and_deletes(
    store: Store, db_url: str, live: LiveServer, tmp_path: Path, s3: S3
) -> None:
    """The same archive against a real S3-compatible server on loopback."""
    import httpx

    from service.workers import retention

    overrides = {"output_store": s3.store, "output_store_endpoint": s3.endpoint}
    async for rig in _rig(store, db_url, live, tmp_path, **overrides):
        body = png(40, 30)
        rig.images.bodies["a.png"] = body
        job = await archived(rig, (await succeed(rig, "a.png")).id)
        assert job.archive_status == "done", job.outputs
        key = f"{job.public_id}/0.png"
        assert s3.objects() == [f"outputs/{key}"]
        assert await rig.objects.read(key) == body
        signed = await rig.objects.sign(key, 60)
        assert signed is not None and signed.startswith(s3.endpoint)
        fetched = httpx.get(signed, timeout=5)
        assert fetched.content == body
        # the object describes itself: its type (what a signed URL answers) and checksum
        digest = hashlib.sha256(body).hexdigest()
        assert fetched.headers["content-type"] == "image/png"
        assert fetched.headers["x-amz-meta-sha256"] == digest
        kept = await obstore.get_async(rig.objects.store, key)
        assert dict(kept.attributes) == {"Content-Type": "image/png", "sha256": digest}
        [row] = await rig.store.archives.outputs_of([job.id])
        assert row.store == rig.objects.name == f"{s3.store} at {s3.endpoint}"
        assert await rig.store.archives.held_elsewhere("another") == {rig.objects.name: 1}
        assert await retention.prune(rig.store, rig.objects, now() + timedelta(days=1)) == 1
        assert s3.objects() == []
        assert await rig.store.archives.held_elsewhere("another") == {}


async def test_the_counters_follow_stores_failures_and_deletions(rig: Rig) -> None:
    from service.workers import retention

    rig.images.bodies["a.png"] = body = png()
    rig.images.bodies["b"] = b"<html></html>"
    await archived(rig, (await succeed(rig, "a.png", "b")).id)
    backlog = await rig.store.archives.backlog()
    assert (backlog.pending, backlog.oldest_pending_at) == (0, None)
    assert (backlog.stored, backlog.stored_bytes) == (1, len(body))
    assert backlog.failures == {"not_an_image": 1}
    await retention.prune(rig.store, rig.objects, now() + timedelta(days=1))
    backlog = await rig.store.archives.backlog()
    assert (backlog.stored, backlog.stored_bytes) == (0, 0)
    assert backlog.failures == {"not_an_image": 1}  # all time


async def test_a_store_refusing_writes_holds_the_archives_then_drains_them_at_once(
    store: Store, db_url: str, live: LiveServer, tmp_path: Path, s3: S3
) -> None:
    """While the store refuses writes the archiver downloads nothing more (it probes the
    store instead); once the bucket exists the waiting archives all go at once."""
    import httpx

    bucket = f"later-{s3.bucket}"
    overrides = {"output_store": f"s3://{bucket}/o", "output_store_endpoint": s3.endpoint}
    async for rig in _rig(store, db_url, live, tmp_path, **overrides):
        for name in ("a.png", "b.png", "c.png", "d.png", "e.png", "f.png"):
            rig.images.bodies[name] = png()
        jobs = [await succeed(rig, name) for name in sorted(rig.images.bodies)]
        # the first archives tried say why they wait; the gate then holds the rest
        waiting = await until(rig, jobs[0].id, lambda j: j.archive_error is not None)
        assert waiting.archive_error is not None
        assert waiting.archive_error.startswith("store: NoSuchBucket")
        tried = await rig.store.archives.backlog()
        assert tried.store_errors["missing_bucket"] >= 1
        assert httpx.put(f"{s3.endpoint}/{bucket}", timeout=5).status_code == 200
        back = asyncio.get_running_loop().time()
        for job in jobs:
            done = await archived(rig, job.id, seconds=10)
            assert done.archive_status == "done" and done.archive_error is None
        drained = asyncio.get_running_loop().time() - back
        print(f"drained {len(jobs)} archives {drained:.2f} s after the bucket appeared")
        assert drained < 5  # the next probe (2 s), not the archives' own backoff
        # held: no download per retry while the store refused, only the first batch's
        assert sum(rig.images.hits.values()) <= len(jobs) + 4
