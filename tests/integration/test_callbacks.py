"""Callbacks to a real receiver over HTTP, verified with the reference `standardwebhooks`
library: retries, timeouts, 410, redirects, Retry-After, rotation, replay, the outbox."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service.domain.decisions import WebhookCall
from service.domain.states import JobStatus
from service.provider.client import ModelsLabClient
from service.runtime.services import Runtime
from service.store import Store
from service.workers.runner import Workers
from tests.conftest import make_settings, now
from tests.factories import processing_job, to
from tests.live import LiveServer


@dataclass
class Receiver:
    """A client's endpoint: answers from a script, verifies every request it gets."""

    secrets: list[str] = field(default_factory=list)
    script: list[Any] = field(
        default_factory=list
    )  # status codes, or ("hang", s), ("retry", code, s)
    seen: list[dict[str, Any]] = field(default_factory=list)
    fail_first: int = 0  # answer 500 to the first attempts of every webhook-id

    async def endpoint(self, request: Request) -> Response:
        body = (await request.body()).decode()
        headers = dict(request.headers)
        verified = []
        for secret in self.secrets:
            try:
                Webhook(secret).verify(body, headers)
                verified.append(secret)
            except WebhookVerificationError:
                pass
        earlier = sum(1 for s in self.seen if s["id"] == headers.get("webhook-id"))
        if earlier < self.fail_first:
            step: Any = 500
        else:
            step = self.script.pop(0) if self.script else 200
        entry = {
            "id": headers.get("webhook-id"),
            "sig": headers.get("webhook-signature"),
            "body": json.loads(body),
            "verified": verified,
            "answer": step,
            "headers": headers,
        }
        self.seen.append(entry)
        if isinstance(step, tuple) and step[0] == "hang":
            await asyncio.sleep(step[1])
            return Response(status_code=200)
        if isinstance(step, tuple) and step[0] == "retry":
            return Response(status_code=step[1], headers={"Retry-After": str(step[2])})
        if step == 302:
            return Response(status_code=302, headers={"Location": "http://127.0.0.1:9/elsewhere"})
        return Response(status_code=int(step))

    def accepted(self) -> list[dict[str, Any]]:
        return [s for s in self.seen if s["answer"] == 200 and s["verified"]]


@dataclass
class Rig:
    store: Store
    receiver: Receiver
    url: str
    workers: Workers
    client_id: int
    secret: str


@pytest.fixture
async def rig(store: Store, db_url: str, live: LiveServer) -> AsyncIterator[Rig]:
    receiver = Receiver()
    await live.start(Starlette(routes=[Route("/hook", receiver.endpoint, methods=["POST"])]))
    raw, secret = await store.clients.create_key("team-a", ["jobs:write", "jobs:read"], now())
    assert secret is not None
    receiver.secrets = [secret]
    principal = await store.clients.authenticate(raw, now())
    assert principal is not None
    settings = make_settings(
        db_url,
        allow_private_callbacks=True,
        callback_retry_schedule="0,0.05,0.05,0.05",
        callback_timeout_seconds=1.0,  # a loaded CI machine still connects in time
        submit_idle_seconds=0.05,
        sweep_interval_seconds=60,
    )
    provider = ModelsLabClient("http://127.0.0.1:9/api/v6", "k")
    workers = Workers(Runtime(settings, store, provider, "s"))
    await workers.start()
    yield Rig(store, receiver, f"{live.url}/hook", workers, principal.client_id, secret)
    await workers.stop(timeout=2)
    await provider.aclose()


async def finish(rig: Rig, status: JobStatus = JobStatus.SUCCEEDED) -> int:
    job = await processing_job(rig.store, rig.client_id, now(), callback_url=rig.url)
    fields = {"output": ("https://cdn.invalid/x.png",)} if status is JobStatus.SUCCEEDED else {}
    applied = await rig.store.changes.apply_change(job, to(status, **fields), now())
    assert applied.changed
    rig.workers.wake()
    return job.id


async def settled(rig: Rig, job_id: int, seconds: float = 5) -> Any:
    for _ in range(int(seconds / 0.02)):
        delivery = await rig.store.callbacks.delivery_of_job(job_id)
        if delivery is not None and delivery.status in ("delivered", "dead"):
            return delivery
        await asyncio.sleep(0.02)
    raise AssertionError(f"delivery still {delivery and delivery.status}")


async def attempts(rig: Rig, job_id: int) -> list[dict[str, Any]]:
    return [
        e.detail for e in await rig.store.jobs.list_events(job_id) if e.kind == "callback_attempt"
    ]


