"""Fill the jobs table fast, in SQL, for plan tests and benchmarks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

COLUMNS = (
    "public_id, client_id, status, request, request_hash, output, created_at, updated_at,"
    " completed_at, next_poll_at, metadata, provider_id, idempotency_key"
)


async def seed_jobs(
    conn: AsyncConnection, client_id: int, n: int, status: str, at: datetime, tag: str
) -> None:
    """`n` jobs in `status`; finished ones completed at `at`, unfinished ones due at `at`;
    each with an Idempotency-Key, and a provider id once past queued."""
    finished = status not in ("queued", "processing")
    provider_id = "NULL" if status == "queued" else f"'prov_{tag}_' || {{g}}"
    if conn.dialect.name == "postgresql":
        sql = f"""
            INSERT INTO jobs ({COLUMNS})
            SELECT 'job_{tag}_' || g, :client, :status, '{{}}'::jsonb, 'seed', '[]'::jsonb,
                   :at, :at, {":at" if finished else "NULL"}, {"NULL" if finished else ":at"},
                   '{{}}'::jsonb, {provider_id.format(g="g")}, 'key_{tag}_' || g
            FROM generate_series(1, :n) AS g
        """
    else:
        sql = f"""
            INSERT INTO jobs ({COLUMNS})
            WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < :n)
            SELECT 'job_{tag}_' || x, :client, :status, '{{}}', 'seed', '[]',
                   :at, :at, {":at" if finished else "NULL"}, {"NULL" if finished else ":at"}, '{{}}',
                   {provider_id.format(g="x")}, 'key_{tag}_' || x
            FROM g
        """
    at_value: object = (
        at if conn.dialect.name == "postgresql" else at.replace(tzinfo=None).isoformat(sep=" ")
    )
    await conn.execute(text(sql), {"client": client_id, "status": status, "at": at_value, "n": n})


async def analyze(conn: AsyncConnection) -> None:
    await conn.execute(text("ANALYZE"))


async def seed_delivered_callbacks(conn: AsyncConnection) -> None:
    """A delivered callback for every succeeded job: the outbox's history."""
    await conn.execute(
        text(
            "INSERT INTO callback_deliveries (job_id, client_id, webhook_id, event_type, url, body,"
            " status, attempts, schedule_step, created_at, updated_at)"
            " SELECT id, client_id, 'msg_' || id, 'job.succeeded', 'https://x.example.invalid/cb', '{}',"
            " 'delivered', 1, 0, completed_at, completed_at FROM jobs WHERE status = 'succeeded'"
        )
    )


async def seed_done_archives(conn: AsyncConnection) -> None:
    """A settled archive and one stored output for every succeeded job: the archive's
    history."""
    await conn.execute(
        text(
            "INSERT INTO output_archives (job_id, status, attempts, deadline_at, created_at,"
            " updated_at) SELECT id, 'done', 1, completed_at, completed_at, completed_at"
            " FROM jobs WHERE status = 'succeeded'"
        )
    )
    await conn.execute(
        text(
            "INSERT INTO job_outputs (job_id, n, provider_url, object_key, sha256, bytes,"
            " width, height, content_type, stored_at) SELECT id, 0, 'https://x.example.invalid/o',"
            " public_id || '/0.png', 'x', 100, 64, 64, 'image/png', completed_at"
            " FROM jobs WHERE status = 'succeeded'"
        )
    )


async def seed_minutes(conn: AsyncConnection, until: datetime, days: int = 8) -> None:
    """Eight days of per-minute series rows (five series a minute)."""
    minutes = days * 24 * 60
    if conn.dialect.name == "postgresql":
        sql = """
            INSERT INTO stats_minutes (minute, series, label, n)
            SELECT CAST(:until AS timestamptz) - make_interval(mins => g), s, '', 1
            FROM generate_series(1, :n) AS g,
                 unnest(ARRAY['created', 'finished', 'results', 'callbacks', 'provider_errors']) AS s
        """
        at: object = until
    else:
        sql = """
            INSERT INTO stats_minutes (minute, series, label, n)
            WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < :n),
                 s(name) AS (VALUES ('created'), ('finished'), ('results'), ('callbacks'),
                                    ('provider_errors'))
            SELECT strftime('%Y-%m-%d %H:%M:%f', :until, '-' || x || ' minutes'), s.name, '', 1
            FROM g, s
        """
        at = until.replace(tzinfo=None).isoformat(sep=" ")
    await conn.execute(text(sql), {"until": at, "n": minutes})


def _numbers(conn: AsyncConnection, alias: str) -> str:
    """A FROM item of the numbers 1 to :n, as `alias(x)`."""
    if conn.dialect.name == "postgresql":
        return f"generate_series(1, :n) AS {alias}(x)"
    return (
        "(WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < :n)"
        f" SELECT x FROM g) AS {alias}"
    )


async def seed_usage(conn: AsyncConnection, until: datetime, clients: int = 100) -> None:
    """`clients` more clients, each with generations on every one of the 400 days up to
    `until`: the usage table after a year and more."""
    postgresql = conn.dialect.name == "postgresql"
    await conn.execute(
        text(
            "INSERT INTO clients (name, callback_secret, created_at)"
            f" SELECT 'seed-client-' || c.x, 'whsec_seed', :at FROM {_numbers(conn, 'c')}"
        ),
        {"n": clients, "at": until if postgresql else until.replace(tzinfo=None).isoformat(" ")},
    )
    day = "CAST(:until AS date) - d.x" if postgresql else "date(:until, '-' || d.x || ' days')"
    await conn.execute(
        text(
            "INSERT INTO usage_days (day, client_id, generations)"
            f" SELECT {day}, c.id, 3 FROM clients AS c, {_numbers(conn, 'd')}"
            " WHERE c.name LIKE 'seed-client-%'"
        ),
        {"n": 400, "until": until.date() if postgresql else until.date().isoformat()},
    )
