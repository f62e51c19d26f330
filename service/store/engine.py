"""Engine set-up: SQLite pragmas and BEGIN IMMEDIATE, PostgreSQL pool sizes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def make_engine(url: str, pool_size: int = 10) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30}, hide_parameters=True)
        _sqlite_hooks(engine, immediate=False)  # readers: a deferred BEGIN never takes the lock
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


def make_sqlite_writer(url: str) -> AsyncEngine:
    """SQLite's one writer: a pool of exactly one connection (the store queues writers in
    front of it), so no write of this process ever waits in SQLite's busy handler."""
    engine = create_async_engine(
        url,
        connect_args={"timeout": 30},
        hide_parameters=True,
        pool_size=1,
        max_overflow=0,
    )
    _sqlite_hooks(engine, immediate=True)
    return engine


def _sqlite_hooks(engine: AsyncEngine, immediate: bool) -> None:
    """WAL, a busy timeout, foreign keys. The writer starts every transaction with BEGIN
    IMMEDIATE (another process's writer waits on the lock instead of failing on upgrade);
    readers with a plain BEGIN, which takes no lock."""

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
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
