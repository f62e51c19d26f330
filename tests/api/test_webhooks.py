"""`POST /webhooks/modelslab/{token}` over ASGI."""

from __future__ import annotations

import asyncio
import json

from service.domain.tokens import make_token
from tests.conftest import Api, now
from tests.factories import client_id, processing_job, queued_job

OUT = "https://cdn.example.invalid/out.png"


async def setup(api: Api):  # type: ignore[no-untyped-def]
    cid = await client_id(api.store, "team-a")
    job = await processing_job(api.store, cid, now())
    url = f"/webhooks/modelslab/{make_token(api.settings.webhook_secret or '', job.id)}"
    return job, url


def success(track_id: int) -> dict:  # type: ignore[type-arg]
    return {
        "status": "success",
        "id": 99,
        "output": [OUT],
        "generationTime": 2.1,
        "track_id": track_id,
    }


async def test_a_success_webhook_finishes_the_job(api: Api) -> None:
    job, url = await setup(api)
    r = await api.client.post(url, json=success(job.id))
    assert r.status_code == 200 and r.json()["applied"] is True
    fresh = await api.store.jobs.get_job_by_id(job.id)
    assert fresh is not None and fresh.status.value == "succeeded"
    assert fresh.output == [OUT] and fresh.webhooks == 1 and fresh.completed_at is not None


async def test_a_failed_webhook_fails_the_job_with_the_providers_message(api: Api) -> None:
    job, url = await setup(api)
    await api.client.post(
        url, json={"status": "failed", "id": 99, "message": "NSFW", "track_id": job.id}
    )
    fresh = await api.store.jobs.get_job_by_id(job.id)
    assert fresh is not None and fresh.status.value == "failed"
    assert (fresh.error_code, fresh.error_message) == ("provider_error", "NSFW")


async def test_duplicates_make_one_transition_and_are_all_recorded(api: Api) -> None:
    job, url = await setup(api)
    replies = await asyncio.gather(*[api.client.post(url, json=success(job.id)) for _ in range(4)])
    assert all(r.status_code == 200 for r in replies)
    assert sum(r.json()["applied"] for r in replies) == 1
    events = await api.store.jobs.list_events(job.id)
    finals = [e for e in events if e.kind == "transition" and e.to_status == "succeeded"]
    assert len(finals) == 1
    assert sum(e.kind == "webhook" for e in events) == 4
    fresh = await api.store.jobs.get_job_by_id(job.id)
    assert fresh is not None and fresh.webhooks == 4


async def test_a_late_webhook_after_a_terminal_state_changes_nothing(api: Api) -> None:
    job, url = await setup(api)
    await api.client.post(url, json=success(job.id))
    await api.client.post(url, json={"status": "failed", "message": "late", "track_id": job.id})
    await api.client.post(url, json={"status": "processing", "eta": 5, "track_id": job.id})
    fresh = await api.store.jobs.get_job_by_id(job.id)
    assert fresh is not None and fresh.status.value == "succeeded" and fresh.error_code is None


async def test_a_webhook_that_beats_the_submit_reply_goes_through_processing(api: Api) -> None:
    cid = await client_id(api.store, "team-a")
    job = await queued_job(api.store, cid, now())
    url = f"/webhooks/modelslab/{make_token(api.settings.webhook_secret or '', job.id)}"
    await api.client.post(url, json=success(job.id))
    moves = [
        (e.from_status, e.to_status)
        for e in await api.store.jobs.list_events(job.id)
        if e.kind == "transition"
    ]
    assert moves == [("queued", "processing"), ("processing", "succeeded")]


async def test_an_unknown_token_is_404_without_detail(api: Api) -> None:
    job, url = await setup(api)
    for bad in [
        url[:-2] + "xx",
        "/webhooks/modelslab/garbage",
        f"/webhooks/modelslab/{make_token('other', job.id)}",
    ]:
        r = await api.client.post(bad, json=success(job.id))
        assert r.status_code == 404 and "detail" not in r.json()
    fresh = await api.store.jobs.get_job_by_id(job.id)
    assert fresh is not None and fresh.status.value == "processing" and fresh.webhooks == 0


async def test_a_track_id_mismatch_is_refused_recorded_and_changes_nothing(api: Api) -> None:
    job, url = await setup(api)
    r = await api.client.post(url, json=success(job.id + 1000))
    assert r.status_code == 422
    fresh = await api.store.jobs.get_job_by_id(job.id)
    assert fresh is not None and fresh.status.value == "processing" and fresh.output == []
    events = await api.store.jobs.list_events(job.id)
    assert [e.detail.get("rejected") for e in events if e.kind == "webhook"] == [
        "track_id_mismatch"
    ]


async def test_malformed_and_oversized_bodies_change_nothing(api: Api) -> None:
    job, url = await setup(api)
    assert (await api.client.post(url, content=b"{not json")).status_code == 400
    big = json.dumps({**success(job.id), "pad": "x" * (1024 * 1024)}).encode()
    assert (await api.client.post(url, content=big)).status_code == 413
    fresh = await api.store.jobs.get_job_by_id(job.id)
    assert fresh is not None and fresh.status.value == "processing" and fresh.version == job.version


async def test_an_unknown_status_is_recorded_with_a_warning(api: Api) -> None:
    job, url = await setup(api)
    await api.client.post(url, json={"status": "rendering", "track_id": job.id})
    events = await api.store.jobs.list_events(job.id)
    assert [e.detail for e in events if e.kind == "warning"] == [
        {"warning": "unknown_status:rendering"}
    ]
    fresh = await api.store.jobs.get_job_by_id(job.id)
    assert fresh is not None and fresh.status.value == "processing"


async def test_every_refusal_is_counted_in_the_metrics(api: Api) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    def counts() -> dict[str, float]:
        text = metrics.render().decode()
        [family] = [
            f
            for f in text_string_to_metric_families(text)
            if f.name == "outpaint_webhooks_received"
        ]
        return {s.labels["outcome"]: s.value for s in family.samples if s.name.endswith("_total")}

    from service import metrics

    job, url = await setup(api)
    before = counts()
    await api.client.post("/webhooks/modelslab/garbage", json={})
    await api.client.post(url, content=b"{")
    await api.client.post(url, content=b"x" * (1024 * 1024 + 1))
    await api.client.post(url, json=success(job.id + 1))
    await api.client.post(url, json=success(job.id))
    await api.client.post(url, json=success(job.id))
    after = counts()
    for outcome in ("unknown_token", "malformed", "too_large", "mismatch", "applied", "duplicate"):
        assert after.get(outcome, 0) - before.get(outcome, 0) == 1, outcome
