"""One contract for every backend: each store method runs the same scenario on the backend
under test and on a fresh SQLite reference, and both must leave the same transcript (jobs,
events, counters, outbox) down to every field. On PostgreSQL this holds the one-statement
fast paths to the general ones; on SQLite it pins what the general path does."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from service.domain import callbacks, changes
from service.domain.changes import Change, JobError, Note, Policy
from service.domain.decisions import Ask, Refusal, WebhookCall
from service.domain.requests import JobRequest
from service.domain.states import JobStatus
from service.store import Store
from service.store.records import (
    Created,
    CreationLimits,
    RateLimited,
)
from tests.contract.transcripts import agree, reply, transcript
from tests.factories import IMAGE, accepted, client_id, queued_job, to

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)
POLICY = Policy(eta_grace_seconds=10, job_timeout_seconds=3600)
CB = "http://127.0.0.1:9/hook"


# --- creation --------------------------------------------------------------------------------


async def test_create_job_answers_every_outcome_alike(store: Store, reference: Store) -> None:
    async def scenario(s: Store) -> Any:
        cid = await client_id(s)
        limits = CreationLimits(per_minute=3, max_unfinished=2)
        a, b = JobRequest(image=IMAGE, prompt="a"), JobRequest(image=IMAGE, prompt="b")
        results = [
            await s.jobs.create_job(cid, a, "k1", T0, limits),
            await s.jobs.create_job(cid, a, "k1", T0, limits),  # the same again
            await s.jobs.create_job(cid, b, "k1", T0, limits),  # the key, another body
            await s.jobs.create_job(cid, b, None, T0, limits),
            await s.jobs.create_job(cid, b, None, T0, limits),  # third unfinished: at cap
            await s.jobs.create_job(cid, b, None, T0, limits),  # fourth creation: rate
        ]
        first = results[0]
        assert isinstance(first, Created)
        kinds = [type(r).__name__ for r in results]
        waits = [r.retry_after_seconds for r in results if isinstance(r, RateLimited)]
        return kinds, waits, await transcript(s, first.job)

    kinds, waits, _ = await agree(store, reference, scenario)
    assert kinds == ["Created", "Replayed", "KeyReused", "Created", "AtCap", "RateLimited"]
    assert waits == [60.0]


# --- changes -------------------------------------------------------------------------------


async def test_a_job_submitted_polled_and_finished(store: Store, reference: Store) -> None:
    async def scenario(s: Store) -> Any:
        job = await queued_job(s, await client_id(s), T0)
        [claimed] = await s.jobs.claim_for_submit(T0, "w", T0 + LEASE, 1, max_inflight=5)
        sub = changes.submit_accepted(
            reply("processing", id=77, eta=3.0, fetch_result="https://f.invalid/1"),
            T0,
            POLICY,
        )
        first = await s.changes.apply_change(claimed, sub, T0, owner="w")
        t1 = T0 + timedelta(seconds=20)
        [polled] = await s.jobs.claim_for_poll(t1, "w", t1 + LEASE, 1)
        still = changes.poll_answer(polled, reply("processing", eta=1.0), t1, POLICY, "sweeper")
        second = await s.changes.apply_change(polled, still, t1, owner="w")
        t2 = T0 + timedelta(seconds=60)
        [again] = await s.jobs.claim_for_poll(t2, "w", t2 + LEASE, 1)
        done = changes.poll_answer(
            again,
            reply("success", id=77, output=["https://o.invalid/1.png"]),
            t2,
            POLICY,
            "sweeper",
        )
        third = await s.changes.apply_change(again, done, t2, owner="w")
        return [a.changed for a in (first, second, third)], await transcript(s, job)

    flags, t = await agree(store, reference, scenario)
    assert flags == [True, True, True]
    job = t["job"]
    assert (
        job["status"] == "succeeded"
        and job["polls"] == 2
        and job["output"] == ["https://o.invalid/1.png"]
    )
    assert job["version"] == 4 and job["lease_owner"] is None and job["completed_at"] is not None
    assert [e[0] for e in t["events"]] == [
        "created",
        "submit",
        "transition",
        "poll",
        "poll",
        "transition",
    ]
    assert t["counts"]["succeeded"] == 1 and t["counts"]["queued"] == 0


async def test_a_finishing_webhook_for_a_processing_job(store: Store, reference: Store) -> None:
    """On PostgreSQL: the one-statement path; on SQLite: the general one."""

    async def scenario(s: Store) -> Any:
        job = await queued_job(s, await client_id(s), T0, callback_url=CB)
        await s.changes.apply_change(job, accepted(T0), T0)
        hook = changes.webhook_reply(reply("success", id=88, output=["https://o.invalid/2.png"]))
        applied = await s.changes.record_webhook(
            job.id, hook, T0 + timedelta(seconds=5), WebhookCall('{"a":1}')
        )
        return applied.changed, await transcript(s, job)

    changed, t = await agree(store, reference, scenario)
    assert changed and t["job"]["status"] == "succeeded" and t["job"]["webhooks"] == 1
    assert t["job"]["provider_id"] == "88"  # a reply's id replaces the one we had
    assert t["job"]["callback_status"] == "pending"
    assert t["outbox"]["status"] == "pending" and t["outbox"]["body"] is None
    assert t["outbox"]["event_type"] == "job.succeeded"


async def test_settle_follows_a_job_that_moved_and_refuses_a_finished_one(
    store: Store, reference: Store
) -> None:
    """A cancel decided on a stale read: the job had gone on to processing, so the first
    compare-and-set misses, the loop reads it again and cancels it from there."""

    async def scenario(s: Store) -> Any:
        job = await queued_job(s, await client_id(s), T0, callback_url=CB)
        await s.changes.apply_change(job, accepted(T0), T0)
        cancel = Ask(changes.cancel("ak_1"), refuse_finished=True)
        moved = await s.changes.settle(job.id, cancel, T0, job)  # `job` still says queued
        again = await s.changes.settle(job.id, cancel, T0)
        gone = await s.changes.settle(job.id + 1000, cancel, T0)
        return (
            (moved.changed, moved.refusal),
            (again.changed, again.refusal),
            (gone.job, gone.refusal),
            await transcript(s, job),
        )

    moved, again, gone, t = await agree(store, reference, scenario)
    assert moved == (True, None) and again == (False, Refusal.FINISHED)
    assert gone == (None, Refusal.GONE)
    assert t["job"]["status"] == "canceled" and t["counts"]["processing"] == 0
    kinds = [e[0] for e in t["events"]]
    assert kinds.count("action") == 1 and "ignored" not in kinds  # the miss left no trace


async def test_a_webhook_that_beats_the_submit_reply(store: Store, reference: Store) -> None:
    async def scenario(s: Store) -> Any:
        job = await queued_job(s, await client_id(s), T0)
        hook = changes.webhook_reply(reply("success", output=["https://o.invalid/3.png"]))
        applied = await s.changes.record_webhook(job.id, hook, T0, WebhookCall("{}"))
        return applied.changed, await transcript(s, job)

    changed, t = await agree(store, reference, scenario)
    moves = [(e[2], e[3]) for e in t["events"] if e[0] == "transition"]
    assert changed and moves == [("queued", "processing"), ("processing", "succeeded")]
    assert t["counts"]["queued"] == 0 and t["counts"]["processing"] == 0


async def test_late_replies_change_nothing_not_even_the_provider_id(
    store: Store, reference: Store
) -> None:
    async def scenario(s: Store) -> Any:
        job = await queued_job(s, await client_id(s), T0)
        processing = (await s.changes.apply_change(job, accepted(T0), T0)).job
        assert processing is not None
        hook = changes.webhook_reply(reply("success", id=1, output=["https://o.invalid/a"]))
        await s.changes.record_webhook(job.id, hook, T0, WebhookCall("{}"))
        late = changes.webhook_reply(reply("error", id=2, message="late"))
        dup = await s.changes.record_webhook(
            job.id, late, T0 + timedelta(seconds=1), WebhookCall("{}")
        )
        poll = changes.poll_answer(
            processing,
            reply("success", id=3, output=["https://o.invalid/b"]),
            T0,
            POLICY,
            "sweeper",
        )
        stale = await s.changes.apply_change(processing, poll, T0 + timedelta(seconds=2))
        return dup.changed, stale.changed, await transcript(s, job)

    dup, stale, t = await agree(store, reference, scenario)
    assert not dup and not stale
    assert t["job"]["provider_id"] == "1" and t["job"]["output"] == ["https://o.invalid/a"]
    assert [e[0] for e in t["events"]].count("ignored") == 2


async def test_webhook_tokens_expire_and_bodies_are_capped(store: Store, reference: Store) -> None:
    async def scenario(s: Store) -> Any:
        job = await queued_job(s, await client_id(s), T0)
        await s.changes.apply_change(job, accepted(T0), T0)
        hook = changes.webhook_reply(reply("success", output=["https://o.invalid/a"]))
        seen = [
            await s.changes.record_webhook(job.id, hook, T0, WebhookCall(f"{i}")) for i in range(13)
        ]
        later = T0 + timedelta(hours=25)
        expired = await s.changes.record_webhook(
            job.id, hook, later, WebhookCall("late", token_grace_seconds=86400)
        )
        rejected = await s.changes.record_webhook(
            job.id, hook, T0, WebhookCall("r", "track_id_mismatch")
        )
        return (
            [a.changed for a in seen],
            expired.refusal is Refusal.EXPIRED,
            rejected.changed,
            await transcript(s, job),
        )

    changed, expired, rejected, t = await agree(store, reference, scenario)
    assert changed == [True] + [False] * 12 and expired and not rejected
    assert t["job"]["webhooks"] == 14
    bodies = [e[4]["body"] for e in t["events"] if e[0] == "webhook"]
    assert bodies == [str(i) for i in range(10)]  # the first ten kept; then only counted


async def test_a_change_under_a_lost_claim_records_its_notes_and_nothing_else(
    store: Store, reference: Store
) -> None:
    async def scenario(s: Store) -> Any:
        job = await queued_job(s, await client_id(s), T0)
        [mine] = await s.jobs.claim_for_submit(T0, "a", T0 + LEASE, 1)
        later = T0 + 2 * LEASE
        [theirs] = await s.jobs.claim_for_submit(later, "b", later + LEASE, 1)
        change = changes.submit_rejected(400, "bad").with_notes(
            Note("extra", "submitter", {"n": 1})
        )
        lost = await s.changes.apply_change(mine, change, later, owner="a")
        kept = await s.changes.apply_change(theirs, Change("t", release=True), later, owner="b")
        return lost.changed, kept.changed, await transcript(s, job)

    lost, kept, t = await agree(store, reference, scenario)
    assert not lost and kept
    kinds = [e[0] for e in t["events"]]
    assert kinds == ["created", "extra", "submit_rejected", "ignored"]
    assert t["job"]["status"] == "queued" and t["job"]["crashed_submits"] == 1


async def test_cancel_and_timeout(store: Store, reference: Store) -> None:
    async def scenario(s: Store) -> Any:
        cid = await client_id(s)
        queued = await queued_job(s, cid, T0)
        fresh = await queued_job(s, cid, T0)
        running = (await s.changes.apply_change(fresh, accepted(T0), T0)).job
        assert running is not None
        out = [
            (await s.changes.apply_change(queued, changes.cancel(), T0)).changed,
            (
                await s.changes.apply_change(running, changes.timed_out(POLICY, "sweeper"), T0)
            ).changed,
            (await s.changes.apply_change(running, changes.cancel(), T0)).changed,
        ]
        return out, await transcript(s, queued), await transcript(s, running)

    flags, q, r = await agree(store, reference, scenario)
    assert flags == [True, True, False]
    assert q["job"]["status"] == "canceled" and q["job"]["error_code"] == "canceled"
    assert r["job"]["status"] == "timed_out" and r["job"]["next_poll_at"] is None


async def test_retries_reschedule_and_hand_the_claim_back(store: Store, reference: Store) -> None:
    async def scenario(s: Store) -> Any:
        job = await queued_job(s, await client_id(s), T0)
        [claimed] = await s.jobs.claim_for_submit(T0, "w", T0 + LEASE, 1)
        retry = changes.submit_retry(claimed, T0, POLICY, "rate_limited", "full", 30.0)
        applied = await s.changes.apply_change(claimed, retry, T0, owner="w")
        return applied.changed, await transcript(s, job)

    changed, t = await agree(store, reference, scenario)
    assert changed and t["job"]["lease_owner"] is None and t["job"]["status"] == "queued"
    assert t["job"]["next_poll_at"] >= T0 + timedelta(seconds=30)


# --- claims and the outbox --------------------------------------------------------------------


async def test_claims_capacity_refresh_and_release(store: Store, reference: Store) -> None:
    async def scenario(s: Store) -> Any:
        cid = await client_id(s)
        jobs = [await queued_job(s, cid, T0 + timedelta(seconds=i)) for i in range(4)]
        later = T0 + timedelta(seconds=10)
        first = await s.jobs.claim_for_submit(later, "a", later + LEASE, 10, max_inflight=2)
        running = (await s.changes.apply_change(first[0], accepted(later, 0), later, owner="a")).job
        assert running is not None
        refresh = [
            await s.jobs.claim_for_refresh(running.id, later, "r", later + LEASE, 5.0),
            await s.jobs.claim_for_refresh(running.id, later, "r2", later + LEASE, 5.0),
        ]
        await s.changes.release_claims("r")
        polls = await s.jobs.claim_for_poll(later, "p", later + LEASE, 10)
        return (
            [j.id == jobs[i].id for i, j in enumerate(first)],
            [r is not None for r in refresh],
            len(polls),
            await s.jobs.inflight(later),
        )

    got = await agree(store, reference, scenario)
    assert got == ([True, True], [True, False], 1, 2)


async def test_the_outbox_body_is_built_once_and_attempts_are_recorded(
    store: Store, reference: Store
) -> None:
    async def scenario(s: Store) -> Any:
        job = await queued_job(s, await client_id(s), T0, callback_url=CB)
        running = (await s.changes.apply_change(job, accepted(T0), T0)).job
        assert running is not None
        failed = to(JobStatus.FAILED, error=JobError("x", "y"))
        assert (await s.changes.apply_change(running, failed, T0)).changed
        [delivery] = await s.callbacks.claim_deliveries(T0, "n", T0 + LEASE, 5)
        built = await s.callbacks.with_body(delivery, T0 + timedelta(seconds=1))
        again = await s.callbacks.with_body(delivery, T0 + timedelta(seconds=2))
        attempt = callbacks.judge(0, 503, None, 1.0, T0, (0, 5), rng=random.Random(1))
        failing = await s.callbacks.finish_attempt(built, "n", T0, attempt)
        replayed = await s.callbacks.replay_callback(job.id, T0)
        return (
            built.body == again.body,
            failing is not None and failing.status,
            replayed is not None and replayed.status,
            await s.callbacks.deliveries_by_status(),
            await transcript(s, job),
        )

    same, failing, replayed, by_status, t = await agree(store, reference, scenario)
    assert same and failing == "failing" and replayed == "pending"
    assert by_status == {"pending": 1, "failing": 0, "dead": 0}
    assert t["job"]["callback_status"] == "pending"
    assert t["outbox"]["body"]["type"] == "job.failed"
    assert t["outbox"]["body"]["data"]["error"] == {"code": "x", "message": "y"}


async def test_prune_keeps_the_counters(store: Store, reference: Store) -> None:
    async def scenario(s: Store) -> Any:
        cid = await client_id(s)
        for _ in range(3):
            job = await queued_job(s, cid, T0)
            await s.changes.apply_change(job, changes.cancel(), T0)
        await queued_job(s, cid, T0)
        deleted = await s.jobs.prune(T0 + timedelta(days=2), batch_size=2)
        return deleted, await s.stats.counts_by_status()

    deleted, counts = await agree(store, reference, scenario)
    assert deleted == 3 and counts["canceled"] == 0 and counts["queued"] == 1


async def test_keys_and_secrets(store: Store, reference: Store) -> None:
    async def scenario(s: Store) -> Any:
        raw, secret = await s.clients.create_key("team-a", ["jobs:read"], T0)
        principal = await s.clients.authenticate(raw, T0)
        rotated = await s.clients.rotate_secret("team-a", T0, timedelta(hours=1))
        cid = await s.clients.client_id_of("team-a")
        assert cid is not None
        both = await s.clients.client_secrets(cid)
        revoked = await s.clients.revoke_key(raw[:12], T0)
        return (
            secret is not None,
            principal is not None and sorted(principal.scopes),
            rotated is not None and both.previous == secret and both.current == rotated,
            revoked,
            await s.clients.authenticate(raw, T0),
        )

    assert await agree(store, reference, scenario) == (True, ["jobs:read"], True, True, None)


def test_the_contract_covers_every_store_method() -> None:
    """A new store method needs a scenario here (or a reason below)."""
    import inspect

    from service.store import archives as ar
    from service.store import callbacks as cb
    from service.store import changes as ch
    from service.store import clients as cl
    from service.store import jobs as jb
    from service.store import series as se
    from service.store import stats as st

    methods = {
        f"{area}.{name}"
        for area, module, cls in (
            ("jobs", jb, "JobStore"),
            ("changes", ch, "ChangeStore"),
            ("callbacks", cb, "CallbackStore"),
            ("clients", cl, "ClientStore"),
            ("stats", st, "StatsStore"),
            ("archives", ar, "ArchiveStore"),
            ("series", se, "SeriesStore"),
        )
        for name, _ in inspect.getmembers(getattr(module, cls), inspect.iscoroutinefunction)
        if not name.startswith("_")
    }
    elsewhere = {  # exercised by their own suites on both databases
        "clients.webhook_secret",  # tests/integration/test_store.py
        "clients.list_keys",  # tests/integration/test_store.py
        "clients.count_keys",  # tests/e2e/test_processes.py
        "clients.set_default_callback",  # tests/api/test_callback_routes.py
        "clients.active_key",  # tests/api/test_links.py (event links, revocation)
        "jobs.get_job",  # every API test
        "jobs.list_jobs",  # tests/api/test_jobs.py
        "stats.stats",  # tests/api/test_stats.py
        "stats.sweeper_lag_seconds",  # tests/api/test_stats.py (metrics)
        "stats.overdue",  # tests/api/test_stats.py (metrics)
        # the output archive and the series: portable statements only (no backend fast
        # path to hold to a reference), exercised on both databases by their own suites
        "archives.claim_archives",  # tests/integration/test_archive.py
        "archives.settle",  # tests/integration/test_archive.py
        "archives.retry",  # tests/integration/test_archive.py (404s, the deadline)
        "archives.outputs_of",  # tests/integration/test_archive.py
        "archives.output",  # tests/e2e/test_outputs.py
        "archives.stored_outputs",  # tests/integration/test_archive.py (outputs verify)
        "archives.stored_of_finished",  # tests/integration/test_archive.py (retention)
        "archives.forget_stored",  # tests/integration/test_archive.py (retention)
        "archives.backlog",  # tests/integration/test_archive.py (counters)
        "archives.pending",  # tests/integration/test_series_store.py
        "archives.held_elsewhere",  # tests/integration/test_archive.py (S3), test_outputs.py
        "archives.outputs_elsewhere",  # tests/e2e/test_outputs.py (outputs migrate)
        "archives.moved",  # tests/e2e/test_outputs.py (outputs migrate)
        "series.add",  # tests/e2e/test_series.py
        "series.minutes_since",  # tests/e2e/test_series.py
        "series.usage_since",  # tests/e2e/test_series.py
        "series.forget_minutes",  # tests/integration/test_series_store.py
    }
    here = Path(__file__).parent
    text = Path(__file__).read_text() + (here / "transcripts.py").read_text()
    missing = {m for m in methods - elsewhere if f".{m}(" not in text}
    assert not missing


async def test_leases_extend_for_their_owner_and_state_is_kept(
    store: Store, reference: Store
) -> None:
    async def scenario(s: Store) -> Any:
        job = await queued_job(s, await client_id(s), T0)
        [claimed] = await s.jobs.claim_for_submit(T0, "w", T0 + LEASE, 1)
        later = T0 + 2 * LEASE
        mine = await s.jobs.extend_lease(claimed.id, "w", later)
        theirs = await s.jobs.extend_lease(claimed.id, "other", T0)
        await s.stats.probe_write(T0)
        before = await s.stats.circuit()
        await s.stats.record_circuit("open", T0)
        return mine, theirs, before, await s.stats.circuit(), await transcript(s, job)

    mine, theirs, before, after, t = await agree(store, reference, scenario)
    assert mine and not theirs and t["job"]["lease_expires_at"] == T0 + 2 * LEASE
    assert before["state"] == "closed" and after == {"state": "open", "since": T0.isoformat()}


async def test_what_ops_and_the_sweeper_read_of_the_queue_and_the_series(
    store: Store, reference: Store
) -> None:
    """The oldest queued job's age, when the next poll falls due (a held claim counts until
    it expires), and results by how they came (from the series)."""

    async def scenario(s: Store) -> Any:
        empty = (await s.stats.oldest_queued_seconds(T0), await s.jobs.next_poll_due())
        cid = await client_id(s)
        await queued_job(s, cid, T0)
        await queued_job(s, cid, T0 + timedelta(seconds=30))
        oldest = await s.stats.oldest_queued_seconds(T0 + timedelta(seconds=90))
        first = await queued_job(s, cid, T0)
        await s.changes.apply_change(first, accepted(T0, poll_in=40), T0)
        due = await s.jobs.next_poll_due()
        [held] = await s.jobs.claim_for_poll(T0 + timedelta(seconds=60), "w", T0 + LEASE * 3, 1)
        held_due = await s.jobs.next_poll_due()
        minute = T0.replace(second=0)
        await s.series.add(
            minute, {("results", "poll"): 4, ("results", "webhook"): 1}, T0.date(), {}
        )
        came = await s.series.results_since(minute)
        return empty, oldest, due, held.id == first.id, held_due, came

    empty, oldest, due, held, held_due, came = await agree(store, reference, scenario)
    assert empty == (0.0, None) and oldest == 90.0
    assert due == T0 + timedelta(seconds=40) and held and held_due == T0 + LEASE * 3
    assert came == {"poll": 4.0, "webhook": 1.0}
