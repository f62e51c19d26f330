"""Races between writers on one job: exactly one of them wins, the rest are recorded."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

from service.domain.changes import Policy, cancel, timed_out, webhook_reply
from service.domain.states import JobStatus
from service.provider.replies import parse_reply
from service.store import Store
from tests.factories import client_id, processing_job

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
BODY = '{"status":"success","output":["https://cdn/x.png"]}'
SUCCESS = webhook_reply(parse_reply(json.loads(BODY)))


async def test_timeout_racing_a_success_webhook_ends_the_job_exactly_once(
    store: Store, db_url: str
) -> None:
    cid = await client_id(store)
    other = Store.connect(db_url)
    try:
        for _ in range(6):
            job = await processing_job(store, cid, T0, poll_in=0)
            [claimed] = await store.jobs.claim_for_poll(
                T0, "sweeper", T0 + timedelta(seconds=60), 1
            )
            results = await asyncio.gather(
                store.changes.apply_change(
                    claimed, timed_out(Policy(), "sweeper"), T0, owner="sweeper"
                ),
                other.changes.record_webhook(job.id, SUCCESS, T0, BODY),
            )
            assert sum(r.changed for r in results) == 1
            events = await store.jobs.list_events(job.id)
            finals = [e for e in events if e.kind == "transition" and e.from_status == "processing"]
            assert len(finals) == 1
            fresh = await store.jobs.get_job_by_id(job.id)
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
    await store.changes.apply_change(job, timed_out(Policy(), "sweeper"), T0)
    late = await store.changes.record_webhook(job.id, SUCCESS, T0, BODY)
    assert not late.changed and late.job is not None and late.job.status is JobStatus.TIMED_OUT
    events = await store.jobs.list_events(job.id)
    assert [e.detail["body"] for e in events if e.kind == "webhook"] == [BODY]
    assert events[-1].kind == "ignored" and events[-1].detail["found"] == "timed_out"


async def test_cancel_racing_a_webhook_ends_the_job_exactly_once(store: Store, db_url: str) -> None:
    cid = await client_id(store)
    other = Store.connect(db_url)
    try:
        job = await processing_job(store, cid, T0)
        results = await asyncio.gather(
            store.changes.apply_change(job, cancel(), T0),
            other.changes.record_webhook(job.id, SUCCESS, T0, BODY),
        )
        assert sum(r.changed for r in results) == 1
    finally:
        await other.close()
