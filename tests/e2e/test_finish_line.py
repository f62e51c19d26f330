"""One finish line: with outputs kept, every channel a client can wait on (`Prefer: wait`,
`?wait`, the event stream, the callback, `submit --wait`) ends at the same moment, the job
settled, and says the same thing: where its image is kept."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from httpx_sse import aconnect_sse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.e2e.conftest import Running, Start
from tests.live import LiveServer
from tests.processes import clean_env

pytestmark = pytest.mark.e2e

BODY = {"image": "https://example.invalid/in.png", "prompt": "a pier", "width": 128, "height": 96}
# What a settled job says the same way everywhere (its version and callback status move on
# as its callback is delivered).
SETTLED = ("id", "status", "output", "outputs", "archive_status", "settled_at", "completed_at")


def settled_view(job: dict[str, Any]) -> dict[str, Any]:
    assert job["settled_at"] and job["archive_status"] == "done", job
    assert job["outputs"] and job["outputs"][0]["url"].endswith(f"/v1/jobs/{job['id']}/outputs/0")
    return {k: job[k] for k in SETTLED}


class Receiver:
    """A client's callback endpoint on loopback."""

    def __init__(self) -> None:
        self.bodies: dict[str, dict[str, Any]] = {}
        self.arrived = asyncio.Event()

    async def endpoint(self, request: Request) -> Response:
        body = json.loads(await request.body())
        self.bodies[body["data"]["id"]] = body
        self.arrived.set()
        return Response(status_code=204)

    async def body_of(self, job_id: str) -> dict[str, Any]:
        while job_id not in self.bodies:
            self.arrived.clear()
            await asyncio.wait_for(self.arrived.wait(), 30)
        return self.bodies[job_id]


async def delivered(svc: Running, job_id: str) -> dict[str, Any]:
    """The job once its callback is recorded as delivered (each look waits for a change)."""
    job = await svc.get(job_id)
    for _ in range(20):
        if job["callback_status"] == "delivered":
            return job
        r = await svc.client.get(
            f"/v1/jobs/{job_id}?wait=5&since_version={job['version']}",
            headers=svc.headers,
            timeout=10,
        )
        job = r.json()
    raise AssertionError(f"callback still {job['callback_status']}")


async def test_every_channel_ends_at_the_same_settled_job(service: Start, tmp_path: Path) -> None:
    receiver = Receiver()
    hooks = LiveServer()
    await hooks.start(Starlette(routes=[Route("/hook", receiver.endpoint, methods=["POST"])]))
    try:
        svc = await service(
            sim_eta_seconds=0.5,
            output_store=str(tmp_path / "outputs"),
            allow_private_callbacks=True,
        )
        body = {**BODY, "callback_url": f"{hooks.url}/hook"}

        # Prefer: wait answers 201 with the settled job: its image kept
        held = await svc.client.post(
            "/v1/jobs", json=body, headers={**svc.headers, "Prefer": "wait=30"}, timeout=40
        )
        assert held.status_code == 201, held.text
        first = settled_view(held.json())
        assert settled_view(await svc.get(first["id"])) == first
        callback = await receiver.body_of(first["id"])
        assert callback["type"] == "job.succeeded"
        assert settled_view(callback["data"]) == first

        # a second job, followed on every other channel from its creation
        job = await svc.create(body)
        assert job["settled_at"] is None
        url = f"/v1/jobs/{job['id']}"

        async def stream() -> tuple[list[dict[str, Any]], dict[str, Any]]:
            events: list[dict[str, Any]] = []
            async with aconnect_sse(
                svc.client, "GET", f"{url}/events", headers=dict(svc.headers), timeout=40
            ) as source:
                async for sse in source.aiter_sse():
                    if sse.event == "settled":
                        return events, json.loads(sse.data)
                    events.append(json.loads(sse.data))
            raise AssertionError(f"no settled message after {events}")

        waited, (events, streamed) = await asyncio.gather(
            svc.client.get(f"{url}?wait=30", headers=svc.headers, timeout=40), stream()
        )
        assert waited.status_code == 200
        second = settled_view(waited.json())
        assert settled_view(streamed) == second
        # the stream's last event is the archive's, after the terminal transition
        kinds = [e["kind"] for e in events]
        assert kinds[-1] == "archived" and "transition" in kinds
        assert events[-1]["id"] == max(e["id"] for e in events)
        assert settled_view((await receiver.body_of(job["id"]))["data"]) == second
        # a reconnect after the settling event: 204, and an EventSource stops there
        done = await svc.client.get(
            f"{url}/events",
            headers={
                **svc.headers,
                "Accept": "text/event-stream",
                "Last-Event-ID": str(events[-1]["id"]),
            },
        )
        assert done.status_code == 204
        # later events (the callback's attempt) stay readable as a JSON page
        await delivered(svc, job["id"])
        later = await svc.client.get(
            f"{url}/events", headers={**svc.headers, "Last-Event-ID": str(events[-1]["id"])}
        )
        assert [e["kind"] for e in later.json()["items"]] == ["callback_attempt"]

        # the CLI: submit --wait ends on the same settled job, and says where it is kept
        env = clean_env()
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "service",
            "submit",
            "--image",
            BODY["image"],
            "--width",
            "128",
            "--height",
            "96",
            "--wait",
            "--api-url",
            str(svc.client.base_url),
            "--key",
            svc.headers["Authorization"].removeprefix("Bearer "),
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
        last = out.decode().strip().splitlines()[-1]
        cli_id = last.split()[0]
        third = settled_view(await svc.get(cli_id))
        assert "succeeded" in last and third["outputs"][0]["url"] in last
    finally:
        await hooks.stop()
