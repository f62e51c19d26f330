"""Transcripts of what a scenario left in a store (the job, its events, the counters, the
outbox) without what differs by backend only (row ids), and `agree`, which runs a scenario
on the backend under test and on the SQLite reference and holds them to each other."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from service.domain.jobs import Job
from service.domain.replies import ProviderReply
from service.provider.replies import parse_reply
from service.store import Store

Scenario = Callable[[Store], Awaitable[Any]]


async def agree(store: Store, reference: Store, scenario: Scenario) -> Any:
    """Run `scenario` on both stores; their transcripts must be equal. Returns it."""
    mine = await scenario(store)
    theirs = await scenario(reference)
    assert mine == theirs, first_difference(mine, theirs)
    return mine


def first_difference(a: Any, b: Any, path: str = "") -> str:
    """Where two transcripts part, to read in a failure."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if a.get(key) != b.get(key):
                return first_difference(a.get(key), b.get(key), f"{path}.{key}")
    elif isinstance(a, list | tuple) and isinstance(b, list | tuple) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return first_difference(x, y, f"{path}[{i}]")
    return f"{path or 'transcript'}: {a!r} (backend under test) != {b!r} (SQLite reference)"


def view(job: Job | None) -> dict[str, Any] | None:
    """A job without what differs by backend only (row ids)."""
    if job is None:
        return None
    out = {k: v for k, v in job.__dict__.items() if k not in ("id", "public_id", "client_id")}
    out["status"] = job.status.value
    return out


def masked(detail: Any) -> Any:
    if isinstance(detail, dict):
        return {k: masked(v) for k, v in detail.items()}
    if isinstance(detail, str) and detail.startswith("msg_"):
        return "msg_*"
    return detail


async def history(store: Store, job: Job) -> list[tuple[Any, ...]]:
    return [
        (e.kind, e.source, e.from_status, e.to_status, masked(e.detail), e.at)
        for e in await store.jobs.list_events(job.id)
    ]


async def outbox(store: Store, job: Job) -> dict[str, Any] | None:
    d = await store.callbacks.delivery_of_job(job.id)
    if d is None:
        return None
    out = {k: v for k, v in d.__dict__.items() if k not in ("id", "job_id", "client_id")}
    out["webhook_id"] = d.webhook_id[:4]
    if d.body is not None:  # the job's own ids differ by backend
        body = json.loads(d.body)
        del body["data"]["id"], body["data"]["track_id"]
        out["body"] = body
    return out


async def transcript(store: Store, job: Job) -> dict[str, Any]:
    fresh = await store.jobs.get_job_by_id(job.id)
    return {
        "job": view(fresh),
        "events": await history(store, job),
        "counts": await store.stats.counts_by_status(),
        "outbox": await outbox(store, job),
    }


def reply(status: str, **body: Any) -> ProviderReply:
    """A provider reply as the client normalises it (`id`, `eta`, `output`, `message`…)."""
    return parse_reply({"status": status, **body})
