"""The output archive's queue and record: archives claimed with a lease, and each settled in
one transaction (the stored objects' rows, the job's archive status and outputs, its event,
and its held callback released)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from service.domain import archive
from service.domain.wakeups import Wake
from service.store import queries as q
from service.store import queries_archive as qa
from service.store.db import Database

STORE_ERROR = "store_error:"  # archive_counts: writes the output store refused, by kind


@dataclass(frozen=True)
class ArchiveTask:
    """One job's archive, as claimed."""

    id: int
    job_id: int
    attempts: int
    deadline_at: datetime
    created_at: datetime


@dataclass(frozen=True)
class StoredOutput:
    """One row of job_outputs."""

    job_id: int
    n: int
    provider_url: str
    object_key: str | None
    sha256: str | None
    bytes: int | None
    width: int | None
    height: int | None
    content_type: str | None
    error: str | None
    store: str | None = None  # the output store that holds it; None: recorded before stores


def _task(m: Any) -> ArchiveTask:
    return ArchiveTask(m["id"], m["job_id"], m["attempts"], m["deadline_at"], m["created_at"])


def _output(m: Any) -> StoredOutput:
    return StoredOutput(
        m["job_id"],
        m["n"],
        m["provider_url"],
        m["object_key"],
        m["sha256"],
        m["bytes"],
        m["width"],
        m["height"],
        m["content_type"],
        m["error"],
        m["store"],
    )


@dataclass(frozen=True)
class Backlog:
    pending: int
    oldest_pending_at: datetime | None
    stored: int
    stored_bytes: int
    failures: dict[str, int]  # outputs given up on, by reason
    store_errors: dict[str, int]  # writes the output store refused (retried), by kind


