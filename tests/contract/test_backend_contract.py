"""One driver suite for every database, as River's `riverdrivertest`: each method of the
backend interface (`service.store.backend.Backend`) runs with the same typed parameters on
the backend under test and on the SQLite reference, and both answer alike. A method added to
the interface fails the last test until a scenario here calls it."""

from __future__ import annotations

import inspect
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from service.domain.changes import Fields, JobError, Note
from service.store import Store
from service.store.backend import Backend, Creation, JobMove, NewJob, WebhookCount
from service.store.records import hash_key
from tests.contract.transcripts import agree, history, view
from tests.factories import IMAGE, client_id

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
CB = "http://127.0.0.1:9/hook"


def new_job(client: int, key: str | None, public_id: str, **limits: int) -> NewJob:
    return NewJob(
        client_id=client,
        public_id=public_id,
        request={"image": IMAGE, "prompt": "a pier"},
        idempotency_key=key,
        request_hash="h1",
        now=T0,
        callback_url=CB,
        metadata={"order": "42"},
        window_start=T0.replace(second=0),
        per_minute=limits.get("per_minute", 100),
        max_unfinished=limits.get("max_unfinished", 100),
        created=Note("created", "api", to_status="queued"),
        shard_count=4,
    )


def found(c: Creation) -> tuple[Any, ...]:
    """A creation's answer without the row ids, which differ by backend."""
    return (view(c.job), c.prior_id is not None, c.prior_created_at, c.prior_hash) + (
        c.window_count,
        c.unfinished,
        c.raced,
    )


def to_processing(job_id: int, **over: Any) -> JobMove:
    move = JobMove(
        job_id=job_id,
        expect="queued",
        owner=None,
        status="processing",
        now=T0 + timedelta(seconds=1),
        fields=Fields(provider_id="p1", eta_at=T0 + timedelta(seconds=20)),
        version_bump=1,
        terminal=False,
        release=True,
        polls=0,
        attempts=0,
        reset_attempts=True,
        webhooks=0,
        events=(Note("transition", "test", {}, "queued", "processing"),),
        counts=(("queued", -1), ("processing", 1)),
        shard=job_id % 4,
        callback=None,
        archive_until=None,
    )
    return replace(move, **over)


async def test_create_forget_and_read_jobs(store: Store, reference: Store) -> None:
    async def scenario(s: Store) -> Any:
        b = s.jobs.backend
        cid = await client_id(s)
        first = await b.create_job(new_job(cid, "k1", "job_a"))
        assert first.job is not None
        again = await b.create_job(new_job(cid, "k1", "job_b"))  # the key names the first
        await b.forget_idempotency_key(first.job.id)
        freed = await b.create_job(new_job(cid, "k1", "job_c"))
        capped = await b.create_job(new_job(cid, None, "job_d", max_unfinished=2))
        limited = await b.create_job(new_job(cid, None, "job_e", per_minute=3))
        return (
            [found(c) for c in (first, again, freed, capped, limited)],
            view(await b.get_job(first.job.id)),
            await b.get_job(first.job.id + 1000),
            await history(s, first.job),
        )

    answers, read, missing, events = await agree(store, reference, scenario)
    first, again, freed, capped, limited = answers
    assert first[0]["status"] == "queued" and first[0]["metadata"] == {"order": "42"}
    assert again[0] is None and again[1] and again[3] == "h1"
    assert freed[0] is not None and not freed[1]  # the freed key named no job any more
    assert capped[0] is None and capped[5] == 2  # two unfinished already
    assert limited[0] is None and limited[4] == 4  # the fourth counted (a key found counts none)
    assert read == first[0] and missing is None
    assert [e[:4] for e in events] == [("created", "api", None, "queued")]


async def test_move_count_and_record(store: Store, reference: Store) -> None:
    async def scenario(s: Store) -> Any:
        b = s.jobs.backend
        cid = await client_id(s)
        made = await b.create_job(new_job(cid, None, "job_a"))
        assert made.job is not None
        job_id = made.job.id
        moved = await b.move(to_processing(job_id))
        stale = await b.move(to_processing(job_id))  # no longer queued: as it is now
        done = await b.move(
            to_processing(
                job_id,
                expect="processing",
                status="failed",
                fields=Fields(error=JobError("provider_error", "nsfw")),
                terminal=True,
                webhooks=1,
                version_bump=2,
                events=(Note("webhook", "provider", {"body": "{}"}),),
                counts=(("processing", -1), ("failed", 1)),
                callback=("msg_1", "job.failed"),
            )
        )
        assert done[0] is not None
        counted = await b.count_webhook(WebhookCount(job_id, "failed", 1, T0, (Note("x", "y"),)))
        late = await b.count_webhook(WebhookCount(job_id, "failed", 1, T0, ()))  # count moved
        await b.record_events(job_id, T0, (Note("ignored", "api", {"found": "failed"}),))
        gone = await b.move(to_processing(job_id + 1000))
        return (
            [(view(j), ok) for j, ok in (moved, stale, done, gone)],
            view(counted),
            late,
            await history(s, made.job),
            await s.callbacks.deliveries_by_status(),
        )

    moves, counted, late, events, outbox = await agree(store, reference, scenario)
    (moved, ok1), (stale, ok2), (done, ok3), (gone, ok4) = moves
    assert ok1 and not ok2 and ok3 and not ok4 and gone is None
    assert moved["status"] == "processing" and stale == moved
    assert done["status"] == "failed" and done["completed_at"] is not None
    assert done["error_code"] == "provider_error" and done["callback_status"] == "pending"
    assert counted["webhooks"] == 2 and late is None
    assert [e[0] for e in events] == ["created", "transition", "webhook", "x", "ignored"]
    assert outbox["pending"] == 1


async def test_find_active_key(store: Store, reference: Store) -> None:
    async def scenario(s: Store) -> Any:
        raw, _ = await s.clients.create_key("team-a", ["jobs:read"], T0)
        b = s.jobs.backend
        row = await b.find_active_key(hash_key(raw))
        assert row is not None
        return (
            (row["client_name"], row["scopes"], row["prefix"] == raw[:12], row["revoked_at"]),
            await b.find_active_key(hash_key(raw + "x")),
        )

    active, other = await agree(store, reference, scenario)
    assert active[0] == "team-a" and active[1] == "jobs:read" and active[3] is None
    assert other is None


def test_every_backend_method_has_a_scenario() -> None:
    methods = {n for n, _ in inspect.getmembers(Backend, inspect.isfunction) if n[0] != "_"}
    text = Path(__file__).read_text()
    assert methods and not {m for m in methods if f"b.{m}(" not in text}
