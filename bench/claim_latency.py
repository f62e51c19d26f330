"""Claim, search and series latency with 10,000 and with 1,000,000 jobs in the table.

    .venv/bin/python -m bench.claim_latency [--database-url URL] [--sizes 10000,1000000]

Creates its own database (PostgreSQL) or file (SQLite), seeds finished jobs plus a fixed
backlog of due queued and processing jobs, then times the submitter's and the sweeper's
claim statements (each in a transaction that is rolled back, so every sample claims the
same rows), the job list's search and one client's first page, and the series endpoint's
reads (eight days of minutes, 400 days of usage for 100 clients: the same at both sizes,
since they never read the jobs table). `SELECT 1` on the same connection is the baseline:
one round trip. The target (issue #4) is a claim's 1M / 10k ratio of at most 1.5.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from service.domain.states import JobStatus
from service.store import queries as q
from service.store import queries_series as qs
from service.store.engine import make_engine
from service.store.migrate import upgrade
from tests.seeding import analyze, seed_jobs, seed_minutes, seed_usage

NOW = datetime.now(UTC)
BACKLOG = 500  # due jobs of each unfinished state
SAMPLES = 300


async def timed(engine: AsyncEngine, stmt: Any, rollback: bool) -> list[float]:
    out = []
    async with engine.connect() as conn:
        for _ in range(20):  # warm the plan cache
            trans = await conn.begin()
            await conn.execute(stmt)
            await trans.rollback()
        for _ in range(SAMPLES):
            trans = await conn.begin()
            started = time.perf_counter()
            await conn.execute(stmt)
            out.append(time.perf_counter() - started)
            await (trans.rollback() if rollback else trans.commit())
    return out


def ms(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.95)] * 1000


async def measure(engine: AsyncEngine) -> dict[str, tuple[float, float]]:
    lease = NOW + timedelta(seconds=60)
    return {
        "select 1 (baseline)": ms(await timed(engine, text("SELECT 1"), rollback=True)),
        "claim queued x16": ms(
            await timed(engine, q.claim_due(JobStatus.QUEUED, q.Lease(NOW, "b", lease, 16)), True)
        ),
        "claim processing x16": ms(
            await timed(
                engine, q.claim_due(JobStatus.PROCESSING, q.Lease(NOW, "b", lease, 16)), True
            )
        ),
        "inflight count": ms(await timed(engine, q.count_inflight(NOW), True)),
        # an Idempotency-Key of the first thousands seeded: there at both sizes
        "find by any name": ms(
            await timed(engine, q.list_jobs(None, None, None, 21, "key_s0_1_77"), True)
        ),
        "one client's first page": ms(await timed(engine, q.list_jobs(1, None, None, 21), True)),
        "series, 24 h": ms(await timed(engine, qs.minutes_since(NOW - timedelta(days=1)), True)),
        "usage, 7 d": ms(
            await timed(engine, qs.usage_since((NOW - timedelta(days=6)).date()), True)
        ),
    }


async def grow(engine: AsyncEngine, have: int, want: int) -> None:
    async with engine.begin() as conn:
        for i, status in enumerate(("succeeded", "failed", "timed_out", "canceled")):
            n = (want - have) // 4
            await seed_jobs(conn, 1, n, status, NOW - timedelta(days=1 + i), f"s{have}_{i}")
    async with engine.begin() as conn:
        await analyze(conn)


async def run(url: str, sizes: list[int]) -> None:
    await asyncio.to_thread(upgrade, url)
    engine = make_engine(url)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO clients (name, callback_secret, created_at) VALUES ('bench', 's', :t)"
            ),
            {"t": NOW if engine.dialect.name == "postgresql" else NOW.replace(tzinfo=None)},
        )
        await seed_jobs(conn, 1, BACKLOG, "queued", NOW - timedelta(seconds=30), "q")
        await seed_jobs(conn, 1, BACKLOG, "processing", NOW - timedelta(seconds=30), "p")
        await seed_minutes(conn, NOW)
        await seed_usage(conn, NOW)
    results: dict[int, dict[str, tuple[float, float]]] = {}
    have = 0
    for size in sizes:
        started = time.perf_counter()
        await grow(engine, have, size)
        have = size
        print(
            f"seeded {size:>9,} finished jobs in {time.perf_counter() - started:.1f} s", flush=True
        )
        results[size] = await measure(engine)
    await engine.dispose()
    print(f"\n{engine.dialect.name}: median / p95 latency in ms over {SAMPLES} samples")
    print(f"{'operation':<26}" + "".join(f"{s:>20,}" for s in sizes) + "   ratio (median)")
    for op in results[sizes[0]]:
        cells = "".join(f"{results[s][op][0]:>11.3f} / {results[s][op][1]:<6.3f}" for s in sizes)
        ratio = results[sizes[-1]][op][0] / results[sizes[0]][op][0]
        print(f"{op:<26}{cells}   {ratio:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--database-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test"
    )
    parser.add_argument("--sizes", default="10000,1000000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    url = make_url(args.database_url)
    if url.get_backend_name() == "sqlite":
        path = Path(tempfile.mkdtemp()) / "bench.db"
        asyncio.run(run(f"sqlite+aiosqlite:///{path}", sizes))
        return
    import asyncpg

    name = f"bench_{uuid.uuid4().hex[:8]}"
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)

    async def admin_sql(sql: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin_sql(f'CREATE DATABASE "{name}"'))
    try:
        asyncio.run(run(url.set(database=name).render_as_string(hide_password=False), sizes))
    finally:
        asyncio.run(admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
