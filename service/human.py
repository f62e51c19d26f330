"""`outpaint-jobs jobs list|show|watch` and `outpaint-jobs submit`: the CLI for humans.

`jobs …` read the database (DATABASE_URL); `submit` goes through the REST API like any
client (OUTPAINT_API_URL, OUTPAINT_API_KEY), so validation, limits and wake-ups apply;
`submit --wait` follows the job's event stream rather than polling.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, TextIO

import httpx

from service.clock import utcnow
from service.domain.jobs import Job
from service.domain.settling import is_settled
from service.domain.states import JobStatus
from service.domain.views import event_json, job_json
from service.settings import Settings
from service.store import Store


def _seconds(delta: float) -> str:
    delta = int(round(delta))
    sign = "-" if delta < 0 else ""
    delta = abs(delta)
    return f"{sign}{delta // 60}m{delta % 60:02d}s" if delta >= 60 else f"{sign}{delta}s"


def progress_line(job: dict[str, Any], now: datetime) -> str:
    """One line of `jobs watch` / `submit --wait`: state, eta countdown, polls, webhooks."""
    parts = [f"{job['id']}  {job['status']:<10}"]
    if job["status"] in ("queued", "processing"):
        if job.get("eta_at"):
            left = (
                datetime.fromisoformat(job["eta_at"].replace("Z", "+00:00")) - now
            ).total_seconds()
            parts.append(f"eta {_seconds(left)}" if left >= 0 else f"overdue {_seconds(-left)}")
        else:
            parts.append("eta –")
    parts.append(f"polls {job['polls']}  webhooks {job['webhooks']}")
    if job.get("error"):
        parts.append(f"{job['error']['code']}: {job['error']['message']}")
    if job["status"] == "succeeded":
        parts.append(_where_kept(job))
    return "  ".join(parts)


def _where_kept(job: dict[str, Any]) -> str:
    """A succeeded job's outputs: this service's copies once kept, the provider's meanwhile."""
    if job.get("archive_status") == "pending":
        reason = f" ({job['archive_error']})" if job.get("archive_error") else ""
        return "keeping outputs" + reason + "…  " + " ".join(job["output"])
    kept = [o.get("url") or f"not kept: {o.get('error')}" for o in job.get("outputs") or []]
    return " ".join(kept or job["output"])


def _table(rows: list[list[str]], out: TextIO) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip(), file=out
        )


async def _find(store: Store, ident: str) -> Job | None:
    if ident.isascii() and ident.isdigit() and len(ident) <= 18:
        return await store.jobs.get_job_by_id(int(ident))
    return await store.jobs.get_job(ident)


def jobs_list(settings: Settings, status: str | None, limit: int, out: TextIO = sys.stdout) -> int:
    async def run() -> list[Job]:
        store = Store.connect(settings.database_url)
        try:
            return await store.jobs.list_jobs(
                None, JobStatus(status) if status else None, None, limit
            )
        finally:
            await store.close()

    jobs = asyncio.run(run())
    rows = [["ID", "TRACK", "STATUS", "CREATED", "POLLS", "HOOKS", "ERROR"]]
    for job in jobs:
        rows.append(
            [
                job.public_id,
                str(job.id),
                job.status.value,
                f"{job.created_at:%Y-%m-%d %H:%M:%S}",
                str(job.polls),
                str(job.webhooks),
                job.error_code or "",
            ]
        )
    _table(rows, out)
    return 0


def jobs_show(settings: Settings, ident: str, out: TextIO = sys.stdout) -> int:
    async def run() -> tuple[Job | None, list[dict[str, Any]]]:
        store = Store.connect(settings.database_url)
        try:
            job = await _find(store, ident)
            events = [event_json(e) for e in await store.jobs.list_events(job.id)] if job else []
            return job, events
        finally:
            await store.close()

    job, events = asyncio.run(run())
    if job is None:
        print(f"outpaint-jobs: no job {ident}", file=sys.stderr)
        return 1
    print(json.dumps(job_json(job), indent=2), file=out)
    rows = [["AT", "KIND", "SOURCE", "MOVE", "DETAIL"]]
    for e in events:
        move = f"{e['from_status'] or '·'} → {e['to_status'] or '·'}" if e["to_status"] else ""
        rows.append([e["at"], e["kind"], e["source"], move, json.dumps(e["detail"])[:80]])
    _table(rows, out)
    return 0


