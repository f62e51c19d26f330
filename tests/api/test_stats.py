"""`GET /v1/stats` agrees with the jobs themselves."""

from __future__ import annotations

from datetime import timedelta

from service.domain.changes import JobError, cancel
from service.domain.states import JobStatus
from tests.conftest import Api, now
from tests.factories import client_id, force, processing_job, queued_job, to


async def build_mix(api: Api) -> dict[str, int]:
    """Jobs of two clients in every state; returns client ids."""
    a, b = await client_id(api.store, "team-a"), await client_id(api.store, "team-b")
    t = now()
    for _ in range(3):
        await queued_job(api.store, a, t)
    late = await processing_job(api.store, a, t - timedelta(minutes=30))
    await force(api.store, late.id, eta_at=t - timedelta(minutes=29))
    await processing_job(api.store, b, t)  # eta not set: not overdue
    for i, seconds in enumerate([10, 20, 30, 40]):
        job = await processing_job(api.store, a if i % 2 else b, t - timedelta(seconds=seconds))
        await api.store.changes.apply_change(job, to(JobStatus.SUCCEEDED, output=("u",)), t)
    for _ in range(2):
        job = await processing_job(api.store, b, t - timedelta(seconds=5))
        await api.store.changes.apply_change(job, to(JobStatus.FAILED, error=JobError("x", "x")), t)
    old = await queued_job(api.store, a, t - timedelta(hours=3))
    await api.store.changes.apply_change(old, cancel(), t - timedelta(hours=2))
    return {"a": a, "b": b}


async def test_stats_agree_with_the_jobs(api: Api) -> None:
    await build_mix(api)
    ops = await api.key("ops", "ops:read")
    stats = (await api.client.get("/v1/stats", headers=ops)).json()
    jobs = (await api.client.get("/v1/jobs?limit=100", headers=ops)).json()["items"]
    by_status: dict[str, int] = {}
    for job in jobs:
        by_status[job["status"]] = by_status.get(job["status"], 0) + 1
    assert {k: v for k, v in stats["counts"].items() if v} == by_status
    assert stats["counts"] == {
        "queued": 3,
        "processing": 2,
        "succeeded": 4,
        "failed": 2,
        "timed_out": 0,
        "canceled": 1,
    }
    assert stats["overdue"] == 1
    assert await api.store.stats.overdue(now(), api.settings.eta_grace_seconds) == 1  # /metrics
    assert 1790 <= stats["oldest_processing_seconds"] <= 1900
    assert stats["completed_last_hour"] == 6  # the cancel two hours ago is outside
    assert stats["sample_size"] == 4
    assert 19 <= stats["p50_seconds"] <= 21 and 39 <= stats["p95_seconds"] <= 41
    assert stats["callbacks"] == {"pending": 0, "failing": 0, "dead": 0}


async def test_stats_for_one_client(api: Api) -> None:
    await build_mix(api)
    ops = await api.key("ops", "ops:read")
    stats = (await api.client.get("/v1/stats?client=team-b", headers=ops)).json()
    assert stats["counts"]["processing"] == 1 and stats["counts"]["failed"] == 2
    assert stats["counts"]["queued"] == 0 and stats["overdue"] == 0


async def test_stats_need_ops_read_and_valid_parameters(api: Api) -> None:
    assert (
        await api.client.get("/v1/stats", headers=await api.key("a", "jobs:read,jobs:write"))
    ).status_code == 403
    assert (await api.client.get("/v1/stats")).status_code == 401
    ops = await api.key("ops", "ops:read")
    assert (await api.client.get("/v1/stats?client=nobody", headers=ops)).status_code == 404
    assert (await api.client.get("/v1/stats?window_seconds=5", headers=ops)).status_code == 422
    empty = (await api.client.get("/v1/stats", headers=ops)).json()
    assert empty["p50_seconds"] is None and empty["oldest_processing_seconds"] is None


async def test_counts_follow_prune(api: Api) -> None:
    await build_mix(api)
    deleted = await api.store.jobs.prune(now() - timedelta(hours=1))
    assert deleted == 1  # the old cancel
    counts = await api.store.stats.counts_by_status()
    assert counts["canceled"] == 0 and counts["succeeded"] == 4


async def test_metrics_parse_and_carry_every_family(api: Api) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    await build_mix(api)
    text = (await api.client.get("/metrics")).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in (
        "outpaint_jobs",
        "outpaint_webhooks_received",
        "outpaint_polls",
        "outpaint_submits",
        "outpaint_provider_request_seconds",
        "outpaint_provider_errors",
        "outpaint_callback_deliveries",
        "outpaint_callbacks_undelivered",
        "outpaint_sweeper_lag_seconds",
        "outpaint_provider_results",
        "outpaint_webhook_lateness_seconds",
        "outpaint_unknown_replies",
        "outpaint_transitions",
        "outpaint_provider_inflight",
    ):
        assert name in families, name
    jobs = {s.labels["status"]: s.value for s in families["outpaint_jobs"].samples}
    assert jobs == {
        "queued": 3,
        "processing": 2,
        "succeeded": 4,
        "failed": 2,
        "timed_out": 0,
        "canceled": 1,
    }
    [lag] = families["outpaint_sweeper_lag_seconds"].samples
    assert lag.value >= 0
    [inflight] = families["outpaint_provider_inflight"].samples
    assert inflight.value == 2
