"""The tables. Migrations in `migrations/` create exactly these."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from service.domain.states import JobStatus
from service.store.sql import STATE_SETS, state_list
from service.store.types import Json, UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# BIGINT on PostgreSQL, INTEGER (the rowid alias) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")

# The partial indexes' predicates, from the one definition of the state sets.
QUEUED_SQL = f"status = {state_list([JobStatus.QUEUED])}"
PROCESSING_SQL = f"status = {state_list([JobStatus.PROCESSING])}"
UNFINISHED_SQL = f"status IN ({STATE_SETS['UNFINISHED']})"
CALLBACK_DUE_SQL = "status IN ('pending', 'failing')"
FINISHED_SQL = f"status IN ({STATE_SETS['FINISHED']})"

clients = Table(
    "clients",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("callback_secret", String(200), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    # Rotation: the previous secret still signs (beside the new one) until it expires.
    Column("previous_callback_secret", String(200)),
    Column("previous_secret_expires_at", UTCDateTime()),
    Column("default_callback_url", Text),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("client_id", BigId, ForeignKey("clients.id"), nullable=False, index=True),
    Column("prefix", String(32), nullable=False, unique=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("scopes", String(200), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime()),
    Column("last_used_at", UTCDateTime()),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),  # the track_id
    Column("public_id", String(40), nullable=False, unique=True),
    Column("client_id", BigId, ForeignKey("clients.id"), nullable=False),
    Column("status", String(20), nullable=False),
    Column("request", Json, nullable=False),
    Column("idempotency_key", String(200)),
    Column("request_hash", String(64), nullable=False),
    Column("provider_id", String(100)),
    Column("provider_status", String(100)),
    Column("eta_at", UTCDateTime()),
    Column("fetch_result", Text),
    Column("output", Json, nullable=False),
    Column("error_code", String(100)),
    Column("error_message", Text),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("submitted_at", UTCDateTime()),
    Column("completed_at", UTCDateTime()),
    Column("next_poll_at", UTCDateTime()),
    Column("polls", Integer, nullable=False, server_default="0"),
    Column("webhooks", Integer, nullable=False, server_default="0"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("submit_attempts", Integer, nullable=False, server_default="0"),
    # Claims for submission taken over from a worker that died holding them: each may have
    # reached ModelsLab, so the job is resubmitted after at most one of them.
    Column("crashed_submits", Integer, nullable=False, server_default="0"),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("lease_owner", String(100)),
    Column("lease_expires_at", UTCDateTime()),
    Column("callback_url", Text),
    Column("callback_status", String(20)),  # pending, delivered, failing, dead; or NULL
    Column("metadata", Json, nullable=False),
    # The last `POST /v1/jobs/{id}/refresh` that polled the provider (one per interval).
    Column("refreshed_at", UTCDateTime()),
    # The output archive (OUTPUT_STORE): pending, done, failed; NULL when not archived. The
    # stored outputs as clients see them (the record of each object is job_outputs).
    Column("archive_status", String(20)),
    Column("outputs", Json),
    # Why the outputs are not (all) kept, or not yet: the archive's last reason.
    Column("archive_error", Text),
    # When the job settled: terminal, and its outputs no longer being kept (every channel's
    # finish line: service/domain/settling.py).
    Column("settled_at", UTCDateTime()),
    UniqueConstraint("client_id", "idempotency_key"),
    # One partial index per claim query, matching its WHERE and ORDER BY, so a claim reads
    # only unfinished rows however much finished history the table holds.
    Index(
        "ix_jobs_submit_due",
        "next_poll_at",
        "id",
        postgresql_where=text(QUEUED_SQL),
        sqlite_where=text(QUEUED_SQL),
    ),
    Index(
        "ix_jobs_poll_due",
        "next_poll_at",
        "id",
        postgresql_where=text(PROCESSING_SQL),
        sqlite_where=text(PROCESSING_SQL),
    ),
    # Retention deletes finished jobs oldest first.
    Index(
        "ix_jobs_finished_completed_at",
        "completed_at",
        postgresql_where=text(FINISHED_SQL),
        sqlite_where=text(FINISHED_SQL),
    ),
    Index("ix_jobs_client_id_id", "client_id", "id"),
    # The per-client cap on unfinished jobs counts only these.
    Index(
        "ix_jobs_client_unfinished",
        "client_id",
        postgresql_where=text(UNFINISHED_SQL),
        sqlite_where=text(UNFINISHED_SQL),
    ),
    Index("ix_jobs_status_id", "status", "id"),
    # One client's jobs in one state, newest first (GET /v1/jobs?status= with a client's key,
    # or ops filtering by client and state).
    Index("ix_jobs_client_status_id", "client_id", "status", "id"),
    # Finding one job (GET /v1/jobs?q=): by the provider's id, or by an Idempotency-Key
    # across clients (one client's own search uses the unique key above).
    Index(
        "ix_jobs_provider_id",
        "provider_id",
        postgresql_where=text("provider_id IS NOT NULL"),
        sqlite_where=text("provider_id IS NOT NULL"),
    ),
    Index(
        "ix_jobs_idempotency_key",
        "idempotency_key",
        postgresql_where=text("idempotency_key IS NOT NULL"),
        sqlite_where=text("idempotency_key IS NOT NULL"),
    ),
)

job_events = Table(
    "job_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("job_id", BigId, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("source", String(40), nullable=False),
    Column("from_status", String(20)),
    Column("to_status", String(20)),
    Column("detail", Json, nullable=False),
    Index("ix_job_events_job_id_id", "job_id", "id"),
)

# The callback outbox: one row per terminal job with a callback URL, written in the same
# transaction as the terminal transition; any replica's notifier delivers it.
callback_deliveries = Table(
    "callback_deliveries",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("job_id", BigId, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False, unique=True),
    Column("client_id", BigId, ForeignKey("clients.id", ondelete="CASCADE"), nullable=False),
    Column("webhook_id", String(64), nullable=False, unique=True),
    Column("event_type", String(40), nullable=False),
    Column("url", Text, nullable=False),
    # The exact bytes every attempt sends: built from the terminal job at the first attempt.
    Column("body", Text),
    Column("status", String(20), nullable=False),  # pending, failing, delivered, dead
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("schedule_step", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UTCDateTime()),
    Column("last_status_code", Integer),
    Column("last_error", Text),
    Column("lease_owner", String(100)),
    Column("lease_expires_at", UTCDateTime()),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("delivered_at", UTCDateTime()),
    Index(
        "ix_callback_deliveries_due",
        "next_attempt_at",
        "id",
        postgresql_where=text(CALLBACK_DUE_SQL),
        sqlite_where=text(CALLBACK_DUE_SQL),
    ),
    Index(
        "ix_callback_deliveries_dead",
        "client_id",
        postgresql_where=text("status = 'dead'"),
        sqlite_where=text("status = 'dead'"),
    ),
)

# Jobs per client and state, kept exact by every insert, transition and prune (in their own
# transactions), so counts by state never scan history. Each change lands on one of
# COUNT_SHARDS rows (by job id), so concurrent transitions of one client do not queue on
# one hot row; readers sum the shards.
COUNT_SHARDS = 16
status_counts = Table(
    "status_counts",
    metadata,
    Column("client_id", BigId, ForeignKey("clients.id", ondelete="CASCADE"), primary_key=True),
    Column("status", String(20), primary_key=True),
    Column("shard", Integer, primary_key=True),
    Column("n", BigInteger, nullable=False),
)

# Fixed-window counters of job creations per client, shared by every replica.
rate_windows = Table(
    "rate_windows",
    metadata,
    Column("client_id", BigId, ForeignKey("clients.id", ondelete="CASCADE"), primary_key=True),
    Column("window_start", UTCDateTime(), primary_key=True),
    Column("count", Integer, nullable=False),
)

service_state = Table(
    "service_state",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=False),
)

# Which processes wait on a job (a long-poll or an event stream): PostgreSQL changes NOTIFY
# only jobs named here. A process refreshes its rows while it waits; a dead process's rows
# expire and are swept by the next process that watches.
job_watchers = Table(
    "job_watchers",
    metadata,
    Column("job_id", BigId, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("watcher", String(100), primary_key=True),
    Column("expires_at", UTCDateTime(), nullable=False),
    Index("ix_job_watchers_watcher", "watcher"),
)

# The archive queue: one row per succeeded job whose outputs are to be stored, written in
# the same transaction as the job's success and claimed with a lease like the other work.
ARCHIVE_PENDING_SQL = "status = 'pending'"
output_archives = Table(
    "output_archives",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("job_id", BigId, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False, unique=True),
    Column("status", String(20), nullable=False),  # pending, done, failed
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UTCDateTime()),
    Column("deadline_at", UTCDateTime(), nullable=False),
    Column("last_error", Text),
    Column("lease_owner", String(100)),
    Column("lease_expires_at", UTCDateTime()),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index(
        "ix_output_archives_due",
        "next_attempt_at",
        "id",
        postgresql_where=text(ARCHIVE_PENDING_SQL),
        sqlite_where=text(ARCHIVE_PENDING_SQL),
    ),
)

# Every output the archive stored (or gave up on): where, its checksum and its shape.
job_outputs = Table(
    "job_outputs",
    metadata,
    Column("job_id", BigId, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("n", Integer, primary_key=True),
    Column("provider_url", Text, nullable=False),
    Column("object_key", Text),
    Column("sha256", String(64)),
    Column("bytes", BigInteger),
    Column("width", Integer),
    Column("height", Integer),
    Column("content_type", String(100)),
    Column("error", Text),
    Column("stored_at", UTCDateTime(), nullable=False),
    # The output store that holds the object (its name: s3://bucket/prefix [at ENDPOINT], or
    # a directory); NULL for outputs kept before stores were recorded (taken as the current).
    Column("store", Text),
)

# The archive's counters: "stored", "stored_bytes", and "failed:<reason>"; moved by every
# settle and deletion in their own transactions, so ops read totals without a scan.
archive_counts = Table(
    "archive_counts",
    metadata,
    Column("name", String(120), primary_key=True),
    Column("n", BigInteger, nullable=False),
)

# How many stored outputs each output store holds (kept by every settle, deletion and
# migration), so a process tells at start how many are kept elsewhere than its own store
# without counting job_outputs.
output_stores = Table(
    "output_stores",
    metadata,
    Column("name", Text, primary_key=True),
    Column("outputs", BigInteger, nullable=False),
)

# The series ops chart: each process adds what it counted, by minute, series and label
# (service/rollup.py); the primary key is the range every read takes.
stats_minutes = Table(
    "stats_minutes",
    metadata,
    Column("minute", UTCDateTime(), primary_key=True),
    Column("series", String(40), primary_key=True),
    Column("label", String(40), primary_key=True),
    Column("n", Float, nullable=False),
)

# Generations the provider accepted, per client and day (resubmissions included).
usage_days = Table(
    "usage_days",
    metadata,
    Column("day", Date, primary_key=True),
    Column("client_id", BigId, ForeignKey("clients.id", ondelete="CASCADE"), primary_key=True),
    Column("generations", BigInteger, nullable=False),
)
