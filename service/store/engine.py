"""Engine set-up: SQLite pragmas and BEGIN IMMEDIATE, PostgreSQL pool sizes, and the
connections a server restart may have killed, pinged once before their next use."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


class Suspicion:
    """Connections that may have died with the server. After a connection error, or a LISTEN
    connection lost, every pooled connection is pinged once before its next use (a bad one
    is replaced there, so the request that would have used it does not fail); otherwise no
    ping at all: it would cost a round trip per checkout on every hot path."""

    def __init__(self) -> None:
        self.epoch = 0

    def raise_(self) -> None:
        self.epoch += 1


SUSPECT = Suspicion()


def asyncpg_dsn(database_url: str) -> str:
    """The asyncpg form of a `postgresql+asyncpg://` URL."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def make_engine(url: str, pool_size: int = 16) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30}, hide_parameters=True)
        sqlite_hooks(engine, immediate=False)  # readers: a deferred BEGIN never takes the lock
        return engine
    # No pre-ping: it costs a round trip per checkout on every hot path. A connection that
    # died with the server fails one request and is then dropped by the pool (is_disconnect);
    # recycling bounds how long an idle connection lives. No overflow: under sustained
    # concurrency overflow connections are opened and closed per request (churn measured
    # at ~8 % of a webhook's CPU); waiters queue for a pooled one instead.
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        pool_recycle=300,
        pool_pre_ping=False,
        hide_parameters=True,  # errors never carry bound values (key hashes, bodies) to a log
    )
    _drop_cut_connections(engine)
    _ping_when_suspect(engine)
    return engine


def _ping_when_suspect(engine: AsyncEngine) -> None:
    pool, dialect = engine.sync_engine.pool, engine.sync_engine.dialect

    @event.listens_for(pool, "connect")
    def _fresh(_dbapi_connection: Any, record: Any) -> None:
        record.info["pinged"] = SUSPECT.epoch  # new: nothing to suspect

    @event.listens_for(pool, "checkout")
    def _ping(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        epoch = SUSPECT.epoch
        if record.info.get("pinged") == epoch:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:  # dead: the pool drops it and checks out another
            raise DisconnectionError("a suspect connection did not answer a ping") from exc
        record.info["pinged"] = epoch


def _drop_cut_connections(engine: AsyncEngine) -> None:
    """asyncpg reports some connections cut mid-protocol with errors SQLAlchemy does not
    take for a disconnect (`InternalClientError: cannot switch to state …`), so the dead
    connection would go back to the pool and fail again. Count every error that means the
    database is unreachable as a disconnect: that connection is dropped, the rest checked."""
    from service.store.health import UNREACHABLE, unavailable

    @event.listens_for(engine.sync_engine, "handle_error")
    def _on_error(context: Any) -> None:
        if unavailable(context.original_exception) == UNREACHABLE:
            context.is_disconnect = True
            SUSPECT.raise_()  # the others may have died with it


def sqlite_hooks(engine: AsyncEngine | Engine, immediate: bool | None) -> None:
    """WAL, a busy timeout, foreign keys. The writer starts every transaction with BEGIN
    IMMEDIATE (another process's writer waits on the lock instead of failing on upgrade);
    readers with a plain BEGIN, which takes no lock. `immediate=None`: no BEGIN at all (the
    store's writer thread says its own)."""

    target = engine.sync_engine if isinstance(engine, AsyncEngine) else engine

    @event.listens_for(target, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    if immediate is None:
        return

    @event.listens_for(target, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
