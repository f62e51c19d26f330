"""Races between writers on one job: exactly one of them wins, the rest are recorded."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

from service.domain.changes import Policy, cancel, timed_out, webhook_reply
from service.domain.decisions import WebhookCall
from service.domain.jobs import Job
from service.domain.states import JobStatus
from service.provider.replies import parse_reply
from service.store import Store
from tests.factories import accepted, client_id, processing_job, queued_job

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
BODY = '{"status":"success","output":["https://cdn.invalid/x.png"]}'
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
                other.changes.record_webhook(job.id, SUCCESS, T0, WebhookCall(BODY)),
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
    late = await store.changes.record_webhook(job.id, SUCCESS, T0, WebhookCall(BODY))
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
            other.changes.record_webhook(job.id, SUCCESS, T0, WebhookCall(BODY)),
        )
        assert sum(r.changed for r in results) == 1
    finally:
        await other.close()


async def test_a_creation_locks_the_counters_in_the_order_a_change_does(
    store: Store, db_url: str
) -> None:
    """PostgreSQL: a change locks its counter rows by (status, shard); a creation locks the
    client's queued and processing rows in that order too, so while a change holds
    (processing, s) a creation waits before taking any queued row: no lock cycle, no
    deadlock (which would lose a provider's reply, or answer a client 500)."""
    if not store.db.is_postgresql:
        return  # SQLite has one writer: no row locks to order
    import asyncpg

    from service.store.engine import asyncpg_dsn

    cid = await client_id(store)
    await queued_job(store, cid, T0)
    await store.db.run(lambda conn: conn.exec_driver_sql("ANALYZE status_counts"))
    mover = await asyncpg.connect(asyncpg_dsn(db_url))
    probe = await asyncpg.connect(asyncpg_dsn(db_url))
    creator = Store.connect(db_url)
    try:
        tx = mover.transaction()
        await tx.start()
        await mover.execute(
            "SELECT 1 FROM status_counts WHERE client_id = $1 AND status = 'processing' "
            "AND shard = 15 FOR UPDATE",
            cid,
        )
        creation = asyncio.create_task(queued_job(creator, cid, T0))
        await asyncio.sleep(0.3)  # the creation is now blocked on (processing, 15)
        assert not creation.done()
        locked = await probe.fetch(
            "SELECT shard FROM status_counts WHERE client_id = $1 AND status = 'queued' "
            "FOR UPDATE NOWAIT",
            cid,
        )
        assert len(locked) == 16  # it holds none of them
        await tx.rollback()
        await creation
    finally:
        await mover.close()
        await probe.close()
        await creator.close()


async def test_creations_racing_submits_of_one_client_never_deadlock(
    store: Store, db_url: str
) -> None:
    """A creation locks the client's unfinished counters; a queued → processing change
    locks two of them. Both lock in one order (status, shard), so neither is ever chosen as
    a deadlock victim (which would lose a provider's reply, or answer a client 500)."""
    cid = await client_id(store)
    stores = [Store.connect(db_url) for _ in range(16)]
    try:
        waiting = [await queued_job(store, cid, T0) for _ in range(96)]
        if store.db.is_postgresql:  # as in production: the planner knows the table is small
            await store.db.run(lambda conn: conn.exec_driver_sql("ANALYZE status_counts"))

        async def create(s: Store) -> None:
            for _ in range(12):
                await queued_job(s, cid, T0)

        async def submit(s: Store, share: list[Job]) -> None:
            for job in share:
                applied = await s.changes.apply_change(job, accepted(T0), T0)
                assert applied.changed

        await asyncio.gather(
            *(create(s) for s in stores[:8]),
            *(submit(s, waiting[i::8]) for i, s in enumerate(stores[8:])),
        )
        counts = await store.stats.stats(T0, 10, 3600, cid)
        assert counts["counts"]["queued"] == 96 and counts["counts"]["processing"] == 96
    finally:
        for s in stores:
            await s.close()


async def test_a_change_that_waited_for_a_lock_and_missed_sees_the_job_as_it_is_now(
    store: Store, db_url: str
) -> None:
    """A change blocked on the row lock of another transaction, which then moved the job:
    the change does not apply, and what it reports (and records as `found`) is the job
    after that transaction, not the snapshot from before it."""
    if not store.db.is_postgresql:
        return  # SQLite has one writer: a change never waits on another's row lock
    import asyncpg

    from service.store.engine import asyncpg_dsn

    cid = await client_id(store)
    job = await queued_job(store, cid, T0)
    other = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        tx = other.transaction()
        await tx.start()
        await other.execute(
            "UPDATE jobs SET status = 'processing', version = version + 1 WHERE id = $1", job.id
        )
        change = asyncio.create_task(store.changes.apply_change(job, cancel(), T0))
        await asyncio.sleep(0.3)  # blocked on the row lock
        assert not change.done()
        await tx.commit()
        applied = await change
    finally:
        await other.close()
    assert not applied.changed
    assert applied.job is not None and applied.job.status is JobStatus.PROCESSING
    events = await store.jobs.list_events(job.id)
    assert events[-1].kind == "ignored" and events[-1].detail["found"] == "processing"
