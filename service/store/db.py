"""The database handle every part of the store shares. `run(fn)` runs `fn(connection)` as
one transaction: on PostgreSQL on a pooled connection, on SQLite on its one writer thread
(the only writer, so no write waits in SQLite's busy handler). `read()` gives an async
connection for reads; `driver()` the raw asyncpg connection for PostgreSQL's named
statements."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, create_engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.store.engine import SUSPECT, asyncpg_dsn, make_engine, sqlite_hooks
from service.store.health import HEALTH, unavailable

if TYPE_CHECKING:
    import asyncpg
    from asyncpg.pool import PoolConnectionProxy

log = logging.getLogger("service.store")
T = TypeVar("T")


class Database:
    def __init__(
        self,
        engine: AsyncEngine,
        writer: SqliteWriter | None = None,
        driver_dsn: str | None = None,
        driver_pool_size: int = 16,
    ) -> None:
        self.engine = engine
        self.is_postgresql = engine.dialect.name == "postgresql"
        self.writer = writer
        # PostgreSQL: named statements run on a pool of asyncpg connections of their own
        # (acquire and release cost no round trip), created at the first use.
        self._driver_dsn = driver_dsn
        self._driver_pool_size = driver_pool_size
        self._driver_pool: asyncpg.Pool[Any] | None = None
        self._driver_lock = asyncio.Lock()
        self._driver_epoch = SUSPECT.epoch  # the suspicion its connections were checked at

    @classmethod
    def connect(cls, database_url: str) -> Database:
        engine = make_engine(database_url)
        if engine.dialect.name == "sqlite":
            return cls(engine, SqliteWriter(database_url))
        return cls(engine, driver_dsn=asyncpg_dsn(database_url))

    async def close(self) -> None:
        await self.engine.dispose()
        if self.writer is not None:
            await self.writer.close()
        if self._driver_pool is not None:
            await self._driver_pool.close()
            self._driver_pool = None

    async def run(self, fn: Callable[[Connection], T]) -> T:
        """`fn(connection)` in one transaction: committed when it returns, rolled back when
        it raises (the exception then reaches the caller)."""
        if self.writer is not None:
            result = await self.writer.run(fn)
        else:
            async with self.engine.begin() as conn:
                result = await conn.run_sync(fn)
        HEALTH.succeeded()
        return result

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            yield conn
        HEALTH.succeeded()

    @contextlib.asynccontextmanager
    async def driver(self) -> AsyncIterator[PoolConnectionProxy[Any]]:
        """PostgreSQL: an asyncpg connection itself, for named statements run verbatim as
        prepared statements. Outside a transaction each statement commits on its own."""
        assert self.is_postgresql
        pool = self._driver_pool or await self._open_driver_pool()
        if self._driver_epoch != SUSPECT.epoch:  # the server may have restarted: fresh ones
            self._driver_epoch = SUSPECT.epoch
            await pool.expire_connections()
        async with pool.acquire() as conn:
            try:
                yield conn
            except Exception as exc:
                # A connection cut mid-protocol (the server restarted, a backend killed) can
                # come back from asyncpg not closed but unusable ("cannot switch to state"):
                # drop it, so the pool opens a fresh one instead of handing it out again.
                if unavailable(exc) is not None:
                    conn.terminate()
                    SUSPECT.raise_()
                raise
        HEALTH.succeeded()

    async def _open_driver_pool(self) -> asyncpg.Pool[Any]:
        import asyncpg

        async with self._driver_lock:
            if self._driver_pool is None:
                assert self._driver_dsn is not None
                self._driver_pool = await asyncpg.create_pool(
                    self._driver_dsn,
                    min_size=0,
                    max_size=self._driver_pool_size,
                    max_inactive_connection_lifetime=300,
                    reset=_keep,  # nothing to reset: these statements leave no session state
                    init=_json_codecs,
                )
            return self._driver_pool


async def _keep(_conn: asyncpg.Connection[Any]) -> None:
    """A pooled connection goes back as it is (see `Database.driver`)."""


async def _json_codecs(conn: asyncpg.Connection[Any]) -> None:
    """json and jsonb in and out as Python values, as through SQLAlchemy."""
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


_STOP = object()


class SqliteWriter:
    """SQLite's one writer: a thread with one connection that runs every write of the
    process. What queued up while it worked runs as one batch: each transaction in a
    savepoint of its own (one that raises is rolled back alone), then one commit for all,
    then each caller gets its result. One thread hop per batch, not per statement."""

    BATCH = 64
    RECONNECT_SECONDS = 0.5

    def __init__(self, database_url: str) -> None:
        self.engine = create_engine(
            database_url.replace("+aiosqlite", ""),
            connect_args={"timeout": 30, "check_same_thread": False},
            hide_parameters=True,
            pool_size=1,
            max_overflow=0,
        )
        sqlite_hooks(self.engine, immediate=None)  # pragmas; this thread says its own BEGIN
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._work, name="sqlite-writer", daemon=True)
        self._thread.start()

    async def run(self, fn: Callable[[Connection], T]) -> T:
        if self._closed or not self._thread.is_alive():
            raise RuntimeError("the SQLite writer has stopped")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((fn, future, loop))
        return await future

    async def close(self) -> None:
        self._closed = True
        self._queue.put(_STOP)
        await asyncio.to_thread(self._thread.join, 30)
        self.engine.dispose()

    def _work(self) -> None:
        """Serve until stopped. Losing the connection (the file cannot be opened, say) fails
        what waits with the reason, and the writer connects again: no caller waits for
        ever on a writer that is gone."""
        while True:
            try:
                if self._serve():
                    return
            except BaseException as exc:
                log.warning("SQLite writer lost its connection: %s", type(exc).__name__)
                if self._fail_waiting(exc):
                    return
                time.sleep(self.RECONNECT_SECONDS)

    def _serve(self) -> bool:
        # SQLAlchemy in autocommit mode: it opens no transaction of its own; this thread
        # says BEGIN IMMEDIATE, SAVEPOINT and COMMIT itself (verbatim, a few microseconds,
        # where SQLAlchemy's transaction objects took a tenth of the writer's time).
        with self.engine.connect() as sa_conn:
            conn = sa_conn.execution_options(isolation_level="AUTOCOMMIT")
            raw = conn.connection.driver_connection
            assert raw is not None
            while True:
                item = self._queue.get()
                if item is _STOP:
                    return True
                batch = [item]
                while len(batch) < self.BATCH:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is _STOP:
                        self._queue.put(_STOP)
                        break
                    batch.append(more)
                try:
                    self._run_batch(conn, raw, batch)
                except BaseException as exc:  # its callers must not wait for ever
                    for _fn, future, loop in batch:
                        _hand_over(loop, future, False, exc)
                    raise

    def _fail_waiting(self, exc: BaseException) -> bool:
        """Fail every queued write with `exc`; True when a stop was among them."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return False
            if item is _STOP:
                return True
            _fn, future, loop = item
            _hand_over(loop, future, False, exc)

    def _run_batch(self, conn: Connection, raw: Any, batch: list[Any]) -> None:
        outcomes: list[tuple[bool, Any]] = []
        try:
            raw.execute("BEGIN IMMEDIATE")
            try:
                for fn, _future, _loop in batch:
                    raw.execute("SAVEPOINT tx")
                    try:
                        outcomes.append((True, fn(conn)))
                    except Exception as exc:  # this transaction only; the batch goes on
                        raw.execute("ROLLBACK TO SAVEPOINT tx")
                        outcomes.append((False, exc))
                    raw.execute("RELEASE SAVEPOINT tx")
                raw.execute("COMMIT")
            except BaseException:
                raw.execute("ROLLBACK")
                raise
        except Exception as exc:  # the commit itself failed: nothing of the batch holds
            kind = unavailable(exc)
            if kind is not None:  # an outage (a full disk): once per kind per interval
                HEALTH.failed(kind, "SQLite write batch")
            else:
                log.warning("SQLite write batch failed: %s", type(exc).__name__)
            outcomes = [(False, exc)] * len(batch)
        for (ok, value), (_fn, future, loop) in zip(outcomes, batch, strict=True):
            _hand_over(loop, future, ok, value)


def _hand_over(loop: asyncio.AbstractEventLoop, future: Any, ok: bool, value: Any) -> None:
    """Settle `future` on its own loop (gone, if its caller's loop has closed)."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(_settle, future, ok, value)


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.cancelled():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
