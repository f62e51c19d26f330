"""A browser follows a job through an event link: a page on another loopback origin (CORS
allowed) opens `new EventSource(url)` with no key, sees every event once up to the one that
settled the job, resumes with Last-Event-ID after the network drops, and ends on the settled
job with its kept outputs. Headless Chromium, the real service and simulator."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from service.app import create_app, simulator_config
from service.provider.simulator import Simulator
from service.store import Store
from tests.conftest import make_settings, now
from tests.e2e.conftest import FAST
from tests.live import LiveServer

pytestmark = pytest.mark.e2e

BODY = {"image": "https://example.invalid/in.png", "prompt": "a pier", "width": 128, "height": 96}

# A team's page: it is handed the link by its backend and follows the job with it.
PAGE = """<!doctype html><meta charset="utf-8"><title>follow a job</title>
<script>
window.seen = []; window.errors = 0; window.settled = null;
const KINDS = ["created", "submit", "transition", "webhook", "poll", "archived", "ignored",
               "warning", "submit_error", "poll_error", "callback_attempt", "action"];
window.follow = url => {
  const source = new EventSource(url);
  for (const kind of KINDS) {
    source.addEventListener(kind, e => window.seen.push({ id: e.lastEventId, data: JSON.parse(e.data) }));
  }
  source.addEventListener("settled", e => { window.settled = JSON.parse(e.data); source.close(); });
  source.onerror = () => { window.errors += 1; };
};
</script>"""


async def page_app(_request: Request) -> HTMLResponse:
    return HTMLResponse(PAGE)


async def test_a_page_on_another_origin_follows_a_job_to_its_settling(
    db_url: str, browser: Browser, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The simulator runs apart, so the API can be restarted mid-job: the restart ends the
    page's stream (a complete response), and the browser reconnects by itself with
    Last-Event-ID to the new server."""
    caplog.set_level(logging.INFO)
    pages, sim, api = LiveServer(), LiveServer(), LiveServer()
    origin = f"http://localhost:{pages.port}"
    settings = make_settings(
        db_url,
        **FAST,
        host="127.0.0.1",
        port=api.port,
        public_base_url=api.url,
        modelslab_api_key="sim-key",
        modelslab_base_url=f"{sim.url}/api/v6",
        output_store=str(tmp_path / "outputs"),
        allow_private_callbacks=True,  # the simulator's outputs are on loopback
        cors_allow_origins=origin,
    )
    simulator = Simulator(
        replace(
            simulator_config(settings, sim.url, "sim-key"),
            allow_private_urls=True,
            eta_seconds=2.0,
        )
    )
    await pages.start(Starlette(routes=[Route("/", page_app)]))
    await sim.start(simulator.app)
    await api.start(create_app(settings))
    try:
        store = Store.connect(db_url)
        raw, _ = await store.clients.create_key("team-a", ["jobs:write", "jobs:read"], now())
        await store.close()
        headers = {"Authorization": f"Bearer {raw}"}
        async with httpx.AsyncClient(base_url=api.url, headers=headers, timeout=10) as client:
            job = (await client.post("/v1/jobs", json=BODY)).json()
            # the team's backend makes the link, with its key, and hands it to its page
            made = await client.post(f"/v1/jobs/{job['id']}/event-links")
            assert made.status_code == 201
            link = made.json()["url"]
            token = link.split("token=", 1)[1]

            page = await browser.new_page()
            await page.goto(f"{origin}/")
            await page.evaluate("url => window.follow(url)", link)
            # the job is running (eta 2 s): restart the API under the page's feet
            await page.wait_for_function(
                "() => window.seen.some(e => e.data.to_status === 'processing')"
            )
            await api.stop()
            await page.wait_for_function("() => window.errors > 0")  # it lost the stream
            await api.start(create_app(settings))
            await page.wait_for_function("() => window.settled !== null", timeout=30_000)
            seen: list[dict[str, Any]] = await page.evaluate("window.seen")
            settled: dict[str, Any] = await page.evaluate("window.settled")
            await page.close()

            history = (await client.get(f"/v1/jobs/{job['id']}/events")).json()["items"]
            now_job = (await client.get(f"/v1/jobs/{job['id']}")).json()
    finally:
        for server in (api, sim, pages):
            await server.stop()
        await simulator.aclose()

    # every event once, in order, as the history has them, up to the settling (the archive's)
    ids = [int(e["id"]) for e in seen]
    assert ids == sorted(set(ids)), ids
    assert [e["data"] for e in seen] == history[: len(seen)]
    assert seen[-1]["data"]["kind"] == "archived"
    # and the same settled job as a key holder reads, with where its image is kept
    assert settled["settled_at"] and settled["settled_at"] == now_job["settled_at"]
    assert settled["outputs"] == now_job["outputs"] and settled["outputs"][0]["url"]
    # the browser resumed on the new server after the last event it had
    resumed = [r.getMessage() for r in caplog.records if "/events?token=" in r.getMessage()]
    assert len(resumed) >= 2, resumed
    # the token was in the URL of every such request, never in a log line
    assert all(token not in r.getMessage() for r in caplog.records)
    assert all("token=evl_[redacted] " in line for line in resumed)
