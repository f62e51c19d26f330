"""Races between writers on one job: exactly one of them wins, the rest are recorded."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from service.domain.states import JobStatus
from service.store.engine import make_engine
from service.store.manager import Store
from tests.factories import client_id, processing_job

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
BODY = '{"status":"success","output":["https://cdn/x.png"]}'


async def test_timeout_racing_a_success_webhook_ends_the_job_exactly_once(
    store: Store, db_url: str
) -> None:
    cid = await client_id(store)
    other = Store(make_engine(db_url))
    try:
        for _ in range(6):
            job = await processing_job(store, cid, T0, poll_in=0)
            [claimed] = await store.claim_for_poll(T0, "sweeper", T0 + timedelta(seconds=60), 1)
            results = await asyncio.gather(
                store.apply(
                    claimed,
                    T0,
                    source="sweeper",
                    owner="sweeper",
                    to_status=JobStatus.TIMED_OUT,
                    values={"error_code": "timed_out"},
                ),
                other.record_webhook(
                    job.id, T0, BODY, JobStatus.SUCCEEDED, {"output": ["https://cdn/x.png"]}
                ),
            )
            assert sum(r.changed for r in results) == 1
            events = await store.list_events(job.id)
            finals = [e for e in events if e.kind == "transition" and e.from_status == "processing"]
            assert len(finals) == 1
            fresh = await store.get_job_by_id(job.id)
            assert fresh is not None and fresh.status.value == finals[0].to_status
            if fresh.status is JobStatus.TIMED_OUT:
                assert fresh.output == []
            else:
                assert fresh.error_code is None
    finally:
        await other.close()


async def test_a_success_after_the_timeout_is_kept_as_an_event(store: Store) -> None:
    cid = await client_id(store)
    job = await processing_job(store, cid, T0)
    await store.apply(
        job, T0, source="sweeper", to_status=JobStatus.TIMED_OUT, values={"error_code": "timed_out"}
    )
    late = await store.record_webhook(
        job.id, T0, BODY, JobStatus.SUCCEEDED, {"output": ["https://cdn/x.png"]}
    )
    assert not late.changed and late.job is not None and late.job.status is JobStatus.TIMED_OUT
    events = await store.list_events(job.id)
    assert [e.detail["body"] for e in events if e.kind == "webhook"] == [BODY]
    assert events[-1].kind == "ignored" and events[-1].detail["found"] == "timed_out"


async def test_cancel_racing_a_webhook_ends_the_job_exactly_once(store: Store, db_url: str) -> None:
    cid = await client_id(store)
    other = Store(make_engine(db_url))
    try:
        job = await processing_job(store, cid, T0)
        results = await asyncio.gather(
            store.apply(job, T0, source="api", to_status=JobStatus.CANCELED),
            other.record_webhook(job.id, T0, BODY, JobStatus.SUCCEEDED, {"output": ["u"]}),
        )
        assert sum(r.changed for r in results) == 1
    finally:
        await other.close()
