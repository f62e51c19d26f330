"""schemathesis against the app's own /openapi.json on a real uvicorn: a bounded number of
generated requests per operation; no 5xx, and every response conforms to the document."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings
from schemathesis import checks as st_checks
from schemathesis.specs.openapi import checks as oa_checks

from service.api.openapi import build_document
from service.app import create_app
from service.domain.requests import JobRequest
from service.store import Store
from service.store.migrate import upgrade
from tests.conftest import make_settings, now
from tests.live import free_port

pytestmark = pytest.mark.e2e

CHECKS = [
    st_checks.not_a_server_error,
    oa_checks.status_code_conformance,
    oa_checks.content_type_conformance,
    oa_checks.response_schema_conformance,
    oa_checks.response_headers_conformance,
]


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
    app = create_app(
        make_settings(
            url, port=port, client_jobs_per_minute=100_000, client_max_unfinished=100_000
        ),
        run_workers=False,
    )
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


# The document the server serves (checked below), loaded without a server so the cases
# are known at collection time.
schema = schemathesis.openapi.from_dict(build_document())


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_error_and_responses_conform(case: Any, server: dict[str, Any]) -> None:
    case.call_and_validate(base_url=server["url"], headers=server["headers"], checks=CHECKS)


def test_the_document_lists_every_route(server: dict[str, Any]) -> None:
    import httpx

    doc = httpx.get(f"{server['url']}/openapi.json").json()
    assert doc == build_document()
    assert doc["openapi"].startswith("3.1")
    assert set(doc["paths"]) == {
        "/v1/jobs",
        "/v1/jobs/{job_id}",
        "/v1/jobs/{job_id}/events",
        "/v1/jobs/{job_id}/cancel",
        "/v1/jobs/{job_id}/refresh",
        "/v1/jobs/{job_id}/callbacks/replay",
        "/v1/stats",
        "/webhooks/modelslab/{token}",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/docs",
        "/dashboard",
    }