async def test_failing_receiver_gets_exactly_one_verified_delivery_with_one_webhook_id(
    rig: Rig,
) -> None:
    rig.receiver.fail_first = 2  # each event fails twice, then succeeds
    job_ids = [await finish(rig) for _ in range(3)]
    for job_id in job_ids:
        assert (await settled(rig, job_id)).status == "delivered"
    accepted = rig.receiver.accepted()
    assert sorted(a["body"]["data"]["track_id"] for a in accepted) == sorted(job_ids)
    for job_id in job_ids:
        mine = [s for s in rig.receiver.seen if s["body"]["data"]["track_id"] == job_id]
        assert len({s["id"] for s in mine}) == 1  # one webhook-id for every attempt
        assert all(s["verified"] for s in mine)
        assert len([s for s in mine if s["answer"] == 200]) == 1
        history = await attempts(rig, job_id)
        assert [h["status_code"] for h in history] == [s["answer"] for s in mine]
        assert history[-1]["outcome"] == "delivered" and all(h["latency_ms"] >= 0 for h in history)
        job = await rig.store.jobs.get_job_by_id(job_id)
        assert job is not None and job.callback_status == "delivered"


async def test_the_event_carries_the_terminal_job_and_its_version(rig: Rig) -> None:
    job_id = await finish(rig)
    await settled(rig, job_id)
    [seen] = rig.receiver.seen
    body = seen["body"]
    assert body["type"] == "job.succeeded" and body["timestamp"].endswith("Z")
    assert body["data"]["status"] == "succeeded" and body["data"]["output"] == [
        "https://cdn.invalid/x.png"
    ]
    assert body["data"]["callback_status"] == "pending" and isinstance(body["data"]["version"], int)
    job = await rig.store.jobs.get_job_by_id(job_id)
    assert job is not None and job.version > body["data"]["version"]  # delivered bumped it


async def test_every_event_type_matches_the_documents_webhooks_section(rig: Rig) -> None:
    """What a receiving team generates its models from (`webhooks` in /openapi.json) is
    what arrives: the body against its schema, the signature headers present and shaped."""
    import re

    from jsonschema import Draft202012Validator

    from service.api.openapi import build_document

    document = build_document()
    ends = [JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.TIMED_OUT, JobStatus.CANCELED]
    for status in ends:
        await settled(rig, await finish(rig, status))
    assert len(rig.receiver.seen) == len(ends)
    for seen in rig.receiver.seen:
        body = seen["body"]
        operation = document["webhooks"][body["type"]]["post"]
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        validator = Draft202012Validator(
            {**schema, "components": document["components"]},
            format_checker=Draft202012Validator.FORMAT_CHECKER,
        )
        errors = [e.message for e in validator.iter_errors(body)]
        assert not errors, (body["type"], errors)
        for header in operation["parameters"]:
            value = seen["headers"].get(header["name"])
            assert value is not None or not header["required"], header["name"]
            pattern = header["schema"].get("pattern")
            assert pattern is None or re.search(pattern, value or ""), (header["name"], value)
    assert {s["body"]["type"] for s in rig.receiver.seen} == {f"job.{s.value}" for s in ends}


async def test_a_receiver_that_hangs_past_the_timeout_is_retried(rig: Rig) -> None:
    rig.receiver.script = [("hang", 2.0)]
    job_id = await finish(rig)
    assert (await settled(rig, job_id)).status == "delivered"
    history = await attempts(rig, job_id)
    assert [h["error"] for h in history] == ["timeout", None]


async def test_410_stops_the_retries(rig: Rig) -> None:
    rig.receiver.script = [410]
    job_id = await finish(rig, JobStatus.FAILED)
    delivery = await settled(rig, job_id)
    assert delivery.status == "dead" and delivery.attempts == 1
    await asyncio.sleep(0.2)
    assert len(rig.receiver.seen) == 1
    assert rig.receiver.seen[0]["body"]["type"] == "job.failed"
    job = await rig.store.jobs.get_job_by_id(job_id)
    assert job is not None and job.callback_status == "dead"


async def test_redirects_are_failures_and_the_schedule_ends_dead(rig: Rig) -> None:
    rig.receiver.script = [302] * 10
    job_id = await finish(rig)
    delivery = await settled(rig, job_id)
    assert delivery.status == "dead" and delivery.attempts == 4  # the whole schedule
    assert [h["outcome"] for h in await attempts(rig, job_id)] == ["failing"] * 3 + ["dead"]
    counts = await rig.store.callbacks.deliveries_by_status()
    assert counts == {"pending": 0, "failing": 0, "dead": 1}


