"""The output archive's statements, named (the rest are in `queries.py`): its queue's
leased claim and compare-and-sets, the record of stored objects, and what retention and
ops read of them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Insert,
    Select,
    Update,
    bindparam,
    func,
    insert,
    select,
    update,
)

from service.store.queries import FINISHED, Lease, add_rows, leased_claim
from service.store.tables import (
    archive_counts,
    callback_deliveries,
    job_outputs,
    jobs,
    output_archives,
    output_stores,
)

a = output_archives


def claim_archives(lease: Lease) -> Update:
    """The archiver's claim: the same leased claim as the jobs' (partial index on pending)."""
    condition = a.c.status == bindparam("archive_status", "pending", literal_execute=True)
    return leased_claim(a, a.c.next_attempt_at, condition, lease)


def settle_archive(
    archive_id: int, owner: str, status: str, error: str | None, now: datetime
) -> Update:
    """Compare-and-set on the claim: pending → done or failed."""
    return (
        update(a)
        .where(a.c.id == archive_id, a.c.lease_owner == owner, a.c.status == "pending")
        .values(
            status=status,
            last_error=error,
            attempts=a.c.attempts + 1,
            next_attempt_at=None,
            lease_owner=None,
            lease_expires_at=None,
            updated_at=now,
        )
        .returning(a.c.id)
    )


def retry_archive(archive_id: int, owner: str, at: datetime, error: str, now: datetime) -> Update:
    """Compare-and-set on the claim: still pending, due again at `at`."""
    return (
        update(a)
        .where(a.c.id == archive_id, a.c.lease_owner == owner, a.c.status == "pending")
        .values(
            attempts=a.c.attempts + 1,
            next_attempt_at=at,
            last_error=error,
            lease_owner=None,
            lease_expires_at=None,
            updated_at=now,
        )
        .returning(a.c.id)
    )


def insert_outputs(rows: Sequence[Mapping[str, Any]]) -> Insert:
    return insert(job_outputs).values(list(rows))


def set_job_archive(
    job_id: int, status: str, outputs: list[dict[str, Any]], error: str | None, now: datetime
) -> Update:
    """The job as clients see it: its archive status, outputs and why any is not kept, and
    settled now (a new version)."""
    return (
        update(jobs)
        .where(jobs.c.id == job_id)
        .values(
            archive_status=status,
            outputs=outputs,
            archive_error=error,
            settled_at=now,
            updated_at=now,
            version=jobs.c.version + 1,
        )
    )


def note_archive_error(job_id: int, error: str, now: datetime) -> Update:
    """Why the job's outputs are not kept yet, when that reason is new (a new version)."""
    return (
        update(jobs)
        .where(
            jobs.c.id == job_id,
            jobs.c.archive_status == "pending",
            jobs.c.archive_error.is_distinct_from(error),
        )
        .values(archive_error=error, updated_at=now, version=jobs.c.version + 1)
    )


def release_held_callback(job_id: int, now: datetime) -> Update:
    """The job's callback, held while its outputs were archived, is due now."""
    d = callback_deliveries
    return (
        update(d)
        .where(d.c.job_id == job_id, d.c.status == "pending", d.c.attempts == 0)
        .values(next_attempt_at=now, updated_at=now)
    )


def outputs_of(job_ids: Sequence[int]) -> Select[Any]:
    return (
        select(job_outputs)
        .where(job_outputs.c.job_id.in_(list(job_ids)))
        .order_by(job_outputs.c.job_id, job_outputs.c.n)
    )


def output(job_id: int, n: int) -> Select[Any]:
    return select(job_outputs).where(job_outputs.c.job_id == job_id, job_outputs.c.n == n)


def stored_outputs(after: tuple[int, int] | None, limit: int) -> Select[Any]:
    """Every stored object, in key order, a page at a time (verify)."""
    o = job_outputs
    stmt = select(o).where(o.c.object_key.is_not(None))
    if after is not None:
        stmt = stmt.where((o.c.job_id > after[0]) | ((o.c.job_id == after[0]) & (o.c.n > after[1])))
    return stmt.order_by(o.c.job_id, o.c.n).limit(limit)


def archive_backlog() -> Select[Any]:
    """Pending archives: how many, and since when the oldest (partial index on pending)."""
    pending = a.c.status == bindparam("backlog_status", "pending", literal_execute=True)
    return cast("Select[Any]", select(func.count(), func.min(a.c.created_at)).where(pending))


def bump_archive_counts(dialect: str, deltas: Mapping[str, int]) -> Insert:
    """Add each delta to its counter, in one statement (one lock order: sorted)."""
    rows = [{"name": name, "n": delta} for name, delta in sorted(deltas.items())]
    return add_rows(dialect, archive_counts, rows, ("name",), "n")


def count_store_outputs(dialect: str, deltas: Mapping[str, int]) -> Insert:
    """Add each delta to its store's count of outputs, in one statement (sorted)."""
    rows = [{"name": name, "outputs": delta} for name, delta in sorted(deltas.items())]
    return add_rows(dialect, output_stores, rows, ("name",), "outputs")


def stores_holding(other_than: str) -> Select[Any]:
    """The other output stores that still hold outputs, and how many (a few rows)."""
    st = output_stores
    return (
        select(st.c.name, st.c.outputs)
        .where(st.c.name != other_than, st.c.outputs > 0)
        .order_by(st.c.name)
    )


def outputs_elsewhere(other_than: str, after: tuple[int, int] | None, limit: int) -> Select[Any]:
    """Stored outputs another store holds, in key order, a page at a time (migrate)."""
    o = job_outputs
    stmt = select(o).where(
        o.c.object_key.is_not(None), o.c.store.is_not(None), o.c.store != other_than
    )
    if after is not None:
        stmt = stmt.where((o.c.job_id > after[0]) | ((o.c.job_id == after[0]) & (o.c.n > after[1])))
    return stmt.order_by(o.c.job_id, o.c.n).limit(limit)


def move_output(job_id: int, n: int, source: str, target: str) -> Update:
    """Compare-and-set: the output, still in `source`, is now in `target`."""
    o = job_outputs
    return (
        update(o).where(o.c.job_id == job_id, o.c.n == n, o.c.store == source).values(store=target)
    )


def archive_totals() -> Select[Any]:
    return select(archive_counts.c.name, archive_counts.c.n)


def stored_of_finished(completed_before: datetime, limit: int) -> Select[Any]:
    """Stored outputs of jobs retention is about to delete (finished before the cutoff)."""
    o = job_outputs
    finished = jobs.c.status.in_(
        [bindparam(f"forget_{s}", s, literal_execute=True) for s in FINISHED]
    )
    return (
        select(o)
        .join(jobs, jobs.c.id == o.c.job_id)
        .where(finished, jobs.c.completed_at < completed_before, o.c.object_key.is_not(None))
        .order_by(jobs.c.completed_at, o.c.job_id, o.c.n)
        .limit(limit)
    )


def forget_stored(job_id: int, n: int) -> Update:
    """The object is deleted: its row no longer points at it."""
    o = job_outputs
    return (
        update(o).where(o.c.job_id == job_id, o.c.n == n).values(object_key=None, error="deleted")
    )
