"""A worker SIGKILLed in the middle of downloading outputs: after its claims' lease another
worker archives every output, each stored once and recorded once."""

from __future__ import annotations

import asyncio
import hashlib
import io
import signal
from pathlib import Path

import pytest
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service.domain.archive import ArchivePolicy
from service.domain.states import JobStatus
from service.store import Store
from tests.conftest import now
from tests.factories import processing_job, to
from tests.live import LiveServer, free_port
from tests.processes import Proc, crash_worker_env

pytestmark = pytest.mark.e2e


def png(seed: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32 + seed, 24), (seed * 20, 90, 160)).save(out, "PNG")
    return out.getvalue()


async def test_outputs_cut_off_by_sigkill_are_archived_once_by_another_worker(
    db_url: str, live: LiveServer, tmp_path: Path
) -> None:
    bodies = {f"{j}-{n}.png": png(j * 2 + n) for j in range(3) for n in range(2)}
    hits: dict[str, int] = {}
    first_request = asyncio.Event()
    release = asyncio.Event()

    async def cdn(request: Request) -> Response:
        name = request.path_params["name"]
        hits[name] = hits.get(name, 0) + 1
        first_request.set()
        if not release.is_set():
            await asyncio.wait_for(release.wait(), 30)  # worker A dies while it waits
        return Response(bodies[name], media_type="image/png")

    await live.start(Starlette(routes=[Route("/img/{name}", cdn)]))
    store = Store.connect(db_url, ArchivePolicy())
    root = tmp_path / "outputs"
    try:
        raw, _ = await store.clients.create_key("team-a", ["jobs:write"], now())
        principal = await store.clients.authenticate(raw, now())
        assert principal is not None
        jobs = []
        for j in range(3):
            job = await processing_job(store, principal.client_id, now())
            output = tuple(f"{live.url}/img/{j}-{n}.png" for n in range(2))
            applied = await store.changes.apply_change(
                job, to(JobStatus.SUCCEEDED, output=output), now()
            )
            assert applied.job is not None and applied.job.archive_status == "pending"
            jobs.append(applied.job)

        env = crash_worker_env(
            db_url,
            OUTPUT_STORE=str(root),
            WEBHOOK_SECRET="archive-crash",
            PUBLIC_BASE_URL="http://outputs.example.invalid",
        )
        a = Proc(["worker", "--port", str(free_port())], env, tmp_path / "a.log")
        try:
            await asyncio.wait_for(first_request.wait(), 20)
        finally:
            a.kill(signal.SIGKILL)  # mid-download: its requests are still open
        assert (await store.archives.backlog()).pending == 3  # nothing was recorded
        release.set()
        b = Proc(["worker", "--port", str(free_port())], env, tmp_path / "b.log")
        try:
            for _ in range(400):
                found = [await store.jobs.get_job_by_id(j.id) for j in jobs]
                if all(f is not None and f.archive_status == "done" for f in found):
                    break
                await asyncio.sleep(0.05)
        finally:
            b.kill(signal.SIGTERM)
        assert all(f is not None and f.archive_status == "done" for f in found), (
            tmp_path / "b.log"
        ).read_text()[-2000:]

        for job in jobs:
            kinds = [e.kind for e in await store.jobs.list_events(job.id)]
            assert kinds.count("archived") == 1
        stored = await store.archives.outputs_of([j.id for j in jobs])
        assert len(stored) == 6 and len({(o.job_id, o.n) for o in stored}) == 6
        files = sorted(p for p in root.rglob("*") if p.is_file())
        assert len(files) == 6  # one object per output, none twice
        for output in stored:
            assert output.object_key is not None
            data = (root / output.object_key).read_bytes()
            assert hashlib.sha256(data).hexdigest() == output.sha256
            assert data == bodies[output.provider_url.rsplit("/", 1)[1]]
        assert max(hits.values()) >= 1 and any(n >= 2 for n in hits.values())  # refetched
    finally:
        await store.close()
