"""The store on a real database: compare-and-set transitions, claims and leases, keys,
idempotency. Runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from service.domain.archive import ArchivePolicy
from service.domain.changes import Change, Fields, Note, cancel
from service.domain.decisions import Refusal, WebhookCall
from service.domain.requests import JobRequest
from service.domain.states import JobStatus
from service.store import Store
from service.store.records import Created, KeyReused, Replayed
from tests.factories import IMAGE, client_id, processing_job, queued_job, to

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)


async def transitions(store: Store, job_id: int) -> list[tuple[str | None, str | None, str]]:
    return [
        (e.from_status, e.to_status, e.source)
        for e in await store.jobs.list_events(job_id)
        if e.kind in ("transition", "created")
    ]


async def test_create_records_a_queued_job_and_its_event(store: Store) -> None:
    cid = await client_id(store)
    job = await queued_job(store, cid, T0, width=256, height=192)
    assert job.status is JobStatus.QUEUED and job.version == 1
    assert job.public_id.startswith("job_") and job.id > 0
    assert job.request["width"] == 256 and "key" not in job.request
    assert await transitions(store, job.id) == [(None, "queued", "api")]


async def test_a_transition_is_compare_and_set_on_the_expected_state(store: Store) -> None:
    cid = await client_id(store)
    job = await processing_job(store, cid, T0)
    done = await store.changes.apply_change(
        job, Change("webhook", JobStatus.SUCCEEDED, Fields(output=("https://x.invalid/1.png",))), T0
    )
    assert done.changed and done.job is not None and done.job.status is JobStatus.SUCCEEDED
    assert done.job.settled_at == T0  # nothing to keep: settled with its terminal change
    # The same snapshot applied again (a duplicate webhook, a late poll) changes nothing.
    again = await store.changes.apply_change(
        job, Change("sweeper", JobStatus.FAILED, Fields(provider_status="x")), T0
    )
    assert not again.changed
    assert again.job is not None and again.job.status is JobStatus.SUCCEEDED
    assert again.job.provider_status is None and again.job.output == ["https://x.invalid/1.png"]
    kinds = [e.kind for e in await store.jobs.list_events(job.id)]
    assert kinds.count("ignored") == 1


async def test_a_success_whose_outputs_are_kept_settles_only_with_its_archive(
    store: Store,
) -> None:
    store = Store(store.db, ArchivePolicy())  # outputs archived (OUTPUT_STORE)
    cid = await client_id(store)
    job = await processing_job(store, cid, T0)
    kept = await store.changes.apply_change(
        job, to(JobStatus.SUCCEEDED, output=("https://x.invalid/1.png",)), T0
    )
    assert kept.job is not None and kept.job.completed_at == T0
    assert kept.job.archive_status == "pending" and kept.job.settled_at is None
    # a job that ends otherwise has nothing to keep: settled at once
    other = await processing_job(store, cid, T0)
    canceled = await store.changes.apply_change(other, cancel(), T0 + LEASE)
    assert canceled.job is not None and canceled.job.settled_at == T0 + LEASE


async def test_a_terminal_job_ignores_plain_value_updates(store: Store) -> None:
    cid = await client_id(store)
    job = await processing_job(store, cid, T0)
    await store.changes.apply_change(job, cancel(), T0)
    fresh = await store.jobs.get_job_by_id(job.id)
    assert fresh is not None
    late = await store.changes.apply_change(
        fresh, Change("sweeper", fields=Fields(next_poll_at=T0)), T0
    )
    assert not late.changed


async def test_every_change_bumps_the_version(store: Store) -> None:
    cid = await client_id(store)
    job = await processing_job(store, cid, T0)
    before = job.version
    applied = await store.changes.apply_change(
        job, Change("sweeper", fields=Fields(provider_status="processing")), T0
    )
    assert applied.job is not None and applied.job.version == before + 1


async def test_concurrent_finishers_yield_exactly_one_transition(store: Store) -> None:
    cid = await client_id(store)
    job = await processing_job(store, cid, T0)
    results = await asyncio.gather(
        *[
            store.changes.apply_change(job, Change(f"racer{i}", status), T0)
            for i, status in enumerate([JobStatus.SUCCEEDED, JobStatus.FAILED] * 4)
        ]
    )
    assert sum(r.changed for r in results) == 1
    finals = [t for t in await transitions(store, job.id) if t[0] == "processing"]
    assert len(finals) == 1


async def test_a_worker_cannot_finish_a_job_it_no_longer_holds(store: Store) -> None:
    cid = await client_id(store)
    await queued_job(store, cid, T0)
    [mine] = await store.jobs.claim_for_submit(T0, "a", T0 + LEASE, 10)
    # The lease expires and another worker takes the job over.
    [theirs] = await store.jobs.claim_for_submit(T0 + LEASE * 2, "b", T0 + LEASE * 3, 10)
    assert theirs.id == mine.id and theirs.submit_attempts == 2
    stale = await store.changes.apply_change(mine, to(JobStatus.PROCESSING), T0, owner="a")
    assert not stale.changed
    fresh = await store.changes.apply_change(theirs, to(JobStatus.PROCESSING), T0, owner="b")
    assert fresh.changed


async def test_claims_take_due_jobs_once_until_the_lease_expires(store: Store) -> None:
    cid = await client_id(store)
    jobs = [await queued_job(store, cid, T0) for _ in range(5)]
    first = await store.jobs.claim_for_submit(T0, "a", T0 + LEASE, 3)
    second = await store.jobs.claim_for_submit(T0, "b", T0 + LEASE, 10)
    assert len(first) == 3 and len(second) == 2
    assert {j.id for j in first} | {j.id for j in second} == {j.id for j in jobs}
    assert await store.jobs.claim_for_submit(T0 + timedelta(seconds=30), "c", T0 + LEASE, 10) == []
    again = await store.jobs.claim_for_submit(
        T0 + LEASE + timedelta(seconds=1), "c", T0 + LEASE * 2, 10
    )
    assert len(again) == 5 and all(j.lease_owner == "c" for j in again)


async def test_concurrent_claimers_never_share_a_job(store: Store, db_url: str) -> None:
    cid = await client_id(store)
    for _ in range(40):
        await queued_job(store, cid, T0)
    stores = [Store.connect(db_url) for _ in range(4)]
    try:
        batches = await asyncio.gather(
            *[
                s.jobs.claim_for_submit(T0, f"w{i}", T0 + LEASE, 7)
                for i, s in enumerate(stores)
                for _ in range(2)
            ]
        )
    finally:
        for s in stores:
            await s.close()
    claimed = [j.id for batch in batches for j in batch]
    assert len(claimed) == len(set(claimed)) == 40


async def test_the_sweeper_claims_only_overdue_processing_jobs(store: Store) -> None:
    cid = await client_id(store)
    soon = await processing_job(store, cid, T0, poll_in=5)
    await processing_job(store, cid, T0, poll_in=500)
    await queued_job(store, cid, T0)
    due = await store.jobs.claim_for_poll(T0 + timedelta(seconds=6), "s", T0 + LEASE, 10)
    assert [j.id for j in due] == [soon.id]


async def test_release_claims_hands_back_polls_but_not_submits(store: Store) -> None:
    cid = await client_id(store)
    await processing_job(store, cid, T0, poll_in=0)
    await queued_job(store, cid, T0)
    await store.jobs.claim_for_submit(T0, "dying", T0 + LEASE, 10)
    await store.jobs.claim_for_poll(T0, "dying", T0 + LEASE, 10)
    await store.changes.release_claims("dying")
    assert len(await store.jobs.claim_for_poll(T0, "next", T0 + LEASE, 10)) == 1
    # A submit cut off mid-call may have reached the provider: its claim runs out instead.
    assert await store.jobs.claim_for_submit(T0, "next", T0 + LEASE, 10) == []


async def test_a_claim_taken_over_from_a_dead_worker_counts_as_a_crashed_submit(
    store: Store,
) -> None:
    cid = await client_id(store)
    await queued_job(store, cid, T0)
    [first] = await store.jobs.claim_for_submit(T0, "a", T0 + LEASE, 1)
    assert (first.submit_attempts, first.crashed_submits) == (1, 0)
    later = T0 + LEASE * 2
    [second] = await store.jobs.claim_for_submit(later, "b", later + LEASE, 1)
    assert (second.submit_attempts, second.crashed_submits) == (2, 1)
    # A claim that was handed back cleanly (a retryable error) does not count.
    await store.changes.apply_change(second, Change("t", release=True), later, owner="b")
    [third] = await store.jobs.claim_for_submit(later, "c", later + LEASE, 1)
    assert (third.submit_attempts, third.crashed_submits) == (3, 1)


async def test_submit_claims_respect_the_provider_capacity(store: Store) -> None:
    cid = await client_id(store)
    await processing_job(store, cid, T0)
    for _ in range(5):
        await queued_job(store, cid, T0)
    first = await store.jobs.claim_for_submit(T0, "a", T0 + LEASE, 10, max_inflight=3)
    assert len(first) == 2  # one slot is taken by the processing job
    assert await store.jobs.claim_for_submit(T0, "b", T0 + LEASE, 10, max_inflight=3) == []
    assert await store.jobs.inflight(T0) == 3
    # Once the claims lapse the slots are free again, oldest job first.
    later = T0 + LEASE * 2
    again = await store.jobs.claim_for_submit(later, "c", later + LEASE, 10, max_inflight=3)
    assert [j.id for j in again] == [j.id for j in first]


async def test_capacity_holds_across_concurrent_claimers(store: Store, db_url: str) -> None:
    cid = await client_id(store)
    for _ in range(20):
        await queued_job(store, cid, T0)
    stores = [Store.connect(db_url) for _ in range(4)]
    try:
        batches = await asyncio.gather(
            *[
                s.jobs.claim_for_submit(T0, f"w{i}", T0 + LEASE, 5, max_inflight=7)
                for i, s in enumerate(stores)
            ]
        )
    finally:
        for s in stores:
            await s.close()
    assert sum(len(b) for b in batches) == 7


async def test_idempotency_keys_expire_after_24_hours(store: Store) -> None:
    cid = await client_id(store)
    a, b = JobRequest(image=IMAGE, prompt="a"), JobRequest(image=IMAGE, prompt="b")
    first = await store.jobs.create_job(cid, a, "k", T0)
    assert isinstance(first, Created)
    again = await store.jobs.create_job(cid, a, "k", T0 + timedelta(hours=23))
    assert isinstance(again, Replayed) and again.job.id == first.job.id
    later = T0 + timedelta(hours=25)
    second = await store.jobs.create_job(cid, b, "k", later)
    assert isinstance(second, Created) and second.job.id != first.job.id


async def test_webhook_is_recorded_raw_counted_and_applied_in_one_go(store: Store) -> None:
    cid = await client_id(store)
    job = await processing_job(store, cid, T0)
    body = '{"status":"success","output":["https://x.invalid/1.png"]}'
    applied = await store.changes.record_webhook(
        job.id, to(JobStatus.SUCCEEDED, output=("https://x.invalid/1.png",)), T0, WebhookCall(body)
    )
    assert applied.changed and applied.job is not None
    assert applied.job.webhooks == 1 and applied.job.status is JobStatus.SUCCEEDED
    events = await store.jobs.list_events(job.id)
    assert [e.detail.get("body") for e in events if e.kind == "webhook"] == [body]


async def test_a_rejected_webhook_is_recorded_and_changes_nothing_else(store: Store) -> None:
    cid = await client_id(store)
    job = await processing_job(store, cid, T0)
    applied = await store.changes.record_webhook(
        job.id,
        to(JobStatus.SUCCEEDED, output=("u",)),
        T0,
        WebhookCall("{}", "track_id_mismatch"),
    )
    assert not applied.changed and applied.refusal is Refusal.MISMATCH
    fresh = await store.jobs.get_job_by_id(job.id)
    assert fresh is not None and fresh.status is JobStatus.PROCESSING and fresh.output == []


async def test_idempotency_key_same_body_same_job_other_body_conflict(store: Store) -> None:
    cid = await client_id(store)
    req = JobRequest(image=IMAGE, prompt="a")
    first = await store.jobs.create_job(cid, req, "k1", T0)
    again = await store.jobs.create_job(cid, req, "k1", T0)
    assert isinstance(first, Created) and isinstance(again, Replayed)
    assert again.job.id == first.job.id
    other = await store.jobs.create_job(cid, JobRequest(image=IMAGE, prompt="b"), "k1", T0)
    assert isinstance(other, KeyReused)


async def test_concurrent_identical_idempotent_requests_make_one_job(
    store: Store, db_url: str
) -> None:
    cid = await client_id(store)
    stores = [Store.connect(db_url) for _ in range(5)]
    try:
        results = await asyncio.gather(
            *[s.jobs.create_job(cid, JobRequest(image=IMAGE), "same", T0) for s in stores]
        )
    finally:
        for s in stores:
            await s.close()
    assert all(isinstance(r, Created | Replayed) for r in results)
    assert len({r.job.id for r in results}) == 1  # type: ignore[union-attr]
    assert sum(isinstance(r, Created) for r in results) == 1


async def test_notes_are_recorded_even_when_the_change_is_refused(store: Store) -> None:
    cid = await client_id(store)
    job = await processing_job(store, cid, T0)
    await store.changes.apply_change(job, cancel(), T0)
    await store.changes.apply_change(
        job,
        Change(
            "sweeper",
            JobStatus.SUCCEEDED,
            notes=(Note("poll", "sweeper", {"reply": {"status": "success"}}),),
        ),
        T0,
    )
    kinds = [e.kind for e in await store.jobs.list_events(job.id)]
    assert "poll" in kinds and kinds[-1] == "ignored"


async def test_keys_are_stored_hashed_and_revocable(store: Store) -> None:
    raw, secret = await store.clients.create_key("team-a", ["jobs:read"], T0)
    assert secret is not None and secret.startswith("whsec_")
    _raw2, secret2 = await store.clients.create_key("team-a", ["jobs:write"], T0)
    assert secret2 is None  # an existing client keeps its secret
    assert len(raw) >= 40
    principal = await store.clients.authenticate(raw, T0)
    assert principal is not None and principal.scopes == {"jobs:read"}
    keys = await store.clients.list_keys()
    assert all(raw not in repr(k) for k in keys)
    assert await store.clients.revoke_key(raw[:12], T0)
    assert await store.clients.authenticate(raw, T0) is None
    async with store.engine.connect() as conn:
        from sqlalchemy import text

        hashes = [r[0] for r in await conn.execute(text("SELECT key_hash FROM api_keys"))]
    assert raw not in hashes


async def test_webhook_secret_is_generated_once(store: Store) -> None:
    first = await store.clients.webhook_secret(None)
    assert first == await store.clients.webhook_secret(None)
    assert await store.clients.webhook_secret("configured") == "configured"
