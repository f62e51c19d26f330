"""schemathesis against the app's own /openapi.json on a real uvicorn, as an integrating team
would run it (`st run --checks all`): no 5xx, every response as documented, every request
the document allows accepted and every request it forbids refused."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from service import netguard
from service.api.openapi import build_document
from service.app import create_app
from service.domain.requests import JobRequest
from service.store import Store
from service.store.migrate import upgrade
from tests.conftest import make_settings, now
from tests.live import free_port

pytestmark = pytest.mark.e2e


def _resolve_to_loopback(host: str, port: int, timeout: float = 3.0) -> Any:
    """For the fuzzed server only: every name a generated callback_url carries "resolves"
    to loopback, so the API's checks run without a DNS query leaving the machine."""

    async def resolved() -> list[Any]:
        try:
            return [ipaddress.ip_address(host)]
        except ValueError:
            return [ipaddress.ip_address("127.0.0.1")]

    return resolved()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.db'}"
    upgrade(url)

    async def make_key() -> str:
        store = Store.connect(url)
        try:
            raw, _ = await store.clients.create_key("fuzzer", ["admin"], now())
            principal = await store.clients.authenticate(raw, now())
            assert principal is not None
            for _ in range(3):  # so lists answer jobs, and their shape is checked too
                await store.jobs.create_job(
                    principal.client_id,
                    JobRequest(image="https://example.invalid/a.png"),
                    None,
                    now(),
                )
            return raw
        finally:
            await store.close()

    key = asyncio.run(make_key())
    port = free_port()
    # The whole service, simulator and workers included, so a job the fuzzer makes ends in
    # a moment (its image cannot be fetched: failed) and a wait on it is short.
    app = create_app(
        make_settings(
            url,
            port=port,
            client_jobs_per_minute=100_000,
            client_max_unfinished=100_000,
            allow_private_callbacks=True,
            sim_eta_seconds=0.05,
            submit_idle_seconds=0.05,
            callback_retry_schedule="0",
        ),
    )
    patch = pytest.MonkeyPatch()
    patch.setattr(netguard, "resolve", _resolve_to_loopback)
    srv = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(500):
        if srv.started:
            break
        time.sleep(0.01)
    yield {"url": f"http://127.0.0.1:{port}", "headers": {"Authorization": f"Bearer {key}"}}
    srv.should_exit = True
    thread.join(15)
    patch.undo()


def test_the_document_lists_the_public_routes_only(server: dict[str, Any]) -> None:
    import httpx

    doc = httpx.get(f"{server['url']}/openapi.json").json()
    assert doc["servers"] == [{"url": server["url"], "description": "This deployment"}]
    assert doc == build_document(server["url"])
    assert doc["openapi"].startswith("3.1")
    assert set(doc["paths"]) == {
        "/v1/jobs",
        "/v1/jobs/{job_id}",
        "/v1/jobs/{job_id}/events",
        "/v1/jobs/{job_id}/event-links",
        "/v1/jobs/{job_id}/outputs/{n}",
        "/v1/jobs/{job_id}/cancel",
        "/v1/jobs/{job_id}/refresh",
        "/v1/jobs/{job_id}/callbacks/replay",
        "/v1/stats",
        "/v1/stats/series",
        "/v1/me",
    }
    tags = {op["tags"][0] for path in doc["paths"].values() for op in path.values()}
    assert tags == {"jobs", "stats", "keys"}
    ids = [op["operationId"] for path in doc["paths"].values() for op in path.values()]
    assert len(ids) == len(set(ids)) == 12
    assert set(doc["webhooks"]) == {"job.succeeded", "job.failed", "job.timed_out", "job.canceled"}


def test_schemathesis_checks_all_finds_nothing(server: dict[str, Any], tmp_path: Path) -> None:
    """The command a team would run (`st run --checks all`): every phase (examples,
    coverage, fuzzing, stateful), every check, against the live service."""
    st = Path(sys.executable).parent / "st"
    # The key through the document's own security scheme, so the checks that drop it (401
    # expected) can drop it: a --header would be sent on every request regardless.
    token = server["headers"]["Authorization"].removeprefix("Bearer ")
    (tmp_path / "schemathesis.toml").write_text(f'[auth.openapi.bearer]\nbearer = "{token}"\n')
    done = subprocess.run(
        [
            str(st), "run", f"{server['url']}/openapi.json",
            "--checks", "all",
            "--max-examples", "30",
            "--seed", "20261125",
            "--generation-database", "none",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env={
            **os.environ,
            "SCHEMATHESIS_HOOKS": "tests.e2e.fuzz_hooks",
            "PYTHONPATH": os.pathsep.join(
                [str(Path(__file__).parents[2]), os.environ.get("PYTHONPATH", "")]
            ),
        },
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "No issues found" in done.stdout or "passed" in done.stdout, done.stdout[-3000:]
