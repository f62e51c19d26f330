"""The store's portable statements, named, one function each (the output archive's and the
series' are in `queries_archive.py` and `queries_series.py`; the hot paths' hand-written ones
in `sql/`). Each builds a SQLAlchemy Core statement; none touches a connection."""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    Column,
    CompoundSelect,
    Insert,
    Select,
    Table,
    TextClause,
    Update,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.sql.dml import ReturningDelete
from sqlalchemy.sql.elements import ColumnElement

from service.domain.states import TERMINAL, UNFINISHED, JobStatus, in_order
from service.domain.wakeups import Wake
from service.store.tables import (
    COUNT_SHARDS,
    api_keys,
    callback_deliveries,
    clients,
    job_events,
    job_outputs,
    jobs,
    service_state,
    status_counts,
)

WAKE_CHANNEL = "outpaint_jobs"  # LISTENed to by every worker (service/store/listener.py)
WATCH_CHANNEL = "outpaint_job_changed"  # a watched job changed: its id (workers/watchers.py)
WAKE_CALLBACK_DUE = Wake.CALLBACK_DUE

# --- service state -----------------------------------------------------------------------


def get_state(key: str) -> Select[Any]:
    return select(service_state.c.value).where(service_state.c.key == key)


def insert_state(key: str, value: str) -> Insert:
    return insert(service_state).values(key=key, value=value)


def upsert(dialect: str, table: Table) -> Any:
    """The dialect's INSERT for `table`, which takes ON CONFLICT (PostgreSQL's or SQLite's)."""
    from sqlalchemy.dialects import postgresql, sqlite

    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def add_rows(
    dialect: str,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    keys: Sequence[str],
    column: str,
    combine: Callable[[Any, Any], Any] = operator.add,
) -> Insert:
    """Insert `rows` in one statement; a row whose `keys` are taken combines its `column`
    with the stored value (adds it, by default). Callers sort `rows`: one lock order for
    every writer."""
    stmt = upsert(dialect, table).values(list(rows))
    done: Insert = stmt.on_conflict_do_update(
        index_elements=[table.c[k] for k in keys],
        set_={column: combine(table.c[column], stmt.excluded[column])},
    )
    return done


def upsert_state(dialect: str, key: str, value: str) -> Insert:
    stmt = upsert(dialect, service_state).values(key=key, value=value)
    done: Insert = stmt.on_conflict_do_update(
        index_elements=[service_state.c.key], set_={"value": value}
    )
    return done


# --- clients and keys --------------------------------------------------------------------


def get_client_by_name(name: str) -> Select[Any]:
    return select(clients).where(clients.c.name == name)


def insert_client(name: str, callback_secret: str, now: datetime) -> Insert:
    return (
        insert(clients)
        .values(name=name, callback_secret=callback_secret, created_at=now)
        .returning(clients.c.id)
    )


def seed_client_counts(client_id: int) -> Insert:
    """A new client's unfinished-job counters, at zero: they exist from the start, so a
    creation can lock every one of them (PostgreSQL's `create_job`)."""
    return insert(status_counts).values(
        [
            {"client_id": client_id, "status": status, "shard": shard, "n": 0}
            for status in in_order(UNFINISHED)
            for shard in range(COUNT_SHARDS)
        ]
    )


def insert_key(client_id: int, prefix: str, key_hash: str, scopes: str, now: datetime) -> Insert:
    return insert(api_keys).values(
        client_id=client_id, prefix=prefix, key_hash=key_hash, scopes=scopes, created_at=now
    )


def _active_keys() -> Select[Any]:
    """Keys not revoked, with their client's name and default callback URL."""
    return (
        select(api_keys, clients.c.name.label("client_name"), clients.c.default_callback_url)
        .join(clients, clients.c.id == api_keys.c.client_id)
        .where(api_keys.c.revoked_at.is_(None))
    )


def find_active_key(key_hash: str) -> Select[Any]:
    return _active_keys().where(api_keys.c.key_hash == key_hash)


def find_active_key_by_id(key_id: int) -> Select[Any]:
    """A key by its id, if not revoked (an event link names the key that made it)."""
    return _active_keys().where(api_keys.c.id == key_id)


def touch_key(key_id: int, now: datetime, stale_before: datetime) -> Update:
    """Record last use, at most once per interval per key (keeps reads cheap)."""
    return (
        update(api_keys)
        .where(
            api_keys.c.id == key_id,
            or_(api_keys.c.last_used_at.is_(None), api_keys.c.last_used_at < stale_before),
        )
        .values(last_used_at=now)
    )


