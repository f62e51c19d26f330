"""A worker SIGKILLed in the middle of delivering a callback: another worker delivers it
after the claim's lease, with the same webhook-id (at least once, deduplicable)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service.domain.states import JobStatus
from service.store import Store
from tests.conftest import now
from tests.factories import processing_job, to
from tests.live import LiveServer, free_port
from tests.processes import Proc, crash_worker_env

pytestmark = pytest.mark.e2e


async def test_a_delivery_cut_off_by_sigkill_is_finished_by_another_worker(
    db_url: str, live: LiveServer, tmp_path: Path
) -> None:
    seen: list[dict[str, Any]] = []
    first_arrived = asyncio.Event()
    secret_box: list[str] = []

    async def hook(request: Request) -> Response:
        body = (await request.body()).decode()
        Webhook(secret_box[0]).verify(body, dict(request.headers))  # raises if forged
        seen.append({"id": request.headers["webhook-id"]})
        if len(seen) == 1:
            first_arrived.set()
            await asyncio.sleep(5)  # worker A dies while it waits
        return Response(status_code=204)

    await live.start(Starlette(routes=[Route("/hook", hook, methods=["POST"])]))
    store = Store.connect(db_url)
    try:
        raw, secret = await store.clients.create_key("team-a", ["jobs:write"], now())
        assert secret is not None
        secret_box.append(secret)
        principal = await store.clients.authenticate(raw, now())
        assert principal is not None
        job = await processing_job(
            store, principal.client_id, now(), callback_url=f"{live.url}/hook"
        )
        await store.changes.apply_change(job, to(JobStatus.SUCCEEDED, output=("u",)), now())

        env = crash_worker_env(db_url, CALLBACK_TIMEOUT_SECONDS="1", WEBHOOK_SECRET="cb-crash")
        a = Proc(["worker", "--port", str(free_port())], env, tmp_path / "a.log")
        try:
            await asyncio.wait_for(first_arrived.wait(), 20)
        finally:
            a.kill(signal.SIGKILL)  # mid-delivery: the request is still open
        b = Proc(["worker", "--port", str(free_port())], env, tmp_path / "b.log")
        try:
            for _ in range(300):
                delivery = await store.callbacks.delivery_of_job(job.id)
                if delivery is not None and delivery.status == "delivered":
                    break
                await asyncio.sleep(0.05)
        finally:
            b.kill(signal.SIGTERM)
        assert delivery is not None and delivery.status == "delivered", (
            tmp_path / "b.log"
        ).read_text()[-2000:]
        assert len(seen) == 2 and seen[0]["id"] == seen[1]["id"] == delivery.webhook_id
        events = [
            e.detail for e in await store.jobs.list_events(job.id) if e.kind == "callback_attempt"
        ]
        assert [e["outcome"] for e in events] == ["delivered"]  # A died before recording
    finally:
        await store.close()
