"""Engine set-up: SQLite pragmas and BEGIN IMMEDIATE, PostgreSQL pool sizes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def make_engine(url: str, pool_size: int = 10) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30}, hide_parameters=True)
        _sqlite_hooks(engine)
        return engine
    # No pre-ping: it costs a round trip per checkout on every hot path. A connection that
    # died with the server fails one request and is then dropped by the pool (is_disconnect);
    # recycling bounds how long an idle connection lives.
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=300,
        pool_pre_ping=False,
        hide_parameters=True,  # errors never carry bound values (key hashes, bodies) to a log
    )


def _sqlite_hooks(engine: AsyncEngine) -> None:
    """WAL, a busy timeout, foreign keys; every transaction starts with BEGIN IMMEDIATE
    so two writers queue on the lock instead of failing on upgrade."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