async def test_retry_after_is_honoured(rig: Rig) -> None:
    rig.receiver.script = [("retry", 503, 1)]
    job_id = await finish(rig)
    for _ in range(100):
        history = await attempts(rig, job_id)
        if history:
            break
        await asyncio.sleep(0.02)
    first = history[0]
    assert first["status_code"] == 503
    delivery = await rig.store.callbacks.delivery_of_job(job_id)
    assert delivery is not None and delivery.next_attempt_at is not None
    assert delivery.next_attempt_at - now() > timedelta(seconds=0.5)
    assert (await settled(rig, job_id)).status == "delivered"


async def test_secret_rotation_signs_with_both_during_the_grace_period(rig: Rig) -> None:
    old = rig.secret
    new = await rig.store.clients.rotate_secret("team-a", now(), timedelta(hours=1))
    assert new is not None and new != old
    rig.receiver.secrets = [old, new]
    job_id = await finish(rig)
    await settled(rig, job_id)
    [seen] = rig.receiver.seen
    assert len(seen["sig"].split(" ")) == 2 and seen["verified"] == [old, new]
    # After the grace period only the new secret signs.
    newer = await rig.store.clients.rotate_secret("team-a", now(), timedelta(0))
    assert newer is not None
    rig.receiver.secrets = [new, newer]
    job_id = await finish(rig)
    await settled(rig, job_id)
    assert rig.receiver.seen[-1]["verified"] == [newer] and " " not in rig.receiver.seen[-1]["sig"]


async def test_replay_sends_the_same_webhook_id_again(rig: Rig) -> None:
    job_id = await finish(rig)
    first = await settled(rig, job_id)
    replayed = await rig.store.callbacks.replay_callback(job_id, now())
    assert replayed is not None and replayed.webhook_id == first.webhook_id
    rig.workers.wake()
    for _ in range(100):
        if len(rig.receiver.seen) == 2:
            break
        await asyncio.sleep(0.02)
    assert [s["id"] for s in rig.receiver.seen] == [first.webhook_id] * 2
    for _ in range(100):  # the receiver has answered; the notifier records the attempt next
        kinds = [e.kind for e in await rig.store.jobs.list_events(job_id)]
        if kinds.count("callback_attempt") == 2:
            break
        await asyncio.sleep(0.02)
    assert kinds.count("callback_attempt") == 2 and "callback_replay" in kinds


async def test_one_outbox_row_per_terminal_job_and_none_without_a_url(rig: Rig) -> None:
    with_url = await processing_job(rig.store, rig.client_id, now(), callback_url=rig.url)
    without = await processing_job(rig.store, rig.client_id, now())
    for job in (with_url, without):
        for _ in range(3):  # duplicate webhooks: one transition, so one event
            await rig.store.changes.record_webhook(
                job.id, to(JobStatus.SUCCEEDED, output=("u",)), now(), WebhookCall("{}")
            )
    assert await rig.store.callbacks.delivery_of_job(without.id) is None
    assert (await settled(rig, with_url.id)).status == "delivered"
    assert len(rig.receiver.seen) == 1


async def test_a_callback_url_that_turns_private_is_not_called(
    store: Store, db_url: str, live: LiveServer
) -> None:
    receiver = Receiver()
    await live.start(Starlette(routes=[Route("/hook", receiver.endpoint, methods=["POST"])]))
    raw, _ = await store.clients.create_key("team-a", ["jobs:write"], now())
    principal = await store.clients.authenticate(raw, now())
    assert principal is not None
    # Accepted earlier (say, the name resolved to a public address then); now it is loopback.
    job = await processing_job(store, principal.client_id, now(), callback_url=f"{live.url}/hook")
    await store.changes.apply_change(job, to(JobStatus.SUCCEEDED, output=("u",)), now())
    settings = make_settings(db_url, allow_private_callbacks=False, submit_idle_seconds=0.05)
    provider = ModelsLabClient("http://127.0.0.1:9/api/v6", "k")
    workers = Workers(Runtime(settings, store, provider, "s"))
    await workers.start()
    try:
        for _ in range(100):
            delivery = await store.callbacks.delivery_of_job(job.id)
            if delivery is not None and delivery.status == "dead":
                break
            await asyncio.sleep(0.02)
    finally:
        await workers.stop(timeout=2)
        await provider.aclose()
    assert delivery is not None and delivery.status == "dead"
    assert (delivery.last_error or "").startswith("unsafe_url")
    assert receiver.seen == []