def list_keys() -> Select[Any]:
    return (
        select(api_keys, clients.c.name.label("client_name"))
        .join(clients, clients.c.id == api_keys.c.client_id)
        .order_by(api_keys.c.id)
    )


def revoke_key(prefix: str, now: datetime) -> Update:
    return (
        update(api_keys)
        .where(api_keys.c.prefix == prefix, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )


def count_keys() -> Select[Any]:
    return select(func.count()).select_from(api_keys)


# --- jobs ----------------------------------------------------------------------------------


def get_job_by_public_id(public_id: str, client_id: int | None) -> Select[Any]:
    stmt = select(jobs).where(jobs.c.public_id == public_id)
    if client_id is not None:
        stmt = stmt.where(jobs.c.client_id == client_id)
    return stmt


def get_job(job_id: int, for_update: bool = False) -> Select[Any]:
    """One job by id; `for_update` locks its row until the transaction ends (PostgreSQL;
    SQLite's BEGIN IMMEDIATE already holds the whole database)."""
    stmt = select(jobs).where(jobs.c.id == job_id)
    return stmt.with_for_update() if for_update else stmt


def list_jobs(
    client_id: int | None,
    status: JobStatus | None,
    before_id: int | None,
    limit: int,
    match: str | None = None,
) -> Select[Any]:
    """Newest first, keyset-paginated on the primary key; `match` keeps the jobs it names
    exactly: by public id, track id (the primary key), provider id or Idempotency-Key,
    each an index (ops search every client's jobs by it)."""
    stmt = select(jobs).order_by(jobs.c.id.desc()).limit(limit)
    if client_id is not None:
        stmt = stmt.where(jobs.c.client_id == client_id)
    if status is not None:
        stmt = stmt.where(jobs.c.status == status.value)
    if match is not None:
        # The ids each name finds, by its own index, then those rows: a client's or a state's
        # filter applies to the few found (an OR beside `client_id = ?` would let SQLite,
        # which keeps no statistics here, read every job of the client instead).
        names = [
            select(jobs.c.id).where(jobs.c.public_id == match),
            select(jobs.c.id).where(jobs.c.provider_id == match),
            select(jobs.c.id).where(jobs.c.idempotency_key == match),
        ]
        if match.isascii() and match.isdigit() and len(match) <= 18:
            names.append(select(jobs.c.id).where(jobs.c.id == int(match)))
        stmt = stmt.where(jobs.c.id.in_(union_all(*names)))
    if before_id is not None:
        stmt = stmt.where(jobs.c.id < before_id)
    return stmt


def _claimable(table: Table, now: datetime) -> ColumnElement[bool]:
    return or_(table.c.lease_expires_at.is_(None), table.c.lease_expires_at < now)


class Lease(NamedTuple):
    """A claim being taken: at `now`, by `owner`, until `until`, of `limit` rows at most."""

    now: datetime
    owner: str
    until: datetime
    limit: int


def leased_claim(
    table: Table,
    due_column: Column[Any],
    condition: ColumnElement[bool],
    lease: Lease,
    extra: Mapping[str, Any] | None = None,
) -> Update:
    """Claim up to `lease.limit` due rows in one statement, stamping a lease.

    PostgreSQL: a CTE `FOR UPDATE SKIP LOCKED` then `UPDATE … FROM cte RETURNING`, so
    replicas never claim the same row. SQLite drops the lock clause; its single writer
    (BEGIN IMMEDIATE) gives the same guarantee.
    """
    now = lease.now
    due = (
        select(table.c.id)
        .where(condition, due_column <= now, _claimable(table, now))
        .order_by(due_column, table.c.id)
        .limit(lease.limit)
        .with_for_update(skip_locked=True)
        .cte("due")
    )
    return (
        update(table)
        .where(table.c.id == due.c.id)
        .values(lease_owner=lease.owner, lease_expires_at=lease.until, **(extra or {}))
        .returning(*table.c)
    )


def claim_due(status: JobStatus, lease: Lease, extra: Mapping[str, Any] | None = None) -> Update:
    """The submitter's (queued) and the sweeper's (processing) claim."""
    # Inlined, not bound: the planner must see the literal to use the partial index.
    condition = jobs.c.status == bindparam("claim_status", status.value, literal_execute=True)
    return leased_claim(jobs, jobs.c.next_poll_at, condition, lease, extra)


def claim_one(
    job_id: int,
    statuses: Iterable[JobStatus],
    now: datetime,
    owner: str,
    lease_until: datetime,
    refreshed_before: datetime | None = None,
) -> Update:
    """Claim one job. With `refreshed_before` (a client's refresh), only if its last
    refresh is older than that, and stamp this one."""
    stmt = update(jobs).where(
        jobs.c.id == job_id,
        jobs.c.status.in_([s.value for s in statuses]),
        _claimable(jobs, now),
    )
    values: dict[str, Any] = {"lease_owner": owner, "lease_expires_at": lease_until}
    if refreshed_before is not None:
        stmt = stmt.where(
            or_(jobs.c.refreshed_at.is_(None), jobs.c.refreshed_at <= refreshed_before)
        )
        values["refreshed_at"] = now
    return stmt.values(**values).returning(*jobs.c)


def extend_lease(job_id: int, owner: str, until: datetime) -> Update:
    """A worker still holding its claim keeps it longer (compare-and-set on the owner)."""
    return (
        update(jobs)
        .where(jobs.c.id == job_id, jobs.c.lease_owner == owner)
        .values(lease_expires_at=until)
    )


def release_claims(owner: str, status: JobStatus) -> Update:
    """Hand back one worker's claims on jobs in `status` (on shutdown)."""
    return (
        update(jobs)
        .where(jobs.c.lease_owner == owner, jobs.c.status == status.value)
        .values(lease_owner=None, lease_expires_at=None)
    )


CAPACITY_LOCK = 0x6F75_7470  # "outp": serialises submit claims across replicas (PostgreSQL)


def lock_capacity() -> TextClause:
    return text("SELECT pg_advisory_xact_lock(:key)").bindparams(key=CAPACITY_LOCK)


def count_inflight(now: datetime) -> Select[Any]:
    """Jobs unfinished at the provider: processing, or queued under a live submit claim."""
    return (
        select(func.count())
        .select_from(jobs)
        .where(
            or_(
                jobs.c.status
                == bindparam("processing", JobStatus.PROCESSING.value, literal_execute=True),
                and_(
                    jobs.c.status
                    == bindparam("queued", JobStatus.QUEUED.value, literal_execute=True),
                    jobs.c.lease_expires_at > now,
                ),
            )
        )
    )


def crashed_claim_count() -> ColumnElement[Any]:
    """+1 when the claim being taken over was left behind by a worker (it never recorded an
    outcome, so its submit may have reached the provider)."""
    return jobs.c.crashed_submits + case((jobs.c.lease_owner.is_not(None), 1), else_=0)


PRUNE_LOCK = 0x6F75_7471  # one replica prunes at a time (PostgreSQL session lock)
FINISHED = in_order(TERMINAL)


def try_lock_prune() -> TextClause:
    return text("SELECT pg_try_advisory_lock(:key)").bindparams(key=PRUNE_LOCK)


def unlock_prune() -> TextClause:
    return text("SELECT pg_advisory_unlock(:key)").bindparams(key=PRUNE_LOCK)


def prune_batch(
    completed_before: datetime, batch_size: int, keep_stored: bool = False
) -> ReturningDelete[Any, Any]:
    """Delete up to `batch_size` finished jobs completed before the cutoff, oldest first;
    their events go with them (ON DELETE CASCADE). `keep_stored`: not a job whose outputs
    are still in the output store (their objects go first, so no object outlives its row)."""
    oldest = (
        select(jobs.c.id)
        .where(
            jobs.c.status.in_(
                [bindparam(f"finished_{s}", s, literal_execute=True) for s in FINISHED]
            ),
            jobs.c.completed_at < completed_before,
        )
        .order_by(jobs.c.completed_at)
        .limit(batch_size)
    )
    if keep_stored:
        o = job_outputs
        stored = select(o.c.job_id).where(o.c.job_id == jobs.c.id, o.c.object_key.is_not(None))
        oldest = oldest.where(~stored.exists())
    return (
        delete(jobs)
        .where(jobs.c.id.in_(oldest.scalar_subquery()))
        .returning(jobs.c.client_id, jobs.c.status)
    )


def notify_workers(cause: Wake) -> TextClause:
    """PostgreSQL: wake every replica's workers, for `cause`, when this transaction commits."""
    return text("SELECT pg_notify(:channel, :cause)").bindparams(
        channel=WAKE_CHANNEL, cause=cause.value
    )


def notify_watchers(job_id: int) -> TextClause:
    """PostgreSQL: tell the processes waiting on this job (its job_watchers rows) that it
    changed, when this transaction commits; nothing when no one waits on it."""
    return text(
        "SELECT CASE WHEN EXISTS (SELECT 1 FROM job_watchers w WHERE w.job_id = :job_id) "
        "THEN pg_notify(:channel, CAST(:job_id AS text)) END"
    ).bindparams(job_id=job_id, channel=WATCH_CHANNEL)


def forget_idempotency_key(client_id: int, key: str, created_before: datetime) -> Update:
    """Idempotency keys live 24 hours: free an old one so it can name a new job."""
    return (
        update(jobs)
        .where(
            jobs.c.client_id == client_id,
            jobs.c.idempotency_key == key,
            jobs.c.created_at < created_before,
        )
        .values(idempotency_key=None)
    )


# --- events ----------------------------------------------------------------------------------


def insert_event(
    job_id: int,
    at: datetime,
    kind: str,
    source: str,
    detail: Mapping[str, Any],
    from_status: str | None = None,
    to_status: str | None = None,
) -> Insert:
    return insert(job_events).values(
        job_id=job_id,
        at=at,
        kind=kind,
        source=source,
        from_status=from_status,
        to_status=to_status,
        detail=dict(detail),
    )


def job_marks(job_ids: Sequence[int]) -> Select[Any]:
    """Where each job stands: its version and its last event's id (a waiter's catch-up)."""
    last_event = (
        select(func.max(job_events.c.id)).where(job_events.c.job_id == jobs.c.id).scalar_subquery()
    )
    return select(jobs.c.id, jobs.c.version, last_event.label("last_event")).where(
        jobs.c.id.in_(job_ids)
    )


def list_events(job_id: int, after_id: int | None, limit: int | None) -> Select[Any]:
    """Oldest first, keyset-paginated on the event id."""
    stmt = select(job_events).where(job_events.c.job_id == job_id).order_by(job_events.c.id)
    if after_id is not None:
        stmt = stmt.where(job_events.c.id > after_id)
    return stmt if limit is None else stmt.limit(limit)


# --- client callbacks --------------------------------------------------------------------


def get_client(client_id: int) -> Select[Any]:
    return select(clients).where(clients.c.id == client_id)


def rotate_client_secret(name: str, new_secret: str, old_expires_at: datetime) -> Update:
    return (
        update(clients)
        .where(clients.c.name == name)
        .values(
            previous_callback_secret=clients.c.callback_secret,
            previous_secret_expires_at=old_expires_at,
            callback_secret=new_secret,
        )
    )


def set_default_callback(name: str, url: str | None) -> Update:
    return update(clients).where(clients.c.name == name).values(default_callback_url=url)


def claim_deliveries(lease: Lease) -> Update:
    """The notifier's claim: the same leased claim as the jobs'."""
    d = callback_deliveries
    condition = d.c.status.in_(
        [bindparam(f"due_{s}", s, literal_execute=True) for s in ("pending", "failing")]
    )
    return leased_claim(d, d.c.next_attempt_at, condition, lease)


def finish_attempt(delivery_id: int, owner: str, values: Mapping[str, Any]) -> Update:
    """Compare-and-set on the claim: a delivery taken over by another notifier is theirs."""
    d = callback_deliveries
    return (
        update(d)
        .where(d.c.id == delivery_id, d.c.lease_owner == owner)
        .values(lease_owner=None, lease_expires_at=None, attempts=d.c.attempts + 1, **values)
        .returning(*d.c)
    )


def get_delivery_of_job(job_id: int) -> Select[Any]:
    return select(callback_deliveries).where(callback_deliveries.c.job_id == job_id)


def replay_delivery(job_id: int, now: datetime) -> Update:
    return (
        update(callback_deliveries)
        .where(callback_deliveries.c.job_id == job_id)
        .values(status="pending", next_attempt_at=now, schedule_step=0, updated_at=now)
        .returning(*callback_deliveries.c)
    )


def set_callback_status(job_id: int, status: str, now: datetime) -> Update:
    return (
        update(jobs)
        .where(
            jobs.c.id == job_id,
            or_(jobs.c.callback_status.is_(None), jobs.c.callback_status != status),
        )
        .values(callback_status=status, updated_at=now, version=jobs.c.version + 1)
    )


CALLBACK_DUE_SQL_QUALIFIED = "callback_deliveries.status IN ('pending', 'failing')"
CALLBACK_DEAD_SQL_QUALIFIED = "callback_deliveries.status = 'dead'"


def count_deliveries_by_status(client_id: int | None = None) -> CompoundSelect[Any]:
    """Deliveries not (yet) delivered, by status. Each part repeats a partial index's
    predicate exactly (SQLite needs that to use one), so delivered history is never read."""
    d = callback_deliveries
    due = (
        select(d.c.status, func.count().label("n"))
        .where(text(CALLBACK_DUE_SQL_QUALIFIED))
        .group_by(d.c.status)
    )
    dead = (
        select(d.c.status, func.count().label("n"))
        .where(text(CALLBACK_DEAD_SQL_QUALIFIED))
        .group_by(d.c.status)
    )
    if client_id is not None:
        due = due.where(d.c.client_id == client_id)
        dead = dead.where(d.c.client_id == client_id)
    return union_all(due, dead)


# --- counts and stats ----------------------------------------------------------------------


def bump_status_counts(
    dialect: str, client_id: int, shard: int, deltas: Mapping[str, int]
) -> Insert:
    """Add each delta to (client, status, shard), in one statement."""
    rows = [
        {"client_id": client_id, "status": status, "shard": shard, "n": delta}
        for status, delta in sorted(deltas.items())
    ]
    return add_rows(dialect, status_counts, rows, ("client_id", "status", "shard"), "n")


def status_count_totals(client_id: int | None) -> Select[Any]:
    stmt = select(status_counts.c.status, func.sum(status_counts.c.n)).group_by(
        status_counts.c.status
    )
    if client_id is not None:
        stmt = stmt.where(status_counts.c.client_id == client_id)
    return stmt


def _for_client(stmt: Select[Any], client_id: int | None) -> Select[Any]:
    return stmt if client_id is None else stmt.where(jobs.c.client_id == client_id)


def _processing() -> ColumnElement[bool]:
    return jobs.c.status == bindparam(
        "st_processing", JobStatus.PROCESSING.value, literal_execute=True
    )


def count_overdue(eta_before: datetime, client_id: int | None) -> Select[Any]:
    """Processing jobs past eta + grace: read through the poll-claim partial index."""
    stmt = select(func.count()).select_from(jobs).where(_processing(), jobs.c.eta_at < eta_before)
    return _for_client(stmt, client_id)


def oldest_processing(client_id: int | None) -> Select[Any]:
    stmt = select(func.min(func.coalesce(jobs.c.submitted_at, jobs.c.created_at))).where(
        _processing()
    )
    return _for_client(stmt, client_id)


def oldest_overdue_poll(now: datetime) -> Select[Any]:
    """The sweeper's lag: when the most overdue poll was due."""
    return select(func.min(jobs.c.next_poll_at)).where(_processing(), jobs.c.next_poll_at <= now)


def next_poll_due() -> Select[Any]:
    """When the sweeper's next poll falls due: each processing job's next poll, or its
    claim's expiry when another worker holds it (a partial-index range: processing jobs
    are the few at the provider)."""
    leased = jobs.c.lease_expires_at > jobs.c.next_poll_at
    due = case((leased, jobs.c.lease_expires_at), else_=jobs.c.next_poll_at)
    return select(func.min(due)).where(_processing())


def oldest_queued() -> Select[Any]:
    """When the oldest job still queued was created: the first queued id (ids grow with
    creation), read through (status, id); nothing when none is queued."""
    queued = jobs.c.status == bindparam(
        "oldest_status", JobStatus.QUEUED.value, literal_execute=True
    )
    return select(jobs.c.created_at).where(queued).order_by(jobs.c.id).limit(1)


def _finished_since(since: datetime) -> ColumnElement[bool]:
    return and_(
        jobs.c.status.in_([bindparam(f"fin_{s}", s, literal_execute=True) for s in FINISHED]),
        jobs.c.completed_at >= since,
    )


def count_completed_since(since: datetime, client_id: int | None) -> Select[Any]:
    stmt = select(func.count()).select_from(jobs).where(_finished_since(since))
    return _for_client(stmt, client_id)


def completion_times(since: datetime, client_id: int | None, limit: int) -> Select[Any]:
    """(created_at, completed_at) of jobs that succeeded since `since`, newest first: read
    through the finished jobs' completed_at index."""
    stmt = (
        select(jobs.c.created_at, jobs.c.completed_at)
        .where(_finished_since(since), jobs.c.status == JobStatus.SUCCEEDED.value)
        .order_by(jobs.c.completed_at.desc())
        .limit(limit)
    )
    return _for_client(stmt, client_id)
