"""The whole service on a real uvicorn with the built-in simulator, for e2e tests."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, async_playwright

from service.app import create_app
from service.provider.simulator import Simulator
from service.store import Store
from tests.conftest import make_settings
from tests.live import LiveServer

FAST = {
    "sweep_interval_seconds": 0.1,
    "submit_idle_seconds": 0.1,
    "retry_backoff_base_seconds": 0.05,
    "retry_backoff_max_seconds": 0.5,
    "poll_backoff_base_seconds": 0.1,
    "poll_backoff_max_seconds": 0.5,
    "poll_rate_per_second": 200,
}


@dataclass
class Running:
    client: httpx.AsyncClient
    headers: dict[str, str]
    store: Store
    simulator: Simulator

    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        r = await self.client.post("/v1/jobs", json=body, headers=self.headers)
        assert r.status_code == 202, r.text
        return r.json()  # type: ignore[no-any-return]

    async def get(self, job_id: str) -> dict[str, Any]:
        return (await self.client.get(f"/v1/jobs/{job_id}", headers=self.headers)).json()  # type: ignore[no-any-return]

    async def events(self, job_id: str) -> list[dict[str, Any]]:
        r = await self.client.get(f"/v1/jobs/{job_id}/events", headers=self.headers)
        return r.json()["items"]  # type: ignore[no-any-return]

    async def wait_all(self, job_ids: list[str], seconds: float = 20) -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            jobs = [await self.get(j) for j in job_ids]
            if all(j["status"] not in ("queued", "processing") for j in jobs):
                return jobs
            if loop.time() > deadline:
                stuck = [
                    (j["id"], j["status"]) for j in jobs if j["status"] in ("queued", "processing")
                ]
                raise AssertionError(f"unfinished: {stuck}")
            await asyncio.sleep(0.05)


Start = Callable[..., Awaitable[Running]]


@pytest.fixture
async def service(db_url: str, live: LiveServer) -> AsyncIterator[Start]:
    clients: list[httpx.AsyncClient] = []

    async def start(**overrides: object) -> Running:
        settings = make_settings(db_url, host="127.0.0.1", port=live.port, **{**FAST, **overrides})
        app = create_app(settings)
        await live.start(app)
        ctx = app.state.ctx
        raw, _ = await ctx.store.clients.create_key(
            "team-a", ["jobs:write", "jobs:read"], ctx.runtime.clock()
        )
        client = httpx.AsyncClient(base_url=live.url, timeout=10)
        clients.append(client)
        return Running(client, {"Authorization": f"Bearer {raw}"}, ctx.store, app.state.simulator)

    yield start
    for c in clients:
        await c.aclose()


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Debian's headless Chromium, driven by Playwright's Python package. The dashboard's
    CSP forbids eval: give `page.wait_for_function` a function (`() => …`), which Playwright
    calls, not an expression, which it would eval once it has to poll."""
    assert shutil.which("chromium"), (
        "install Debian's chromium (apt-get install chromium); .ci/run does"
    )
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        await b.close()
