"""What an integrating team does first: generate a client from /openapi.json with
openapi-python-client and the configuration the README shows (no warning allowed), check
the README's snippet with `mypy --strict` and run it, then drive the API through the
generated code only: a job created and waited for until it settled, a paginated list, its
events, a cancel, a 422. And the document itself is valid OpenAPI 3.1."""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from service.api.openapi import build_document
from tests.e2e.conftest import Start
from tests.processes import clean_env
from tests.readme import block

pytestmark = pytest.mark.e2e

PACKAGE = "outpaint_client"  # as the README names it
GENERATE = "**1. Generate a client.**"
IMAGE = "https://images.example.invalid/a.png"


def test_the_document_is_valid_openapi_3_1() -> None:
    document = build_document()
    assert document["openapi"].startswith("3.1")
    validate(document)  # raises on the first error


@pytest.fixture
def generated(tmp_path: Path) -> Iterator[dict[str, ModuleType]]:
    document = tmp_path / "openapi.json"
    document.write_text(json.dumps(build_document()))
    config = tmp_path / "openapi-python-client.json"
    config.write_text(block(GENERATE, "json"))  # the README's, as written
    out = tmp_path / "client"
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "openapi-python-client"),
            "generate",
            "--path", str(document),
            "--config", str(config),
            "--output-path", str(out),
            "--meta", "none",
            "--fail-on-warning",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Warning" not in done.stdout + done.stderr, done.stdout + done.stderr
    sys.path.insert(0, str(tmp_path))
    out.rename(tmp_path / PACKAGE)
    try:
        names = ["client", "models", "types"] + [
            f"api.jobs.{op}"
            for op in (
                "create_job",
                "get_job",
                "list_jobs",
                "list_job_events",
                "cancel_job",
                "refresh_job",
                "replay_callback",
                "get_job_output",
            )
        ]
        names.append("api.stats.get_stats")
        yield {name: importlib.import_module(f"{PACKAGE}.{name}") for name in names}
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


async def test_the_readmes_snippet_type_checks_strictly_and_runs(
    service: Start, generated: dict[str, Any], tmp_path: Path
) -> None:
    svc = await service(sim_eta_seconds=0.3, output_store=str(tmp_path / "outputs"))
    token = svc.headers["Authorization"].removeprefix("Bearer ")
    snippet = block(GENERATE, "python")
    assert 'API = "http://127.0.0.1:8000"' in snippet and 'token="opj_..."' in snippet
    flow = tmp_path / "flow.py"
    flow.write_text(snippet)
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(flow)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    base = str(svc.client.base_url).rstrip("/")
    flow.write_text(
        snippet.replace("http://127.0.0.1:8000", base).replace('"opj_..."', repr(token))
    )
    ran = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, str(flow)],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    status, url, listed, size = ran.stdout.split()
    assert status == "succeeded" and url.startswith(f"{base}/v1/jobs/job_")
    assert int(listed) == 1 and int(size) > 1000
    job = await svc.get(url.split("/")[-3])
    assert job["settled_at"] and job["outputs"][0]["bytes"] == int(size)


async def test_a_generated_client_drives_a_job_from_create_to_succeeded(
    service: Start, generated: dict[str, Any], tmp_path: Path
) -> None:
    svc = await service(sim_eta_seconds=0.5, output_store=str(tmp_path / "outputs"))
    m = generated
    models = m["models"]
    token = svc.headers["Authorization"].removeprefix("Bearer ")
    client = m["client"].AuthenticatedClient(
        base_url=str(svc.client.base_url), token=token, timeout=httpx.Timeout(60)
    )
    async with client:
        request = models.JobRequest(
            image=IMAGE, prompt="a harbour", width=128, height=96, metadata=_metadata(models)
        )
        created = await m["api.jobs.create_job"].asyncio_detailed(client=client, body=request)
        assert created.status_code == 202
        job = created.parsed
        assert isinstance(job, models.Job) and job.status == models.JobStatus.QUEUED
        assert job.metadata.to_dict() == {"order": 7, "team": "harbour"}

        # a wait ends when the job is settled: succeeded, and its outputs kept
        kept = await m["api.jobs.get_job"].asyncio(job.id, client=client, wait=30)
        assert isinstance(kept, models.Job) and kept.status == models.JobStatus.SUCCEEDED
        assert kept.archive_status == models.ArchiveStatus.DONE
        assert kept.completed_at is not None and kept.settled_at is not None  # datetimes
        assert kept.completed_at.tzinfo is not None and kept.settled_at >= kept.completed_at
        done = kept
        image = await m["api.jobs.get_job_output"].asyncio_detailed(job.id, 0, client=client)
        assert image.status_code == 200
        assert image.content == (await svc.client.get(done.output[0])).content
        assert kept.outputs[0].sha256 == hashlib.sha256(image.content).hexdigest()

        events = await m["api.jobs.list_job_events"].asyncio(job.id, client=client)
        assert isinstance(events, models.EventList)
        kinds = [e.kind for e in events.items]
        assert kinds[0] == "created" and kinds[-1] == "archived"
        assert [e.to_status for e in events.items if e.kind == "transition"][-1] == (
            models.JobStatus.SUCCEEDED
        )

        # a paginated list: one job a page, following next_cursor
        second = await m["api.jobs.create_job"].asyncio(client=client, body=request)
        assert isinstance(second, models.Job)
        seen = []
        cursor = m["types"].UNSET
        for _ in range(5):
            page = await m["api.jobs.list_jobs"].asyncio(client=client, limit=1, cursor=cursor)
            assert isinstance(page, models.JobList) and len(page.items) == 1
            seen.append(page.items[0].id)
            if not page.next_cursor:
                break
            cursor = page.next_cursor
        assert seen == [second.id, job.id]
        queued = await m["api.jobs.list_jobs"].asyncio(
            client=client, status=models.JobStatus.SUCCEEDED
        )
        assert [j.id for j in queued.items] == [job.id]

        # a cancel, and a cancel too late (409, a parsed Problem)
        canceled = await m["api.jobs.cancel_job"].asyncio(second.id, client=client)
        assert isinstance(canceled, models.Job) and canceled.status == models.JobStatus.CANCELED
        again = await m["api.jobs.cancel_job"].asyncio_detailed(second.id, client=client)
        assert again.status_code == 409 and isinstance(again.parsed, models.Problem)
        assert again.parsed.type_ == "/problems/job-terminal"

        # a 422: the generated model sends what the server refuses, and reads the answer
        bad = models.JobRequest(image="not an image", width=8)
        refused = await m["api.jobs.create_job"].asyncio_detailed(client=client, body=bad)
        assert refused.status_code == 422 and isinstance(refused.parsed, models.Problem)
        assert {e.field for e in refused.parsed.errors} == {"image", "width"}
        problem_page = await svc.client.get(refused.parsed.type_)
        assert problem_page.status_code == 200 and "Invalid request" in problem_page.text

        missing = await m["api.jobs.get_job"].asyncio_detailed("job_nope", client=client)
        assert missing.status_code == 404 and isinstance(missing.parsed, models.Problem)


def _metadata(models: Any) -> Any:
    metadata = models.JobRequestMetadata()
    metadata["order"] = 7
    metadata["team"] = "harbour"
    return metadata