class ArchiveStore:
    def __init__(self, db: Database, changed: Callable[[int], None] = lambda _job_id: None) -> None:
        """`changed(job_id)`: after a job's archive settled (waiters)."""
        self.db = db
        self._changed = changed

    async def claim_archives(
        self, now: datetime, owner: str, lease_until: datetime, limit: int
    ) -> list[ArchiveTask]:
        stmt = qa.claim_archives(q.Lease(now, owner, lease_until, limit))
        return await self.db.run(lambda conn: [_task(r._mapping) for r in conn.execute(stmt).all()])

    async def settle(
        self,
        task: ArchiveTask,
        owner: str,
        now: datetime,
        results: Sequence[archive.Result],
        urls: Sequence[str],
    ) -> bool:
        """Record every output's result (`urls[n]`: its durable URL), the job's archive
        status and outputs, an `archived` event, and release the job's held callback: one
        transaction, a compare-and-set on the claim. False: another archiver took it over."""
        status = archive.status_of(list(results))
        outputs = [archive.output_json(r, url) for r, url in zip(results, urls, strict=True)]
        rows = [_row(task.job_id, r, now) for r in results]
        failed = {str(r.n): r.reason for r in results if isinstance(r, archive.Unstored)}
        detail = {
            "status": status,
            "stored": sum(1 for r in results if isinstance(r, archive.Stored)),
            "failed": failed,
            "attempts": task.attempts + 1,
        }
        error = ", ".join(sorted(set(failed.values()))) or None
        counts = _counts(results)
        held = Counter(r.store for r in results if isinstance(r, archive.Stored) and r.store)
        postgresql = self.db.is_postgresql

        def tx(conn: Connection) -> bool:
            if conn.execute(qa.settle_archive(task.id, owner, status, error, now)).first() is None:
                return False
            if rows:
                conn.execute(qa.insert_outputs(rows))
            conn.execute(qa.set_job_archive(task.job_id, status, outputs, error, now))
            conn.execute(q.insert_event(task.job_id, now, "archived", "archiver", detail))
            conn.execute(qa.release_held_callback(task.job_id, now))
            if counts:
                conn.execute(qa.bump_archive_counts(conn.dialect.name, counts))
            if held:
                conn.execute(qa.count_store_outputs(conn.dialect.name, held))
            if postgresql:  # the held callback is due; the job settled for its waiters
                conn.execute(q.notify_workers(Wake.CALLBACK_DUE))
                conn.execute(q.notify_watchers(task.job_id))
            return True

        settled = await self.db.run(tx)
        if settled:
            self._changed(task.job_id)
        return settled

    async def retry(
        self,
        task: ArchiveTask,
        owner: str,
        now: datetime,
        retry: archive.Retry,
        store_error: str | None = None,
    ) -> bool:
        """Not yet: due again at `retry.at`; the job shows why (`archive_error`), its status
        does not change. `store_error`: the output store refused the write (its kind,
        counted for ops)."""
        stmt = qa.retry_archive(task.id, owner, retry.at, retry.reason, now)
        noted = qa.note_archive_error(task.job_id, retry.reason, now)
        postgresql = self.db.is_postgresql

        def tx(conn: Connection) -> tuple[bool, bool]:
            if conn.execute(stmt).first() is None:
                return False, False
            if store_error is not None:
                counted = {f"{STORE_ERROR}{store_error}": 1}
                conn.execute(qa.bump_archive_counts(conn.dialect.name, counted))
            changed = conn.execute(noted).rowcount > 0
            if changed and postgresql:
                conn.execute(q.notify_watchers(task.job_id))
            return True, changed

        retried, changed = await self.db.run(tx)
        if changed:
            self._changed(task.job_id)
        return retried

    async def outputs_of(self, job_ids: Sequence[int]) -> list[StoredOutput]:
        if not job_ids:
            return []
        async with self.db.read() as conn:
            rows = (await conn.execute(qa.outputs_of(job_ids))).all()
        return [_output(r._mapping) for r in rows]

    async def output(self, job_id: int, n: int) -> StoredOutput | None:
        async with self.db.read() as conn:
            row = (await conn.execute(qa.output(job_id, n))).first()
        return _output(row._mapping) if row is not None else None

    async def stored_outputs(self, after: tuple[int, int] | None, limit: int) -> list[StoredOutput]:
        async with self.db.read() as conn:
            rows = (await conn.execute(qa.stored_outputs(after, limit))).all()
        return [_output(r._mapping) for r in rows]

    async def stored_of_finished(
        self, completed_before: datetime, limit: int
    ) -> list[StoredOutput]:
        async with self.db.read() as conn:
            rows = (await conn.execute(qa.stored_of_finished(completed_before, limit))).all()
        return [_output(r._mapping) for r in rows]

    async def forget_stored(self, outputs: Sequence[StoredOutput]) -> None:
        """These objects are deleted from the store: their rows say so (one transaction)."""

        deltas = {"stored": -len(outputs), "stored_bytes": -sum(o.bytes or 0 for o in outputs)}
        held: Counter[str] = Counter()
        for o in outputs:
            if o.store:
                held[o.store] -= 1

        def tx(conn: Connection) -> None:
            for o in outputs:
                conn.execute(qa.forget_stored(o.job_id, o.n))
            conn.execute(qa.bump_archive_counts(conn.dialect.name, deltas))
            if held:
                conn.execute(qa.count_store_outputs(conn.dialect.name, held))

        if outputs:
            await self.db.run(tx)

    async def held_elsewhere(self, store: str) -> dict[str, int]:
        """How many stored outputs each other output store holds (counters, not a scan)."""
        async with self.db.read() as conn:
            rows = (await conn.execute(qa.stores_holding(store))).all()
        return {str(name): int(n) for name, n in rows}

    async def outputs_elsewhere(
        self, store: str, after: tuple[int, int] | None, limit: int
    ) -> list[StoredOutput]:
        """Stored outputs another store holds, a page at a time in key order."""
        async with self.db.read() as conn:
            rows = (await conn.execute(qa.outputs_elsewhere(store, after, limit))).all()
        return [_output(r._mapping) for r in rows]

    async def moved(self, output: StoredOutput, target: str) -> bool:
        """The output was copied to `target`: its row says so and the stores' counts follow
        (one transaction). False when its row had changed meanwhile (nothing done)."""
        assert output.store is not None
        source = output.store

        def tx(conn: Connection) -> bool:
            if not conn.execute(qa.move_output(output.job_id, output.n, source, target)).rowcount:
                return False
            deltas = {source: -1, target: 1}
            conn.execute(qa.count_store_outputs(conn.dialect.name, deltas))
            return True

        return await self.db.run(tx)

    async def pending(self) -> int:
        """How many archives wait (a partial-index range)."""
        async with self.db.read() as conn:
            pending, _oldest = (await conn.execute(qa.archive_backlog())).one()
        return int(pending)

    async def backlog(self) -> Backlog:
        """The pending archives (a partial-index range) and the counters."""
        async with self.db.read() as conn:
            pending, oldest = (await conn.execute(qa.archive_backlog())).one()
            totals = {str(name): int(n) for name, n in await conn.execute(qa.archive_totals())}
        failures = {
            name.removeprefix("failed:"): n
            for name, n in totals.items()
            if name.startswith("failed:") and n
        }
        store_errors = {
            name.removeprefix(STORE_ERROR): n
            for name, n in totals.items()
            if name.startswith(STORE_ERROR) and n
        }
        return Backlog(
            int(pending),
            oldest,
            totals.get("stored", 0),
            totals.get("stored_bytes", 0),
            failures,
            store_errors,
        )


def _counts(results: Sequence[archive.Result]) -> Counter[str]:
    """How a settle moves archive_counts: stored objects and bytes, failures by reason."""
    counts: Counter[str] = Counter()
    for r in results:
        if isinstance(r, archive.Stored):
            counts["stored"] += 1
            counts["stored_bytes"] += r.bytes
        else:
            counts[f"failed:{r.reason}"] += 1
    return counts


def _row(job_id: int, result: archive.Result, now: datetime) -> dict[str, Any]:
    return {"job_id": job_id, **archive.record(result), "stored_at": now}
