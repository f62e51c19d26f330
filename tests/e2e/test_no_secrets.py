"""Run a job end to end, with refusals, and capture every log line: no API key, provider
key or webhook token appears in the logs, in the job's events, or in any error body."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from service.app import create_app
from service.domain.tokens import make_token
from service.provider.simulator import Simulator, SimulatorConfig
from tests.conftest import make_settings
from tests.live import LiveServer

pytestmark = pytest.mark.e2e

PROVIDER_KEY = "sk-live-provider-key-5b0e7c9d"
WEBHOOK_SECRET = "webhook-secret-for-the-test"


async def test_no_secret_reaches_logs_events_or_errors(
    db_url: str, live: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    provider = LiveServer()
    simulator = Simulator(
        SimulatorConfig(
            public_url=provider.url,
            eta_seconds=0.2,
            api_key=PROVIDER_KEY,
            allow_private_urls=True,
        )
    )
    await provider.start(simulator.app)
    settings = make_settings(
        db_url,
        host="127.0.0.1",
        port=live.port,
        modelslab_api_key=PROVIDER_KEY,
        modelslab_base_url=f"{provider.url}/api/v6",
        webhook_secret=WEBHOOK_SECRET,
        eta_grace_seconds=30,
        sweep_interval_seconds=0.1,
    )
    app = create_app(settings)
    await live.start(app)
    secrets: list[str] = [PROVIDER_KEY, WEBHOOK_SECRET]
    bodies: list[str] = []
    try:
        store = app.state.ctx.store
        raw, whsec = await store.clients.create_key(
            "team-a", ["jobs:write", "jobs:read"], app.state.ctx.runtime.clock()
        )
        secrets += [raw, whsec or ""]
        headers = {"Authorization": f"Bearer {raw}"}
        async with httpx.AsyncClient(base_url=live.url, timeout=10) as client:
            job = (
                await client.post(
                    "/v1/jobs", json={"image": "https://example.invalid/a.png"}, headers=headers
                )
            ).json()
            token = make_token(WEBHOOK_SECRET, job["track_id"])
            secrets.append(token)
            for _ in range(200):
                job = (await client.get(f"/v1/jobs/{job['id']}", headers=headers)).json()
                if job["status"] == "succeeded":
                    break
                await __import__("asyncio").sleep(0.02)
            assert job["status"] == "succeeded" and job["webhooks"] == 1
            # Refusals of every kind, each of which could echo what it was given.
            bodies.append(
                (await client.get("/v1/jobs", headers={"Authorization": f"Bearer {raw}x"})).text
            )
            bodies.append((await client.post(f"/webhooks/modelslab/{token}x", json={})).text)
            bodies.append((await client.post(f"/webhooks/modelslab/{token}", content=b"{")).text)
            bodies.append(
                (await client.post(f"/webhooks/modelslab/{token}", json={"track_id": 999999})).text
            )
            bodies.append(
                (
                    await client.post(
                        "/v1/jobs", json={"image": raw, "key": PROVIDER_KEY}, headers=headers
                    )
                ).text
            )
            events = (await client.get(f"/v1/jobs/{job['id']}/events", headers=headers)).text
            bodies.append(json.dumps(job))
    finally:
        await live.stop()
        await provider.stop()
    logged = "\n".join(
        f"{r.getMessage()} {r.args!r} {r.__dict__.get('exc_text') or ''}" for r in caplog.records
    )
    assert "/webhooks/modelslab/[redacted]" in logged  # the access log did see those calls
    for secret in secrets:
        assert secret not in logged, secret
        assert secret not in events, secret
        for body in bodies:
            assert secret not in body, (secret, body)