def _draw(line: str, out: TextIO, last: str) -> str:
    if line == last:
        return last
    if out.isatty():
        print("\r\033[K" + line, end="", file=out, flush=True)
    else:
        print(line, file=out, flush=True)
    return line


def jobs_watch(settings: Settings, ident: str, interval: float, out: TextIO = sys.stdout) -> int:
    """Redraw the job's progress until it settles; exit 0 if it succeeded, 1 otherwise."""

    async def run() -> int:
        store = Store.connect(settings.database_url)
        last = ""
        try:
            while True:
                job = await _find(store, ident)
                if job is None:
                    print(f"outpaint-jobs: no job {ident}", file=sys.stderr)
                    return 1
                last = _draw(progress_line(job_json(job), utcnow()), out, last)
                if is_settled(job):
                    if out.isatty():
                        print(file=out)
                    return 0 if job.status is JobStatus.SUCCEEDED else 1
                await asyncio.sleep(interval)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except KeyboardInterrupt:
        return 130


def submit(
    api_url: str,
    key: str | None,
    body: dict[str, Any],
    wait: bool,
    timeout: float,
    out: TextIO = sys.stdout,
) -> int:
    """Create a job through the API; with `wait`, follow its event stream (Server-Sent
    Events, resumed with Last-Event-ID if the connection drops) until it settles,
    redrawing its progress line; the stream's last message is the settled job, with
    where its outputs are kept."""
    key = key or os.environ.get("OUTPAINT_API_KEY")
    if not key:
        print("outpaint-jobs: pass --key or set OUTPAINT_API_KEY", file=sys.stderr)
        return 2
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=api_url.rstrip("/"), headers=headers, timeout=30) as client:
        response = client.post("/v1/jobs", json=body)
        if response.status_code not in (200, 201, 202):
            print(f"outpaint-jobs: {response.status_code} {response.text}", file=sys.stderr)
            return 1
        job = response.json()
        if not wait:
            print(json.dumps(job, indent=2), file=out)
            return 0
        drawn = [_draw(progress_line(job, utcnow()), out, "")]

        def show(j: dict[str, Any]) -> None:
            drawn[0] = _draw(progress_line(j, utcnow()), out, drawn[0])

        try:
            job = _follow(client, job, timeout, show)
        except TimeoutError:
            print(f"\noutpaint-jobs: still {job['status']} after {timeout:g} s", file=sys.stderr)
            return 1
        show(job)
        if out.isatty():
            print(file=out)
        return 0 if job["status"] == "succeeded" else 1


def _follow(
    client: httpx.Client,
    job: dict[str, Any],
    timeout: float,
    draw: Callable[[dict[str, Any]], object],
) -> dict[str, Any]:
    """The job once settled, its progress drawn from its events as they come."""
    from httpx_sse import SSEError, connect_sse

    deadline = time.monotonic() + timeout
    path = f"/v1/jobs/{job['id']}/events"
    seen: str | None = None
    shown = dict(job)
    while time.monotonic() < deadline:
        headers = {"Last-Event-ID": seen} if seen else {}
        read = httpx.Timeout(30, read=max(min(deadline - time.monotonic(), 60), 1))
        try:
            with connect_sse(client, "GET", path, headers=headers, timeout=read) as source:
                if source.response.status_code == 204:  # settled, and we saw it settle
                    break
                source.response.raise_for_status()
                for event in source.iter_sse():
                    if event.event == "settled":  # the last message: the settled job
                        settled: dict[str, Any] = event.json()
                        return settled
                    seen = event.id or seen
                    _fold(shown, event.json())
                    draw(shown)
        except (httpx.TransportError, SSEError):
            time.sleep(0.5)  # the connection dropped: resume after the last event seen
    else:
        raise TimeoutError
    final: dict[str, Any] = client.get(f"/v1/jobs/{job['id']}").json()
    return final


def _fold(job: dict[str, Any], event: dict[str, Any]) -> None:
    """What an event tells the progress line: the state it moved to, a poll, a webhook."""
    if event.get("to_status"):
        job["status"] = event["to_status"]
    if event.get("kind") == "poll":
        job["polls"] = job.get("polls", 0) + 1
    elif event.get("kind") == "webhook":
        job["webhooks"] = job.get("webhooks", 0) + 1
